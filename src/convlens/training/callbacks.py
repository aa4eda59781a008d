"""Watching training: the Callback protocol fit reports through, and what one epoch measured."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from convlens.model.network import Network
    from convlens.training.checkpoint import TrainingState


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch measured."""

    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    seconds: float
    learning_rate: float
    images: int | None = None  # trained on this epoch (fewer than the split when selecting)
    # train_loss / train_accuracy: when selecting, over every image as of its last training


class Callback:
    """An observer of ``fit``: every method does nothing unless a subclass says otherwise.

    fit calls, in order: ``on_train_begin`` once with the network about to be
    trained (before its first step), ``on_batch_end`` after every optimiser
    step, ``on_snapshot`` after every epoch with the whole state a run resumes
    from (weights, optimiser, random generators), then ``on_epoch_end`` with
    the epoch's record: returning True stops training after that epoch.
    The progress bars, the checkpoints a run writes, the explorer's training
    job and the notebook's live view are callbacks.
    """

    def on_train_begin(self, network: Network) -> None:
        """The network being trained, before its first step (it is trained in place)."""

    def on_batch_end(self, epoch: int, batch: int, loss: float, accuracy: float) -> None:
        """After a step: the epoch (from 1), the batch (from 0), the epoch's running loss and
        accuracy so far (over the images trained on in this epoch)."""

    def on_snapshot(self, state: TrainingState) -> None:
        """After an epoch, the whole state a run resumes from (see training/checkpoint.py)."""

    def on_epoch_end(self, record: EpochRecord) -> bool:
        """After an epoch and its snapshot, its record; True stops training."""
        return False


@dataclass
class StopAtAccuracy(Callback):
    """The lesson's callback: stop once (training) accuracy passes a target."""

    target: float
    metric: str = "train_accuracy"

    def on_epoch_end(self, record: EpochRecord) -> bool:
        value = getattr(record, self.metric)
        return value is not None and value >= self.target


def epoch_line(record: EpochRecord, epochs: int) -> str:
    """The line each finished epoch prints: losses, accuracies and seconds."""
    test = ""
    if record.test_accuracy is not None:
        test = f"  test loss {record.test_loss:.4f}  test accuracy {record.test_accuracy:.4f}"
    return (
        f"epoch {record.epoch}/{epochs}  loss {record.train_loss:.4f}  "
        f"accuracy {record.train_accuracy:.4f}{test}  {record.seconds:.1f} s"
    )


@dataclass
class PrintEpochs(Callback):
    """Prints each finished epoch's line (``epoch_line``) to ``stream`` (stderr by default)."""

    epochs: int
    stream: TextIO | None = None

    def on_epoch_end(self, record: EpochRecord) -> bool:
        print(epoch_line(record, self.epochs), file=self.stream or sys.stderr, flush=True)
        return False
