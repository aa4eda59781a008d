"""Arrays to PNG data URLs for the page: grayscale images, colour-mapped maps, map grids.

Encoding is on the hot path of every answer (a 512x512 filter result, a
layer's 64 maps), so PNGs are written here rather than by Pillow: rows with
PNG's "no filter" byte, deflated at zlib level 1, or stored uncompressed
(level 0) past 65,536 pixels. On a 510x510 filter result that is 0.6 ms
instead of Pillow's 9-17 ms; the larger answer costs nothing on the loopback.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from functools import cache

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STORED_PAST_PIXELS = 65_536  # larger images are stored, not deflated: 15x faster to encode
GRID_GAP = 1  # pixels between tiles of a MapGrid


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 (H, W) grayscale or (H, W, 3) RGB -> PNG bytes (8 bits, no interlace)."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError(
            f"png_bytes takes uint8 (H, W) or (H, W, 3), not {pixels.dtype} {pixels.shape}"
        )
    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else 2  # grayscale or truecolour
    rows = np.zeros((height, 1 + pixels[0].size), dtype=np.uint8)  # each row: filter byte 0
    rows[:, 1:] = pixels.reshape(height, -1)
    level = 0 if height * width > STORED_PAST_PIXELS else 1
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + _chunk(b"IEND", b"")
    )


def data_url(pixels: np.ndarray) -> str:
    """uint8 (H, W) or (H, W, 3) -> "data:image/png;base64,..."."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Values already on 0..255 (floats included) -> uint8, rounded."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


@cache
def colour_table(name: str) -> np.ndarray:
    """A matplotlib colour map as a uint8 (256, 3) lookup table."""
    from matplotlib import colormaps  # loaded once, on the first colour-mapped answer

    return to_uint8(colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255)


def scaled(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` mapped linearly from low..high onto 0..255 as uint8 (all 0 when flat)."""
    span = high - low
    if span <= 0 or not math.isfinite(span):
        return np.zeros(values.shape, dtype=np.uint8)
    return to_uint8((values - low) * (255.0 / span))


def coloured(levels: np.ndarray, name: str) -> np.ndarray:
    """uint8 levels (...) -> RGB uint8 (..., 3) through the colour map ``name``."""
    return colour_table(name)[levels]


def grid_layout(count: int) -> tuple[int, int]:
    """(columns, rows) for ``count`` tiles: as square as possible, wider than tall."""
    columns = max(1, math.ceil(math.sqrt(count)))
    return columns, math.ceil(count / columns)


def map_grid(
    maps: np.ndarray, colour_map: str = "inferno", symmetric: bool = False
) -> tuple[str, int, int, list[list[float]]]:
    """Tile float maps (H, W, C) into one colour-mapped PNG.

    Each map is scaled on its own: min..max, or -m..m with m its largest
    magnitude when ``symmetric`` (a diverging scale with 0 in the middle).
    Returns the data URL, the grid's columns and rows, and each map's
    [low, high]. Tile k is at row k // columns, column k % columns.
    """
    height, width, count = maps.shape
    columns, rows = grid_layout(count)
    flat = maps.reshape(-1, count)
    if symmetric:
        high = np.abs(flat).max(axis=0)
        low = -high
    else:
        low, high = flat.min(axis=0), flat.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    levels = to_uint8((maps - low) * (255.0 / span))  # (H, W, C), each map on its own scale
    levels[:, :, high <= low] = 127 if symmetric else 0
    ranges = [[float(a), float(b)] for a, b in zip(low, high, strict=True)]
    return tiled(coloured(levels, colour_map), columns, rows), columns, rows, ranges


def tiled(tiles: np.ndarray, columns: int, rows: int) -> str:
    """RGB tiles uint8 (H, W, count, 3) laid out row by row on white, as a PNG data URL."""
    height, width, count, _ = tiles.shape
    canvas = np.full(
        (rows * (height + GRID_GAP) - GRID_GAP, columns * (width + GRID_GAP) - GRID_GAP, 3),
        255,
        dtype=np.uint8,
    )
    for k in range(count):
        top, left = (k // columns) * (height + GRID_GAP), (k % columns) * (width + GRID_GAP)
        canvas[top : top + height, left : left + width] = tiles[:, :, k]
    return data_url(canvas)


def colour_kernel_grid(kernels: np.ndarray) -> tuple[str, int, int, list[list[float]]]:
    """Kernels on RGB input (kh, kw, 3, count) tiled in colour, as map_grid returns.

    Each kernel's red, green and blue weights are its pixels' red, green and blue:
    0.5 + 0.5 * weight / the kernel's largest |weight| (mid-grey is zero).
    """
    count = kernels.shape[3]
    peaks = np.abs(kernels).max(axis=(0, 1, 2))  # (count,)
    shown = 0.5 + 0.5 * kernels / np.where(peaks > 0, peaks, 1.0)  # (kh, kw, 3, count)
    tiles = to_uint8(shown.transpose(0, 1, 3, 2) * 255)  # (kh, kw, count, 3)
    columns, rows = grid_layout(count)
    ranges = [[-float(m), float(m)] for m in peaks]
    return tiled(tiles, columns, rows), columns, rows, ranges


def compact(values: np.ndarray, digits: int = 4) -> list:
    """An array as nested lists of floats rounded to ``digits`` significant digits."""
    array = np.asarray(values, dtype=np.float64)
    rounded = np.vectorize(lambda v: float(f"{v:.{digits}g}"), otypes=[np.float64])(array)
    return rounded.tolist() if array.size else array.tolist()
