"""A model's weights (weights.safetensors) saved beside its model.json and loaded
into a built network, every name, shape and dtype checked; nothing from a file is run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from convlens.errors import ConvlensError
from convlens.fsutil import atomic_write_bytes, atomic_write_text
from convlens.model.files import SPEC_FILE, WEIGHTS_FILE, read_spec
from convlens.model.network import build_network
from convlens.model.sequential import Sequential

if TYPE_CHECKING:
    import torch


def save_model(directory: str | Path, model: Sequential, network: torch.nn.Module) -> None:
    """Write model.json and weights.safetensors into ``directory`` (each atomically)."""
    directory = Path(directory)
    state = {k: v.detach().contiguous().cpu() for k, v in network.state_dict().items()}
    atomic_write_bytes(directory / WEIGHTS_FILE, save_tensors(state, metadata={"format": "pt"}))
    atomic_write_text(directory / SPEC_FILE, json.dumps(model.config(), indent=2) + "\n")


def load_model(directory: str | Path) -> tuple[Sequential, torch.nn.Module]:
    """Read a saved model: its spec and a built network holding the saved weights (eval mode).

    The weights must match the spec exactly (names, shapes, dtypes); anything
    else is refused with one sentence. No code from the files is run.
    """
    directory = Path(directory)
    model = read_spec(directory / SPEC_FILE)
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ConvlensError(
            f"{directory} has no {WEIGHTS_FILE}; train the model first (`convlens train`)."
        )
    _check_weights_size(weights_path, model)
    try:
        state = load_tensors(weights_path.read_bytes())
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConvlensError(
            f"{weights_path} is not a valid safetensors file ({exc}); retrain or restore it."
        ) from None
    except KeyError as exc:  # a dtype the safetensors format knows but torch does not
        raise ConvlensError(
            f"{weights_path} holds tensors of type {exc} that convlens cannot read; "
            f"retrain or restore it."
        ) from None
    network = build_network(model)
    _check_weights(weights_path, network.state_dict(), state)
    network.load_state_dict(state)
    network.eval()
    return model, network


_CHEAP_BUILD_BYTES = 64 << 20  # below this, building a mismatched network costs nothing


def _check_weights_size(path: Path, model: Sequential) -> None:
    """Refuse, before building, a spec too big for its weights file to hold.

    A model.json claiming a huge layer would otherwise allocate it (gigabytes) only to find
    that the weights do not match; small mismatches are left to _check_weights, which names
    the tensor.
    """
    size, needed = path.stat().st_size, model.total_params * 4  # float32 parameters
    if needed > size and needed > _CHEAP_BUILD_BYTES:
        raise ConvlensError(
            f"{path} is not a valid safetensors file for this model.json ({size:,} bytes, but "
            f"its {model.total_params:,} parameters need {needed:,}); it is truncated or the "
            f"two files do not belong together."
        )


def _check_weights(path: Path, expected: dict, found: dict) -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has an unexpected {extra[0]!r}"
        raise ConvlensError(
            f"{path} {what} for this model.json; the two files do not belong together."
        )
    for key, tensor in expected.items():
        if found[key].shape != tensor.shape or found[key].dtype != tensor.dtype:
            raise ConvlensError(
                f"{path}: {key!r} is {tuple(found[key].shape)} {found[key].dtype} but model.json "
                f"needs {tuple(tensor.shape)} {tensor.dtype}; the two files do not belong together."
            )
