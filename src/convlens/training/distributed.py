"""Devices and data-parallel training across processes and machines.

``torchrun --nproc-per-node N -m convlens train ...`` starts N processes and
sets RANK, WORLD_SIZE and the rendezvous variables; ``join()`` turns that
environment into a process group (gloo on CPU, nccl on CUDA). Every process
trains a DistributedDataParallel copy of the model on its own shard of each
epoch's shuffled order; gradients and metrics are averaged across processes;
only rank 0 writes the run directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from convlens.errors import ConvlensError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """The torch device for --device: auto picks CUDA when present, else the CPU."""
    if name not in DEVICES:
        raise ConvlensError(f"unknown device {name!r}; use auto, cpu or cuda.")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConvlensError("--device cuda was asked for but no CUDA GPU is available; use cpu.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass(frozen=True)
class Group:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints (rank 0)."""
        return self.rank == 0

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's equal share of a shuffled order (the remainder is dropped)."""
        if self.world == 1:
            return order
        usable = len(order) - len(order) % self.world
        return order[:usable][self.rank :: self.world]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``tensor`` over every process (in place)."""
        if self.world > 1:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor


SINGLE = Group()


def join(device: torch.device) -> Group:
    """Join the process group torchrun describes in the environment, or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group(backend=backend)
    return Group(rank=torch.distributed.get_rank(), world=torch.distributed.get_world_size())


def leave(group: Group) -> None:
    """Leave the process group (a no-op when running alone)."""
    if group.world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
