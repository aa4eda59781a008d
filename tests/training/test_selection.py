"""Selective backprop: which images each epoch trains on, and that training keeps it exact."""

import math
from dataclasses import replace

import pytest
import torch
from synthetic import Snapshots, pattern_dataset

from convlens.errors import ConvlensError
from convlens.model.presets import preset
from convlens.training.checkpoint import load_checkpoint, save_checkpoint
from convlens.training.distributed import Group
from convlens.training.recipes import (
    TrainConfig,
    batches_per_epoch,
    keep_in_epoch,
    pool_size,
    total_steps,
)
from convlens.training.selection import LossMemory
from convlens.training.train import fit

SMALL = TrainConfig(epochs=3, batch_size=32, learning_rate=3e-3, threads=2, keep_fraction=1 / 3)


@pytest.fixture(scope="module")
def patterns():
    return pattern_dataset(train=400, test=100)


def test_keeping_everything_is_the_plain_order_in_batches():
    order = torch.randperm(100)
    batches = list(LossMemory(100).batches(order, 32, keep=1.0))
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert torch.equal(torch.cat(batches), order)


def test_each_pool_gives_its_highest_loss_images_in_the_pools_order():
    memory = LossMemory(12)
    memory.loss = torch.tensor([float(i) for i in range(12)])  # image i's loss is i
    order = torch.tensor([3, 11, 0, 7, 5, 9, 1, 2, 10, 4, 8, 6])
    batches = list(memory.batches(order, batch_size=2, keep=1 / 3))  # pools of 6, keep 2
    assert pool_size(2, 1 / 3) == 6
    assert [b.tolist() for b in batches] == [[11, 9], [10, 8]]


def test_unseen_images_come_first_and_a_recorded_loss_replaces_the_old_one():
    memory = LossMemory(6)
    memory.record(torch.tensor([0, 1, 2, 3]), torch.tensor([0.5, 0.1, 0.9, 0.2]), True)
    assert math.isinf(memory.loss[4]) and math.isinf(memory.loss[5])
    (batch,) = memory.batches(torch.arange(6), batch_size=3, keep=0.5)
    assert batch.tolist() == [2, 4, 5]  # the two never trained on, then the hardest
    memory.record(torch.tensor([2]), torch.tensor([0.0]), True)
    assert memory.loss[2] == 0.0


def test_the_summary_is_over_every_image_seen_as_of_its_last_time():
    memory = LossMemory(5)
    memory.record(torch.tensor([0, 1, 2, 3]), torch.ones(4), torch.tensor([1, 1, 0, 0]).bool())
    memory.record(torch.tensor([2]), torch.tensor([3.0]), torch.tensor([True]))
    assert memory.summary() == (pytest.approx(6.0 / 4), 3 / 4)  # image 4 never trained on


def test_batches_per_epoch_counts_the_steps_taken():
    memory = LossMemory(1000)
    memory.loss = torch.rand(1000)
    for images, batch_size, keep in [(1000, 64, 1 / 3), (1000, 64, 1.0), (997, 10, 0.25)]:
        order = torch.randperm(images)
        batches = list(memory.batches(order, batch_size, keep))
        assert len(batches) == batches_per_epoch(images, batch_size, keep)
        assert sum(map(len, batches)) == pytest.approx(images * keep, abs=batch_size)


class TwoProcesses(Group):
    """Rank 0 of two: each sum adds what the other process contributes, in call order."""

    def __init__(self, others: list[torch.Tensor]) -> None:
        super().__init__(rank=0, world=2)
        object.__setattr__(self, "others", others)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.add_(self.others.pop(0))


def test_processes_share_the_losses_each_recorded():
    mine, theirs = LossMemory(4), LossMemory(4)
    mine.record(torch.tensor([0, 1]), torch.tensor([0.5, 0.25]), torch.tensor([True, False]))
    theirs.record(torch.tensor([2]), torch.tensor([0.75]), torch.tensor([True]))
    their_values = torch.stack(
        [torch.where(theirs.touched, theirs.loss, torch.zeros(4)), theirs.correct.float()]
    )
    mine.share(TwoProcesses([their_values, theirs.touched.float()]))
    assert mine.loss[:3].tolist() == [0.5, 0.25, 0.75] and math.isinf(mine.loss[3])
    assert mine.correct.tolist() == [True, False, True, False]
    assert not mine.touched.any()  # the next epoch starts a fresh record


