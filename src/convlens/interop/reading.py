"""A model file of any supported format -> ImportedModel -> a convlens Network with its weights."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from convlens.errors import ConvlensError
from convlens.interop.keras import ImportedModel, read_keras
from convlens.model.network import build_network

if TYPE_CHECKING:
    from convlens.model.network import Network

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".onnx")


def read_model_file(path: str | Path) -> ImportedModel:
    """Read a .keras, .h5 or .onnx file (by its suffix) into a spec and weights."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from convlens.interop.onnx import read_onnx

        return read_onnx(path)
    if suffix in (".keras", ".h5", ".hdf5"):
        return read_keras(path)
    raise ConvlensError(
        f"{path.name} is not a model file convlens reads; give a .keras, .h5 or .onnx file."
    )


def is_model_file(name: str | Path) -> bool:
    """Whether a path names a file importers read (by suffix)."""
    return Path(name).suffix.lower() in MODEL_SUFFIXES


def build_imported(imported: ImportedModel) -> Network:
    """The imported model's torch Network holding the file's weights, in eval mode."""
    import torch

    network = build_network(imported.model)
    state = network.state_dict()
    needed = {k for k, v in state.items() if v.is_floating_point()}
    missing = sorted(needed - set(imported.state))
    if missing:
        raise ConvlensError(f"the file has no weights for {missing[0]!r}; the file is damaged.")
    for key, values in imported.state.items():
        tensor = torch.from_numpy(values)
        if key not in state or tuple(state[key].shape) != tuple(tensor.shape):
            raise ConvlensError(f"the file's weights for {key!r} do not fit the model.")
        state[key] = tensor
    network.load_state_dict(state)
    network.eval()
    return network
