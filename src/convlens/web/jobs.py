"""The jobs panel: training from the page. Start, follow (Server-Sent Events), look at, cancel.

GET    /api/jobs              datasets, recipes, presets, and the job running now
POST   /api/jobs              start a job (202 {"id"}); 409 while one runs
GET    /api/jobs/{id}         its status
GET    /api/jobs/{id}/events  its events as text/event-stream (see convlens.web.job_manager)
DELETE /api/jobs/{id}         cancel it (as Ctrl-C: finished epochs stay resumable)

The jobs themselves are the shared state's JobManager (web/job_manager.py);
the page's script is static/js/jobs.js.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from convlens.model.presets import PRESETS
from convlens.training.recipes import RECIPES
from convlens.web import job_manager
from convlens.web.bodies import ErrorBody
from convlens.web.job_process import job_threads
from convlens.web.state import Explorer

ERRORS = {
    400: {"model": ErrorBody},
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
}

JobState = Literal["queued", "running", "done", "failed", "cancelled"]


class JobRequest(BaseModel):
    """Train a model from the page: the same choices `convlens train` offers."""

    model: str | dict[str, Any] = Field(
        "seed-cnn", description="a preset's name, or a model JSON object (as model.json holds)"
    )
    fit: bool = Field(
        False,
        description="the model JSON is a preset, or a lesson's exercise made from one: its "
        "input and last layer are fitted to the dataset as `convlens train --model PRESET` "
        "fits a preset's (a preset given by name always is); false: taken as written",
    )
    dataset: str = Field(
        "fashion-mnist", title="Dataset", description="one of GET /api/jobs's datasets"
    )
    recipe: str = Field("fast", title="Recipe", description="fast, lesson or best")
    epochs: int | None = Field(None, ge=1, title="Epochs", description="default: the recipe's")
    seed: int = Field(
        0, title="Seed", description="0 to 2**31 - 1: checked by the recipes' rule, as --seed is"
    )
    watch_image: int = Field(
        0, ge=0, title="Watched test image", description="the test image whose maps are redrawn"
    )


class JobCreated(BaseModel):
    """A job that has started: follow it at /api/jobs/{id}/events."""

    id: str
    run: str = Field(description="the run directory it writes (listed once done)")


class JobStatus(BaseModel):
    """Where a job stands."""

    id: str
    state: JobState
    epoch: int = Field(description="epochs finished")
    epochs: int | None = Field(description="epochs it will train (once started)")
    history: list[dict[str, Any]] = Field(description="one EpochRecord per finished epoch")
    run: str | None = Field(description="the run's name once done")
    error: str | None = Field(description="one sentence when failed")
    message: str | None = Field(description="what was kept when cancelled, or written when done")


class JobsInfo(BaseModel):
    """What the training panel offers, and the job running now (to reconnect to)."""

    datasets: list[str]
    recipes: list[str]
    presets: dict[str, str] = Field(description="preset name: one line describing it")
    current: JobStatus | None
    threads: int = Field(description="torch threads a job uses (one core is left to the page)")


def router(state: Explorer) -> APIRouter:
    """The job routes over the explorer's JobManager."""
    manager = state.jobs
    routes = APIRouter(prefix="/api/jobs", tags=["jobs"])

    @routes.get("", response_model=JobsInfo)
    def jobs_info() -> dict:
        """What a job may train on and with, and the job running now (a reloaded page
        reconnects to it)."""
        current = manager.current()
        return {
            "datasets": list(manager.datasets),
            "recipes": list(RECIPES),
            "presets": {name: p.description for name, p in PRESETS.items()},
            "current": None if current is None else current.status(),
            "threads": job_threads(),
        }

    @routes.post("", status_code=202, response_model=JobCreated, responses=ERRORS)
    def start(request: JobRequest) -> dict:
        """Start training; the arguments, and that the model fits the dataset, are checked
        before anything starts."""
        job = manager.start(request.model_dump())
        return {"id": job.id, "run": job.run}

    @routes.get("/{job_id}", response_model=JobStatus, responses=ERRORS)
    def status(job_id: str) -> dict:
        """Where the job stands: state, epochs done, history, the run once done."""
        return manager.get(job_id).status()

    @routes.get(
        "/{job_id}/events",
        responses={
            **ERRORS,
            200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        },
    )
    async def events(
        job_id: str, request: Request, last_event_id: str | None = Header(None)
    ) -> StreamingResponse:
        """The job's events: what happened so far (compacted), then each as it happens;
        the stream ends after the final state."""
        job = manager.get(job_id)
        after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
        return StreamingResponse(
            job_manager.events(job, after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @routes.delete("/{job_id}", response_model=JobStatus, responses=ERRORS)
    async def cancel(job_id: str) -> dict:
        """Cancel the job (within a second); the answer says what was kept."""
        job = await run_in_threadpool(manager.cancel, job_id)
        return job.status()

    return routes
