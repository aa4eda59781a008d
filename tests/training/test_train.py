"""The training engine: recipes, schedule, callbacks, repeatability, run directories."""

import json
from dataclasses import replace

import pytest
import torch
from synthetic import Snapshots, pattern_dataset

from convlens.errors import ConvlensError
from convlens.model.network import build_network
from convlens.model.presets import preset
from convlens.runs.directory import read_history
from convlens.runs.loading import load_run
from convlens.training.callbacks import Callback, EpochRecord, StopAtAccuracy
from convlens.training.recipes import RECIPES, TrainConfig, recipe_config
from convlens.training.train import fit, lr_at, train_to_run

SMALL = TrainConfig(epochs=2, batch_size=32, learning_rate=3e-3, threads=2)


@pytest.fixture(scope="module")
def patterns():
    return pattern_dataset(train=600, test=200)


def test_lesson_recipe_is_exactly_the_lessons():
    lesson = RECIPES["lesson"]
    assert (lesson.learning_rate, lesson.batch_size, lesson.epochs) == (1e-3, 32, 5)
    assert lesson.schedule == "constant" and lesson.label_smoothing == 0.0
    assert lesson.ema_decay == 0.0 and not lesson.flip_augment and not lesson.test_time_flip
    assert lesson.keep_fraction == 1.0  # every image, every epoch


def test_the_fast_recipe_smooths_labels_and_averages_weights():
    fast = RECIPES["fast"]
    assert (fast.learning_rate, fast.batch_size, fast.epochs) == (2e-3, 64, 6)
    assert fast.schedule == "constant" and fast.label_smoothing == 0.1
    assert fast.ema_decay == 0.99  # the average takes the place of a decaying rate
    assert (fast.keep_fraction, fast.select_from_epoch) == (1 / 3, 2)  # selective backprop
    assert (fast.beta1, fast.beta2) == (0.8, 0.99)  # Adam's moments forget faster


def test_the_best_preset_trains_with_its_own_recipe_unless_told_otherwise():
    from convlens.training.recipes import default_recipe

    best = RECIPES["best"]
    assert (best.epochs, best.batch_size, best.learning_rate) == (16, 128, 4e-3)
    assert best.mirrors and not best.flip_augment  # flips only where the data allows (plan.py)
    assert best.schedule == "onecycle" and best.ema_decay == 0.99
    assert best.keep_fraction == 1.0
    assert default_recipe("best") == "best"
    assert default_recipe("seed-cnn") == default_recipe("my-model.json") == "fast"


def test_onecycle_warms_up_then_decays_to_zero():
    config = TrainConfig(learning_rate=1.0, schedule="onecycle", warmup_fraction=0.2)
    rates = [lr_at(step, 100, config) for step in range(100)]
    peak = rates.index(max(rates))
    assert rates[0] == pytest.approx(0.1)
    assert peak == 20 and max(rates) == pytest.approx(1.0)
    assert all(a < b for a, b in zip(rates[:peak], rates[1 : peak + 1], strict=True))
    assert all(a >= b for a, b in zip(rates[peak:], rates[peak + 1 :], strict=False))
    assert rates[-1] < 0.001


def test_constant_schedule_is_constant():
    config = RECIPES["lesson"]
    assert {lr_at(step, 50, config) for step in range(50)} == {1e-3}


def test_overrides_apply_and_bad_values_are_refused():
    assert recipe_config("lesson", epochs=2, batch_size=None).epochs == 2
    with pytest.raises(ConvlensError, match="unknown recipe"):
        recipe_config("turbo")
    with pytest.raises(ConvlensError, match="target accuracy must be in"):
        recipe_config("fast", target_accuracy=90)


def test_a_short_run_learns_far_above_chance(patterns):
    result = fit(preset("seed-cnn"), patterns, SMALL)
    assert result.test.accuracy > 0.6  # chance is 0.1
    assert len(result.history.epochs) == 2
    first, last = result.history.epochs
    assert last.train_loss < first.train_loss
    assert result.test.confusion.sum() == len(patterns.test)


