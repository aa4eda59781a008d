"""Routes of training jobs: start, follow (Server-Sent Events), look at, cancel.

GET    /api/jobs              datasets, recipes, presets, and the job running now
POST   /api/jobs              start a job (202 {"id"}); 409 while one runs
GET    /api/jobs/{id}         its status
GET    /api/jobs/{id}/events  its events as text/event-stream (see convlens.web.jobs)
DELETE /api/jobs/{id}         cancel it (as Ctrl-C: finished epochs stay resumable)
"""

from __future__ import annotations

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from convlens.web import jobs as jobs_module
from convlens.web.experiment_schemas import JobCreated, JobRequest, JobsInfo, JobStatus
from convlens.web.schemas import ErrorBody

ERRORS = {
    400: {"model": ErrorBody},
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
}


def jobs_router(manager: jobs_module.JobManager) -> APIRouter:
    """The job routes over ``manager``."""
    router = APIRouter(prefix="/api/jobs", tags=["jobs"])

    @router.get("", response_model=JobsInfo)
    def jobs_info() -> dict:
        """What a job may train on and with, and the job running now (a reloaded page
        reconnects to it)."""
        from convlens.model.presets import PRESETS
        from convlens.training.recipes import RECIPES

        current = manager.current()
        return {
            "datasets": list(manager.datasets),
            "recipes": list(RECIPES),
            "presets": {name: p.description for name, p in PRESETS.items()},
            "current": None if current is None else current.status(),
            "threads": jobs_module.job_threads(),
        }

    @router.post("", status_code=202, response_model=JobCreated, responses=ERRORS)
    def start(request: JobRequest) -> dict:
        """Start training; the arguments are checked before anything starts."""
        job = manager.start(request.model_dump())
        return {"id": job.id, "run": job.run}

    @router.get("/{job_id}", response_model=JobStatus, responses=ERRORS)
    def status(job_id: str) -> dict:
        """Where the job stands: state, epochs done, history, the run once done."""
        return manager.get(job_id).status()

    @router.get(
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
            jobs_module.events(job, after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.delete("/{job_id}", response_model=JobStatus, responses=ERRORS)
    async def cancel(job_id: str) -> dict:
        """Cancel the job (within a second); the answer says what was kept."""
        job = await run_in_threadpool(manager.cancel, job_id)
        return job.status()

    return router
