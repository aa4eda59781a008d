"""The playground panel: an image filtered and pooled, one pixel of each explained.

    POST /api/convolve      filter an image's luma and pool the result (ConvolveRequest)
    POST /api/explain       one filtered pixel's arithmetic (ExplainRequest)
    POST /api/explain-pool  one pooled pixel's window (ExplainPoolRequest)

Everything is computed by convlens.lab.ops on the image's grayscale luma, as
`convlens convolve` does; this module only chooses, caches and packages.
Hovering asks for one pixel at a time, so the last few filtered images are
kept (``Playground``, one per router): explaining a pixel costs the window's
nine products, not a convolution. The page's script is static/js/playground.js.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Literal

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, Field

from convlens.errors import ConvlensError
from convlens.lab import ops
from convlens.views.plots import display_values
from convlens.web import pictures
from convlens.web.bodies import ERRORS, Picture
from convlens.web.state import Explorer
from convlens.web.store import StoredImage

KERNEL_SIZE = 3
_CACHED_RESULTS = 8

Padding = Literal["valid", "same"]
PoolMode = Literal["max", "avg", "none"]
Display = Literal["clip", "rescale"]


class FilterChoice(BaseModel):
    """An image and a filter with its geometry: the playground's common part."""

    image: str = Field(description="an ImageInfo id")
    filter: str | None = Field(None, title="Preset", description="a preset's name; or give kernel")
    kernel: list[float] | list[list[float]] | None = Field(
        None, title="Kernel", description="nine numbers (flat or 3x3 rows) when filter is not given"
    )
    stride: int = Field(1, ge=1, le=64, title="Stride")
    padding: Padding = Field("valid", title="Padding")
    display: Display = Field(
        "clip", title="Display", description="clip to 0..255 as the lesson, or rescale"
    )


class ConvolveRequest(FilterChoice):
    """Filter an image, then pool the result."""

    pool: PoolMode = Field("max", title="Pooling")
    pool_size: int = Field(2, ge=1, le=64, title="Pool size")


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


def chosen_kernel(choice: FilterChoice) -> np.ndarray:
    """The request's kernel: a preset by name, or nine finite numbers, as float64 (3, 3)."""
    if (choice.filter is None) == (choice.kernel is None):
        raise ConvlensError(
            "give either filter (a preset's name) or kernel (nine numbers), not "
            + ("both." if choice.filter is not None else "neither.")
        )
    if choice.filter is not None:
        return ops.get_filter(choice.filter)
    values = np.asarray(choice.kernel, dtype=np.float64).ravel()
    if values.size != KERNEL_SIZE * KERNEL_SIZE:
        raise ConvlensError(f"the kernel has {values.size} numbers; give nine (a 3x3 filter).")
    if not np.all(np.isfinite(values)):
        raise ConvlensError("the kernel holds a number that is not finite; give nine numbers.")
    return values.reshape(KERNEL_SIZE, KERNEL_SIZE)


def conv_formula(size: int, stride: int, padding: str, kernel: int = KERNEL_SIZE) -> str:
    """How one side of the filtered image follows from the input's: "26 = (28 - 3) / 1 + 1"."""
    if padding == "same":
        return f"{math.ceil(size / stride)} = ceil({size} / {stride}) (same padding)"
    out = (size - kernel) // stride + 1
    rounding = f"floor(({size} - {kernel}) / {stride})" if stride > 1 else f"{size} - {kernel}"
    return f"{out} = {rounding} + 1"


def pool_formula(size: int, window: int) -> str:
    """How one side of the pooled image follows: "13 = floor(26 / 2)"."""
    return f"{(size - window) // window + 1} = floor({size} / {window})"


def shape_formula(shape: tuple[int, int], formula: Callable[[int], str]) -> str:
    """Rows and columns' formulas joined; one when the image is square."""
    rows, cols = formula(shape[0]), formula(shape[1])
    return rows if rows == cols else f"rows {rows}; columns {cols}"


