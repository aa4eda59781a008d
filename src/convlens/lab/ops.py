"""The lesson's arithmetic in NumPy: convolution, pooling, one pixel explained.

First floor (see DESIGN.md): NumPy only, nothing of the package but the ground
floor (errors; shown, for the explanations' notebook display), no torch.
Every function checks its inputs and raises ConvlensError with one sentence
naming the cause and the fix.

Conventions, the same as every deep learning framework and the lesson:

- ``conv2d`` is cross-correlation: the kernel is laid on the image as written,
  never flipped. Output pixel (r, c) = sum over (i, j) of
  padded[r * stride + i, c * stride + j] * kernel[i, j].
- "valid" adds no padding; "same" is Keras's: the output has ceil(H / stride)
  rows, the image is zero-padded by the least amount that gives that, and when
  the total padding is odd the extra row (column) goes at the bottom (right).
- Pooling rounds down: windows that would run off the edge are dropped, so an
  11x11 map pooled 2x2 gives 5x5.
- Results are float64; images may be any real dtype (uint8 included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from convlens import shown
from convlens.errors import ConvlensError

PADDINGS = ("valid", "same")
POOL_MODES = ("max", "avg")
DISPLAY_MODES = ("clip", "rescale")
_BLOCK_ELEMENTS = 65_536  # outputs per row block in conv2d: 512 KiB of float64, cache-sized

FILTERS: dict[str, np.ndarray] = {
    # The lesson's two line filters, named by the lines they make pop out: a
    # left-to-right difference lights up vertical lines, a top-to-bottom one
    # horizontal lines. They are the Sobel kernels, kept under both names.
    "vertical": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64),
    "horizontal": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64),
    "sobel_x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64),
    "sobel_y": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64),
    "laplacian": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64),
    "blur": np.full((3, 3), 1 / 9, dtype=np.float64),
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64),
    # The worked example: on [[0, 64, 128], [48, 192, 144], [142, 226, 168]] it gives 577.
    "lesson": np.array([[-1, 0, -2], [0.5, 4.5, -1.5], [1.5, 2, -3]], dtype=np.float64),
}
for _kernel in FILTERS.values():
    _kernel.flags.writeable = False  # presets are shared; nobody may edit them in place


def get_filter(name: str) -> np.ndarray:
    """Return the preset kernel called ``name``: a read-only float64 (3, 3) array."""
    try:
        return FILTERS[name]
    except KeyError:
        raise ConvlensError(
            f"there is no filter called {name!r}; choose one of {', '.join(FILTERS)}."
        ) from None


def parse_kernel(text: str, name: str = "kernel") -> np.ndarray:
    """Parse ``"-1,0,1;-2,0,2;-1,0,1"`` (rows split by ';', values by ',').

    Returns a float64 (rows, columns) array. ``name`` ("kernel", "patch") is
    used in the error sentences.
    """
    example = '"-1,0,1;-2,0,2;-1,0,1"'
    if not text.strip():
        raise ConvlensError(f"the {name} is empty; give rows of numbers like {example}.")
    rows = []
    for row_text in text.strip().split(";"):
        row = []
        for item in row_text.split(","):
            try:
                value = float(item)
            except ValueError:
                raise ConvlensError(
                    f"{item.strip()!r} in the {name} is not a number; "
                    f"give comma-separated numbers with rows split by ';', like {example}."
                ) from None
            if not math.isfinite(value):
                raise ConvlensError(
                    f"the {name} contains {item.strip()!r}; use finite numbers only."
                )
            row.append(value)
        rows.append(row)
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise ConvlensError(
                f"row {number} of the {name} has {len(row)} values but row 1 has "
                f"{len(rows[0])}; give every row the same number of values."
            )
    return np.array(rows, dtype=np.float64)  # (rows, columns)


# ---------------------------------------------------------------- checks


def _as_real_array(values: object, name: str) -> np.ndarray:
    """``values`` as float64, refusing non-numbers and NaN or infinite entries."""
    array = np.asarray(values)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) or np.iscomplexobj(
        array
    ):
        raise ConvlensError(
            f"the {name} has dtype {array.dtype}, not real numbers; give a numeric array."
        )
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise ConvlensError(
            f"the {name} contains NaN or infinite values; replace them with finite numbers."
        )
    return array


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """An int or (rows, columns) pair of positive ints as a pair."""
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)  # type: ignore[arg-type]
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise ConvlensError(f"{name} must be an integer or a pair of integers, not {value!r}.")
    if min(pair) <= 0:
        raise ConvlensError(f"{name} must be at least 1, not {value!r}; use a positive integer.")
    return int(pair[0]), int(pair[1])


def _image_and_kernel(image: object, kernel: object) -> tuple[np.ndarray, np.ndarray]:
    """Check ranks and channels; return float64 image (H, W, C) and kernel (kh, kw, C)."""
    image = _as_real_array(image, "image")
    kernel = _as_real_array(kernel, "kernel")
    if image.ndim not in (2, 3):
        raise ConvlensError(
            f"the image has shape {image.shape}; give a 2-D (H, W) or 3-D (H, W, C) array."
        )
    if kernel.ndim not in (2, 3):
        raise ConvlensError(
            f"the kernel has shape {kernel.shape}; give a 2-D (kh, kw) or 3-D (kh, kw, C) array."
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if kernel.ndim == 2:
        kernel = kernel[:, :, None]
    if image.shape[2] != kernel.shape[2]:
        raise ConvlensError(
            f"the image has {image.shape[2]} channels but the kernel has {kernel.shape[2]}; "
            f"give a (kh, kw, {image.shape[2]}) kernel or convert the image to grayscale."
        )
    if min(image.shape) == 0 or min(kernel.shape) == 0:
        raise ConvlensError(
            f"the image {image.shape} or the kernel {kernel.shape} is empty; give non-empty arrays."
        )
    return image, kernel


def _padding_amounts(size: int, k: int, stride: int, padding: str) -> tuple[int, int]:
    """Zeros added (before, after) along one axis for ``padding``."""
    if padding == "valid":
        return 0, 0
    out = -(-size // stride)  # ceil(size / stride), Keras's "same"
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2  # the odd one goes after (bottom/right)


def _pad(
    image: np.ndarray, kernel_hw: tuple[int, int], stride: tuple[int, int], padding: str
) -> tuple[np.ndarray, tuple[int, int]]:
    """Zero-pad image (H, W, C) for ``padding``; return it and the (top, left) padding."""
    if padding not in PADDINGS:
        raise ConvlensError(f"padding must be 'valid' or 'same', not {padding!r}.")
    top, bottom = _padding_amounts(image.shape[0], kernel_hw[0], stride[0], padding)
    left, right = _padding_amounts(image.shape[1], kernel_hw[1], stride[1], padding)
    if top or bottom or left or right:
        image = np.pad(image, ((top, bottom), (left, right), (0, 0)))
    if kernel_hw[0] > image.shape[0] or kernel_hw[1] > image.shape[1]:
        raise ConvlensError(
            f"the {kernel_hw[0]}x{kernel_hw[1]} kernel is larger than the "
            f"{image.shape[0]}x{image.shape[1]} {padding}-padded image; "
            f"use a smaller kernel, a larger image or padding='same'."
        )
    return image, (top, left)


def _output_size(padded: int, k: int, stride: int) -> int:
    """Windows of size k that fit in ``padded`` cells at ``stride`` (floor rounding)."""
    return (padded - k) // stride + 1


def _shifted(
    array: np.ndarray, i: int, j: int, stride: tuple[int, int], out_shape: tuple[int, int]
) -> np.ndarray:
    """The view of ``array`` that window offset (i, j) contributes to every output cell."""
    (sh, sw), (out_h, out_w) = stride, out_shape
    return array[i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw]


# ---------------------------------------------------------------- convolution


def conv2d(
    image: np.ndarray,
    kernel: np.ndarray,
    stride: int | tuple[int, int] = 1,
    padding: str = "valid",
) -> np.ndarray:
    """Cross-correlate ``image`` with ``kernel``, as a Conv2D layer does (no flip).

    image is (H, W) or (H, W, C); kernel is (kh, kw), or (kh, kw, C) to sum
    over the channels of a volume. Returns float64 (H_out, W_out) with
    H_out = floor((H + pad_top + pad_bottom - kh) / stride) + 1 (and the same
    for W): ``padding`` "valid" pads nothing, "same" gives ceil(H / stride).
    """
    image, kernel = _image_and_kernel(image, kernel)
    kh, kw, channels = kernel.shape
    sh, sw = _pair(stride, "stride")
    padded, _ = _pad(image, (kh, kw), (sh, sw), padding)
    out_h = _output_size(padded.shape[0], kh, sh)
    out_w = _output_size(padded.shape[1], kw, sw)
    out = np.empty((out_h, out_w), dtype=np.float64)
    # Two ideas make this fast. Shifted slices: a 3x3 kernel is nine whole-array
    # multiply-adds over the (strided) output grid, with no (H_out, W_out, kh*kw)
    # window copy. Row blocks: those passes run over ~64k outputs at a time, so
    # the running sum and its term stay in cache (2-3x faster on 512x512 here).
    rows_per_block = max(1, _BLOCK_ELEMENTS // out_w)
    term = np.empty((rows_per_block, out_w), dtype=np.float64)
    for start in range(0, out_h, rows_per_block):
        stop = min(start + rows_per_block, out_h)
        _accumulate(padded, kernel, (sh, sw), start, out[start:stop], term[: stop - start])
    return out  # (H_out, W_out)


def _accumulate(
    padded: np.ndarray,
    kernel: np.ndarray,
    stride: tuple[int, int],
    start: int,
    out: np.ndarray,
    term: np.ndarray,
) -> None:
    """Write the correlation's output rows from ``start`` on into ``out`` (rows, W_out)."""
    kh, kw, channels = kernel.shape
    for i in range(kh):
        for j in range(kw):
            window = _shifted(padded, start * stride[0] + i, j, stride, out.shape)
            target = out if i == j == 0 else term
            if channels == 1:
                np.multiply(window[:, :, 0], kernel[i, j, 0], out=target)
            else:
                np.matmul(window, kernel[i, j], out=target)  # (rows, W_out, C) @ (C,)
            if target is term:
                out += term


