"""The training child process of an explorer job: trains, sends events through a pipe.

``run_job(plan, conn)`` is the body of the process the job manager
(web/job_manager.py) starts with the ``spawn`` method: a fresh interpreter
that plans and trains as `convlens train` does, writes the same run directory
(report included) and sends (kind, data) events to the server as it goes
(started, watching, progress, point, epoch, snapshot; then done, failed or
cancelled). It runs at a lower priority with every core but one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import traceback
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convlens.errors import ConvlensError
from convlens.inspect import journey
from convlens.model.sequential import Sequential
from convlens.training.callbacks import Callback
from convlens.training.plan import plan_training
from convlens.training.recipes import batches_per_epoch, keep_in_epoch
from convlens.training.train import TrainingInterrupted, kept_epochs, train_to_run
from convlens.views.report import write_run_report
from convlens.web import model_views, pictures

POINTS_PER_EPOCH = 40  # curve points sent per epoch, at most
SNAPSHOT_SECONDS = 1.0  # filters and maps redrawn at most this often (and after each epoch)
PROGRESS_SECONDS = 0.25
CHILD_NICENESS = 5  # the server's answers come first


def job_threads() -> int:
    """Torch threads for a job: every core but one, so the server always has one."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class JobPlan:
    """Everything the child needs, as plain values (it crosses a process boundary)."""

    model: dict[str, Any]  # a Sequential config (a preset's, when ``preset`` names one)
    preset: str | None  # a preset fits its input and last layer to the dataset
    dataset: str  # what data.load takes: a named dataset or a folder's path
    recipe: str
    epochs: int | None
    seed: int
    out: str  # the run directory to write
    threads: int
    watch_image: int = 0
    fit: bool = False  # the model is made from a preset: fitted to the dataset as one


class Sender:
    """Sends events to the server; Ctrl-C waits until a message is whole (never half a one)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sending = False
        self.interrupted = False
        signal.signal(signal.SIGINT, self._on_interrupt)

    def _on_interrupt(self, _signum: int, _frame: Any) -> None:
        if self.sending:
            self.interrupted = True
            return
        raise KeyboardInterrupt

    def __call__(self, kind: str, **data: Any) -> None:
        self.sending = True
        try:
            self.conn.send((kind, data))
        except OSError:  # the server has gone: stop as Ctrl-C would, keeping what is saved
            raise KeyboardInterrupt from None
        finally:
            self.sending = False
        if self.interrupted:
            self.interrupted = False
            raise KeyboardInterrupt

    def last(self, kind: str, **data: Any) -> None:
        """The final message: sent whatever happens, then no more."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(OSError, ValueError):
            self.conn.send((kind, data))


def run_job(plan: JobPlan, conn: Any) -> None:
    """The training process's body: train ``plan`` and send its events through ``conn``."""
    send = Sender(conn)
    try:
        _train(plan, send)
    except KeyboardInterrupt:
        send.last("cancelled", epochs_done=0, message=nothing_kept_message())
    except ConvlensError as exc:
        send.last("failed", error=str(exc))
    except Exception as exc:  # a bug: the page gets a sentence, the terminal the traceback
        traceback.print_exc()
        send.last("failed", error=f"training stopped on an internal error ({exc!r}); see the log.")
    finally:
        conn.close()


def nothing_kept_message() -> str:
    """What cancelling before the first epoch ends keeps: nothing."""
    return (
        "cancelled before the first epoch ended: nothing was kept (a run becomes resumable "
        "once its first epoch is saved)."
    )


def kept_message(done: int, epochs: int, run: str | Path) -> str:
    """What cancelling after ``done`` of ``epochs`` keeps, and how to go on."""
    return (
        f"cancelled after epoch {done} of {epochs}: {kept_epochs(done)} in {run}'s staging folder; "
        f"continue with `convlens train --resume {run}`."
    )


def _train(plan: JobPlan, send) -> None:
    """Load, train and write the run, sending events as it goes."""
    with contextlib.suppress(AttributeError, OSError):
        os.nice(CHILD_NICENESS)
    torch.set_num_threads(plan.threads)
    # As `convlens train` plans it: a preset fitted to the data, the recipe scaled to its size.
    training = plan_training(
        plan.preset or Sequential.from_config(plan.model),
        plan.dataset,
        recipe=plan.recipe,
        fit=plan.fit,
        epochs=plan.epochs,
        seed=plan.seed,
    )
    dataset, config = training.dataset, training.config
    model = training.model.with_class_names(dataset.class_names)  # a mismatch: one sentence
    watcher = Watcher(model, dataset, config, plan, send)
    send(
        "started",
        run=Path(plan.out).name,
        epochs=config.epochs,
        dataset=dataset.name,
        train_images=len(dataset.train),
        test_images=len(dataset.test),
        model=model.name,
        params=model.total_params,
        recipe=config.recipe,
        input_why=training.input_why,
    )
    watcher.announce_image()
    try:
        path, result = train_to_run(
            model,
            dataset,
            config,
            out=plan.out,
            callbacks=[watcher],
            finish=lambda directory, fit: write_run_report(directory, dataset.test, fit.test),
        )
    except TrainingInterrupted as stop:
        message = kept_message(stop.epochs_done, config.epochs, stop.run)
        send.last("cancelled", epochs_done=stop.epochs_done, message=message)
        return
    send.last(
        "done", run=Path(path).name, test_accuracy=result.test.accuracy, seconds=result.seconds
    )


