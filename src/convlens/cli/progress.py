"""The training progress bar (rich): epoch, batches, running loss and accuracy.

Drawn on stderr so stdout stays clean for results; each finished epoch also
prints one plain line, so logs and non-terminals get the numbers too. In an
epoch that trains on its hardest images only, the bar's running figures are
over those and labelled so ("hardest 33%: loss ...").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from convlens.runs.predict import ProgressHook
from convlens.training.callbacks import Callback, EpochRecord, epoch_line
from convlens.training.recipes import batches_per_epoch

UPDATE_EVERY = 10  # batches between bar refreshes: keeps the bar off the hot path


class TrainingProgress(Callback):
    """A training callback drawing a progress bar (a context manager: entered while fit runs)."""

    def __init__(
        self,
        epochs: int,
        images: int,
        batch_size: int,
        enabled: bool = True,
        console: Console | None = None,
        first_epoch: int = 1,
        printing: bool = True,
        keep_in_epoch: Callable[[int], float] | None = None,
    ) -> None:
        self.epochs = epochs
        self.first_epoch = first_epoch
        self.printing = printing  # False on every training process but the first
        self.images, self.batch_size = images, batch_size
        self.keep_in_epoch = keep_in_epoch  # the fraction each epoch trains on (None: all)
        self.console = console or Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "{task.fields[over]}loss {task.fields[loss]:.4f}  "
                "accuracy {task.fields[accuracy]:.4f}"
            ),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.enabled,
        )
        self.task = None

    def __enter__(self) -> TrainingProgress:
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=self.batches(self.first_epoch), **self._fields(self.first_epoch)
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def on_batch_end(self, epoch: int, batch: int, loss: float, accuracy: float) -> None:
        """Advance the bar (every UPDATE_EVERY batches and at the epoch's end)."""
        done = batch + 1
        if self.enabled and (done % UPDATE_EVERY == 0 or done == self.batches(epoch)):
            self.progress.update(
                self.task, completed=done, epoch=epoch, loss=loss, accuracy=accuracy
            )

    def on_epoch_end(self, record: EpochRecord) -> bool:
        """Print the epoch's line and reset the bar for the next one."""
        if not self.printing:
            return False
        self.console.print(epoch_line(record, self.epochs), highlight=False, soft_wrap=True)
        if self.enabled and record.epoch < self.epochs:
            # reset() replaces every field, so all of them are given again.
            following = record.epoch + 1
            self.progress.reset(self.task, total=self.batches(following), **self._fields(following))
        return False

    def batches(self, epoch: int) -> int:
        """Optimiser steps in ``epoch``: fewer once selective backprop keeps a fraction."""
        keep = 1.0 if self.keep_in_epoch is None else self.keep_in_epoch(epoch)
        return batches_per_epoch(self.images, self.batch_size, keep)

    def _fields(self, epoch: int) -> dict[str, float | str]:
        return {
            "epoch": epoch,
            "epochs": self.epochs,
            "over": self.over(epoch),
            "loss": 0.0,
            "accuracy": 0.0,
        }

    def over(self, epoch: int) -> str:
        """The bar's label for what its running loss and accuracy are over ("" for every image).

        An epoch that trains on a fraction (selective backprop) runs over its
        hardest images, while the epoch's line counts every image as of its last
        training: the bar says so, so the two differing is no surprise.
        """
        keep = 1.0 if self.keep_in_epoch is None else self.keep_in_epoch(epoch)
        return "" if keep >= 1 else f"hardest {keep:.0%}: "


@contextmanager
def prediction_bar(enabled: bool = True) -> Iterator[ProgressHook | None]:
    """A rich progress bar on stderr, only when stderr is a terminal; yields its hook or None.

    The hook takes (files done, files in all), as predict.predict_folder's on_progress.
    """
    console = Console(stderr=True)
    if not (enabled and console.is_terminal):
        yield None
        return
    columns = (
        TextColumn("[bold]predict"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("predict", total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)