def test_the_same_seed_gives_the_same_weights(patterns):
    config = replace(SMALL, epochs=1)
    a = fit(preset("seed-dnn"), patterns, config).network
    b = fit(preset("seed-dnn"), patterns, config).network
    for (key, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), key


def test_label_smoothing_is_applied(patterns, monkeypatch):
    seen = []
    original = torch.nn.functional.cross_entropy

    def spy(*args, **kwargs):
        seen.append(kwargs.get("label_smoothing", 0.0))
        return original(*args, **kwargs)

    monkeypatch.setattr("convlens.training.train.F.cross_entropy", spy)
    fit(preset("seed-dnn"), patterns, replace(SMALL, epochs=1, label_smoothing=0.1))
    steps = -(-len(patterns.train) // SMALL.batch_size)
    assert seen.count(0.1) == steps  # every training step; evaluation uses plain cross-entropy


def test_stop_at_target_accuracy(patterns):
    config = replace(SMALL, epochs=6, target_accuracy=0.3)
    result = fit(preset("seed-cnn"), patterns, config)
    assert result.history.stopped_early
    assert len(result.history.epochs) < 6
    assert result.history.epochs[-1].train_accuracy >= 0.3


def test_stop_callback_reads_the_named_metric():
    record = EpochRecord(1, 0.5, 0.91, 0.6, 0.89, 1.0, 1e-3)
    assert StopAtAccuracy(0.9).on_epoch_end(record)
    assert not StopAtAccuracy(0.9, metric="test_accuracy").on_epoch_end(record)


def test_train_to_run_writes_a_complete_run(patterns, tmp_path):
    path, result = train_to_run(
        preset("seed-dnn"), patterns, replace(SMALL, epochs=1), root=tmp_path
    )
    assert sorted(p.name for p in path.iterdir()) == [
        "history.csv",
        "metrics.json",
        "model.json",
        "weights.safetensors",
    ]
    metrics = json.loads((path / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "train_accuracy", "epochs", "seconds"):
        assert key in metrics
    assert metrics["test_accuracy"] == pytest.approx(result.test.accuracy)
    assert read_history(path)[0]["epoch"] == 1
    run = load_run(path)
    assert run.class_names == patterns.class_names


def test_a_failed_run_leaves_nothing_behind(patterns, tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("convlens.training.train.fit", explode)
    with pytest.raises(KeyboardInterrupt):
        train_to_run(preset("seed-dnn"), patterns, SMALL, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_out_directory_is_refused(patterns, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ConvlensError, match="already exists"):
        train_to_run(preset("seed-dnn"), patterns, SMALL, out=tmp_path / "taken")


def test_a_model_with_the_wrong_number_of_classes_is_refused(patterns):
    three = pattern_dataset(train=60, test=30, classes=3)
    with pytest.raises(ConvlensError, match="Dense\\(10\\) but the dataset has 3 classes"):
        fit(preset("seed-dnn"), three, SMALL)


def test_test_time_flip_averages_each_image_with_its_mirror():
    from convlens.runs.evaluate import predict_logits

    network = build_network(preset("seed-cnn"), seed=0).eval()
    x = torch.rand(6, 1, 28, 28)
    expected = (network(x) + network(x.flip(3))) / 2
    assert torch.allclose(predict_logits(network, x, batch_size=4, flip=True), expected, atol=1e-6)


def test_flip_augmentation_mirrors_about_half_of_each_batch(patterns, monkeypatch):
    seen = []
    original = torch.where

    def spy(condition, *args):
        seen.append(condition.float().mean().item())
        return original(condition, *args)

    monkeypatch.setattr("convlens.training.train.torch.where", spy)
    fit(preset("seed-dnn"), patterns, replace(SMALL, epochs=1, flip_augment=True))
    assert len(seen) == -(-len(patterns.train) // SMALL.batch_size)
    assert 0.35 < sum(seen) / len(seen) < 0.65


def test_random_shift_moves_each_image_within_its_bound() -> None:
    from convlens.training.train import random_shift

    x = torch.rand(6, 2, 7, 9).contiguous(memory_format=torch.channels_last)
    offsets = torch.tensor([[0, 4, 2, 1, 3, 0], [4, 0, 2, 3, 1, 0]])
    moved = random_shift(x, 2, offsets)
    assert moved.shape == x.shape and moved.is_contiguous(memory_format=torch.channels_last)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for image, out, (dy, dx) in zip(padded, moved, offsets.T.tolist(), strict=True):
        assert torch.equal(out, image[:, dy : dy + 7, dx : dx + 9])  # its crop of its padding


class Recorder(Callback):
    """Notes what fit tells it, in order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_train_begin(self, network) -> None:
        self.events.append(("begin", network.training))

    def on_batch_end(self, epoch, batch, loss, accuracy) -> None:
        self.events.append(("batch", epoch, batch))

    def on_snapshot(self, state) -> None:
        self.events.append(("snapshot", state.epoch, state.step))

    def on_epoch_end(self, record) -> bool:
        self.events.append(("epoch", record.epoch))
        return False


def test_fit_tells_every_callback_in_order_and_one_of_them_stops_it(patterns):
    first, second = Recorder(), Recorder()
    config = replace(SMALL, epochs=3)
    result = fit(preset("seed-dnn"), patterns, config, callbacks=[first, StopAtAccuracy(0.0), second])
    steps = -(-len(patterns.train) // config.batch_size)
    expected = [("begin", True), *(("batch", 1, b) for b in range(steps))]
    expected += [("snapshot", 1, steps), ("epoch", 1)]
    assert first.events == expected and second.events == expected  # every callback is told
    assert len(result.history.epochs) == 1 and result.history.stopped_early


def test_augmentation_is_drawn_once_an_epoch_and_lives_on_the_training_device():
    from convlens.training.train import _Augmentation

    config = replace(SMALL, flip_augment=True, shift_augment=1)
    drawn = _Augmentation.draw(config, 100, torch.Generator().manual_seed(0), "meta")
    assert drawn.mirror.device.type == drawn.shift.device.type == "meta"  # moved once, here
    assert drawn.mirror.shape == (100,) and drawn.shift.shape == (2, 100)
    x = torch.empty(8, 1, 28, 28, device="meta").contiguous(memory_format=torch.channels_last)
    index = torch.arange(8, device="meta")
    assert drawn.apply(x, index, 1).device.type == "meta"  # a step needs nothing from the host
    again = _Augmentation.draw(config, 100, torch.Generator().manual_seed(0), "cpu")
    first = _Augmentation.draw(config, 100, torch.Generator().manual_seed(0), "cpu")
    assert torch.equal(again.mirror, first.mirror) and torch.equal(again.shift, first.shift)
    assert 30 < int(first.mirror.sum()) < 70 and set(first.shift.unique().tolist()) == {0, 1, 2}


@pytest.mark.parametrize("field", ["beta1", "beta2"])
@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_adams_betas_out_of_range_are_one_sentence(field, value):
    with pytest.raises(ConvlensError, match=rf"Adam's {field} must be in \[0, 1\)"):
        recipe_config("fast", **{field: value})


def test_the_recipes_betas_reach_adam(patterns):
    snapshots = Snapshots()
    config = replace(SMALL, epochs=1, beta1=0.8, beta2=0.95)
    fit(preset("seed-cnn"), patterns, config, callbacks=[snapshots])
    assert snapshots.states[0].optimizer["param_groups"][0]["betas"] == (0.8, 0.95)
    reference = torch.optim.Adam(build_network(preset("seed-cnn"), seed=0).parameters())
    assert (RECIPES["lesson"].beta1, RECIPES["lesson"].beta2) == reference.defaults["betas"]
    assert (RECIPES["best"].beta1, RECIPES["best"].beta2) == (0.9, 0.999)
