"""Training from the explorer: one job at a time, in its own process, its events to the page.

A job is ``train.train_to_run`` run in a child process started with the
``spawn`` method (a fresh interpreter: no torch state or server threads
copied), so the server keeps answering while it trains. The child uses all
cores but one and runs at a lower priority, and it writes the same run
directory `convlens train` writes (report included) into the explorer's runs
folder, where the run list finds it at once.

The child sends (kind, data) pairs through a pipe; the server keeps them in
the job's event log, which every page watching the job (Server-Sent Events)
replays and then follows. Kinds:

    started   {run, epochs, dataset, train_images, test_images, model, params}
    watching  {index, label, png}: the test image whose maps are redrawn
    progress  {epoch, epochs, step, steps, images_per_second, seconds_left}
    point     {step, epoch, loss, accuracy, keep}: the running training curves (keep < 1:
              over the hardest images selective backprop trains on this epoch)
    epoch     an EpochRecord (test accuracy per epoch)
    snapshot  {step, epoch, filters, maps, predicted}: first conv's filters and
              the watched image's maps, as they are now
    state     the job's status (state, epoch, run, error, message)

Cancelling sends the child SIGINT, as Ctrl-C in a terminal does: after a
finished epoch the run stays resumable (`convlens train --resume RUN`),
before it nothing is kept. Stopping the server does the same to a running
job (Ctrl-C reaches the child directly; otherwise ``shutdown`` at exit).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from convlens.errors import ConvlensError

FINAL_STATES = ("done", "failed", "cancelled")
NAMED_DATASETS = ("fashion-mnist", "mnist")
MAX_JOB_PARAMS = 20_000_000  # a model the page may train (the best preset has ~0.5M)
MAX_EPOCHS = 100
POINTS_PER_EPOCH = 40  # curve points sent per epoch, at most
SNAPSHOT_SECONDS = 1.0  # filters and maps redrawn at most this often (and after each epoch)
PROGRESS_SECONDS = 0.25
CANCEL_WAIT_SECONDS = 3.0
SHUTDOWN_WAIT_SECONDS = 20.0
CHILD_NICENESS = 5  # the server's answers come first
KEPT_EVENTS = ("progress", "snapshot", "state", "watching", "started")  # only the latest kept


class JobConflict(ConvlensError):
    """A second job while one runs (answered with 409)."""


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


def plan_job(
    model: str | dict,
    dataset: str,
    recipe: str,
    epochs: int | None,
    seed: int,
    out: Path,
    datasets: dict[str, str],
    watch_image: int = 0,
) -> JobPlan:
    """Check a job's arguments before anything starts; a bad one ends in one sentence."""
    from convlens.model import PRESETS, Sequential, preset
    from convlens.train import recipe_config

    if dataset not in datasets:
        raise ConvlensError(
            f"unknown dataset {dataset!r}; choose one of {', '.join(datasets)} (start "
            "`convlens explore --dataset FOLDER` to train on a folder of images)."
        )
    if isinstance(model, str):
        if model not in PRESETS:
            raise ConvlensError(
                f"unknown model {model!r}; choose a preset ({', '.join(PRESETS)}) or send the "
                "model's JSON."
            )
        spec = preset(model)
    else:
        spec = Sequential.from_config(model)
    recipe_config(recipe, epochs=epochs, seed=seed)  # the recipe's own checks
    if epochs is not None and epochs > MAX_EPOCHS:
        raise ConvlensError(f"epochs must be at most {MAX_EPOCHS} here, not {epochs}.")
    if spec.total_params > MAX_JOB_PARAMS:
        raise ConvlensError(
            f"the model has {spec.total_params:,} parameters, more than the "
            f"{MAX_JOB_PARAMS:,} the explorer trains; make its layers smaller."
        )
    classes = _named_classes(datasets[dataset])
    if classes and isinstance(model, dict) and spec.num_classes != len(classes):
        spec.with_class_names(classes)  # raises the sentence: change the last layer
    return JobPlan(
        model=spec.config(),
        preset=model if isinstance(model, str) else None,
        dataset=datasets[dataset],
        recipe=recipe,
        epochs=epochs,
        seed=seed,
        out=str(out),
        threads=job_threads(),
        watch_image=watch_image,
    )


