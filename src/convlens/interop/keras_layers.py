"""Keras layer entries -> convlens layer specs, and Keras weights -> torch tensors.

Each layer type reads its own Keras config (``from_keras`` on its class in
convlens/model/layers/, which refuses in one sentence any option convlens does
not compute the way Keras does); this module finds the type by the entry's
class name, refuses what no type reads (Lambda, merges, custom classes), and
lays each layer's stored arrays out for the torch modules.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from convlens.errors import ConvlensError
from convlens.model.layers import LAYER_TYPES, Layer
from convlens.model.layers.keras_config import refuse
from convlens.model.sequential import Sequential

# Every Keras class name a registered type reads: its own and its aliases (MaxPool2D, LeakyReLU).
KERAS_NAMES: dict[str, type[Layer]] = {
    name: cls for cls in LAYER_TYPES.values() for name in (cls.keras_type, *cls.keras_aliases)
}

REFUSED = {
    "Lambda": "is a Lambda layer, whose Python code convlens never runs",
    "TFOpLambda": "is a TensorFlow operation recorded as code, which convlens never runs",
    "Add": "merges branches (Add), and convlens reads single-chain models only",
    "Concatenate": "merges branches (Concatenate), and convlens reads single-chain models only",
}


def _is_custom(entry: dict[str, Any]) -> bool:
    """A class registered by user code (registered_name "package>Conv2D") or from elsewhere."""
    module, registered = entry.get("module"), entry.get("registered_name")
    foreign = isinstance(module, str) and not module.startswith(("keras", "tf_keras"))
    return foreign or (registered is not None and registered != entry.get("class_name"))


def layer_from_keras(entry: Any, keras2: bool) -> Layer:
    """The convlens spec of one Keras layer entry {"class_name", "config"}, or one sentence."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ConvlensError(
            "a layer entry in the model config is not an object; the file is damaged."
        )
    kind, config = entry.get("class_name"), entry["config"]
    name = config.get("name", "?")
    if kind in REFUSED:
        raise refuse(name, REFUSED[kind], "rebuild the model from built-in layers")
    cls = KERAS_NAMES.get(kind) if isinstance(kind, str) else None
    if cls is None or _is_custom(entry):
        raise refuse(
            name,
            f"is a {kind!r}, which convlens does not have (its layers: "
            f"{', '.join(sorted(KERAS_NAMES))})",
            "rebuild the model from those layers",
        )
    try:
        return cls.from_keras(kind, config, keras2)
    except ConvlensError as exc:
        raise ConvlensError(f"layer {name!r}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise refuse(name, f"has an argument convlens cannot read ({exc})") from None


# ---------------------------------------------------------------- weights


def keras_snake(name: str) -> str:
    """Keras's to_snake_case: MaxPooling2D -> max_pooling2d, ReLU -> re_lu."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def keras3_weight_paths(model: Sequential) -> dict[str, str]:
    """Each layer's group under model.weights.h5's layers/, as Keras 3 names them.

    Keras 3 names the group after the layer's class, numbered in the model's
    order (dense, dense_1, ...), not after the layer's own name.
    """
    paths: dict[str, str] = {}
    counts: dict[str, int] = {}
    for row in model.rows:
        stem = keras_snake(row.layer.keras_type)
        count = counts.get(stem, 0)
        counts[stem] = count + 1
        paths[row.name] = stem if count == 0 else f"{stem}_{count}"
    return paths


def keras_order(layer: Layer, weight_names: list[str]) -> list[int]:
    """Positions of a layer's stored arrays in Keras's order, by their names when they say it.

    "conv2d/kernel:0", "sequential/conv2d/bias" end in the variable's role; when
    every name does, the roles decide the order; otherwise the stored order stands.
    """
    roles = [name.rsplit("/", 1)[-1].split(":", 1)[0] for name in weight_names]
    wanted = layer.keras_weights[: len(roles)]
    if sorted(roles) == sorted(wanted) and len(set(roles)) == len(roles):
        return [roles.index(role) for role in wanted]
    return list(range(len(weight_names)))


def to_torch_state(name: str, layer: Layer, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Keras's arrays for one layer as the network's state dict entries (float32)."""
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    return {f"{name}.{key}": value for key, value in layer.torch_from_keras(arrays).items()}
