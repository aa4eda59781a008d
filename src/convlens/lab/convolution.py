"""One image through one filter and a pooling, as the playground shows it: ``convolve``.

``convolve(image, "vertical")`` returns a Convolution holding the input, the
kernel, the filtered values and the pooled ones (float64, exactly what
``ops.conv2d`` and ``ops.pool2d`` compute). A notebook shows it as the three
pictures with their shapes and the arithmetic behind them; ``explain(row,
col)`` and ``explain_pool(row, col)`` give one pixel's numbers. Plain arrays
stay available as attributes, and ``np.asarray(result)`` is the filtered image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convlens import shown
from convlens.errors import ConvlensError
from convlens.lab import ops

PICTURE_WIDTH = 196  # CSS pixels per picture in a notebook


@dataclass(frozen=True)
class Convolution:
    """An image, a filter, the filtered image and (unless ``pool`` is None) its pooling."""

    image: np.ndarray  # (H, W) float64, as given
    kernel: np.ndarray  # (kh, kw)
    filtered: np.ndarray  # conv2d(image, kernel, stride, padding)
    pooled: np.ndarray | None  # pool2d(filtered, pool_size, mode=pool)
    stride: int
    padding: str
    pool: str | None
    pool_size: int
    display: str

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.filtered if dtype is None else self.filtered.astype(dtype)

    def explain(self, row: int, col: int) -> ops.PixelExplanation:
        """The multiplications behind filtered pixel (row, col)."""
        return ops.explain_pixel(self.image, self.kernel, row, col, self.stride, self.padding)

    def explain_pool(self, row: int, col: int) -> ops.PoolExplanation:
        """The window behind pooled pixel (row, col)."""
        if self.pool is None:
            raise ConvlensError("this convolution has no pooling; call convolve(..., pool='max').")
        return ops.explain_pool(self.filtered, row, col, self.pool_size, mode=self.pool)

    def shape_why(self) -> str:
        """How the filtered size follows from the input's: "26x26: 28 - 3 + 1"."""
        sizes = []
        for size, k in zip(self.image.shape, self.kernel.shape, strict=True):
            if self.padding == "same":
                sizes.append(f"ceil({size} / {self.stride})" if self.stride > 1 else f"{size}")
            elif self.stride > 1:
                sizes.append(f"floor(({size} - {k}) / {self.stride}) + 1")
            else:
                sizes.append(f"{size} - {k} + 1")
        formula = sizes[0] if sizes[0] == sizes[1] else " by ".join(sizes)
        return f"{_dims(self.filtered)}: {formula}"

    def __repr__(self) -> str:
        pooled = "" if self.pooled is None else f" -> {self.pool} pooled {self.pooled.shape}"
        return f"Convolution({self.image.shape} -> filtered {self.filtered.shape}{pooled})"

    def _repr_html_(self) -> str:
        """In a notebook: input, filtered and pooled side by side, with shapes and ranges."""
        shown_filtered, caption = ops.display_values(self.filtered, self.display)
        parts = [
            shown.figure(_picture(self.image, "input"), f"input {_dims(self.image)}"),
            shown.figure(
                shown.number_grid(self.kernel, ops.format_number, title="filter"),
                f"stride {self.stride}, {self.padding} padding",
            ),
            shown.figure(
                _picture(shown_filtered, "filtered"),
                f"filtered {self.shape_why()}; values {_range(self.filtered)}, {caption}",
            ),
        ]
        if self.pooled is not None:
            shown_pooled, _ = ops.display_values(self.pooled, self.display)
            parts.append(
                shown.figure(
                    _picture(shown_pooled, "pooled"),
                    f"{self.pool} pooled {self.pool_size}x{self.pool_size}: "
                    f"{_dims(self.pooled)}, floor({self.filtered.shape[0]} / {self.pool_size}); "
                    f"values {_range(self.pooled)}",
                )
            )
        return shown.block(
            "Convolution",
            "".join(parts),
            shown.paragraph("Pixel (row, col) by hand: result.explain(row, col).", muted=True),
        )


def _picture(values: np.ndarray, alt: str) -> str:
    pixels = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return shown.picture(pixels, alt, PICTURE_WIDTH)


def _dims(values: np.ndarray) -> str:
    return "x".join(str(n) for n in values.shape)


def _range(values: np.ndarray) -> str:
    return f"{ops.format_number(float(values.min()))}..{ops.format_number(float(values.max()))}"


def convolve(
    image: np.ndarray,
    kernel: str | np.ndarray = "vertical",
    stride: int = 1,
    padding: str = "valid",
    pool: str | None = "max",
    pool_size: int = 2,
    display: str = "clip",
) -> Convolution:
    """Filter a grayscale ``image`` with ``kernel`` (a preset's name or an array), then pool.

    The arithmetic is ``ops.conv2d`` and ``ops.pool2d`` (the lesson's:
    no kernel flip, floor rounding). ``display`` is how a notebook shows
    values outside 0..255: "clip" (the lesson's) or "rescale".
    """
    weights = ops.get_filter(kernel) if isinstance(kernel, str) else np.asarray(kernel, float)
    picture = np.asarray(image, dtype=np.float64)
    if picture.ndim == 3 and picture.shape[2] == 1:
        picture = picture[:, :, 0]
    if picture.ndim != 2:
        raise ConvlensError(
            f"convolve takes a grayscale image (H, W), not one of shape {picture.shape}; "
            f"convert it to gray first."
        )
    if display not in ops.DISPLAY_MODES:
        raise ConvlensError(f"display must be clip or rescale, not {display!r}.")
    filtered = ops.conv2d(picture, weights, stride=stride, padding=padding)
    pooled = None if pool is None else ops.pool2d(filtered, pool_size, mode=pool)
    return Convolution(
        picture, weights, filtered, pooled, stride, padding, pool, pool_size, display
    )