def _named_classes(dataset: str) -> tuple[str, ...] | None:
    """The class names of a named dataset (None for a folder: read when it is loaded)."""
    from convlens.data import SOURCES

    source = SOURCES.get(dataset)
    return None if source is None else tuple(source.class_names)


def fresh_run_path(root: Path, model_name: str) -> Path:
    """A new run directory under ``root`` for ``model_name``, free also of a staged one."""
    from convlens.runs import new_run_name, partial_path

    base = root / new_run_name(model_name)
    candidate, n = base, 1
    while candidate.exists() or partial_path(candidate).exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


# ---------------------------------------------------------------- the child process


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


def _train(plan: JobPlan, send) -> None:
    """Load, train and write the run, sending events as it goes."""
    with contextlib.suppress(AttributeError, OSError):
        os.nice(CHILD_NICENESS)
    import torch

    from convlens.model import Sequential
    from convlens.plan import plan_training
    from convlens.report import write_run_report
    from convlens.train import TrainingInterrupted, train_to_run

    torch.set_num_threads(plan.threads)
    # As `convlens train` plans it: a preset fitted to the data, the recipe scaled to its size.
    training = plan_training(
        plan.preset or Sequential.from_config(plan.model),
        plan.dataset,
        recipe=plan.recipe,
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
            on_batch=watcher.on_batch,
            on_epoch=watcher.on_epoch,
            watch=watcher.watch,
            finish=lambda directory, fit: write_run_report(directory, dataset.test, fit.test),
        )
    except TrainingInterrupted as stop:
        send.last(
            "cancelled",
            epochs_done=stop.epochs_done,
            message=(
                f"cancelled after epoch {stop.epochs_done} of {config.epochs}: epochs "
                f"1-{stop.epochs_done} are kept; continue with `convlens train --resume "
                f"{stop.run}`."
            ),
        )
        return
    send.last(
        "done", run=Path(path).name, test_accuracy=result.test.accuracy, seconds=result.seconds
    )


class Watcher:
    """fit's hooks in the child: progress, curve points, filters and maps as they change."""

    def __init__(self, model, dataset, config, plan: JobPlan, send) -> None:
        from functools import partial

        from convlens.selection import batches_per_epoch
        from convlens.train import keep_in_epoch

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

    def watch(self, network) -> None:
        """fit's watch hook: the network being trained."""
        self.network = network
        self.snapshot(0, 0)
        self.current_epoch, self.epoch_started = 1, time.perf_counter()

    def announce_image(self) -> None:
        """The test image whose maps are redrawn, sent once."""
        from convlens.web import pictures

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

    def on_batch(self, epoch: int, batch: int, loss: float, accuracy: float) -> None:
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

    def on_epoch(self, record) -> None:
        """An epoch's record (test accuracy) and a snapshot of the weights it ended with."""
        self.send("epoch", **asdict(record))
        self.snapshot(record.epoch, sum(self.steps[: record.epoch]))
        self.current_epoch, self.epoch_started = record.epoch + 1, time.perf_counter()

    def snapshot(self, epoch: int, step: int) -> None:
        """The first convolution's filters and the watched image's maps, as they are now."""
        from convlens import inspect
        from convlens.errors import ConvlensError
        from convlens.web import model_views

        self.last_snapshot = time.perf_counter()
        if self.network is None:
            return
        pair = (self.model, self.network)
        filters = maps = None
        try:
            row, kernels = inspect.learned_filters(pair)
        except ConvlensError:
            row = None  # a model without Conv2D (the dense baseline)
        layers = [row.name] if row is not None else []
        last = self.model.rows[-1].name
        captured = inspect.activations(pair, self.test.images[self.index][None], [*layers, last])
        if row is not None:
            first_channel = kernels[:, :, 0, :]
            filters = {
                "layer": row.name,
                "grid": model_views.map_grid(first_channel, "RdBu_r", symmetric=True),
            }
            maps = {"layer": row.name, "grid": model_views.map_grid(captured[row.name][0])}
        probabilities = captured[last][0]
        if not self.network.final_softmax:
            import numpy as np

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


# ---------------------------------------------------------------- the server side


