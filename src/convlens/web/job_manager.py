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

The routes over it are the jobs panel's (web/jobs.py); the child's side is
web/job_process.py.
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
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convlens.errors import ConvlensError
from convlens.model.presets import PRESETS, preset
from convlens.model.sequential import Sequential
from convlens.runs.directory import CHECKPOINT_FILE, new_run_name, partial_path
from convlens.training.recipes import recipe_config
from convlens.web.fitting import Fitter
from convlens.web.job_process import JobPlan, job_threads, nothing_kept_message, run_job
from convlens.web.store import NotFound

FINAL_STATES = ("done", "failed", "cancelled")
NAMED_DATASETS = ("fashion-mnist", "mnist")
MAX_JOB_PARAMS = 20_000_000  # a model the page may train (the best preset has ~0.5M)
MAX_EPOCHS = 100
CANCEL_WAIT_SECONDS = 3.0
SHUTDOWN_WAIT_SECONDS = 20.0
KEPT_EVENTS = ("progress", "snapshot", "state", "watching", "started")  # only the latest kept


class JobConflict(ConvlensError):
    """A second job while one runs (answered with 409)."""


def plan_job(
    model: str | dict,
    dataset: str,
    recipe: str,
    epochs: int | None,
    seed: int,
    out: Path,
    fitter: Fitter,
    watch_image: int = 0,
    fit: bool = False,
) -> JobPlan:
    """Check a job's arguments before anything starts; a bad one ends in one sentence.

    A preset (by name, or ``fit``: a model JSON made from one in the editor) is
    fitted to the dataset as `convlens train --model PRESET` fits it; any other
    model JSON is taken as written and must fit the dataset's classes.
    """
    fitter.source(dataset)  # an unknown dataset first
    if isinstance(model, str):
        if model not in PRESETS:
            raise ConvlensError(
                f"unknown model {model!r}; choose a preset ({', '.join(PRESETS)}) or send the "
                "model's JSON."
            )
        spec, fit = preset(model), True
    else:
        spec = Sequential.from_config(model)
    recipe_config(recipe, epochs=epochs, seed=seed)  # the recipe's own checks
    if epochs is not None and epochs > MAX_EPOCHS:
        raise ConvlensError(f"epochs must be at most {MAX_EPOCHS} here, not {epochs}.")
    ready = fitter.fit(spec, dataset, fit).model  # the 4xx of a model that cannot fit the data
    if ready.total_params > MAX_JOB_PARAMS:
        raise ConvlensError(
            f"the model has {ready.total_params:,} parameters on {dataset}, more than the "
            f"{MAX_JOB_PARAMS:,} the explorer trains; make its layers smaller."
        )
    return JobPlan(
        model=spec.config(),
        preset=model if isinstance(model, str) else None,
        dataset=fitter.source(dataset),
        recipe=recipe,
        epochs=epochs,
        seed=seed,
        out=str(out),
        threads=job_threads(),
        watch_image=watch_image,
        fit=fit,
    )


def fresh_run_path(root: Path, model_name: str) -> Path:
    """A new run directory under ``root`` for ``model_name``, free also of a staged one."""
    base = root / new_run_name(model_name)
    candidate, n = base, 1
    while candidate.exists() or partial_path(candidate).exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


# ---------------------------------------------------------------- the child process


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
    page_cancelled: bool = False  # cancelled from the page, not by the server stopping
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
        self.fitter = Fitter(self.datasets)  # what a model becomes on each (the editor shows it)
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
            self.fitter,
            request.get("watch_image", 0),
            request.get("fit", False),
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
        if (partial_path(job.run_path) / CHECKPOINT_FILE).is_file():
            return (
                f"cancelled: the epochs finished so far are kept; continue with "
                f"`convlens train --resume {job.run_path}`."
            )
        return nothing_kept_message()

    def get(self, job_id: str) -> Job:
        """The job called ``job_id``; an unknown id ends in one sentence (404)."""
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
        job.cancel_requested = job.page_cancelled = True
        _interrupt(job.process)
        if not job.finished.wait(wait):
            job.process.terminate()  # stuck: a checkpoint on disk stays resumable
            job.finished.wait(wait)
        return job

    def shutdown(self, wait: float = SHUTDOWN_WAIT_SECONDS) -> list[Job]:
        """Stop a running job as Ctrl-C would (the server is stopping), keeping what is saved.

        Returns the jobs a stop has ended (the one running, or one that Ctrl-C in the
        terminal reached first), not those cancelled from the page; each one's ``message``
        says what was kept and how to resume it.
        """
        job = self.current()
        if job is not None and job.process is not None:
            job.cancel_requested = True
            _interrupt(job.process)
            job.process.join(wait)
            if job.process.is_alive():
                job.process.terminate()
                job.process.join(5)
            job.finished.wait(5)
        with self._lock:
            return [j for j in self.jobs.values() if j.state == "cancelled" and not j.page_cancelled]


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
