"""The page panel: the page itself, its files, and what it needs to start.

    GET  /                 the page (static/index.html)
    GET  /static/...       its CSS and ES modules, served by the package
    GET  /api/info         filters, built-in images, runs

Its script is static/js/page.js, the page's entry point: it reads /api/info
and wires every other panel's script. ``router(state)`` holds the two GET
routes; the /static files are mounted by ``mount_static(app)``, which
create_app calls, because FastAPI's include_router drops a Mount an
APIRouter holds in the versions this package allows (fastapi>=0.110; see
fastapi issue 10180).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from convlens.lab import ops
from convlens.version import __version__
from convlens.web.bodies import RunInfo
from convlens.web.images import BUILTIN_IMAGES, default_sample_classes
from convlens.web.playground import rounded_kernel
from convlens.web.state import Explorer

STATIC_DIR = Path(str(resources.files("convlens.web") / "static"))
NO_RUN_HINT = (
    "There is no trained run yet: train the lesson's CNN in \"Train it and watch the filters "
    "learn\" below (about 30 seconds for one epoch), or with `convlens train`, or open a "
    "Keras or ONNX model above; its journey and class view appear here as soon as its run "
    "is written."
)


class BuiltinImage(BaseModel):
    """A picture that ships with convlens (no data needed)."""

    name: str
    title: str


class InfoBody(BaseModel):
    """What the page needs to start: filters, built-in images, runs."""

    version: str
    filters: dict[str, list[list[float]]]
    builtin_images: list[BuiltinImage]
    runs: list[RunInfo]
    default_run: str | None
    no_run_hint: str | None = Field(
        None, description="when there is no run: one sentence on how to get one"
    )
    reach: str = Field(description="who can open this page: this computer only, or others too")
    sample_classes: list[str] = Field(
        description="the classes of the test set the playground samples from without a run"
    )


def info_body(state: Explorer) -> dict:
    """An InfoBody: the filters, the built-in images and the runs listed now."""
    runs = state.runs.describe_all()
    return {
        "version": __version__,
        "filters": {name: rounded_kernel(kernel) for name, kernel in ops.FILTERS.items()},
        "builtin_images": [
            {"name": name, "title": title} for name, (title, _) in BUILTIN_IMAGES.items()
        ],
        "runs": runs,
        "default_run": runs[0]["name"] if runs else None,
        "no_run_hint": None if runs else NO_RUN_HINT,
        "reach": state.reach,
        "sample_classes": list(default_sample_classes()),
    }


def mount_static(app: FastAPI) -> None:
    """Serve the page's files (static/) at /static."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def router(state: Explorer) -> APIRouter:
    """The page and /api/info over the explorer's runs."""
    routes = APIRouter()

    @routes.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @routes.get("/api/info", response_model=InfoBody)
    def info() -> dict:
        """Filters, built-in images and runs: what the page needs to start."""
        return info_body(state)

    return routes
