"""Read Keras model files without Keras or TensorFlow: .keras (Keras 3) and .h5 (Keras 2 and 3).

- Keras 3 ``.keras``: a zip of config.json (the model config), metadata.json
  (the Keras version) and model.weights.h5, whose layers/<name>/vars/<i>
  datasets hold each layer's arrays in Keras's order.
- Legacy ``.h5`` (tf.keras 2.x, and Keras 3's ``model.save("x.h5")``): the
  model config as the root attribute ``model_config`` and the weights under
  model_weights/<layer>/, named by the layer group's ``weight_names``
  attribute (``conv2d/kernel:0`` in Keras 2, ``sequential/conv2d/kernel`` in
  Keras 3). Long attributes are split into chunks ``name0``, ``name1``, ...

Only the config's JSON is interpreted: no class is looked up by name, no code
is deserialised or run (a Lambda layer is refused). Sequential models and
functional models whose layers form a single chain are read. Every size is
checked before it is allocated (see limits.py); HDF5 links to other files and
external or virtual datasets are refused, so a file cannot make convlens read
another file.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from convlens.errors import ConvlensError
from convlens.interop import limits
from convlens.interop.keras_layers import (
    keras3_weight_paths,
    keras_order,
    layer_from_keras,
    to_torch_state,
)
from convlens.model.layers import Layer, Rescaling
from convlens.model.sequential import DEFAULT_INPUT_SCALE, Sequential

MAX_ZIP_MEMBERS = 64
# What h5py and zlib raise on a damaged file (h5py's C layer maps HDF5's errors onto these).
DAMAGED_FILE_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, EOFError)
MAX_METADATA_BYTES = 1 << 20
WEIGHTS_OVERHEAD_BYTES = 64 << 20  # HDF5's structure for up to MAX_LAYERS layers, generously


@dataclass(frozen=True)
class ImportedModel:
    """A model read from another framework's file: spec, weights by network.py's names, origin."""

    model: Sequential
    state: dict[str, np.ndarray]  # float32 arrays named as the Network's state dict
    source: dict[str, Any] = field(default_factory=dict)  # format, file, sha256, versions


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_keras(path: str | Path) -> ImportedModel:
    """Read a .keras or .h5 Keras model file (Sequential or single-chain functional)."""
    path = Path(path)
    limits.check_file(path)
    if zipfile.is_zipfile(path):
        return _read_keras_zip(path)
    if h5py.is_hdf5(path):
        return _read_h5(path)
    if _starts_like_a_zip(path):
        raise ConvlensError(
            f"{path.name} begins as a Keras 3 .keras archive but its end is missing: the file "
            "is damaged or truncated (an interrupted download or copy?); copy or save it again."
        )
    raise ConvlensError(
        f"{path.name} is neither a Keras 3 .keras archive nor an HDF5 .h5 file; "
        f"save the model with model.save('model.keras')."
    )


ZIP_LOCAL_HEADER = b"PK\x03\x04"  # how every zip archive's first member begins


def _starts_like_a_zip(path: Path) -> bool:
    """Whether the file begins with a zip member's header (a .keras cut short still does)."""
    with path.open("rb") as handle:
        return handle.read(len(ZIP_LOCAL_HEADER)) == ZIP_LOCAL_HEADER


# ---------------------------------------------------------------- .keras (zip)


