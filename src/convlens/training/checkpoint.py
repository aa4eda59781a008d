"""End-of-epoch checkpoints: everything needed to resume a run bit-for-bit.

One file, checkpoint.safetensors, written atomically (temporary file, fsync,
rename) at the end of every epoch into the run's staging directory. Tensors
(weights, optimizer moments, random generator states) are safetensors
tensors; everything else (epoch, step, history, optimizer settings, the model
spec, the training config, where the data came from) is JSON in the file's
metadata. Loading it runs no code from the file: no pickle anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from convlens.errors import ConvlensError
from convlens.fsutil import atomic_write_bytes
from convlens.runs.directory import CHECKPOINT_FILE


@dataclass
class TrainingState:
    """Where training stands after ``epoch`` completed epochs."""

    epoch: int
    step: int
    history: list[dict[str, Any]]
    network: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # torch optimizer state_dict
    shuffle_rng: torch.Tensor  # the data-order generator's state (uint8)
    torch_rng: torch.Tensor  # torch's global generator state (dropout), uint8
    info: dict[str, Any] = field(default_factory=dict)  # model spec, config, data source
    average: dict[str, torch.Tensor] | None = None  # the weight average's state, when one is kept
    selection: dict[str, torch.Tensor] | None = None  # selective backprop's per-image losses


def _flatten_optimizer(optimizer: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state_dict -> tensors keyed "optimizer.<param>.<name>", plus the JSON rest."""
    tensors, scalars = {}, {}
    for index, values in optimizer["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": optimizer["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], rest: dict) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in rest["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors whose key starts with ``prefix``, keyed without it."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def save_checkpoint(directory: Path, state: TrainingState) -> Path:
    """Write the state to directory/checkpoint.safetensors atomically; returns its path."""
    optimizer_tensors, optimizer_rest = _flatten_optimizer(state.optimizer)
    tensors = {f"network.{k}": v.detach().contiguous().cpu() for k, v in state.network.items()}
    tensors.update(optimizer_tensors)
    for key, value in (state.average or {}).items():
        tensors[f"average.{key}"] = value.detach().contiguous().cpu()
    for key, value in (state.selection or {}).items():
        tensors[f"selection.{key}"] = value.detach().contiguous().cpu()
    tensors["rng.shuffle"] = state.shuffle_rng.contiguous()
    tensors["rng.torch"] = state.torch_rng.contiguous()
    meta = {
        "epoch": state.epoch,
        "step": state.step,
        "history": state.history,
        "optimizer": optimizer_rest,
        "info": state.info,
    }
    data = save(tensors, metadata={"convlens": json.dumps(meta)})
    return atomic_write_bytes(Path(directory) / CHECKPOINT_FILE, data)


def load_checkpoint(directory: Path) -> TrainingState:
    """Read directory/checkpoint.safetensors back; a damaged file is refused in one sentence."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise ConvlensError(
            f"{directory} has no checkpoint (no epoch had finished); start the run again."
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["convlens"])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        network = _prefixed(tensors, "network.")
        average = _prefixed(tensors, "average.")
        selection = _prefixed(tensors, "selection.")
        return TrainingState(
            epoch=int(meta["epoch"]),
            step=int(meta["step"]),
            history=list(meta["history"]),
            network=network,
            optimizer=_unflatten_optimizer(tensors, meta["optimizer"]),
            shuffle_rng=tensors["rng.shuffle"],
            torch_rng=tensors["rng.torch"],
            info=dict(meta["info"]),
            average=average or None,
            selection=selection or None,
        )
    except (SafetensorError, OSError, KeyError, TypeError, ValueError) as exc:
        raise ConvlensError(f"{path} is damaged ({exc}); start the run again.") from None