class Watcher(Callback):
    """The job's training callback: progress, curve points, filters and maps as they change."""

    def __init__(self, model, dataset, config, plan: JobPlan, send) -> None:
        self.model, self.config, self.send = model, config, send
        self.network = None
        self.test = dataset.test
        self.index = plan.watch_image % max(1, len(dataset.test))
        keep = partial(keep_in_epoch, config)
        self.keep = [keep(epoch) for epoch in range(1, config.epochs + 1)]
        images = len(dataset.train)
        self.steps = [
            batches_per_epoch(images, config.batch_size, keep(epoch))
            for epoch in range(1, config.epochs + 1)
        ]
        self.images = images
        self.epoch_started = time.perf_counter()
        self.last_progress = self.last_snapshot = 0.0
        self.current_epoch = 0

    def on_train_begin(self, network) -> None:
        """The network being trained: its filters and maps are drawn from it as it learns."""
        self.network = network
        self.snapshot(0, 0)
        self.current_epoch, self.epoch_started = 1, time.perf_counter()

    def announce_image(self) -> None:
        """The test image whose maps are redrawn, sent once."""
        pixels = self.test.images[self.index]
        shown = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
        label = int(self.test.labels[self.index])
        names = self.model.class_names or ()
        self.send(
            "watching",
            index=self.index,
            label=names[label] if label < len(names) else str(label),
            png=pictures.data_url(shown),
        )

    def on_batch_end(self, epoch: int, batch: int, loss: float, accuracy: float) -> None:
        """After every step: progress, a curve point now and then, a snapshot each second."""
        if epoch != self.current_epoch:
            self.current_epoch, self.epoch_started = epoch, time.perf_counter()
        steps = self.steps[epoch - 1]
        step = sum(self.steps[: epoch - 1]) + batch + 1
        now = time.perf_counter()
        last = batch + 1 == steps
        every = max(1, steps // POINTS_PER_EPOCH)
        if (batch + 1) % every == 0 or last:
            # keep < 1: selective backprop trains on the hardest images, so the running
            # loss and accuracy of this epoch are theirs (the epoch's record is over all)
            keep = self.keep[epoch - 1]
            self.send("point", step=step, epoch=epoch, loss=loss, accuracy=accuracy, keep=keep)
        if now - self.last_progress >= PROGRESS_SECONDS or last:
            self.last_progress = now
            self.progress(epoch, batch, step, now)
        if now - self.last_snapshot >= SNAPSHOT_SECONDS:
            self.snapshot(epoch, step)

    def progress(self, epoch: int, batch: int, step: int, now: float) -> None:
        """images/s in this epoch and the time left at that pace."""
        elapsed = max(now - self.epoch_started, 1e-6)
        per_step = elapsed / (batch + 1)
        total = sum(self.steps)
        self.send(
            "progress",
            epoch=epoch,
            epochs=self.config.epochs,
            step=step,
            steps=total,
            images_per_second=(batch + 1) * self.config.batch_size / elapsed,
            seconds_left=per_step * (total - step),
        )

    def on_epoch_end(self, record) -> bool:
        """An epoch's record (test accuracy) and a snapshot of the weights it ended with."""
        self.send("epoch", **asdict(record))
        self.snapshot(record.epoch, sum(self.steps[: record.epoch]))
        self.current_epoch, self.epoch_started = record.epoch + 1, time.perf_counter()
        return False

    def snapshot(self, epoch: int, step: int) -> None:
        """The first convolution's filters and the watched image's maps, as they are now."""
        self.last_snapshot = time.perf_counter()
        if self.network is None:
            return
        pair = (self.model, self.network)
        filters = maps = None
        try:
            row, kernels = journey.learned_filters(pair)
        except ConvlensError:
            row = None  # a model without Conv2D (the dense baseline)
        layers = [row.name] if row is not None else []
        last = self.model.rows[-1].name
        captured = journey.activations(pair, self.test.images[self.index][None], [*layers, last])
        if row is not None:
            first_channel = kernels[:, :, 0, :]
            filters = {
                "layer": row.name,
                "grid": model_views.map_grid(first_channel, "RdBu_r", symmetric=True),
            }
            maps = {"layer": row.name, "grid": model_views.map_grid(captured[row.name][0])}
        probabilities = captured[last][0]
        if not self.network.final_softmax:
            probabilities = np.exp(probabilities - probabilities.max())
            probabilities = probabilities / probabilities.sum()
        best = int(probabilities.argmax())
        names = self.model.class_names or tuple(str(i) for i in range(len(probabilities)))
        self.send(
            "snapshot",
            epoch=epoch,
            step=step,
            filters=filters,
            maps=maps,
            predicted={
                "index": best,
                "name": names[best],
                "probability": float(probabilities[best]),
            },
        )
