"""The explorer's HTTP API and page: ``create_app`` builds the FastAPI application.

Routes (JSON unless said; the bodies are in convlens.web.schemas, described
at /api/openapi.json):

    GET  /                        the page (static/index.html)
    GET  /static/...              its CSS and ES modules, served by the package
    GET  /api/info                filters, built-in images, runs
    GET  /api/runs/{name}         one run's summary and metrics
    POST /api/images              an uploaded PNG/JPEG/BMP (the raw bytes as body)
    GET  /api/images/builtin/{n}  a built-in picture
    GET  /api/samples             test-set images of one class
    POST /api/convolve            filter and pool an image
    POST /api/explain             one filtered pixel's arithmetic
    POST /api/explain-pool        one pooled pixel's window
    POST /api/journey             one image through every layer of a run's model
    POST /api/class-filter        several images of a class, one filter, every layer
    /api/jobs...                  training jobs (convlens.web.jobs_routes)
    /api/models/..., /api/runs/{name}/model   the model editor (convlens.web.editor_routes)
    /api/compare...               runs side by side (convlens.web.compare)
    POST /api/models              an uploaded .keras/.h5/.onnx file becomes a run (your_model.py)
    POST /api/attribution         one image's attribution map toward a class (web/why.py)
    POST /api/portrait            one filter's top test patches, synthesised input (web/why.py)

Every error a client can cause is a 4xx answer {"error": "one sentence"}:
400 for bad values, 404 for names the server does not hold, 409 for a
second training job, 413 for an upload over 10 MB, 422 for a body of the
wrong form; a model that cannot be built also names its layer ("layer"). The server keeps serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from convlens.errors import ConvlensError, LayerError
from convlens.images import decode_image
from convlens.lab import ops
from convlens.lab.sample_images import facade
from convlens.runs.directory import RUNS_ROOT
from convlens.version import __version__
from convlens.web import model_views, schemas, why, your_model
from convlens.web.compare import compare_router
from convlens.web.editor_routes import editor_router
from convlens.web.jobs import JobConflict, JobManager
from convlens.web.jobs_routes import jobs_router
from convlens.web.playground import Playground, rounded_kernel
from convlens.web.store import ImageStore, NotFound, RunRegistry, StoredImage, TooLarge
from convlens.web.uploads import read_body

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
STATIC_DIR = Path(str(resources.files("convlens.web") / "static"))
LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1", "testserver"]
NO_RUN_HINT = (
    "There is no trained run yet: train one with `convlens train` (about 3 minutes for the "
    "lesson's CNN), then reload this page."
)
BUILTIN_IMAGES = {"facade": ("A building front (256x256): vertical and horizontal lines", facade)}
ERRORS = {400: {"model": schemas.ErrorBody}, 404: {"model": schemas.ErrorBody}}


class Explorer:
    """The server's state: images, runs, cached results and test splits."""

    def __init__(self, runs_root: Path, run: Path | None) -> None:
        self.images = ImageStore()
        self.runs = RunRegistry(runs_root, run)
        self.playground = Playground()
        self.samples = model_views.SampleSource()

    def info(self) -> dict:
        """A schemas.InfoBody."""
        runs = self.runs.describe_all()
        return {
            "version": __version__,
            "filters": {name: rounded_kernel(kernel) for name, kernel in ops.FILTERS.items()},
            "builtin_images": [
                {"name": name, "title": title} for name, (title, _) in BUILTIN_IMAGES.items()
            ],
            "runs": runs,
            "default_run": runs[0]["name"] if runs else None,
            "no_run_hint": None if runs else NO_RUN_HINT,
        }

    def image_info(self, image: StoredImage) -> dict:
        """A schemas.ImageInfo for a stored image."""
        return {
            "id": image.id,
            "name": image.name,
            "height": int(image.pixels.shape[0]),
            "width": int(image.pixels.shape[1]),
            "channels": int(image.pixels.shape[2]),
            "png": image.luma_png,
            # test-set samples only: their thumbnails; an upload may be 40 megapixels
            "colour_png": image.colour_png if image.test_index is not None else None,
            "label": image.label,
            "test_index": image.test_index,
        }


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


