"""The journey panel: one image through every layer of a run's model.

    GET  /api/runs/{name}  one run's summary and metrics (RunSummary)
    POST /api/journey      one image through every layer, with the learned filters and the
                           class probabilities (JourneyRequest -> JourneyBody)

The numbers come from convlens.inspect.journey (activations from one forward
pass with hooks, the learned filters); the run's forward hooks are held
under its lock, so two requests never capture into each other's layers. The
page's script is static/js/journey.js.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from convlens.errors import ConvlensError
from convlens.inspect.journey import activations, learned_filters
from convlens.web import model_views, pictures
from convlens.web.bodies import ERRORS, LayerSummary, MapGrid, Picture, Probability, RunInfo
from convlens.web.state import Explorer
from convlens.web.store import LoadedRun, StoredImage


class JourneyLayer(BaseModel):
    """One layer of the journey: its summary row and what it made of the image."""

    summary: LayerSummary
    maps: MapGrid | None = None
    values: list[float] | None = Field(None, description="a flat layer's output")


class FilterWeights(BaseModel):
    """The learned kernels of the first Conv2D (first input channel), on one diverging scale."""

    layer: str
    grid: MapGrid
    kernels: list[list[list[float]]]
    caption: str = Field(description="what the tiles and numbers show (colour models differ)")


class JourneyRequest(BaseModel):
    """Walk one image through a run's model."""

    run: str
    image: str = Field(description="an ImageInfo id")
    invert: Literal["auto", "yes", "no"] = Field(
        "auto",
        title="Invert the image",
        description="auto: invert when the border is light (a photo on white)",
    )


class JourneyBody(BaseModel):
    """Every layer in order, the learned filters, and the class probabilities."""

    run: str
    model: str
    input: Picture
    inverted: bool
    layers: list[JourneyLayer]
    filters: FilterWeights | None
    probabilities: list[Probability]
    predicted: Probability


class RunSummary(BaseModel):
    """A run's model summary and metrics."""

    run: RunInfo
    input_shape: list[int]
    layers: list[LayerSummary]
    total_params: int


def filter_weights(loaded: LoadedRun) -> dict | None:
    """The first Conv2D's kernels on its first input channel, each on a diverging scale."""
    try:
        row, kernels = learned_filters(loaded.run)  # (kh, kw, in, filters)
    except ConvlensError:
        return None  # a model without Conv2D has no filters to show
    first_channel = kernels[:, :, 0, :]
    count = kernels.shape[3]
    if kernels.shape[2] == 3:  # a colour model: each kernel drawn in the colours it weighs
        drawn = pictures.colour_kernel_grid(kernels)
        grid = model_views.grid_body(drawn, first_channel.shape, "rgb-weights", symmetric=True)
        caption = (
            f"Learned filters of {row.name} ({count}, in colour: each pixel's red, green and "
            "blue are its weights for those channels, mid-grey = 0; numbers: the red channel)"
        )
    else:
        grid = model_views.map_grid(first_channel, "RdBu_r", symmetric=True)
        caption = (
            f"Learned filters of {row.name} ({count}, first input channel; each on its own "
            "scale, white = 0)"
        )
    return {
        "layer": row.name,
        "grid": grid,
        "kernels": pictures.compact(first_channel.transpose(2, 0, 1)),
        "caption": caption,
    }


def journey_body(loaded: LoadedRun, image: StoredImage, invert: str, run_name: str) -> dict:
    """A JourneyBody: every layer's output for one image, from one forward pass."""
    spec = loaded.run.model
    light_on_dark = loaded.run.light_on_dark
    pixels, inverted, how = model_views.model_input(image, spec.input_shape, invert, light_on_dark)
    with loaded.lock:
        captured = activations(loaded.run, pixels[None])
    layers = []
    fields = spec.receptive_fields()
    for row in spec.rows:
        output = captured[row.name][0]
        layer = {"summary": model_views.layer_summary(row, fields[row.name])}
        if output.ndim == 3:
            layer["maps"] = model_views.map_grid(output)
        else:
            layer["values"] = pictures.compact(output)
        layers.append(layer)
    probs = model_views.probabilities(loaded, captured[spec.rows[-1].name][0])
    return {
        "run": run_name,
        "model": spec.name,
        "input": {**model_views.image_picture(pixels), "caption": how},
        "inverted": inverted,
        "layers": layers,
        "filters": filter_weights(loaded),
        "probabilities": probs,
        "predicted": max(probs, key=lambda p: p["probability"]),
    }


def router(state: Explorer) -> APIRouter:
    """A run's summary and an image's journey, over the explorer's runs and images."""
    routes = APIRouter()

    @routes.get("/api/runs/{name}", response_model=RunSummary, responses=ERRORS)
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

    @routes.post("/api/journey", response_model=JourneyBody, responses=ERRORS)
    def journey(request: JourneyRequest) -> dict:
        """One image through every layer of the run's model, with class probabilities."""
        loaded = state.runs.get(request.run)
        image = state.images.get(request.image)
        return journey_body(loaded, image, request.invert, request.run)

    return routes
