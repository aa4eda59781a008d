"""Bodies of the experiment routes: the model editor, training jobs, comparing runs.

Beside convlens.web.schemas (the playground's and journey's bodies); FastAPI
turns both into /api/openapi.json.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from convlens.web.schemas import LayerSummary, Probability

JobState = Literal["queued", "running", "done", "failed", "cancelled"]


class JobRequest(BaseModel):
    """Train a model from the page: the same choices `convlens train` offers."""

    model: str | dict[str, Any] = Field(
        "seed-cnn", description="a preset's name, or a model JSON object (as model.json holds)"
    )
    dataset: str = Field("fashion-mnist", description="one of GET /api/jobs's datasets")
    recipe: str = Field("fast", description="fast, lesson or best")
    epochs: int | None = Field(None, ge=1, description="default: the recipe's")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    watch_image: int = Field(0, ge=0, description="the test image whose maps are redrawn")


class JobCreated(BaseModel):
    """A job that has started: follow it at /api/jobs/{id}/events."""

    id: str
    run: str = Field(description="the run directory it writes (listed once done)")


class JobStatus(BaseModel):
    """Where a job stands."""

    id: str
    state: JobState
    epoch: int = Field(description="epochs finished")
    epochs: int | None = Field(description="epochs it will train (once started)")
    history: list[dict[str, Any]] = Field(description="one EpochRecord per finished epoch")
    run: str | None = Field(description="the run's name once done")
    error: str | None = Field(description="one sentence when failed")
    message: str | None = Field(description="what was kept when cancelled, or written when done")


class JobsInfo(BaseModel):
    """What the training panel offers, and the job running now (to reconnect to)."""

    datasets: list[str]
    recipes: list[str]
    presets: dict[str, str] = Field(description="preset name: one line describing it")
    current: JobStatus | None
    threads: int = Field(description="torch threads a job uses (one core is left to the page)")


class ModelRequest(BaseModel):
    """A model JSON object, as the editor holds it."""

    model: dict[str, Any]


class ModelSummary(BaseModel):
    """A model's summary, from the same spec code as `convlens summary`."""

    name: str
    input_shape: list[int]
    layers: list[LayerSummary]
    total_params: int
    trainable_params: int
    model: dict[str, Any] = Field(description="the model JSON, with every layer's name filled in")


class ModelProblem(BaseModel):
    """A model that cannot be built: the sentence and the layer at fault (from 0) if known."""

    error: str
    layer: int | None = None


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
    invert: Literal["auto", "yes", "no"] = "auto"


class RunPrediction(BaseModel):
    """One run's answer for the image."""

    run: str
    input_png: str
    inverted: bool
    predicted: Probability
    probabilities: list[Probability]


class ComparePredictBody(BaseModel):
    """Each run's answer for the same image (and its label when it is a test image)."""

    image: str
    label: str | None
    predictions: list[RunPrediction]
