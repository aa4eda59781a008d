"""The compare panel: the figures of two or more runs side by side, and one image through each.

    GET  /api/compare?run=A&run=B  accuracy, parameters, training time, curves, per class
    GET  /api/compare/default      the pair compared first: the lesson's CNN and its dense
                                   baseline trained on one dataset
    POST /api/compare/predict      the same image's prediction in each run

Everything is read from the run directories (metrics.json, history.csv,
model.json) as `convlens report --run A --run B` reads them. The page's
script is static/js/compare.js.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from convlens.errors import ConvlensError
from convlens.model.files import SPEC_FILE, read_spec
from convlens.runs.directory import METRICS_FILE, read_history
from convlens.runs.evaluate import predict_proba
from convlens.web import model_views
from convlens.web.bodies import ERRORS, Probability
from convlens.web.state import Explorer
from convlens.web.store import NotFound, RunRegistry

MAX_COMPARED = 8
RUN_NAMES = Annotated[list[str], Query(description="two or more run names")]


class CompareRun(BaseModel):
    """One run's figures for the comparison."""

    name: str
    model: str
    dataset: str | None
    test_accuracy: float | None
    total_params: int
    seconds: float | None = Field(description="training time, evaluation included")
    epochs: int | None
    images_per_second: float | None
    class_names: list[str]
    per_class_accuracy: list[float | None]
    history: list[dict[str, float | None]]


class CompareBody(BaseModel):
    """Two or more runs side by side."""

    runs: list[CompareRun]


class ComparePredictRequest(BaseModel):
    """The same image through several runs."""

    runs: list[str] = Field(min_length=1, max_length=8)
    image: str = Field(description="an ImageInfo id")
    invert: Literal["auto", "yes", "no"] = Field("auto", title="Invert the image")


class RunPrediction(BaseModel):
    """One run's answer for the image."""

    run: str
    input_png: str
    inverted: bool
    predicted: Probability
    probabilities: list[Probability]
    correct: bool | None = Field(
        description="whether it names the image's label; null when the image has no label or "
        "its label is not one of the run's classes (no verdict)"
    )


class DefaultPair(BaseModel):
    """The runs compared first."""

    runs: list[str] = Field(description="newest first; fewer than two when there are fewer runs")


class ComparePredictBody(BaseModel):
    """Each run's answer for the same image (and its label when it is a test image)."""

    image: str
    label: str | None
    predictions: list[RunPrediction]


def router(state: Explorer) -> APIRouter:
    """The comparison routes over the explorer's runs and images."""
    runs, images = state.runs, state.images
    routes = APIRouter(prefix="/api/compare", tags=["compare"])

    @routes.get("", response_model=CompareBody, responses=ERRORS)
    def compare(run: RUN_NAMES) -> dict:
        """The runs' figures side by side."""
        if not 1 <= len(run) <= MAX_COMPARED:
            raise ConvlensError(f"compare 1 to {MAX_COMPARED} runs, not {len(run)}.")
        directories = runs.directories()
        missing = next((name for name in run if name not in directories), None)
        if missing is not None:
            raise NotFound(f"there is no run called {missing!r}; choose one of the listed runs.")
        return {"runs": [run_figures(name, directories[name]) for name in run]}

    @routes.get("/default", response_model=DefaultPair)
    def default() -> dict:
        """The lesson's CNN and its dense baseline on one dataset, else the newest two of one."""
        return {"runs": default_pair(runs.describe_all())}

    @routes.post("/predict", response_model=ComparePredictBody, responses=ERRORS)
    def predict(request: ComparePredictRequest) -> dict:
        """The same image through every run: each run's class probabilities."""
        image = images.get(request.image)
        return {
            "image": image.id,
            "label": image.label,
            "predictions": [prediction(runs, name, image, request.invert) for name in request.runs],
        }

    return routes


LESSON_PAIR = ("seed-cnn", "seed-dnn")  # the lesson's CNN and its dense baseline


def default_pair(described: list[dict]) -> list[str]:
    """The runs compared first, from RunInfos newest first.

    The newest pair of the lesson's CNN and its dense baseline trained on one
    dataset; else the newest run and the newest other run of its dataset; else
    the newest two.
    """
    cnn, dnn = LESSON_PAIR
    for run in described:
        if run["model"] == cnn:
            baseline = next(
                (r for r in described if r["model"] == dnn and r["dataset"] == run["dataset"]),
                None,
            )
            if baseline is not None:
                return [run["name"], baseline["name"]]
    for run in described:
        same = next(
            (r for r in described if r is not run and r["dataset"] == run["dataset"]), None
        )
        if same is not None:
            return [run["name"], same["name"]]
    return [run["name"] for run in described[:2]]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def run_figures(name: str, path) -> dict:
    """A CompareRun from a run directory's metrics.json, history.csv and model.json."""
    model = read_spec(path / SPEC_FILE)
    try:
        metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConvlensError(f"{path / METRICS_FILE} is not readable JSON ({exc}).") from None
    classes = list(model.class_names or (str(i) for i in range(model.num_classes)))
    per_class = metrics.get("per_class_accuracy")  # {class name: accuracy} as train writes it
    per_class = per_class if isinstance(per_class, dict) else {}
    epochs = metrics.get("epochs")
    return {
        "name": name,
        "model": model.name,
        "dataset": metrics.get("dataset") if isinstance(metrics.get("dataset"), str) else None,
        "test_accuracy": _number(metrics.get("test_accuracy")),
        "total_params": model.total_params,
        "seconds": _number(metrics.get("seconds")),
        "epochs": epochs if isinstance(epochs, int) else None,
        "images_per_second": _number(metrics.get("images_per_second")),
        "class_names": classes,
        "per_class_accuracy": [_number(per_class.get(name)) for name in classes],
        "history": read_history(path),
    }


def prediction(runs: RunRegistry, name: str, image, invert: str) -> dict:
    """A RunPrediction: ``image`` as the run's model reads it, and its probabilities."""
    loaded = runs.get(name)
    spec = loaded.run.model
    light_on_dark = loaded.run.light_on_dark
    pixels, inverted, _ = model_views.model_input(image, spec.input_shape, invert, light_on_dark)
    with loaded.lock:
        probabilities = predict_proba(loaded.run.network, pixels[None], spec.input_shape)[0]
    names = loaded.run.class_names
    listed = [
        {"index": i, "name": names[i], "probability": float(p)} for i, p in enumerate(probabilities)
    ]
    predicted = max(listed, key=lambda p: p["probability"])
    return {
        "run": name,
        "input_png": model_views.image_picture(pixels)["png"],
        "inverted": inverted,
        "predicted": predicted,
        "probabilities": listed,
        "correct": None if image.label not in names else predicted["name"] == image.label,
    }