@dataclass
class Job:
    """One training job as the server sees it: its status and its event log."""

    id: str
    run: str  # the run directory's name (it exists once the job is done)
    run_path: Path
    plan: JobPlan
    state: str = "queued"
    epoch: int = 0
    epochs: int | None = None
    history: list[dict] = field(default_factory=list)
    error: str | None = None
    message: str | None = None
    cancel_requested: bool = False
    events: list[tuple[int, str, dict]] = field(default_factory=list)
    sequence: int = 0
    process: Any = None
    subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    finished: threading.Event = field(default_factory=threading.Event)

    def status(self) -> dict:
        """A JobStatus body."""
        return {
            "id": self.id,
            "state": self.state,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "history": list(self.history),
            "run": self.run if self.state == "done" else None,
            "error": self.error,
            "message": self.message,
        }

    def record(self, kind: str, data: dict) -> None:
        """Keep an event (only the latest of the kinds that replace the last) and push it."""
        with self.lock:
            self.sequence += 1
            event = (self.sequence, kind, data)
            if kind in KEPT_EVENTS:
                self.events = [e for e in self.events if e[1] != kind]
            self.events.append(event)
            subscribers = list(self.subscribers)
        for loop, queue in subscribers:
            with contextlib.suppress(RuntimeError):  # that page's loop has closed
                loop.call_soon_threadsafe(queue.put_nowait, event)

    def apply(self, kind: str, data: dict) -> None:
        """Update the status from a child's event, then record it for the pages."""
        if kind == "started":
            self.state, self.epochs = "running", data["epochs"]
        elif kind == "epoch":
            self.epoch = data["epoch"]
            self.history.append(data)
        elif kind == "done":
            self.state, self.message = "done", f"the run {self.run} is written."
        elif kind == "cancelled":
            self.state, self.message = "cancelled", data["message"]
        elif kind == "failed":
            self.state, self.error = "failed", data["error"]
        if kind in FINAL_STATES:
            self.record("state", self.status())
            return
        self.record(kind, data)
        if kind == "started":
            self.record("state", self.status())

    def has_ended(self) -> bool:
        """Whether the final state is recorded (``finished`` follows once the process is gone)."""
        with self.lock:
            return any(_is_final(event) for event in self.events)

    def replay(self, after: int) -> list[tuple[int, str, dict]]:
        """The kept events after sequence number ``after``."""
        with self.lock:
            return [e for e in self.events if e[0] > after]


