"""The explorer's HTTP contract: request and response bodies as pydantic models.

These models are the API's documentation (FastAPI turns them into the
OpenAPI description at /api/openapi.json) and its validation. Images travel
as PNG data URLs; small arrays (kernels, vectors, probabilities) as plain
numbers rounded to 4 significant digits. Shapes are Keras's: (H, W) for a
grayscale image, (H, W, C) for maps. Coordinates are (row, col) from 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Padding = Literal["valid", "same"]
PoolMode = Literal["max", "avg", "none"]
Display = Literal["clip", "rescale"]


class ErrorBody(BaseModel):
    """Every 4xx answer: one sentence naming the cause and the fix."""

    error: str


class ImageInfo(BaseModel):
    """An image the server holds for this session; later requests name it by ``id``."""

    id: str = Field(description="handle for later requests (content hash)")
    name: str = Field(description="where it came from: a file name, a built-in, a test image")
    height: int
    width: int
    channels: int
    png: str = Field(description="the image as a PNG data URL, grayscale luma as filtered")
    colour_png: str | None = Field(
        None, description="a colour image as it is (thumbnails), as a PNG data URL"
    )
    label: str | None = Field(None, description="the class of a test-set image")
    test_index: int | None = Field(None, description="position in the test split")


class BuiltinImage(BaseModel):
    """A picture that ships with convlens (no data needed)."""

    name: str
    title: str


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


class FilterChoice(BaseModel):
    """An image and a filter with its geometry: the playground's common part."""

    image: str = Field(description="an ImageInfo id")
    filter: str | None = Field(None, description="a preset's name; or give kernel")
    kernel: list[float] | list[list[float]] | None = Field(
        None, description="nine numbers (flat or 3x3 rows) when filter is not given"
    )
    stride: int = Field(1, ge=1, le=64)
    padding: Padding = "valid"
    display: Display = Field("clip", description="clip to 0..255 as the lesson, or rescale")


class ConvolveRequest(FilterChoice):
    """Filter an image, then pool the result."""

    pool: PoolMode = "max"
    pool_size: int = Field(2, ge=1, le=64)


class Picture(BaseModel):
    """An array shown as a PNG, with its shape and the formula behind the shape."""

    shape: list[int]
    png: str
    formula: str = ""
    min: float
    max: float
    caption: str = ""


class ConvolveBody(BaseModel):
    """The playground's answer: the input, the filtered image and the pooled one."""

    kernel: list[list[float]]
    input: Picture
    filtered: Picture
    pooled: Picture | None
    pool: PoolMode
    pool_size: int


class ExplainRequest(FilterChoice):
    """One output pixel of the convolution, by its output coordinates."""

    row: int
    col: int


class ExplainBody(BaseModel):
    """The lesson's arithmetic for one pixel: (-1 x 0) + (0 x 64) + ... = 577."""

    row: int
    col: int
    top: int = Field(description="input row of the window's top-left cell (negative in padding)")
    left: int
    in_padding: bool
    neighbourhood: list[list[float]]
    kernel: list[list[float]]
    products: list[list[float]]
    sum: float = Field(description="the output pixel, rounded as the equation shows it")
    equation: str
    shown: int = Field(description="the pixel as displayed (after clip or rescale), 0..255")


class ExplainPoolRequest(ConvolveRequest):
    """One output pixel of the pooled image, by its coordinates."""

    row: int
    col: int


class ExplainPoolBody(BaseModel):
    """The window of the filtered image behind one pooled pixel."""

    row: int
    col: int
    top: int = Field(description="filtered-image row of the window's top-left cell")
    left: int
    mode: Literal["max", "avg"]
    values: list[list[float]]
    chosen: list[int] | None = Field(description="(i, j) of the maximum within the window")
    value: float
    equation: str


class SampleBody(BaseModel):
    """Test-set images of one class."""

    run: str | None
    dataset: str
    class_index: int
    class_name: str
    images: list[ImageInfo]


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


class Probability(BaseModel):
    """One class's probability."""

    index: int
    name: str
    probability: float


class JourneyRequest(BaseModel):
    """Walk one image through a run's model."""

    run: str
    image: str = Field(description="an ImageInfo id")
    invert: Literal["auto", "yes", "no"] = Field(
        "auto", description="auto: invert when the border is light (a photo on white)"
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


class ClassFilterRequest(BaseModel):
    """Several test images of one class through every convolution and pooling layer."""

    run: str
    class_choice: str = Field(description="a class name or number")
    filter: int = Field(1, description="the filter (map) number, from 0")
    count: int = Field(3, ge=1, le=12)


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


class RunSummary(BaseModel):
    """A run's model summary and metrics."""

    run: RunInfo
    input_shape: list[int]
    layers: list[LayerSummary]
    total_params: int
