"""Write a run's model as a Keras 3 ``.keras`` file, with h5py and zipfile (no Keras needed).

The archive holds what Keras 3 writes: config.json (a Sequential of
keras.layers, each layer's config in Keras's own argument names),
metadata.json, and model.weights.h5 with each layer's arrays under
layers/<name>/vars/0, 1, ... in Keras's layout (kernels (kh, kw, in, out),
Dense (in, out); BatchNormalization gamma, beta, moving mean, moving variance).
``keras.models.load_model`` opens it with any backend and predicts what
convlens predicts, for pixels multiplied by the run's input scale (1/255 as
the lesson does, unless the model was imported with its own Rescaling).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from convlens.interop.keras_layers import keras3_weight_paths
from convlens.model.layers import (
    Layer,
)

if TYPE_CHECKING:
    from convlens.runs.loading import Run

KERAS_VERSION = "3.0.0"  # the oldest Keras 3 whose loader reads this layout


def keras_layer_config(layer: Layer) -> dict[str, Any]:
    """A convlens spec as Keras 3's layer config (the arguments Keras's constructor takes)."""
    return {"name": layer.name, "trainable": True, "dtype": "float32", **layer.keras_config()}


def model_config(run: Run) -> dict[str, Any]:
    """config.json: the run's model as a Keras 3 Sequential."""
    model = run.model
    batch_shape: list[Any] = [None, *model.input_shape]
    layers: list[dict[str, Any]] = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {"batch_shape": batch_shape, "dtype": "float32", "name": "input_layer"},
            "registered_name": None,
        }
    ]
    for row in model.rows:
        layers.append(
            {
                "module": "keras.layers",
                "class_name": row.layer.keras_type,
                "config": keras_layer_config(row.layer),
                "registered_name": None,
                "build_config": {"input_shape": [None, *row.input_shape]},
            }
        )
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": model.name, "trainable": True, "layers": layers},
        "registered_name": None,
        "build_config": {"input_shape": batch_shape},
    }


def keras_arrays(layer: Layer, name: str, state: dict[str, Any]) -> list[np.ndarray]:
    """One layer's arrays in Keras's order and layout, from the network's state dict."""
    prefix = f"{name}."
    own = {
        key[len(prefix) :]: value.detach().cpu().float().numpy()
        for key, value in state.items()
        if key.startswith(prefix)
    }
    return layer.keras_from_torch(own) if own else []


def weights_bytes(run: Run) -> bytes:
    """model.weights.h5 in Keras 3's layout."""
    state = run.network.state_dict()
    paths = keras3_weight_paths(run.model)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_group("layers")
        for row in run.model.rows:
            group = h5.create_group(f"layers/{paths[row.name]}/vars")
            group.attrs["name"] = row.name
            for index, array in enumerate(keras_arrays(row.layer, row.name, state)):
                group.create_dataset(str(index), data=np.ascontiguousarray(array, np.float32))
        h5.create_group("vars").attrs["name"] = run.model.name
    return buffer.getvalue()


def keras_bytes(run: Run) -> bytes:
    """The .keras archive's bytes for a loaded run."""
    metadata = {
        "keras_version": KERAS_VERSION,
        "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S"),
        "written_by": "convlens",
        "input_scale": run.model.input_scale,
        "class_names": list(run.class_names),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(model_config(run)))
        archive.writestr("model.weights.h5", weights_bytes(run))
    return buffer.getvalue()
