"""The explorer's HTTP API and page: ``create_app`` builds the FastAPI application.

Every part of the page is a panel: a module web/<panel>.py whose
``router(state)`` returns its routes, with its request and response bodies
beside them (those several panels share are in web/bodies.py), and whose
script is static/js/<panel>.js. ``state`` is the shared web.state.Explorer.
create_app includes the PANELS in this order (JSON unless said; every body
is described at /api/openapi.json):

    page        GET /, /static/... (the page and its files), GET /api/info
    images      POST /api/images, GET /api/images/builtin/{name}, GET /api/samples
    playground  POST /api/convolve, /api/explain, /api/explain-pool
    journey     GET /api/runs/{name}, POST /api/journey
    classview   POST /api/class-filter
    jobs        GET, POST /api/jobs; GET, DELETE /api/jobs/{id}; GET /api/jobs/{id}/events
    editor      GET /api/models/presets, /api/models/layer-types, /api/runs/{name}/model;
                POST /api/models/summary
    compare     GET /api/compare, POST /api/compare/predict
    your_model  POST /api/models (an uploaded .keras/.h5/.onnx file becomes a run)
    why         GET /api/attribution/methods, POST /api/attribution, /api/portrait

Every error a client can cause is a 4xx answer {"error": "one sentence"}:
400 for bad values, 403 for a change asked by a page of another site (or,
when the explorer listens beyond this computer, a request without its token:
see web/doors.py), 404 for names the server does not hold, 409 for a second
training job, 413 for an upload over 10 MB, 422 for a body of the wrong form;
a model that cannot be built also names its layer ("layer"). The server keeps
serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from convlens.errors import ConvlensError, LayerError
from convlens.runs.directory import RUNS_ROOT
from convlens.version import __version__
from convlens.web import (
    classview,
    compare,
    editor,
    images,
    jobs,
    journey,
    page,
    playground,
    why,
    your_model,
)
from convlens.web.doors import Doors, reach_note
from convlens.web.job_manager import JobConflict
from convlens.web.state import Explorer
from convlens.web.store import NotFound, TooLarge

LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1", "testserver"]
PANELS = (page, images, playground, journey, classview, jobs, editor, compare, your_model, why)


def error_answer(status: int, message: str) -> JSONResponse:
    """A 4xx answer with one sentence."""
    return JSONResponse({"error": message}, status_code=status)


def validation_sentence(exc: RequestValidationError) -> str:
    """The first validation problem as one sentence: where, what, and the fix."""
    problem = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
    message = str(problem.get("msg", "the request is malformed")).rstrip(".")
    return f"{where or 'the request'}: {message}; fix it and try again."


def add_error_handlers(app: FastAPI) -> None:
    """Every error a client can cause becomes {"error": sentence} with a 4xx status."""

    @app.exception_handler(ConvlensError)
    async def _user_error(_request: Request, exc: ConvlensError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else 413 if isinstance(exc, TooLarge) else 400
        status = 409 if isinstance(exc, JobConflict) else status
        answer = error_answer(status, str(exc))
        if isinstance(exc, LayerError):  # the model editor shows it beside that layer
            answer = JSONResponse({"error": str(exc), "layer": exc.layer}, status_code=status)
        return answer

    @app.exception_handler(RequestValidationError)
    async def _malformed(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_answer(422, validation_sentence(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_answer(404, f"there is no {request.url.path}; see /api/openapi.json.")
        return error_answer(exc.status_code, str(exc.detail))


@asynccontextmanager
async def _stop_jobs_at_shutdown(app: FastAPI) -> AsyncIterator[None]:
    """A server stopping (Ctrl-C, SIGTERM) stops a running job as Ctrl-C would: resumable."""
    yield
    await run_in_threadpool(app.state.jobs.shutdown)


def create_app(
    runs_root: Path = RUNS_ROOT,
    run: Path | None = None,
    host: str | None = None,
    dataset: str | Path | None = None,
    token: str | None = None,
) -> FastAPI:
    """The explorer: API and page for the runs under ``runs_root`` (and ``run``).

    Training jobs write their runs into ``runs_root``, on Fashion-MNIST, MNIST
    or ``dataset`` (a folder of images). With ``token`` every request must
    carry it (web/doors.py); `convlens explore` gives one when ``host`` is not
    this computer's loopback.
    """
    app = FastAPI(
        lifespan=_stop_jobs_at_shutdown,
        title="convlens explorer",
        version=__version__,
        description=__doc__,
        openapi_url="/api/openapi.json",
        docs_url=None,  # the interactive docs load from a CDN; the page must work offline
        redoc_url=None,
    )
    hosts = LOCAL_HOSTS + ([host] if host and host not in LOCAL_HOSTS else [])
    if host in ("0.0.0.0", "::"):
        hosts = ["*"]
    app.add_middleware(Doors, token=token)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)  # the outer one: checked first
    reach = reach_note(host, token)
    state = Explorer(Path(runs_root), None if run is None else Path(run), dataset, reach)
    app.state.explorer = state
    app.state.jobs = state.jobs
    add_error_handlers(app)
    page.mount_static(app)  # an APIRouter cannot carry a mount (see web/page.py)
    for panel in PANELS:
        app.include_router(panel.router(state))
    return app
