"""convlens's Adam against torch.optim.Adam: the same weights, bit for bit, and the same state."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convlens.model.network import build_network
from convlens.model.presets import preset
from convlens.training.optimizer import Adam


def _train(optimizer_class, steps: int, weight_decay: float = 0.0, lrs=None) -> tuple:
    torch.manual_seed(0)
    network = build_network(preset("seed-cnn"), seed=3)
    optimizer = optimizer_class(network.parameters(), lr=2e-3, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(1)
    for step in range(steps):
        if lrs is not None:
            optimizer.param_groups[0]["lr"] = lrs[step]
        x = torch.rand(16, 1, 28, 28, generator=generator)
        y = torch.randint(0, 10, (16,), generator=generator)
        loss = F.cross_entropy(network(x.contiguous(memory_format=torch.channels_last)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return network, optimizer


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_weights_equal_torch_adam_bit_for_bit(weight_decay: float) -> None:
    lrs = [2e-3 * (1 - i / 12) for i in range(12)]  # a changing rate, as the schedules set it
    ours, _ = _train(Adam, 12, weight_decay, lrs)
    theirs, _ = _train(torch.optim.Adam, 12, weight_decay, lrs)
    for mine, reference in zip(
        ours.state_dict().values(), theirs.state_dict().values(), strict=True
    ):
        assert torch.equal(mine, reference)


def test_state_dict_loads_both_ways_with_torch_adam() -> None:
    network, ours = _train(Adam, 5)
    _, theirs = _train(torch.optim.Adam, 5)
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert mine["state"].keys() == reference["state"].keys()
    for index, values in reference["state"].items():
        assert float(mine["state"][index]["step"]) == float(values["step"]) == 5.0
        assert torch.equal(mine["state"][index]["exp_avg"], values["exp_avg"])
        assert torch.equal(mine["state"][index]["exp_avg_sq"], values["exp_avg_sq"])
    restored = Adam(network.parameters(), lr=1.0)
    restored.load_state_dict(reference)  # a checkpoint written by torch.optim.Adam
    assert restored.steps == 5 and restored.param_groups[0]["lr"] == 2e-3
    torch.optim.Adam(network.parameters()).load_state_dict(mine)  # and the other way


def test_resumed_optimizer_continues_exactly() -> None:
    straight, _ = _train(Adam, 8)
    torch.manual_seed(0)
    network = build_network(preset("seed-cnn"), seed=3)
    first = Adam(network.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(1)
    for step in range(8):
        if step == 4:  # stop and resume from the state dict
            second = Adam(network.parameters(), lr=2e-3)
            second.load_state_dict(first.state_dict())
            first = second
        x = torch.rand(16, 1, 28, 28, generator=generator)
        y = torch.randint(0, 10, (16,), generator=generator)
        loss = F.cross_entropy(network(x.contiguous(memory_format=torch.channels_last)), y)
        first.zero_grad()
        loss.backward()
        first.step()
    for mine, reference in zip(
        network.state_dict().values(), straight.state_dict().values(), strict=True
    ):
        assert torch.equal(mine, reference)


def test_parameters_without_gradients_are_left_alone() -> None:
    weight, frozen = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    optimizer = Adam([weight, frozen], lr=0.1)
    (weight * torch.tensor([1.0, -1.0, 2.0])).sum().backward()
    optimizer.step()
    assert torch.equal(frozen, torch.ones(2))
    assert torch.allclose(weight, torch.tensor([0.9, 1.1, 0.9]))  # Adam's first step: lr * sign
