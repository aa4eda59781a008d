"""Batch normalisation's statistics measured afresh for the network a run tests and saves."""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
from synthetic import Snapshots, pattern_dataset

import convlens.training.train as train_module
from convlens.model.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from convlens.model.network import build_network, pixels_to_tensor, scale_pixels
from convlens.model.presets import preset
from convlens.model.sequential import Sequential
from convlens.training.recipes import TrainConfig
from convlens.training.statistics import StatisticsRefresh, batch_norms, refresh_statistics
from convlens.training.train import fit

SMALL = TrainConfig(epochs=2, batch_size=64, learning_rate=3e-3, threads=2)


@pytest.fixture(scope="module")
def patterns():
    return pattern_dataset(train=256, test=64)


def normed(*middle) -> Sequential:
    """Conv -> (middle) -> BatchNorm -> pool -> Dense: a small network with one batch norm."""
    return Sequential(
        [
            Conv2D(6, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            *middle,
            BatchNormalization(),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(10, activation="softmax"),
        ],
        name="normed",
    )


def pixels(count: int, seed: int = 0) -> torch.Tensor:
    generator = np.random.default_rng(seed)
    images = generator.integers(0, 256, (count, 28, 28, 1), dtype=np.uint8)
    return pixels_to_tensor(images, (28, 28, 1))


def statistics_of(network: torch.nn.Module) -> list[torch.Tensor]:
    return [t.clone() for n in batch_norms(network) for t in (n.running_mean, n.running_var)]


def test_the_statistics_are_torchs_own_update_bn_over_the_same_batches():
    network = build_network(normed(), seed=0)
    images = pixels(300)
    weights = {k: v.clone() for k, v in network.named_parameters()}
    network.eval()
    refresh_statistics(network, images, 1 / 255, batch_size=100)
    reference = build_network(normed(), seed=0)
    batches = [scale_pixels(images[i : i + 100]) for i in range(0, 300, 100)]
    torch.optim.swa_utils.update_bn(batches, reference)  # an independent implementation
    for mine, theirs in zip(statistics_of(network), statistics_of(reference), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    assert not network.training  # the mode is given back
    assert batch_norms(network)[0].momentum == batch_norms(reference)[0].momentum
    for name, parameter in network.named_parameters():
        assert torch.equal(parameter, weights[name])  # no weight changes


def test_dropout_stays_off_while_measuring():
    network = build_network(normed(Dropout(0.5)), seed=0)
    images = pixels(128)
    refresh_statistics(network, images, 1 / 255)
    first = statistics_of(network)
    refresh_statistics(network, images, 1 / 255)
    for a, b in zip(first, statistics_of(network), strict=True):
        assert torch.equal(a, b)  # dropout on would draw new masks each time


def test_mirrored_images_are_measured_mirrored():
    images = pixels(96)
    network = build_network(normed(), seed=0)
    refresh_statistics(network, images, 1 / 255, mirror=torch.ones(96, dtype=torch.bool))
    reference = build_network(normed(), seed=0)
    refresh_statistics(reference, images.flip(3), 1 / 255)
    for mine, theirs in zip(statistics_of(network), statistics_of(reference), strict=True):
        torch.testing.assert_close(mine, theirs)
    unmirrored = build_network(normed(), seed=0)
    refresh_statistics(unmirrored, images, 1 / 255)
    assert not torch.allclose(statistics_of(network)[0], statistics_of(unmirrored)[0])


def test_a_network_without_batch_norm_is_left_alone(patterns, monkeypatch):
    network = build_network(preset("seed-cnn"), seed=0)
    before = copy.deepcopy(network.state_dict())
    refresh_statistics(network, pixels(64), 1 / 255)
    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, before[name])

    def never(*args, **kwargs):
        raise AssertionError("the lesson's CNN has no batch norm to measure")

    monkeypatch.setattr(train_module, "StatisticsRefresh", never)
    fit(preset("seed-cnn"), patterns, replace(SMALL, epochs=1))


def test_the_saved_network_carries_the_statistics_of_its_own_weights(patterns):
    config = replace(SMALL, seed=3)
    result = fit(preset("best"), patterns, config)
    saved = statistics_of(result.network)
    model = preset("best")
    train_x = pixels_to_tensor(patterns.train.images, model.input_shape)
    again = copy.deepcopy(result.network)
    StatisticsRefresh(train_x, model.input_scale, config.flip_augment, config.seed)(again)
    for mine, measured in zip(saved, statistics_of(again), strict=True):
        torch.testing.assert_close(mine, measured, rtol=1e-5, atol=1e-6)
    # Eight steps at momentum 0.99 leave the running variance near its start of 1; the
    # images' own is far from it.
    assert not torch.allclose(saved[1], torch.ones_like(saved[1]), atol=0.1)


def test_a_short_run_tests_better_with_statistics_that_fit_it(patterns, monkeypatch):
    config = replace(SMALL, epochs=3)
    measured = [
        fit(preset("best"), patterns, replace(config, seed=s)).test.accuracy for s in (0, 1)
    ]
    monkeypatch.setattr(train_module, "StatisticsRefresh", lambda *a, **k: lambda network: None)
    running = [fit(preset("best"), patterns, replace(config, seed=s)).test.accuracy for s in (0, 1)]
    # Twelve steps at momentum 0.99: the running figures still hold mostly their start.
    assert all(m >= r for m, r in zip(measured, running, strict=True))
    assert np.mean(measured) >= np.mean(running) + 0.05


def test_a_resumed_run_with_batch_norm_ends_where_the_whole_run_does(patterns):
    config = replace(SMALL, ema_decay=0.9)
    snapshots = Snapshots()
    whole = fit(preset("best"), patterns, config, callbacks=[snapshots])
    resumed = fit(preset("best"), patterns, config, resume=snapshots.states[0])
    for (name, a), b in zip(
        whole.network.state_dict().items(), resumed.network.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert whole.test.accuracy == resumed.test.accuracy


def dense_normed() -> Sequential:
    """Batch normalisation after a Dense layer: one value per channel per image."""
    return Sequential(
        [
            Conv2D(4, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            MaxPooling2D(2, 2),
            Flatten(),
            Dense(16, activation="relu"),
            BatchNormalization(),
            Dense(10, activation="softmax"),
        ],
        name="dense-normed",
    )


def test_a_lone_image_joins_the_batch_before_it():
    order = torch.arange(10)
    sizes = [len(b) for b in train_module._no_lone_image(order.split(3))]  # 3 3 3 1
    assert sizes == [3, 3, 4]
    assert torch.equal(torch.cat(list(train_module._no_lone_image(order.split(3)))), order)
    assert [len(b) for b in train_module._no_lone_image(order.split(5))] == [5, 5]
    assert [len(b) for b in train_module._no_lone_image(order[:1].split(5))] == [1]


def test_batch_norm_after_dense_trains_on_65_images_at_batch_64():
    data = pattern_dataset(train=65, test=20)
    config = TrainConfig(epochs=2, batch_size=64, keep_fraction=1.0, threads=2)
    result = fit(dense_normed(), data, config)  # torch refuses a batch of one image here
    assert [record.images for record in result.history.epochs] == [65, 65]
    assert 0.0 <= result.test.accuracy <= 1.0


def test_the_sample_is_never_measured_one_image_at_a_time():
    network = build_network(dense_normed(), seed=0)
    refresh_statistics(network, pixels(257), 1 / 255, batch_size=256)  # 129 + 128, not 256 + 1
    before = statistics_of(network)
    refresh_statistics(network, pixels(1), 1 / 255)  # nothing to measure: left as it was
    for a, b in zip(before, statistics_of(network), strict=True):
        assert torch.equal(a, b)