class JobManager:
    """The explorer's jobs: at most one running; every job of this session by id."""

    def __init__(self, runs_root: Path, extra_dataset: str | Path | None = None) -> None:
        self.runs_root = Path(runs_root)
        # {the name the page shows: what data.load reads}; a folder from --dataset first
        self.datasets = {name: name for name in NAMED_DATASETS}
        extra = None if extra_dataset is None else str(extra_dataset)
        if extra is not None and extra.lower() not in self.datasets:
            self.datasets = {_label(extra): extra, **self.datasets}
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")
        atexit.register(self.shutdown)

    def current(self) -> Job | None:
        """The job that is queued or running, if any."""
        with self._lock:
            return next((j for j in self.jobs.values() if j.state not in FINAL_STATES), None)

    def start(self, request: dict) -> Job:
        """Check ``request`` (a JobRequest's fields) and start its job; 409 while one runs."""
        running = self.current()
        if running is not None:
            raise JobConflict(
                f"a job is already training ({running.run}); wait for it to finish or cancel it "
                "first: the machine trains one model at a time."
            )
        model = request["model"]
        name = model if isinstance(model, str) else str(model.get("name", "sequential"))
        out = fresh_run_path(self.runs_root, name)
        plan = plan_job(
            model,
            request["dataset"],
            request["recipe"],
            request["epochs"],
            request["seed"],
            out,
            self.datasets,
            request.get("watch_image", 0),
        )
        job = Job(id=uuid.uuid4().hex[:12], run=out.name, run_path=out, plan=plan)
        with self._lock:
            if any(j.state not in FINAL_STATES for j in self.jobs.values()):
                raise JobConflict("a job is already training; wait for it or cancel it first.")
            self.jobs[job.id] = job
            self._launch(job)
        job.record("state", job.status())
        return job

    def _launch(self, job: Job) -> None:
        self.runs_root.mkdir(parents=True, exist_ok=True)
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=run_job, args=(job.plan, sender), daemon=True, name=f"convlens-job-{job.id}"
        )
        process.start()
        sender.close()  # the child holds the only writing end: its exit ends our reading
        job.process = process
        threading.Thread(
            target=self._follow, args=(job, receiver), daemon=True, name=f"job-{job.id}"
        ).start()

    def _follow(self, job: Job, receiver) -> None:
        """Read the child's events until it exits, then settle the job's final state."""
        while True:
            try:
                kind, data = receiver.recv()
            except Exception:  # EOF: the child has exited (or sent something unreadable)
                break
            job.apply(kind, data)
        receiver.close()
        job.process.join()
        if job.state not in FINAL_STATES:
            if job.cancel_requested:
                job.apply("cancelled", {"message": self._kept_message(job)})
            else:
                code = job.process.exitcode
                job.apply(
                    "failed",
                    {
                        "error": f"the training process stopped unexpectedly (exit code {code}); "
                        "see the explorer's terminal, then start the job again."
                    },
                )
        job.finished.set()

    def _kept_message(self, job: Job) -> str:
        from convlens.checkpoint import CHECKPOINT_FILE
        from convlens.runs import partial_path

        if (partial_path(job.run_path) / CHECKPOINT_FILE).is_file():
            return (
                f"cancelled: the epochs finished so far are kept; continue with "
                f"`convlens train --resume {job.run_path}`."
            )
        return nothing_kept_message()

    def get(self, job_id: str) -> Job:
        """The job called ``job_id``; an unknown id ends in one sentence (404)."""
        from convlens.web.store import NotFound

        with self._lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"there is no job {job_id!r}; start one with POST /api/jobs.")
        return job

    def cancel(self, job_id: str, wait: float = CANCEL_WAIT_SECONDS) -> Job:
        """Stop a job as Ctrl-C would, wait a little for it, and return it."""
        job = self.get(job_id)
        if job.state in FINAL_STATES:
            return job
        job.cancel_requested = True
        _interrupt(job.process)
        if not job.finished.wait(wait):
            job.process.terminate()  # stuck: a checkpoint on disk stays resumable
            job.finished.wait(wait)
        return job

    def shutdown(self, wait: float = SHUTDOWN_WAIT_SECONDS) -> None:
        """Stop a running job as Ctrl-C would (the server is stopping), keeping what is saved."""
        job = self.current()
        if job is None or job.process is None:
            return
        job.cancel_requested = True
        _interrupt(job.process)
        job.process.join(wait)
        if job.process.is_alive():
            job.process.terminate()
            job.process.join(5)
        job.finished.wait(5)


def _interrupt(process) -> None:
    """Send SIGINT (Ctrl-C) to a child process that may have ended already."""
    if process is None or process.pid is None or not process.is_alive():
        return
    with contextlib.suppress(ProcessLookupError, OSError):
        os.kill(process.pid, signal.SIGINT if sys.platform != "win32" else signal.CTRL_C_EVENT)


def _label(dataset: str) -> str:
    """How the page names a dataset folder: its last part."""
    return Path(dataset).name or dataset


async def events(job: Job, after: int = 0, keepalive: float = 15.0):
    """Server-Sent Events of ``job``: the kept events after ``after``, then new ones, to the end."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    with job.lock:
        job.subscribers.append((loop, queue))
    try:
        last = after
        for event in job.replay(after):
            last = event[0]
            yield _sse(event)
            if _is_final(event):
                return
        if job.finished.is_set() or job.has_ended():  # nothing after ``after``, none to come
            return
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), keepalive)
            except asyncio.TimeoutError:
                if job.finished.is_set():  # every event was queued before it was set
                    return
                yield ": still here\n\n"
                continue
            if event[0] <= last:
                continue
            last = event[0]
            yield _sse(event)
            if _is_final(event):
                return
    finally:
        with job.lock:
            job.subscribers.remove((loop, queue))


def _is_final(event: tuple[int, str, dict]) -> bool:
    return event[1] == "state" and event[2].get("state") in FINAL_STATES


def _sse(event: tuple[int, str, dict]) -> str:
    """One event in the text/event-stream format (its id lets a reconnecting page resume)."""
    sequence, kind, data = event
    return f"id: {sequence}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"