def pool2d(
    image: np.ndarray,
    size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    mode: str = "max",
) -> np.ndarray:
    """Max- or average-pool each channel of ``image`` with a ``size`` window.

    image is (H, W) or (H, W, C); ``stride`` defaults to ``size``; ``mode`` is
    "max" or "avg". Windows that run off the edge are dropped (floor rounding).
    Returns float64 (H_out, W_out) or (H_out, W_out, C) with
    H_out = floor((H - size) / stride) + 1.
    """
    if mode not in POOL_MODES:
        raise ConvlensError(f"pooling mode must be 'max' or 'avg', not {mode!r}.")
    array = _as_real_array(image, "image")
    if array.ndim not in (2, 3):
        raise ConvlensError(
            f"the image has shape {array.shape}; give a 2-D (H, W) or 3-D (H, W, C) array."
        )
    ph, pw = _pair(size, "pool size")
    sh, sw = _pair(size if stride is None else stride, "pool stride")
    if ph > array.shape[0] or pw > array.shape[1]:
        raise ConvlensError(
            f"the {ph}x{pw} pooling window is larger than the "
            f"{array.shape[0]}x{array.shape[1]} image; use a smaller pool size."
        )
    out_shape = (_output_size(array.shape[0], ph, sh), _output_size(array.shape[1], pw, sw))
    # One strided slice per window offset, reduced elementwise: for 2x2 that is
    # three whole-array maximums, several times faster than reshaping into
    # (H_out, 2, W_out, 2) blocks and reducing two axes (which also needs stride == size).
    combine = np.maximum if mode == "max" else np.add
    out = _shifted(array, 0, 0, (sh, sw), out_shape).copy()
    for i in range(ph):
        for j in range(pw):
            if i or j:
                combine(out, _shifted(array, i, j, (sh, sw), out_shape), out=out)
    return out if mode == "max" else out / (ph * pw)  # (H_out, W_out) or (H_out, W_out, C)