def _read_keras_zip(path: Path) -> ImportedModel:
    try:
        with zipfile.ZipFile(path) as archive:
            members = _check_members(archive, path.name)
            text = _read_member(archive, members, "config.json", limits.MAX_JSON_BYTES)
            config = limits.parse_json(text, "config.json")
            metadata = {}
            if "metadata.json" in members:
                text = _read_member(archive, members, "metadata.json", MAX_METADATA_BYTES)
                metadata = limits.parse_json(text, "metadata.json")
            version = str(metadata.get("keras_version", "3")) if isinstance(metadata, dict) else "3"
            model = model_from_config(config, version.startswith("2"), path.name)
            if "model.weights.h5" not in members:
                raise ConvlensError(
                    f"{path.name} has no model.weights.h5 (sharded or missing weights); "
                    f"save the model again with model.save('model.keras')."
                )
            _check_weights_member(members["model.weights.h5"], model, path.name)
            with tempfile.TemporaryFile() as weights_file:
                with archive.open("model.weights.h5") as member:
                    shutil.copyfileobj(member, weights_file, 1 << 20)
                weights_file.seek(0)
                state = _read_keras3_weights(weights_file, model, path.name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise ConvlensError(
            f"{path.name} is a damaged zip archive ({exc}); save it again."
        ) from None
    except DAMAGED_FILE_ERRORS as exc:
        raise ConvlensError(f"{path.name} cannot be read ({exc}); save it again.") from None
    source = {"format": "keras", "keras_version": version}
    return ImportedModel(model, state, _source(path, source))


def _check_members(archive: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, after checking their declared sizes."""
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise ConvlensError(f"{name} holds {len(infos):,} files; a .keras archive holds three.")
    total = sum(info.file_size for info in infos)
    if total > limits.MAX_FILE_BYTES:
        raise ConvlensError(
            f"{name} unpacks to {total:,} bytes, more than the {limits.MAX_FILE_BYTES:,} convlens "
            f"reads; it is not a small CNN's .keras file."
        )
    members = {info.filename: info for info in infos}
    if "config.json" not in members:
        raise ConvlensError(
            f"{name} is a zip without config.json, so it is not a Keras 3 .keras file; "
            f"save the model with model.save('model.keras')."
        )
    return members


def _check_weights_member(info: zipfile.ZipInfo, model: Sequential, name: str) -> None:
    """Refuse, before unpacking it, a weights file far larger than the model's parameters need.

    Keras keeps the optimizer's slots beside the weights (Adam: two per
    parameter), so a few times the float32 parameters plus HDF5's own overhead
    is generous; a zip bomb's gigabytes of zeros are not.
    """
    needed = 16 * model.total_params + WEIGHTS_OVERHEAD_BYTES
    if info.file_size > needed:
        raise ConvlensError(
            f"{name}'s model.weights.h5 unpacks to {info.file_size:,} bytes, far more than the "
            f"{model.total_params:,} parameters of its config need; the file is not a Keras save."
        )


def _read_member(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str, limit: int
) -> bytes:
    """A member's bytes, at most its declared size, which must be within ``limit``.

    Read with an explicit size so zlib never inflates more than that (a member
    whose header understates its size would otherwise inflate in full first).
    """
    declared = members[name].file_size
    if declared > limit:
        raise ConvlensError(f"{name} in the archive is too large ({declared:,} bytes) for Keras's.")
    with archive.open(name) as member:
        return member.read(declared)


def _read_keras3_weights(fileobj: Any, model: Sequential, name: str) -> dict[str, np.ndarray]:
    """model.weights.h5: layers/<layer>/vars/0, 1, ... in Keras's order."""
    try:
        with h5py.File(fileobj, "r") as weights:
            paths = _keras3_paths(weights, model)
            state: dict[str, np.ndarray] = {}
            for row in model.rows:
                shapes = row.layer.keras_weight_shapes(row.input_shape)
                if not shapes:
                    continue
                where = f"layers/{paths[row.name]}/vars"
                group = _group(weights, where, name)
                arrays = [
                    _dataset(group, str(i), shape, f"{name}: {where}/{i}")
                    for i, shape in enumerate(shapes)
                ]
                state.update(to_torch_state(row.name, row.layer, arrays))
            return state
    except DAMAGED_FILE_ERRORS as exc:
        raise ConvlensError(
            f"{name}'s model.weights.h5 is damaged ({exc}); save it again."
        ) from None


def _keras3_paths(weights: Any, model: Sequential) -> dict[str, str]:
    """Each layer's group under layers/: Keras 3 names it after the class (dense, dense_1, ...).

    The vars group records the layer's own name (attribute "name"); in a file
    without those, groups named after every weighted layer are taken as such,
    else the group is the snake-case class name numbered in the model's order.
    """
    by_attribute: dict[str, str] = {}
    layers = weights.get("layers")
    if layers is not None and len(layers) <= limits.MAX_LAYERS:
        for key in layers:
            vars_group = layers[key].get("vars") if hasattr(layers[key], "get") else None
            name = None if vars_group is None else vars_group.attrs.get("name")
            if name is not None:
                by_attribute[_text(name)] = key
    numbered = keras3_weight_paths(model)
    if not by_attribute and layers is not None:  # an older writer: groups by the layer's name?
        weighted = [r.name for r in model.rows if r.layer.keras_weight_shapes(r.input_shape)]
        if weighted and all(name in layers for name in weighted):
            return {name: name for name in numbered}
    return {name: by_attribute.get(name, path) for name, path in numbered.items()}


# ---------------------------------------------------------------- legacy .h5


def _read_h5(path: Path) -> ImportedModel:
    try:
        with h5py.File(path, "r") as h5:
            if "model_config" not in h5.attrs:
                raise ConvlensError(
                    f"{path.name} holds weights only (no model_config); save the whole model "
                    f"with model.save('model.h5') or model.save('model.keras')."
                )
            version = _text(h5.attrs.get("keras_version", "2"))
            keras2 = version.startswith("2")
            config = limits.parse_json(_text(h5.attrs["model_config"]), "model_config")
            model = model_from_config(config, keras2, path.name)
            weights_root = _group(h5, "model_weights", path.name) if "model_weights" in h5 else h5
            state = _read_legacy_weights(weights_root, model, path.name)
            backend = _text(h5.attrs.get("backend", ""))
    except DAMAGED_FILE_ERRORS as exc:
        raise ConvlensError(f"{path.name} is a damaged HDF5 file ({exc}); save it again.") from None
    source = {"format": "keras-h5", "keras_version": version, "backend": backend}
    return ImportedModel(model, state, _source(path, source))


def _read_legacy_weights(root: Any, model: Sequential, name: str) -> dict[str, np.ndarray]:
    """model_weights/<layer>/ with its weight_names attribute, datasets by those names."""
    state: dict[str, np.ndarray] = {}
    for row in model.rows:
        shapes = row.layer.keras_weight_shapes(row.input_shape)
        if not shapes:
            continue
        group = _group(root, row.name, name)
        weight_names = _attribute_list(group, "weight_names")
        if len(weight_names) != len(shapes):
            raise ConvlensError(
                f"{name}: layer {row.name!r} stores {len(weight_names)} weight arrays but a "
                f"{row.layer.keras_type} like it has {len(shapes)}; the file is damaged."
            )
        ordered = [weight_names[i] for i in keras_order(row.layer, weight_names)]
        arrays = [
            _dataset(group, weight, shape, f"{name}: {row.name}/{weight}")
            for weight, shape in zip(ordered, shapes, strict=True)
        ]
        state.update(to_torch_state(row.name, row.layer, arrays))
    return state


def _attribute_list(group: Any, key: str) -> list[str]:
    """A list attribute, joined from its chunks key0, key1, ... when Keras split it."""
    if key in group.attrs:
        values = list(group.attrs[key])
    else:
        values, chunk = [], 0
        while f"{key}{chunk}" in group.attrs and chunk < limits.MAX_LAYERS:
            values.extend(group.attrs[f"{key}{chunk}"])
            chunk += 1
    return [_text(v) for v in values]


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


# ---------------------------------------------------------------- HDF5, safely


def _group(parent: Any, key: str, name: str) -> Any:
    """A subgroup of this file (never a link to another file)."""
    link = parent.get(key, getlink=True)
    if link is None:
        raise ConvlensError(f"{name} lacks {key!r}; the weights do not match the model config.")
    if isinstance(link, h5py.ExternalLink):
        raise ConvlensError(f"{name} links {key!r} to another file; convlens reads one file only.")
    group = parent[key]
    if not isinstance(group, h5py.Group):
        raise ConvlensError(f"{name}: {key!r} is not a group; the file is damaged.")
    return group


def _dataset(group: Any, key: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A float dataset of exactly ``shape``, checked before it is read."""
    link = group.get(key, getlink=True)
    if link is None:
        raise ConvlensError(f"{where} is missing; the weights do not match the model config.")
    if isinstance(link, h5py.ExternalLink):
        raise ConvlensError(f"{where} links to another file; convlens reads one file only.")
    dataset = group[key]
    if not isinstance(dataset, h5py.Dataset):
        raise ConvlensError(f"{where} is not a dataset; the file is damaged.")
    if dataset.external or dataset.is_virtual:
        raise ConvlensError(
            f"{where} keeps its data in another file; convlens reads one file only."
        )
    limits.check_tensor_shape(dataset.shape, shape, where)
    if dataset.dtype.kind != "f":
        raise ConvlensError(
            f"{where} holds {dataset.dtype} numbers, not floats; the file is damaged."
        )
    values = np.asarray(dataset[()], dtype=np.float32)
    if not np.isfinite(values).all():
        raise ConvlensError(f"{where} holds NaN or infinite numbers; the model is not usable.")
    return values


# ---------------------------------------------------------------- the model config


def model_from_config(config: Any, keras2: bool, name: str) -> Sequential:
    """The convlens Sequential of a Keras model config (Sequential or single-chain functional)."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), (dict, list)):
        raise ConvlensError(
            f"{name}'s model config is not a Keras model config; the file is damaged."
        )
    kind = config.get("class_name")
    body = config["config"]
    if kind == "Sequential":
        entries = body if isinstance(body, list) else body.get("layers")
    elif kind in ("Functional", "Model"):
        entries = _functional_chain(body, name)
    else:
        raise ConvlensError(
            f"{name} holds a {kind!r} model (a subclass or custom class whose code convlens "
            f"never runs); convlens reads Sequential and single-chain functional models."
        )
    if not isinstance(entries, list) or not entries or len(entries) > limits.MAX_LAYERS:
        raise ConvlensError(f"{name}'s model config has no usable layer list; the file is damaged.")
    input_shape = _input_shape(entries, name)
    layers = [layer_from_keras(e, keras2) for e in entries if _class(e) != "InputLayer"]
    if not layers:
        raise ConvlensError(f"{name} has no layers after its input; there is nothing to import.")
    model_name = body.get("name", "imported") if isinstance(body, dict) else "imported"
    try:
        model = Sequential(layers, input_shape, _safe_name(model_name), input_scale=_scale(layers))
    except ConvlensError as exc:
        raise ConvlensError(f"{name}: {exc}") from None
    limits.check_parameters(model.total_params, name)
    return model


def _scale(layers: list[Layer]) -> float:
    """Raw pixels for a model that starts with Rescaling, else the lesson's 1/255."""
    return 1.0 if isinstance(layers[0], Rescaling) else DEFAULT_INPUT_SCALE


def _safe_name(name: Any) -> str:
    text = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in str(name))[:60]
    return text or "imported"


def _class(entry: Any) -> Any:
    return entry.get("class_name") if isinstance(entry, dict) else None


def _input_shape(entries: list[Any], name: str) -> tuple[int, ...]:
    """(H, W, C) from the InputLayer (batch_shape / batch_input_shape) or the first layer.

    A grayscale input without a channel axis, (None, 28, 28) as the lesson's
    Flatten(input_shape=(28, 28)) has, is (28, 28, 1): its values lie in the same order.
    """
    first = entries[0] if isinstance(entries[0], dict) else {}
    config = first.get("config") if isinstance(first.get("config"), dict) else {}
    build = first.get("build_config") if isinstance(first.get("build_config"), dict) else {}
    shape = (
        config.get("batch_shape")
        or config.get("batch_input_shape")
        or build.get("input_shape")
        or ([None, *config["input_shape"]] if isinstance(config.get("input_shape"), list) else None)
    )
    if isinstance(shape, list) and len(shape) == 3:  # (None, 28, 28): the lesson's Flatten input
        shape = [*shape, 1]
    ok = isinstance(shape, list) and len(shape) == 4  # any batch size: convlens takes any
    ok = ok and all(
        isinstance(n, int) and not isinstance(n, bool) and 0 < n <= 4096 for n in shape[1:]
    )
    if not ok:
        raise ConvlensError(
            f"{name}'s model input is {shape!r}, but convlens reads models of images "
            f"(None, height, width, channels) with a fixed size; give the model such an Input."
        )
    return tuple(shape[1:])


# ---------------------------------------------------------------- functional chains


def _functional_chain(body: dict[str, Any], name: str) -> list[Any]:
    """The layer entries of a functional model in order, if they form one chain."""
    entries = body.get("layers")
    if not isinstance(entries, list) or len(entries) > limits.MAX_LAYERS:
        raise ConvlensError(f"{name}'s model config has no usable layer list; the file is damaged.")
    by_name = {_entry_name(e): e for e in entries}
    inputs = _endpoints(body.get("input_layers"))
    outputs = _endpoints(body.get("output_layers"))
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConvlensError(
            f"{name} has {len(inputs)} inputs and {len(outputs)} outputs; convlens reads models "
            f"with one image input and one output."
        )
    chain, current = [], outputs[0]
    while True:
        entry = by_name.get(current)
        if entry is None or len(chain) > len(entries):
            raise ConvlensError(f"{name}'s model graph names an unknown layer {current!r}.")
        chain.append(entry)
        if current == inputs[0]:
            break
        parents = _inbound(entry, name)
        if len(parents) != 1:
            raise ConvlensError(
                f"layer {current!r} in {name} takes {len(parents)} inputs (a branch or merge); "
                f"convlens reads single-chain models only."
            )
        current = parents[0]
    if len(chain) != len(entries):
        raise ConvlensError(
            f"{name} has layers off the chain from its input to its output (a branch); "
            f"convlens reads single-chain models only."
        )
    return chain[::-1]


def _entry_name(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return None
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    return entry.get("name", config.get("name"))


def _endpoints(value: Any) -> list[str]:
    """input_layers / output_layers: [["name", 0, 0], ...] or one ["name", 0, 0]."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [v[0] for v in value if isinstance(v, list) and v and isinstance(v[0], str)]


def _inbound(entry: dict[str, Any], name: str) -> list[str]:
    """The names of the layers feeding ``entry`` (Keras 2 and Keras 3 node formats)."""
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list) or len(nodes) != 1:
        count = len(nodes) if isinstance(nodes, list) else 0
        raise ConvlensError(
            f"layer {_entry_name(entry)!r} in {name} is called {count} times (a shared layer); "
            f"convlens reads single-chain models only."
        )
    node = nodes[0]
    if isinstance(node, list):  # Keras 2: [["conv2d", 0, 0, {}], ...]
        return [t[0] for t in node if isinstance(t, list) and t and isinstance(t[0], str)]
    found: list[str] = []
    _keras_histories(node.get("args", []) if isinstance(node, dict) else [], found, 0)
    return found


def _keras_histories(value: Any, found: list[str], depth: int) -> None:
    """Collect the layer names of Keras 3 tensors ({"keras_history": [name, 0, 0]}) in args."""
    if depth > limits.MAX_JSON_DEPTH:
        return
    if isinstance(value, dict):
        config = value.get("config")
        if value.get("class_name") == "__keras_tensor__" and isinstance(config, dict):
            history = config.get("keras_history")
            if isinstance(history, list) and history and isinstance(history[0], str):
                found.append(history[0])
            return
        for child in value.values():
            _keras_histories(child, found, depth + 1)
    elif isinstance(value, list):
        for child in value:
            _keras_histories(child, found, depth + 1)


def _source(path: Path, details: dict[str, Any]) -> dict[str, Any]:
    return {"file": path.name, "sha256": sha256_of(path), **details}