async def read_upload(request: Request) -> bytes:
    """An image upload's body, refused past MAX_UPLOAD_BYTES without reading the rest."""
    return await read_body(
        request, MAX_UPLOAD_BYTES, "the upload", "choose a smaller image.", "a PNG or JPEG file"
    )


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
) -> FastAPI:
    """The explorer: API and page for the runs under ``runs_root`` (and ``run``).

    Training jobs write their runs into ``runs_root``, on Fashion-MNIST, MNIST
    or ``dataset`` (a folder of images).
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
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    state = Explorer(Path(runs_root), None if run is None else Path(run))
    app.state.explorer = state
    add_error_handlers(app)
    add_page_routes(app)
    add_image_routes(app, state)
    add_playground_routes(app, state)
    add_model_routes(app, state)
    app.state.jobs = JobManager(Path(runs_root), dataset)
    app.include_router(jobs_router(app.state.jobs))
    app.include_router(editor_router(state.runs))
    app.include_router(compare_router(state.runs, state.images))
    app.include_router(your_model.router(state))  # "Your model": upload a Keras or ONNX file
    app.include_router(why.router(state))  # /api/attribution, /api/portrait
    return app


def add_page_routes(app: FastAPI) -> None:
    """The page and its static files."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def add_image_routes(app: FastAPI, state: Explorer) -> None:
    """Images in: uploads, built-ins, test-set samples."""

    @app.get("/api/info", response_model=schemas.InfoBody)
    def info() -> dict:
        """Filters, built-in images and runs: what the page needs to start."""
        return state.info()

    @app.post(
        "/api/images",
        response_model=schemas.ImageInfo,
        responses={**ERRORS, 413: {"model": schemas.ErrorBody}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "the image file's bytes (PNG, JPEG, BMP), at most 10 MB; "
                "the X-Filename header names it",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def upload(request: Request) -> dict:
        """Keep an uploaded image for this session and return its id."""
        body = await read_upload(request)
        name = request.headers.get("x-filename", "the upload")[:200] or "the upload"
        pixels = await run_in_threadpool(decode_image, body, name)
        return state.image_info(state.images.add(pixels, name))

    @app.get("/api/images/builtin/{name}", response_model=schemas.ImageInfo, responses=ERRORS)
    def builtin(name: str) -> dict:
        """A picture that ships with convlens."""
        if name not in BUILTIN_IMAGES:
            raise NotFound(
                f"there is no built-in image {name!r}; choose one of {', '.join(BUILTIN_IMAGES)}."
            )
        pixels = BUILTIN_IMAGES[name][1]()[:, :, None]
        return state.image_info(state.images.add(pixels, name))

    @app.get("/api/samples", response_model=schemas.SampleBody, responses=ERRORS)
    def samples(
        class_choice: str = Query(description="a class name or number"),
        count: int = Query(6, ge=1, le=48),
        start: int = Query(0, ge=0, description="skip this many images of the class"),
        run: str | None = Query(None, description="a run's name: its dataset's test split"),
    ) -> dict:
        """Test-set images of one class (Fashion-MNIST's when no run is given)."""
        loaded = None if run is None else state.runs.get(run)
        dataset, index, name, found = state.samples.samples(loaded, class_choice, count, start)
        images = [
            state.image_info(state.images.add(pixels, f"test image {i}", name, i))
            for i, pixels in found
        ]
        return {
            "run": run,
            "dataset": dataset,
            "class_index": index,
            "class_name": name,
            "images": images,
        }


def add_playground_routes(app: FastAPI, state: Explorer) -> None:
    """Convolution and pooling on a stored image."""

    @app.post("/api/convolve", response_model=schemas.ConvolveBody, responses=ERRORS)
    def convolve(request: schemas.ConvolveRequest) -> dict:
        """Filter an image's grayscale luma and pool the result."""
        return state.playground.convolve(state.images.get(request.image), request)

    @app.post("/api/explain", response_model=schemas.ExplainBody, responses=ERRORS)
    def explain(request: schemas.ExplainRequest) -> dict:
        """The terms of one filtered pixel: neighbourhood x kernel, summed."""
        return state.playground.explain(state.images.get(request.image), request)

    @app.post("/api/explain-pool", response_model=schemas.ExplainPoolBody, responses=ERRORS)
    def explain_pool(request: schemas.ExplainPoolRequest) -> dict:
        """The window of filtered values behind one pooled pixel."""
        return state.playground.explain_pool(state.images.get(request.image), request)


def add_model_routes(app: FastAPI, state: Explorer) -> None:
    """A trained run: its summary, an image's journey, a class through one filter."""

    @app.get("/api/runs/{name}", response_model=schemas.RunSummary, responses=ERRORS)
    def run_summary(name: str) -> dict:
        """A run's model summary (every layer's shape and parameters, explained)."""
        model = state.runs.get(name).run.model
        return {
            "run": state.runs.describe(name),
            "input_shape": list(model.input_shape),
            "layers": [
                model_views.layer_summary(row, field)
                for row, field in zip(model.rows, model.receptive_fields().values(), strict=True)
            ],
            "total_params": model.total_params,
        }

    @app.post("/api/journey", response_model=schemas.JourneyBody, responses=ERRORS)
    def journey(request: schemas.JourneyRequest) -> dict:
        """One image through every layer of the run's model, with class probabilities."""
        loaded = state.runs.get(request.run)
        image = state.images.get(request.image)
        return model_views.journey(loaded, image, request.invert, request.run)

    @app.post("/api/class-filter", response_model=schemas.ClassFilterBody, responses=ERRORS)
    def class_filter(request: schemas.ClassFilterRequest) -> dict:
        """Test images of one class, one filter's map after every conv and pooling layer."""
        loaded = state.runs.get(request.run)
        return model_views.class_filter(
            loaded, request.run, request.class_choice, request.filter, request.count
        )