def test_fit_trains_on_every_image_then_on_the_kept_fraction(patterns):
    snapshots = Snapshots()
    states = snapshots.states
    result = fit(preset("seed-cnn"), patterns, SMALL, callbacks=[snapshots])
    images = [record.images for record in result.history.epochs]
    order = torch.arange(len(patterns.train))
    kept = sum(map(len, LossMemory(len(order)).batches(order, SMALL.batch_size, 1 / 3)))
    assert images == [len(patterns.train), kept, kept]
    assert kept < len(patterns.train) / 2
    assert keep_in_epoch(SMALL, 1) == 1.0 and keep_in_epoch(SMALL, 2) == 1 / 3
    assert total_steps(SMALL, 400, 32) == 13 + 2 * batches_per_epoch(400, 32, 1 / 3)
    # Train figures are over every image, each as of the last time it was trained on.
    for record, state in zip(result.history.epochs, states, strict=True):
        memory = LossMemory(len(order))
        memory.load_state_dict(state.selection)
        correct = state.selection["correct"]
        assert record.train_accuracy == correct.sum().item() / len(correct)
        assert record.train_loss == pytest.approx(memory.summary()[0])


def test_selection_still_learns(patterns):
    result = fit(preset("seed-cnn"), patterns, replace(SMALL, epochs=4))
    assert result.test.accuracy > 0.9  # the patterns are easy; chance is 0.1


def test_a_resumed_run_selects_as_the_uninterrupted_one_did(patterns):
    snapshots = Snapshots()
    states = snapshots.states
    whole = fit(preset("seed-cnn"), patterns, SMALL, callbacks=[snapshots])
    resumed = fit(preset("seed-cnn"), patterns, SMALL, resume=states[1])
    forgetful = fit(preset("seed-cnn"), patterns, SMALL, resume=replace(states[1], selection=None))
    for a, b in zip(whole.network.parameters(), resumed.network.parameters(), strict=True):
        assert torch.equal(a, b)
    pairs = zip(whole.network.parameters(), forgetful.network.parameters(), strict=True)
    assert not all(torch.equal(a, b) for a, b in pairs)  # the saved losses matter


def test_the_losses_are_checkpointed(tmp_path, patterns):
    snapshots = Snapshots()
    states = snapshots.states
    fit(preset("seed-cnn"), patterns, replace(SMALL, epochs=1), callbacks=[snapshots])
    save_checkpoint(tmp_path, states[0])
    saved = load_checkpoint(tmp_path).selection["loss"]
    assert saved.shape == (len(patterns.train),) and torch.isfinite(saved).all()
    assert torch.equal(saved, states[0].selection["loss"])
    assert torch.equal(
        load_checkpoint(tmp_path).selection["correct"], states[0].selection["correct"]
    )


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5, math.nan])
def test_a_bad_fraction_is_one_sentence(patterns, fraction):
    with pytest.raises(ConvlensError, match="keep fraction must be in"):
        fit(preset("seed-cnn"), patterns, replace(SMALL, keep_fraction=fraction))


def test_the_reports_curves_say_what_the_train_figures_are_over():
    from convlens.runs.loading import Run
    from convlens.views.run_figures import _loss_note

    config = {"ema_decay": 0.99, "keep_fraction": 1 / 3, "select_from_epoch": 2}
    note = _loss_note(Run(None, None, None, {"config": config, "epochs": 6}))
    assert "from epoch 2 an epoch trains on 33% of the images, the hardest" in note
    assert "train figures are over every image as of the last time it was trained on" in note
    plain = _loss_note(Run(None, None, None, {"config": {"keep_fraction": 1.0}}))
    assert "trained on" not in plain
    # a small dataset's run never reached its selecting epoch, and was shifted instead
    small = {**config, "select_from_epoch": 130, "shift_augment": 1}
    never = _loss_note(Run(None, None, None, {"config": small, "epochs": 86}))
    assert "trains on 33%" not in never and "shifted by up to 1 pixel(s)" in never