# ---------------------------------------------------------------- one pixel, by hand


@dataclass(frozen=True)
class PixelExplanation:
    """The terms of one output pixel of ``conv2d``.

    ``row``/``col`` are output coordinates; ``top``/``left`` are the input
    coordinates of the window's top-left cell (negative when it starts in
    the zero padding); ``in_padding`` is True when part of the window lies in
    the zero padding. ``neighbourhood``, ``kernel`` and ``products`` are
    read-only float64 arrays of the kernel's shape, (kh, kw) or (kh, kw, C);
    ``sum`` is the output pixel's value.
    """

    row: int
    col: int
    top: int
    left: int
    in_padding: bool
    neighbourhood: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    sum: float

    def equation(self) -> str:
        """The lesson's line: ``New pixel = (-1 * 0) + (0 * 64) + ... = 577``."""
        terms = " + ".join(
            f"({format_number(w)} * {format_number(v)})"
            for w, v in zip(self.kernel.ravel(), self.neighbourhood.ravel(), strict=True)
        )
        return f"New pixel = {terms} = {format_number(self.sum)}"

    def format(self) -> str:
        """Multi-line text: the neighbourhood and the kernel as aligned grids, then the line."""
        kh, kw = self.kernel.shape[:2]
        rows, cols = f"{self.top}..{self.top + kh - 1}", f"{self.left}..{self.left + kw - 1}"
        window = f"Window: input rows {rows}, cols {cols}"
        if self.in_padding:
            window += " (cells outside the image are zero padding)"
        left = ["Neighbourhood", *_grid_lines(self.neighbourhood)]
        right = ["Filter", *_grid_lines(self.kernel)]
        width = max(len(line) for line in left) + 4
        grids = [f"{a:<{width}}{b}".rstrip() for a, b in zip(left, right, strict=True)]
        return "\n".join([window, *grids, self.equation()])

    def __str__(self) -> str:
        return self.format()

    def _repr_html_(self) -> str:
        """In a notebook: the window, the filter and their products as grids, then the line."""
        kh, kw = self.kernel.shape[:2]
        where = (
            f"output pixel ({self.row}, {self.col}): input rows {self.top}..{self.top + kh - 1}, "
            f"columns {self.left}..{self.left + kw - 1}"
            + (" (cells outside the image are zero padding)" if self.in_padding else "")
        )
        grids = [
            shown.figure(shown.number_grid(_plane(a), format_number), title)
            for a, title in (
                (self.neighbourhood, "neighbourhood"),
                (self.kernel, "filter"),
                (self.products, "products"),
            )
        ]
        channels = "" if self.kernel.ndim == 2 else " (summed over every channel; channel 0 shown)"
        return shown.block(
            "One filtered pixel, by hand",
            shown.paragraph(where + channels, muted=True),
            *grids,
            shown.paragraph(self.equation(), mono=True),
        )


