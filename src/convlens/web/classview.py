"""The class view panel: several test images of one class, one filter, every layer.

    POST /api/class-filter  the lesson's grid: rows are images, columns the convolution and
                            pooling layers, each panel one filter's map
                            (ClassFilterRequest -> ClassFilterBody)

The maps come from convlens.inspect.journey under the run's lock; the
page's script is static/js/classview.js.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, Field

from convlens.inspect.journey import (
    check_filter,
    check_journey,
    class_index,
    images_of_class,
)
from convlens.inspect.journey import (
    journey as follow_filter,
)
from convlens.web import model_views, pictures
from convlens.web.bodies import ERRORS, LayerSummary, Picture
from convlens.web.state import Explorer
from convlens.web.store import LoadedRun


class ClassFilterRequest(BaseModel):
    """Several test images of one class through every convolution and pooling layer."""

    run: str
    class_choice: str = Field(title="Class", description="a class name or number")
    filter: int = Field(1, title="Filter number", description="the filter (map) number, from 0")
    count: int = Field(3, ge=1, le=12, title="Images", description="how many test images")


class ClassFilterLayer(BaseModel):
    """One column of the lesson's grid: a layer, one map per image."""

    summary: LayerSummary
    maps: list[Picture]


class ClassFilterImage(BaseModel):
    """One test image of the grid, with the model's answer."""

    test_index: int
    png: str
    predicted: str
    probability: float


class ClassFilterBody(BaseModel):
    """The lesson's grid: rows are images, columns layers, each panel one filter's map."""

    run: str
    class_index: int
    class_name: str
    filter: int
    images: list[ClassFilterImage]
    layers: list[ClassFilterLayer]


def class_filter_body(
    loaded: LoadedRun, run_name: str, class_choice: str, filter_index: int, count: int
) -> dict:
    """A ClassFilterBody: ``count`` test images of a class, one filter, every layer."""
    run = loaded.run
    rows = check_journey(run.model)
    check_filter(filter_index, rows)  # before the dataset is read
    chosen = class_index(class_choice, run.class_names)
    test = loaded.test_split()
    indices = images_of_class(test.labels, chosen, count, run.class_names[chosen])
    images = test.images[indices]
    with loaded.lock:
        followed = follow_filter(run, images, filter_index)
    probs = [model_views.probabilities(loaded, output) for output in followed.outputs]
    return {
        "run": run_name,
        "class_index": chosen,
        "class_name": run.class_names[chosen],
        "filter": filter_index,
        "images": [
            {
                "test_index": int(index),
                "png": model_views.image_picture(pixels)["png"],
                "predicted": (best := max(p, key=lambda q: q["probability"]))["name"],
                "probability": best["probability"],
            }
            for index, pixels, p in zip(indices, images, probs, strict=True)
        ],
        "layers": [
            {
                "summary": model_views.layer_summary(row),
                "maps": [heat_picture(m) for m in followed.maps[row.name]],
            }
            for row in followed.rows
        ],
    }


def heat_picture(values: np.ndarray) -> dict:
    """A Picture of one float map (H, W) on its own min..max, inferno colours."""
    low, high = float(values.min()), float(values.max())
    levels = pictures.scaled(values, low, high)
    return {
        "shape": list(values.shape),
        "png": pictures.data_url(pictures.coloured(levels, "inferno")),
        "min": low,
        "max": high,
        "caption": f"{low:.3g}..{high:.3g}",
    }


def router(state: Explorer) -> APIRouter:
    """The class grid over the explorer's runs."""
    routes = APIRouter()

    @routes.post("/api/class-filter", response_model=ClassFilterBody, responses=ERRORS)
    def class_filter(request: ClassFilterRequest) -> dict:
        """Test images of one class, one filter's map after every conv and pooling layer."""
        loaded = state.runs.get(request.run)
        return class_filter_body(
            loaded, request.run, request.class_choice, request.filter, request.count
        )

    return routes
