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


def _field_title(route: object, where: str, name: str) -> str | None:
    """The title (the page's label) given to field ``name`` of a route's body or query."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    if where == "body":
        for param in dependant.body_params:
            fields = getattr(param.field_info.annotation, "model_fields", {})
            if name in fields:
                return fields[name].title
        return None
    for param in getattr(dependant, f"{where}_params", []):
        if name in (param.name, param.alias):
            return param.field_info.title
    return None


def _reason(problem: dict) -> str:
    """What is wrong with a value, in words a reader of the page knows."""
    kind, ctx = problem.get("type", ""), problem.get("ctx") or {}
    reasons = {
        "less_than_equal": lambda: f"must be at most {ctx.get('le')}",
        "less_than": lambda: f"must be less than {ctx.get('lt')}",
        "greater_than_equal": lambda: f"must be at least {ctx.get('ge')}",
        "greater_than": lambda: f"must be more than {ctx.get('gt')}",
        "int_parsing": lambda: "must be a whole number",
        "int_type": lambda: "must be a whole number",
        "int_from_float": lambda: "must be a whole number",
        "float_parsing": lambda: "must be a number",
        "float_type": lambda: "must be a number",
        "finite_number": lambda: "must be a finite number",
        "bool_parsing": lambda: "must be true or false",
        "literal_error": lambda: f"must be one of {ctx.get('expected')}",
        "missing": lambda: "is missing",
        "too_short": lambda: f"needs at least {ctx.get('min_length')} item(s)",
        "too_long": lambda: f"takes at most {ctx.get('max_length')} item(s)",
    }
    if kind in reasons:
        return reasons[kind]()
    return str(problem.get("msg", "is not valid")).rstrip(".").lower()


def validation_sentence(exc: RequestValidationError, route: object = None) -> str:
    """The first validation problem as one sentence: the control's label, what, and the fix.

    The label is the field's title (as the page labels its control: "Pool size"),
    else its name in words: '"Pool size" must be at most 64, not 300; change it and
    try again.'
    """
    problem = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in problem.get("loc", ())]
    where = loc[0] if loc and loc[0] in ("body", "query", "path", "header") else "body"
    names = [part for part in loc if part not in ("body", "query", "path", "header")]
    if not names:
        return "the request is malformed; send a JSON body as /api/openapi.json describes it."
    title = _field_title(route, where, names[0]) or names[0].replace("_", " ")
    inner = [f"item {int(part) + 1}" for part in names[1:] if part.isdigit()]  # list positions
    label = " ".join([f'"{title[:1].upper()}{title[1:]}"', *inner])
    if problem.get("type") == "missing":
        return f"{label} is missing; give it and try again."
    return f"{label} {_reason(problem)}{_given(problem.get('input'))}; change it and try again."


def _given(value: object) -> str:
    """", not 100" or ', not "abc"' for the value a reader gave (nothing for a list or object)."""
    if value is None or isinstance(value, (dict, list)) or value == "":
        return ""
    text = str(value)
    try:
        float(text)
    except ValueError:
        text = f'"{text[:40]}"'
    return f", not {text}"


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
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_answer(422, validation_sentence(exc, request.scope.get("route")))

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