def format_number(value: float) -> str:
    """``value`` as short text: 577.0 -> "577", 0.5 -> "0.5", 1/9 -> "0.111111"."""
    if value == round(value) and abs(value) < 1e15:
        return str(int(round(value)))
    return np.format_float_positional(value, precision=6, trim="-")


def _plane(array: np.ndarray) -> np.ndarray:
    """A (kh, kw) array as it is, a (kh, kw, C) one as its first channel (for showing)."""
    return array if array.ndim == 2 else array[:, :, 0]


def _grid_lines(array: np.ndarray) -> list[str]:
    """Rows of a (kh, kw) or (kh, kw, C) array as right-aligned text."""
    if array.ndim == 3 and array.shape[2] > 1:
        lines = []
        for c in range(array.shape[2]):
            lines += [f"channel {c}:", *_grid_lines(array[:, :, c])]
        return lines
    cells = [[format_number(v) for v in row] for row in array.reshape(array.shape[:2])]
    width = max(len(cell) for row in cells for cell in row)
    return ["  ".join(f"{cell:>{width}}" for cell in row) for row in cells]


def explain_pixel(
    image: np.ndarray,
    kernel: np.ndarray,
    row: int,
    col: int,
    stride: int | tuple[int, int] = 1,
    padding: str = "valid",
) -> PixelExplanation:
    """Explain output pixel (row, col) of ``conv2d(image, kernel, stride, padding)``.

    (row, col) index the convolution's output, not the input. Returns a
    PixelExplanation whose ``sum`` equals that output pixel (to float
    rounding: the terms are added in a different order); its arrays have the
    kernel's shape, (3, 3) for a 3x3 kernel.
    """
    image3, kernel3 = _image_and_kernel(image, kernel)
    kh, kw, _ = kernel3.shape
    sh, sw = _pair(stride, "stride")
    padded, (pad_top, pad_left) = _pad(image3, (kh, kw), (sh, sw), padding)
    out_h = _output_size(padded.shape[0], kh, sh)
    out_w = _output_size(padded.shape[1], kw, sw)
    for name, value, limit in (("row", row, out_h), ("col", col, out_w)):
        if not isinstance(value, (int, np.integer)) or not 0 <= value < limit:
            raise ConvlensError(
                f"{name} {value!r} is outside the {out_h}x{out_w} output; "
                f"give a {name} from 0 to {limit - 1}."
            )
    r, c = int(row) * sh, int(col) * sw
    neighbourhood, weights = padded[r : r + kh, c : c + kw].copy(), kernel3.copy()
    if np.ndim(kernel) == 2:  # show a plain (kh, kw) kernel as it was given
        neighbourhood, weights = neighbourhood[:, :, 0], weights[:, :, 0]
    products = neighbourhood * weights
    for array in (neighbourhood, weights, products):
        array.flags.writeable = False
    return PixelExplanation(
        row=int(row),
        col=int(col),
        top=r - pad_top,
        left=c - pad_left,
        in_padding=not (
            pad_top <= r <= pad_top + image3.shape[0] - kh
            and pad_left <= c <= pad_left + image3.shape[1] - kw
        ),
        neighbourhood=neighbourhood,
        kernel=weights,
        products=products,
        sum=float(products.sum()),
    )


