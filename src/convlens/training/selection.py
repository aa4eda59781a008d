"""Selective backprop: train on the images the network still gets wrong.

After the first epoch most training images are already classified well and
teach the network little. From ``select_from_epoch`` on, the data order is
cut into pools of ``round(batch_size / keep)`` images and each pool yields
one batch: its ``batch_size`` images with the highest loss when last trained
on (the loss the training forward pass computed anyway, so choosing costs
nothing). An image left out keeps its old loss and is chosen again once the
images trained on have fallen below it. Jiang et al., "Accelerating Deep
Learning by Focusing on the Biggest Losers" (2019), score with a fresh
forward pass; the stale losses are their cheaper variant, and measured better
here (see train.RECIPES).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from convlens.training.distributed import Group
from convlens.training.recipes import pool_size


class LossMemory:
    """Each training image's loss when it was last trained on (infinite before), and
    whether the network classified it correctly then."""

    def __init__(self, images: int, device: torch.device | str = "cpu") -> None:
        self.loss = torch.full((images,), math.inf, device=device)
        self.correct = torch.zeros(images, dtype=torch.bool, device=device)
        self.touched = torch.zeros(images, dtype=torch.bool, device=device)

    def batches(self, order: torch.Tensor, batch_size: int, keep: float) -> Iterator[torch.Tensor]:
        """Index batches over ``order``: each pool's highest-loss images, in the pool's order."""
        if keep >= 1.0:
            yield from order.split(batch_size)
            return
        for pool in order.split(pool_size(batch_size, keep)):
            count = min(batch_size, max(1, round(len(pool) * keep)))
            chosen = self.loss[pool].topk(count).indices.sort().values
            yield pool[chosen]

    def record(self, index: torch.Tensor, losses: torch.Tensor, correct: torch.Tensor) -> None:
        """Remember the per-image ``losses`` and ``correct`` flags of the images just trained on."""
        self.loss[index] = losses.detach().float()
        self.correct[index] = correct
        self.touched[index] = True

    def share(self, group: Group) -> None:
        """After an epoch: every process learns the losses the others recorded."""
        if group.world > 1:
            zero = torch.zeros_like(self.loss)
            values = torch.stack(
                [torch.where(self.touched, self.loss, zero), (self.touched & self.correct).float()]
            )
            counts = self.touched.float()
            group.sum(values)
            group.sum(counts)
            mean = values / counts.clamp(min=1)
            self.loss = torch.where(counts > 0, mean[0], self.loss)
            self.correct = torch.where(counts > 0, mean[1] > 0.5, self.correct)
        self.touched.zero_()

    def summary(self) -> tuple[float, float]:
        """(mean loss, accuracy) over every image trained on so far, each as of its last time."""
        seen = torch.isfinite(self.loss)
        count = max(int(seen.sum()), 1)
        return float(self.loss[seen].double().sum()) / count, int(self.correct[seen].sum()) / count

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The losses and correct flags, for a checkpoint."""
        return {
            "loss": self.loss.detach().cpu().clone(),
            "correct": self.correct.detach().cpu().clone(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what state_dict saved (a checkpoint of the same data)."""
        self.loss = state["loss"].to(self.loss.device, torch.float32).clone()
        self.correct = state["correct"].to(self.correct.device, torch.bool).clone()
