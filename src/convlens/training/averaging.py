"""An exponential moving average (EMA) of a network's weights, for evaluation.

Training moves the weights in noisy steps; their running average sits nearer
the middle of the valley the steps bounce around, and usually scores higher on
the test set than the last step's weights (the speedrun projects,
cifar10-airbench and hlb-CIFAR10, evaluate such an average). After every
optimiser step:

    average = decay_t * average + (1 - decay_t) * weights,
    decay_t = min(decay, (1 + t) / (10 + t))

where t counts the updates so far: the warm-up term (TensorFlow's
ExponentialMovingAverage with ``num_updates``) keeps the first updates from
being dominated by the random initial weights. Buffers (batch normalisation's
running statistics) are copied from the trained network, not averaged.
"""

from __future__ import annotations

import copy

import torch


def warmed_decay(decay: float, updates: int) -> float:
    """The decay applied at update number ``updates`` (0-based): min(decay, (1+t)/(10+t))."""
    return min(decay, (1 + updates) / (10 + updates))


class WeightAverage:
    """A copy of ``network`` whose weights track the exponential average of the original's."""

    def __init__(self, network: torch.nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"an average's decay must be in (0, 1), not {decay}")
        self.decay = decay
        self.updates = 0
        self.network = copy.deepcopy(network)
        self.network.requires_grad_(False)

    @torch.no_grad()
    def update(self, trained: torch.nn.Module) -> None:
        """Move the average one step towards ``trained``'s current weights."""
        weight = 1.0 - warmed_decay(self.decay, self.updates)
        mine = list(self.network.parameters())
        theirs = [param.detach() for param in trained.parameters()]
        if len(mine) != len(theirs):
            raise ValueError("the average and the trained network have different parameters")
        torch._foreach_lerp_(mine, theirs, weight)  # one call for all: same numbers as a loop
        for mine, theirs in zip(self.network.buffers(), trained.buffers(), strict=True):
            mine.copy_(theirs)
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights and buffers, plus the update count as a tensor."""
        state = dict(self.network.state_dict())
        state["updates"] = torch.tensor(self.updates, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what state_dict() returned (for resuming a run)."""
        state = dict(state)
        self.updates = int(state.pop("updates"))
        self.network.load_state_dict(state)