@dataclass(frozen=True)
class PoolExplanation:
    """The window behind one output pixel of ``pool2d`` on a 2-D map.

    ``row``/``col`` are output coordinates; ``top``/``left`` the map
    coordinates of the window's top-left cell; ``values`` the window's cells
    (a read-only float64 (ph, pw) array); ``chosen`` the (i, j) of the largest
    cell within the window for "max" (the first one on ties, in reading order),
    None for "avg"; ``value`` the output pixel.
    """

    row: int
    col: int
    top: int
    left: int
    mode: str
    values: np.ndarray
    chosen: tuple[int, int] | None
    value: float

    def equation(self) -> str:
        """``max(0, 64, 48, 192) = 192`` or ``avg(0, 64, 48, 192) = 76``."""
        cells = ", ".join(format_number(v) for v in self.values.ravel())
        return f"{self.mode}({cells}) = {format_number(self.value)}"

    def _repr_html_(self) -> str:
        """In a notebook: the window's numbers (the kept one outlined) and the line."""
        ph, pw = self.values.shape
        where = (
            f"pooled pixel ({self.row}, {self.col}): map rows {self.top}..{self.top + ph - 1}, "
            f"columns {self.left}..{self.left + pw - 1}"
        )
        grid = shown.number_grid(self.values, format_number, self.chosen, "window")
        return shown.block(
            "One pooled pixel",
            shown.paragraph(where, muted=True),
            shown.figure(grid, "the largest is kept" if self.mode == "max" else "their mean"),
            shown.paragraph(self.equation(), mono=True),
        )


def explain_pool(
    image: np.ndarray,
    row: int,
    col: int,
    size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    mode: str = "max",
) -> PoolExplanation:
    """Explain output pixel (row, col) of ``pool2d(image, size, stride, mode)`` on a 2-D map."""
    array = _as_real_array(image, "image")
    if array.ndim != 2:
        raise ConvlensError(f"the map has shape {array.shape}; give a 2-D (H, W) array.")
    pooled = pool2d(array, size, stride, mode)  # checks size and mode
    ph, pw = _pair(size, "pool size")
    sh, sw = _pair(size if stride is None else stride, "pool stride")
    for name, value, limit in (("row", row, pooled.shape[0]), ("col", col, pooled.shape[1])):
        if not isinstance(value, (int, np.integer)) or not 0 <= value < limit:
            raise ConvlensError(
                f"{name} {value!r} is outside the {pooled.shape[0]}x{pooled.shape[1]} pooled "
                f"map; give a {name} from 0 to {limit - 1}."
            )
    top, left = int(row) * sh, int(col) * sw
    values = array[top : top + ph, left : left + pw].copy()
    values.flags.writeable = False
    chosen = None
    if mode == "max":
        flat = int(np.argmax(values))
        chosen = (flat // pw, flat % pw)
    return PoolExplanation(
        int(row), int(col), top, left, mode, values, chosen, float(pooled[row, col])
    )


# ---------------------------------------------------------------- showing a result


def display_values(values: np.ndarray, mode: str) -> tuple[np.ndarray, str]:
    """Map a filter's output onto 0..255 for showing; return it and a caption.

    ``mode`` "clip" cuts values below 0 and above 255, as the lesson's notebook
    does; "rescale" maps the output's min..max linearly onto 0..255. Returns a
    float64 array of the input's shape and a sentence saying what was done.
    """
    if mode == "clip":
        below, above = (values < 0).mean(), (values > 255).mean()
        caption = (
            f"clipped to 0..255: {below:.0%} of pixels below 0 shown black, "
            f"{above:.0%} above 255 shown white"
        )
        return np.clip(values, 0, 255), caption
    if mode == "rescale":
        low, high = float(values.min()), float(values.max())
        span = high - low
        shown = (values - low) * 255 / span if span else np.zeros_like(values, dtype=np.float64)
        return shown, f"rescaled from {format_number(low)}..{format_number(high)} to 0..255"
    raise ValueError(f"display mode must be one of {DISPLAY_MODES}, not {mode!r}")
