"""Model files: the spec as JSON (model.json), read and written without torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from convlens.errors import ConvlensError
from convlens.model.sequential import Sequential

SPEC_FILE = "model.json"


WEIGHTS_FILE = "weights.safetensors"


def read_spec(path: str | Path) -> Sequential:
    """Read a model JSON file (spec only, no weights)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConvlensError(f"cannot read model file {path} ({exc}); check the path.") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConvlensError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            f"fix the file."
        ) from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, or nesting too deep
        reason = "it nests too deeply" if isinstance(exc, RecursionError) else exc
        raise ConvlensError(
            f"{path} is not a usable model file ({reason}); fix the file."
        ) from None
    try:
        return Sequential.from_config(config)
    except ConvlensError as exc:
        raise ConvlensError(f"{path}: {exc}") from None
