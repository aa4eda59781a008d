"""The bodies several panels share: errors, runs, pictures, summary rows, map grids, probabilities.

A panel's own request and response bodies live beside its routes in
web/<panel>.py; these are the ones more than one panel uses (a MapGrid is
what model_views.map_grid draws: the journey answers with it, and a training
job's snapshot events carry it to the jobs panel). The pydantic models are
the API's documentation (FastAPI turns them into the OpenAPI description at
/api/openapi.json) and its validation. Images travel as PNG data URLs; small
arrays (kernels, vectors, probabilities) as plain numbers rounded to 4
significant digits. Shapes are Keras's: (H, W) for a grayscale image,
(H, W, C) for maps. Coordinates are (row, col) from 0.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every 4xx answer: one sentence naming the cause and the fix."""

    error: str


ERRORS = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}}  # a route's usual 4xx answers


class RunInfo(BaseModel):
    """A finished training run the server can show."""

    name: str
    model: str
    test_accuracy: float | None
    epochs: int | None
    dataset: str | None
    classes: list[str]
    imported_from: str | None = Field(
        None, description="for a model imported from a Keras or ONNX file: its name and format"
    )
    test_time_flip: bool = Field(
        False,
        description="the model predicts from the mean of each image's and its mirror's logits",
    )


class Picture(BaseModel):
    """An array shown as a PNG, with its shape and the formula behind the shape."""

    shape: list[int]
    png: str
    formula: str = ""
    min: float
    max: float
    caption: str = ""


class LayerSummary(BaseModel):
    """One summary row: type, Keras output shape, parameters, and why."""

    name: str
    type: str
    output_shape: list[int]
    keras_shape: str
    params: int
    shape_why: str
    params_why: str
    receptive_field: list[int] | None = None  # input pixels (rows, cols) one output pixel sees
    jump: list[int] | None = None  # input pixels between neighbouring output pixels
    receptive_field_start: list[int] | None = None  # where output pixel 0's field begins
    receptive_field_why: str | None = None  # the formula


class MapGrid(BaseModel):
    """All maps of a layer in one PNG: ``count`` tiles of ``tile`` pixels in a grid.

    Tile k sits at grid row k // columns, column k % columns, at pixel
    (row * (tile_h + gap), col * (tile_w + gap)). Each tile is scaled on its
    own: the colour map's first colour is ``ranges[k][0]``, its last ``ranges[k][1]``
    (``symmetric``: the range is -m..m, zero in the middle).
    """

    png: str
    count: int
    columns: int
    rows: int
    tile: list[int]
    gap: int
    ranges: list[list[float]]
    colour_map: str = Field(
        description="matplotlib's name: inferno for maps, RdBu_r for filters; rgb-weights for a colour model's filters (drawn in their own colours)"
    )
    symmetric: bool


class Probability(BaseModel):
    """One class's probability."""

    index: int
    name: str
    probability: float
