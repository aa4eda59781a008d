"""The "Your model" panel: upload a .keras, .h5 or .onnx file; it becomes a run at once.

POST /api/models takes the file's bytes as the body (X-Filename names it,
its suffix says the format) and, optionally, ?dataset=fashion-mnist|mnist to
name the classes and score the model on that test split. The file is
imported by convlens.interop (nothing in it is run; every size it declares is
checked first) into the explorer's runs folder; the answer is the new run's
RunInfo, so the page can show its journey and class views straight away. A
refused file is a 400 with the importer's sentence; an upload over
MAX_MODEL_UPLOAD_BYTES is a 413 before it is read in full. The page's script
is static/js/your_model.js.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from convlens.errors import ConvlensError
from convlens.interop.importing import import_model
from convlens.interop.reading import MODEL_SUFFIXES
from convlens.views.report import write_run_report
from convlens.web.bodies import ErrorBody, RunInfo
from convlens.web.state import Explorer
from convlens.web.uploads import read_body

MAX_MODEL_UPLOAD_BYTES = 100 * 1024 * 1024


class ImportedModelBody(BaseModel):
    """The run an uploaded model file became."""

    run: RunInfo
    source: dict[str, Any] = Field(description="format, file name, SHA-256, versions")
    total_params: int
    input_scale: float = Field(description="what the 0..255 pixels are multiplied by first")


async def read_model_upload(request: Request) -> bytes:
    """The body, refused past MAX_MODEL_UPLOAD_BYTES without reading the rest."""
    return await read_body(
        request,
        MAX_MODEL_UPLOAD_BYTES,
        "the model file",
        "a small-image CNN is far smaller.",
        "a .keras, .h5 or .onnx file",
    )


def upload_name(header: str | None) -> str:
    """A safe local file name for the upload, keeping its suffix (which decides the format)."""
    name = Path((header or "").replace("\\", "/")).name[:120]
    suffix = Path(name).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ConvlensError(
            f"{name or 'the upload'} is not a .keras, .h5 or .onnx file; save your model with "
            f"model.save('model.keras') or torch.onnx.export(...)."
        )
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in Path(name).stem) or "model"
    return f"{stem}{suffix}"


def import_upload(body: bytes, name: str, runs_root: Path, dataset: str | None) -> dict:
    """Write the upload to a private temporary folder and import it into ``runs_root``."""
    with tempfile.TemporaryDirectory(prefix="convlens-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(body)
        result = import_model(path, root=runs_root, dataset=dataset, finish=write_run_report)
    return {
        "name": result.path.name,
        "source": result.metrics["imported_from"],
        "total_params": result.model.total_params,
        "input_scale": result.model.input_scale,
    }


def router(state: Explorer) -> APIRouter:
    """The routes, over the explorer's state (its RunRegistry decides the runs folder)."""
    routes = APIRouter()

    @routes.post(
        "/api/models",
        response_model=ImportedModelBody,
        responses={code: {"model": ErrorBody} for code in (400, 413)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "the model file's bytes (.keras, .h5, .onnx), at most 100 MB; "
                "the X-Filename header names it",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def upload_model(
        request: Request,
        dataset: Literal["fashion-mnist", "mnist"] | None = Query(
            None, description="names the classes and scores the model on this test split"
        ),
    ) -> dict:
        """Import an uploaded Keras or ONNX model as a run of this explorer."""
        name = upload_name(request.headers.get("x-filename"))
        body = await read_model_upload(request)
        imported = await run_in_threadpool(import_upload, body, name, state.runs.root, dataset)
        run = state.runs.describe(imported.pop("name"))
        return {"run": run, **imported}

    return routes
