"""A model file of any supported format, by its suffix, read into an ImportedModel (no torch)."""

from __future__ import annotations

from pathlib import Path

from convlens.errors import ConvlensError
from convlens.interop.keras import ImportedModel, read_keras
from convlens.interop.onnx import read_onnx

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".onnx")


def read_model_file(path: str | Path) -> ImportedModel:
    """Read a .keras, .h5 or .onnx file (by its suffix) into a spec and weights."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return read_onnx(path)
    if suffix in (".keras", ".h5", ".hdf5"):
        return read_keras(path)
    raise ConvlensError(
        f"{path.name} is not a model file convlens reads; give a .keras, .h5 or .onnx file."
    )


def is_model_file(name: str | Path) -> bool:
    """Whether a path names a file importers read (by suffix)."""
    return Path(name).suffix.lower() in MODEL_SUFFIXES