class Playground:
    """Filters images, keeping the last few results for pixel explanations."""

    def __init__(self) -> None:
        self._results: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def filtered(self, image: StoredImage, kernel: np.ndarray, stride: int, padding: str):
        """ops.conv2d of the image's luma, from the cache when the same was asked recently."""
        key = (image.id, kernel.tobytes(), stride, padding)
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        result = ops.conv2d(image.luma, kernel, stride=stride, padding=padding)
        result.flags.writeable = False
        with self._lock:
            self._results[key] = result
            while len(self._results) > _CACHED_RESULTS:
                self._results.popitem(last=False)
        return result

    def convolve(self, image: StoredImage, request: ConvolveRequest) -> dict:
        """The input, the filtered image and the pooled image, each with shape and formula."""
        kernel = chosen_kernel(request)
        luma = image.luma
        filtered = self.filtered(image, kernel, request.stride, request.padding)
        shown, caption = display_values(filtered, request.display)
        side = partial(conv_formula, stride=request.stride, padding=request.padding)
        answer = {
            "kernel": rounded_kernel(kernel),
            "input": {
                "shape": list(luma.shape),
                "png": image.luma_png,
                "min": float(luma.min()),
                "max": float(luma.max()),
                "caption": "the image's grayscale luma, 0..255",
            },
            "filtered": picture(filtered, shown, shape_formula(luma.shape, side), caption),
            "pooled": None,
            "pool": request.pool,
            "pool_size": request.pool_size,
        }
        if request.pool != "none":
            pooled = ops.pool2d(filtered, request.pool_size, mode=request.pool)
            pooled_shown, pooled_caption = display_values(pooled, request.display)
            window = request.pool_size
            answer["pooled"] = picture(
                pooled,
                pooled_shown,
                shape_formula(filtered.shape, partial(pool_formula, window=window)),
                f"{request.pool} of each {window}x{window} block of the filtered values; "
                + pooled_caption,
            )
        return answer

    def explain(self, image: StoredImage, request: ExplainRequest) -> dict:
        """The arithmetic of one filtered pixel, and the value it is shown as."""
        kernel = chosen_kernel(request)
        explained = ops.explain_pixel(
            image.luma, kernel, request.row, request.col, request.stride, request.padding
        )
        filtered = self.filtered(image, kernel, request.stride, request.padding)
        return {
            "row": explained.row,
            "col": explained.col,
            "top": explained.top,
            "left": explained.left,
            "in_padding": explained.in_padding,
            "neighbourhood": explained.neighbourhood.tolist(),
            "kernel": explained.kernel.tolist(),
            "products": explained.products.tolist(),
            "sum": float(ops.format_number(explained.sum)),
            "equation": explained.equation(),
            "shown": shown_value(filtered, explained.sum, request.display),
        }

    def explain_pool(self, image: StoredImage, request: ExplainPoolRequest) -> dict:
        """The window of filtered values behind one pooled pixel, and which one was kept."""
        if request.pool == "none":
            raise ConvlensError("pooling is off (pool: none); choose max or avg to explain it.")
        kernel = chosen_kernel(request)
        filtered = self.filtered(image, kernel, request.stride, request.padding)
        explained = ops.explain_pool(
            filtered, request.row, request.col, request.pool_size, mode=request.pool
        )
        return {
            "row": explained.row,
            "col": explained.col,
            "top": explained.top,
            "left": explained.left,
            "mode": explained.mode,
            "values": explained.values.tolist(),
            "chosen": None if explained.chosen is None else list(explained.chosen),
            "value": explained.value,
            "equation": explained.equation(),
        }


def rounded_kernel(kernel: np.ndarray) -> list[list[float]]:
    """A kernel's numbers as the arithmetic writes them (1/9 -> 0.111111)."""
    return [[float(ops.format_number(v)) for v in row] for row in kernel]


def shown_value(filtered: np.ndarray, value: float, display: str) -> int:
    """A filtered value as the page's picture shows it: its 0..255 pixel level."""
    shown, _ = display_values(np.array([value, filtered.min(), filtered.max()]), display)
    return int(pictures.to_uint8(shown[0]))


def picture(values: np.ndarray, shown: np.ndarray, formula: str, caption: str) -> dict:
    """A Picture: the shown 0..255 values as PNG, the true values' range."""
    return {
        "shape": list(values.shape),
        "png": pictures.data_url(pictures.to_uint8(shown)),
        "formula": formula,
        "min": float(values.min()),
        "max": float(values.max()),
        "caption": caption,
    }


def router(state: Explorer) -> APIRouter:
    """The playground's routes over the explorer's images, with its own cache of results."""
    playground = Playground()
    routes = APIRouter()

    @routes.post("/api/convolve", response_model=ConvolveBody, responses=ERRORS)
    def convolve(request: ConvolveRequest) -> dict:
        """Filter an image's grayscale luma and pool the result."""
        return playground.convolve(state.images.get(request.image), request)

    @routes.post("/api/explain", response_model=ExplainBody, responses=ERRORS)
    def explain(request: ExplainRequest) -> dict:
        """The terms of one filtered pixel: neighbourhood x kernel, summed."""
        return playground.explain(state.images.get(request.image), request)

    @routes.post("/api/explain-pool", response_model=ExplainPoolBody, responses=ERRORS)
    def explain_pool(request: ExplainPoolRequest) -> dict:
        """The window of filtered values behind one pooled pixel."""
        return playground.explain_pool(state.images.get(request.image), request)

    return routes
