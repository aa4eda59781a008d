"""The model editor panel: presets, a run's model, and a model's summary on every edit.

GET  /api/models/presets      every preset's model JSON and description
GET  /api/models/layer-types  every layer type the editor can add: its controls and defaults
GET  /api/runs/{name}/model   a run's model JSON (no weights read)
POST /api/models/summary      the summary of a model JSON (400 {"error", "layer"} if broken)

The page's script is static/js/editor.js.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from convlens.model.files import SPEC_FILE, read_spec
from convlens.model.layers import LAYER_TYPES, Layer
from convlens.model.presets import PRESETS, preset
from convlens.model.sequential import Sequential
from convlens.web import model_views
from convlens.web.bodies import ErrorBody, LayerSummary
from convlens.web.state import Explorer
from convlens.web.store import NotFound


class ModelRequest(BaseModel):
    """A model JSON object, as the editor holds it, and the dataset it is for."""

    model: dict[str, Any]
    dataset: str | None = Field(
        None, description="one of GET /api/jobs's datasets: the model as it will train on it"
    )
    fit: bool = Field(
        False,
        description="a preset or an exercise made from one: its input and last layer fitted "
        "to the dataset, as POST /api/jobs's fit",
    )


class ModelSummary(BaseModel):
    """A model's summary, from the same spec code as `convlens summary`."""

    name: str
    input_shape: list[int]
    layers: list[LayerSummary]
    total_params: int
    trainable_params: int
    model: dict[str, Any] = Field(description="the model JSON, with every layer's name filled in")
    dataset: str | None = Field(None, description="the dataset it is shown for")
    input_why: str | None = Field(None, description="why its input is so on that dataset")
    fitted_shape: list[int] | None = Field(
        None, description="the input a preset gets on that dataset (its images' size and colour)"
    )
    classes: list[str] | None = Field(None, description="the dataset's classes")


class ModelProblem(BaseModel):
    """A model that cannot be built: the sentence and the layer at fault (from 0) if known."""

    error: str
    layer: int | None = None


def router(state: Explorer) -> APIRouter:
    """The editor's routes; runs are looked up in the explorer's runs by name."""
    runs = state.runs
    routes = APIRouter(tags=["model editor"])

    @routes.get("/api/models/presets")
    def presets() -> dict:
        """{name: {"description", "model"}} for every preset."""
        return {
            name: {"description": p.description, "model": preset(name).config()}
            for name, p in PRESETS.items()
        }

    @routes.get("/api/models/layer-types")
    def layer_types() -> dict:
        """{type: {"description", "fields", "new"}} for every registered layer type, in order."""
        return {name: layer_type_body(cls) for name, cls in LAYER_TYPES.items()}

    @routes.get("/api/runs/{name}/model", responses={404: {"model": ErrorBody}})
    def run_model(name: str) -> dict:
        """The model JSON of a listed run."""
        path = runs.directories().get(name)
        if path is None:
            raise NotFound(f"there is no run called {name!r}; choose one of the listed runs.")
        return read_spec(path / SPEC_FILE).config()

    @routes.post(
        "/api/models/summary", response_model=ModelSummary, responses={400: {"model": ModelProblem}}
    )
    def summary(request: ModelRequest) -> dict:
        """Every layer's shape and parameters, explained, as `convlens summary` prints them;
        with a dataset, of the model as a job would train it there (a 400 naming the last
        layer when it cannot learn the dataset's classes)."""
        model = Sequential.from_config(request.model)
        if request.dataset is None:
            return model_summary(model)
        fitted = state.jobs.fitter.fit(model, request.dataset, request.fit)
        return {
            **model_summary(fitted.model),
            "dataset": request.dataset,
            "input_why": fitted.input_why,
            "fitted_shape": list(fitted.fitted_shape),
            "classes": list(fitted.model.class_names or ()),
        }

    return routes


def model_summary(model: Sequential) -> dict:
    """A ModelSummary of ``model``."""
    return {
        "name": model.name,
        "input_shape": list(model.input_shape),
        "layers": [model_views.layer_summary(row) for row in model.rows],
        "total_params": model.total_params,
        "trainable_params": model.trainable_params,
        "model": model.config(),
    }


def layer_type_body(cls: type[Layer]) -> dict:
    """What the editor needs of a layer type: a line saying what it does, its controls, a new one."""
    return {
        "description": (cls.__doc__ or cls.keras_type).strip().splitlines()[0],
        "fields": [field.as_dict() for field in cls.editor_fields],
        "new": {"type": cls.keras_type, **cls.editor_default},
    }
