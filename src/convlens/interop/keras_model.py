"""A Keras model in memory (Keras 3 on any backend, or tf.keras 2) read into a spec and weights.

The model's own description (``model.to_json()``) is read by the same code
that reads the config inside a .keras or .h5 file (keras.model_from_config:
Sequential and single-chain functional models, every layer refused in one
sentence when convlens does not compute it as Keras does), and each layer's
arrays come from ``layer.get_weights()`` in Keras's order, checked like a
file's. Keras itself is never imported here: the model brings its own.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from convlens.errors import ConvlensError
from convlens.interop import limits
from convlens.interop.keras import ImportedModel, model_from_config
from convlens.interop.keras_layers import to_torch_state

IN_MEMORY = "the Keras model"


def keras_version_of(model: Any) -> str:
    """The version of the Keras that made ``model`` (keras, tf_keras or TensorFlow's own)."""
    package = type(model).__module__.split(".")[0]
    module = sys.modules.get(package)
    if package == "tensorflow" and module is not None:
        keras = getattr(module, "keras", None)
        return str(getattr(keras, "__version__", None) or getattr(module, "__version__", "2"))
    return str(getattr(module, "__version__", "3"))


def _config_of(model: Any) -> dict[str, Any]:
    """The model's JSON description, as a .keras file's config.json holds it."""
    if not callable(getattr(model, "to_json", None)) or not hasattr(model, "get_layer"):
        raise ConvlensError(
            f"from_keras takes a Keras model (keras.Sequential or keras.Model), not a "
            f"{type(model).__name__}; for a torch module use convlens.from_torch."
        )
    if not getattr(model, "built", True):
        raise ConvlensError(
            "the Keras model is not built yet, so its input shape is unknown; start it with "
            "keras.Input(shape=(28, 28, 1)) or call it on a batch of images first."
        )
    try:
        text = model.to_json()
    except Exception as exc:  # a subclassed model has no config Keras can write
        raise ConvlensError(
            f"the Keras model cannot describe itself as JSON ({exc}); convlens reads "
            f"Sequential and single-chain functional models."
        ) from None
    return limits.parse_json(text, "the model's JSON")


def _layer_arrays(model: Any, name: str, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """One layer's weights in Keras's order, each checked: its shape, float, finite."""
    arrays = [np.asarray(array) for array in model.get_layer(name).get_weights()]
    if len(arrays) != len(shapes):
        raise ConvlensError(
            f"layer {name!r} holds {len(arrays)} weight arrays but convlens expects "
            f"{len(shapes)}; rebuild the layer with Keras's defaults."
        )
    for index, (array, shape) in enumerate(zip(arrays, shapes, strict=True)):
        where = f"layer {name!r}'s weight {index}"
        limits.check_tensor_shape(array.shape, shape, where)
        if array.dtype.kind != "f" or not np.isfinite(array).all():
            raise ConvlensError(
                f"{where} holds {array.dtype} numbers that are not all finite floats; "
                f"the model is not usable."
            )
    return arrays


def read_keras_model(model: Any) -> ImportedModel:
    """The spec and weights of a Keras model in memory (Sequential or single-chain functional)."""
    config = _config_of(model)
    version = keras_version_of(model)
    spec = model_from_config(config, version.startswith(("1.", "2.")), IN_MEMORY)
    state: dict[str, np.ndarray] = {}
    for row in spec.rows:
        shapes = row.layer.keras_weight_shapes(row.input_shape)
        if shapes:
            arrays = _layer_arrays(model, row.name, shapes)
            state.update(to_torch_state(row.name, row.layer, arrays))
    source = {
        "format": "keras-in-memory",
        "model": str(getattr(model, "name", "keras")),
        "keras_version": version,
        "backend": _backend(model),
    }
    return ImportedModel(spec, state, source)


def _backend(model: Any) -> str:
    """The backend a Keras 3 model computes with (torch, jax, tensorflow), else TensorFlow."""
    keras = sys.modules.get(type(model).__module__.split(".")[0])
    backend = getattr(getattr(keras, "config", None), "backend", None)
    return str(backend()) if callable(backend) else "tensorflow"
