"""Bounds on what a model file may declare, checked before anything is allocated.

A model file is untrusted input: every size it states (its own length, a zip
member's uncompressed size, a JSON document's length and depth, an HDF5
dataset's or ONNX initializer's shape) is checked against these limits before
convlens reads or allocates it. The limits are generous for the small-image
CNNs convlens is for (the lesson's CNN has 243,786 parameters).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from convlens.errors import ConvlensError

MAX_FILE_BYTES = 1 << 30  # a model file on disk (1 GiB)
MAX_JSON_BYTES = 16 << 20  # config.json, model_config: 16 MiB of text
MAX_JSON_DEPTH = 64  # nesting of objects and lists in a model config
MAX_PARAMETERS = 100_000_000  # numbers in all of a model's weights (400 MB as float32)
MAX_LAYERS = 1_000


def check_file(path: Path, limit: int = MAX_FILE_BYTES) -> int:
    """The file's size; refuse a missing, unreadable or too large file in one sentence."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConvlensError(
            f"cannot read {path} ({exc.strerror or exc}); check the path."
        ) from None
    if not path.is_file():
        raise ConvlensError(f"{path} is not a file; give the path of a .keras, .h5 or .onnx file.")
    if size > limit:
        raise ConvlensError(
            f"{path.name} is {size:,} bytes, more than the {limit:,} convlens reads; "
            f"a small-image CNN file is far smaller, so check that this is the right file."
        )
    return size


def parse_json(text: str | bytes, what: str) -> Any:
    """Parse a JSON document of at most MAX_JSON_BYTES and MAX_JSON_DEPTH levels."""
    if len(text) > MAX_JSON_BYTES:
        raise ConvlensError(
            f"the {what} is {len(text):,} bytes, more than the {MAX_JSON_BYTES:,} convlens "
            f"reads; the file is not a small CNN's model file."
        )
    try:
        value = json.loads(text)
    except RecursionError:
        raise ConvlensError(f"the {what} nests too deeply to be a model config.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConvlensError(f"the {what} is not valid JSON ({exc}); the file is damaged.") from None
    check_depth(value, what)
    return value


def check_depth(value: Any, what: str) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ConvlensError(
                f"the {what} nests deeper than {MAX_JSON_DEPTH} levels; "
                f"it is not a model config convlens reads."
            )
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)


def check_parameters(total: int, name: str) -> None:
    """Refuse a model declaring more than MAX_PARAMETERS numbers, before building it."""
    if total > MAX_PARAMETERS:
        raise ConvlensError(
            f"{name} declares {total:,} parameters, more than the {MAX_PARAMETERS:,} convlens "
            f"loads; it is not a small-image CNN."
        )


def check_tensor_shape(shape: tuple[int, ...], expected: tuple[int, ...], where: str) -> None:
    """Refuse a stored tensor whose shape is not the one its layer needs (before reading it)."""
    if tuple(shape) != tuple(expected):
        size = math.prod(shape) if shape else 1
        raise ConvlensError(
            f"{where} holds a tensor of shape {tuple(shape)} ({size:,} numbers) but its layer "
            f"needs {tuple(expected)}; the weights do not belong to this model config."
        )
