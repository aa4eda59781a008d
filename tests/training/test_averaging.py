"""The weight average (EMA): its formula, and that training evaluates and saves it."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from synthetic import Snapshots, pattern_dataset

from convlens.errors import ConvlensError
from convlens.model.network import build_network, images_to_tensor
from convlens.model.presets import preset
from convlens.runs.evaluate import evaluate_tensors
from convlens.training.averaging import WeightAverage, warmed_decay
from convlens.training.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from convlens.training.optimizer import Adam
from convlens.training.recipes import TrainConfig, recipe_config
from convlens.training.train import fit

SMALL = TrainConfig(epochs=1, batch_size=32, learning_rate=3e-3, threads=2)


@pytest.fixture(scope="module")
def patterns():
    return pattern_dataset(train=320, test=100)


def test_the_decay_warms_up_then_holds():
    assert warmed_decay(0.999, 0) == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    assert warmed_decay(0.999, 90) == pytest.approx(0.91)
    assert warmed_decay(0.9, 1000) == 0.9


def test_update_is_the_exponential_average_of_the_weights_seen():
    network = torch.nn.Linear(3, 2)
    average = WeightAverage(network, decay=0.5)
    expected = network.weight.detach().numpy().astype(np.float64).copy()
    for step in range(6):
        with torch.no_grad():
            network.weight.add_(torch.randn_like(network.weight))
        d = min(0.5, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * network.weight.detach().numpy()
        average.update(network)
    assert np.allclose(average.network.weight.numpy(), expected, atol=1e-6)
    assert not average.network.weight.requires_grad


def test_batch_norm_statistics_are_copied_not_averaged():
    network = torch.nn.Sequential(torch.nn.BatchNorm1d(4))
    average = WeightAverage(network, decay=0.99)
    network(torch.randn(16, 4) * 5 + 3)  # moves the running statistics
    average.update(network)
    assert torch.equal(average.network[0].running_mean, network[0].running_mean)
    assert torch.equal(average.network[0].running_var, network[0].running_var)


def test_a_bad_decay_is_one_sentence():
    with pytest.raises(ConvlensError, match="EMA decay must be in \\[0, 1\\)"):
        recipe_config("fast", ema_decay=1.5)
    assert recipe_config("fast", ema_decay=0.0).ema_decay == 0.0  # --ema 0 turns it off


def snapshots_of_every_step(model, dataset, config) -> list[list[torch.Tensor]]:
    """Train without an average, keeping the weights after each optimiser step."""
    seen: list[list[torch.Tensor]] = []
    original = Adam.step

    def step_and_keep(optimizer: Adam) -> None:
        original(optimizer)
        seen.append([p.detach().clone() for p in optimizer.params])

    Adam.step = step_and_keep
    try:
        fit(model, dataset, replace(config, ema_decay=0.0))
    finally:
        Adam.step = original
    return seen


def test_fit_evaluates_and_returns_the_average_of_every_steps_weights(patterns):
    config = replace(SMALL, ema_decay=0.9)
    steps = snapshots_of_every_step(preset("seed-cnn"), patterns, config)
    assert len(steps) == -(-len(patterns.train) // config.batch_size)
    expected = [p.double() for p in build_network(preset("seed-cnn"), seed=config.seed).parameters()]
    for t, weights in enumerate(steps):
        d = warmed_decay(0.9, t)
        expected = [d * e + (1 - d) * w.double() for e, w in zip(expected, weights, strict=True)]
    result = fit(preset("seed-cnn"), patterns, config)
    for got, want in zip(result.network.parameters(), expected, strict=True):
        assert torch.allclose(got.double(), want, atol=1e-5)
    assert not torch.allclose(next(result.network.parameters()), steps[-1][0])
    test_x = images_to_tensor(patterns.test.images, (28, 28, 1))
    test_y = torch.from_numpy(patterns.test.labels.astype(np.int64))
    again = evaluate_tensors(result.network, test_x, test_y, patterns.num_classes)
    assert again.accuracy == result.test.accuracy


def test_the_average_is_checkpointed_and_restored(tmp_path):
    network = build_network(preset("seed-dnn"), seed=0)
    average = WeightAverage(network, decay=0.99)
    with torch.no_grad():
        network.dense.weight.add_(1.0)
    for _ in range(3):
        average.update(network)
    state = TrainingState(
        1,
        3,
        [],
        network.state_dict(),
        {"state": {}, "param_groups": []},
        torch.Generator().get_state(),
        torch.get_rng_state(),
        average=average.state_dict(),
    )
    save_checkpoint(tmp_path, state)
    restored = WeightAverage(build_network(preset("seed-dnn"), seed=1), decay=0.99)
    restored.load_state_dict(load_checkpoint(tmp_path).average)
    assert restored.updates == 3
    for a, b in zip(restored.network.parameters(), average.network.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_resumed_run_ends_on_the_same_average(patterns):
    config = replace(SMALL, epochs=2, ema_decay=0.95)
    snapshots = Snapshots()
    states = snapshots.states
    whole = fit(preset("seed-cnn"), patterns, config, callbacks=[snapshots])
    resumed = fit(preset("seed-cnn"), patterns, config, resume=states[0])
    for a, b in zip(whole.network.parameters(), resumed.network.parameters(), strict=True):
        assert torch.equal(a, b)
    assert states[0].average["updates"].item() == -(-len(patterns.train) // config.batch_size)
