"""Many small pictures on one matplotlib figure, drawn as a single image.

A grid of 64 maps drawn as 64 matplotlib Axes costs about 10 ms an Axes to
build and render (ticks, spines, clip paths), a second for one layer's
feature maps. A ``Mosaic`` instead colour-maps each panel with NumPy, pastes
it into one array the size of the figure (its face colour beneath) and draws
that array with one Axes under everything else. At the figure's dpi one
array pixel is one output pixel, so panels look as ``imshow`` draws them:
each value a block of pixels when enlarged (nearest neighbour), area-averaged
when shrunk, kept to its aspect ratio and centred in its box, with a thin
black frame.

The panels' titles and the colour bars' tick labels are written into the
array too, by Pillow placed as matplotlib places a text (written_text.py): a
matplotlib text costs about 2 ms to lay out and draw, a Pillow one about
0.05 ms, and a grid has up to a hundred of them. Agg then copies the array
onto its canvas as it is (``_Pixels``) rather than resampling it: at any
other dpi or with another renderer, matplotlib's own image drawing takes over.

``panels(figure)`` lists what was drawn (title, place, picture), for tests
and for anyone who wants a panel's numbers back; ``labels(figure)`` the texts
and the pixels they cover.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import Colormap, to_rgba
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator, ScalarFormatter
from PIL import Image, ImageDraw

from convlens.views.written_text import Label, Written, blit, write

TITLE_PAD = 6.0  # points between a panel and its title, as matplotlib's axes.titlepad
FRAME = (0, 0, 0, 255)  # the frame's colour, as an Axes' black spines


@dataclass(frozen=True)
class Panel:
    """One picture of a mosaic: its title, its box in inches and its pixels before resampling."""

    title: str
    box: tuple[float, float, float, float]  # x, y from the bottom left, width, height (inches)
    pixels: np.ndarray  # uint8 (h, w, 4) RGBA at the picture's own resolution


@dataclass(frozen=True)
class Bar:
    """One colour bar of a mosaic: its colour map, range and tick labels (bottom to top)."""

    cmap: str
    low: float
    high: float
    labels: list[str]
    offset: str


class _Pixels(AxesImage):
    """An image the size of the canvas, copied onto an Agg canvas of its dpi as it is."""

    def draw(self, renderer) -> None:
        """Copy the pixels (no resampling) when they match the canvas; else draw as imshow."""
        pixels = self.get_array()
        figure = self.axes.figure
        if (
            isinstance(renderer, RendererAgg)
            and renderer.dpi == figure.dpi
            and (int(renderer.height), int(renderer.width)) == pixels.shape[:2]
        ):
            blit(renderer, pixels, 0, 0)
            self.stale = False
            return
        super().draw(renderer)


@cache
def colour_map(name: str) -> Colormap:
    """matplotlib's colour map ``name``, looked up once (each lookup copies it and rebuilds its
    table: 0.1 ms, with the Normalize beside it 0.4 ms a panel, 64 panels a grid)."""
    return colormaps[name]


def scaled(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """float64 values mapped to 0..1 on low..high, as matplotlib's Normalize(low, high) maps
    them (all 0 when low == high, NaN included; else NaN stays NaN, the map's "bad" colour)."""
    values = np.asarray(values, dtype=np.float64)
    if high == low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def colour_mapped(values: np.ndarray, cmap: str, low: float, high: float) -> np.ndarray:
    """2-D values -> uint8 RGBA (h, w, 4) through the colour map on low..high, as imshow maps them."""
    return colour_map(cmap)(scaled(values, low, high), bytes=True)


def gray_or_colour(picture: np.ndarray) -> np.ndarray:
    """A picture on 0..255, gray (h, w) or RGB (h, w, 3) -> uint8 RGBA (h, w, 4)."""
    picture = np.asarray(picture, dtype=np.float64)
    if picture.ndim == 2:
        return colour_mapped(picture, "gray", 0.0, 255.0)
    rgb = np.clip(np.rint(picture[..., :3]), 0, 255).astype(np.uint8)
    return np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=2)


def over(base: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """uint8 RGBA ``layer`` composited over opaque uint8 RGBA ``base`` (same shape): opaque RGBA."""
    alpha = layer[..., 3:4].astype(np.float64) / 255.0
    mixed = layer[..., :3] * alpha + base[..., :3] * (1.0 - alpha)
    out = base.copy()
    out[..., :3] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out


def resampled(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 RGBA (h, w, 4) brought to (height, width, 4): blocks when enlarged, averaged when shrunk."""
    h, w = pixels.shape[:2]
    if height >= h and width >= w:
        rows = ((np.arange(height) + 0.5) * h / height).astype(np.intp)
        cols = ((np.arange(width) + 0.5) * w / width).astype(np.intp)
        return pixels[rows[:, None], cols[None, :]]
    image = Image.fromarray(np.ascontiguousarray(pixels), mode="RGBA")
    return np.asarray(image.resize((width, height), Image.Resampling.BOX))


class Mosaic:
    """Panels pasted into one image the size of ``figure``; ``draw`` puts it on the figure."""

    def __init__(self, figure: Figure) -> None:
        self.figure = figure
        self.dpi = float(figure.dpi)
        width, height = figure.get_size_inches()
        self.size = (width, height)
        columns, rows = (int(n) for n in figure.bbox.size)  # the Agg canvas's pixels
        face = np.rint(np.array(to_rgba(figure.get_facecolor())) * 255).astype(np.uint8)
        self.pixels = np.full((rows, columns, 4), face, np.uint8)
        self._texts: list[Written] = []
        figure._mosaic_panels = []  # what panels() reads back
        figure._mosaic_bars = []  # and bars()
        figure._mosaic_labels = []  # and labels()

    def _fit(self, shape: tuple[int, int], box: tuple[float, float, float, float]) -> tuple:
        """The largest box of the picture's aspect ratio centred in ``box`` (inches)."""
        x, y, w, h = box
        aspect = shape[0] / shape[1]  # rows per column
        if h / w > aspect:
            fitted = w * aspect
            return x, y + (h - fitted) / 2, w, fitted
        fitted = h / aspect
        return x + (w - fitted) / 2, y, fitted, h

    def paste(
        self,
        pixels: np.ndarray,
        box: tuple[float, float, float, float],
        title: str = "",
        fontsize: float = 10,
        pad: float = TITLE_PAD,
    ) -> tuple[float, float, float, float]:
        """Draw uint8 RGBA ``pixels`` fitted in ``box`` (x, y, w, h inches), titled above it.

        Returns the box the picture took (its aspect ratio kept, centred).
        """
        fitted = self._place(pixels, box)
        x, y, w, h = fitted
        if title:
            self._texts.append(
                Written(title, x + w / 2, y + h + pad / 72, fontsize, "center", "baseline")
            )
        self.figure._mosaic_panels.append(Panel(title, fitted, pixels))
        return fitted

    def _place(self, pixels: np.ndarray, box: tuple[float, float, float, float]) -> tuple:
        """Resample ``pixels`` into ``box`` (aspect kept, centred), framed; return the box taken."""
        fitted = self._fit(pixels.shape[:2], box)
        x, y, w, h = fitted
        rows, cols = self.pixels.shape[:2]
        left, right = round(x * self.dpi), round((x + w) * self.dpi)
        top, bottom = rows - round((y + h) * self.dpi), rows - round(y * self.dpi)
        left, top = max(left, 0), max(top, 0)
        right, bottom = min(right, cols), min(bottom, rows)
        if right - left >= 2 and bottom - top >= 2:
            tile = resampled(pixels, bottom - top, right - left).copy()
            tile[[0, -1], :] = FRAME
            tile[:, [0, -1]] = FRAME
            self.pixels[top:bottom, left:right] = tile
        return fitted

    def colour_bar(
        self,
        box: tuple[float, float, float, float],
        cmap: str,
        low: float,
        high: float,
        labelsize: float = 7,
    ) -> list[str]:
        """A vertical colour bar for ``cmap`` on low..high in ``box`` (inches), ticks at its right.

        Drawn as matplotlib's colour bar is (the same tick positions: its
        AutoLocator for the bar's length and label size; the same labels: a
        ScalarFormatter, its offset above the bar), without an Axes of its
        own. Returns the tick labels, bottom to top.
        """
        x, y, w, h = box
        rows = max(round(h * self.dpi), 2)
        ramp = np.linspace(high, low, rows)[:, None].repeat(max(round(w * self.dpi), 2), axis=1)
        # a ramp of one pixel per row is pasted 1:1, so no resampling blurs the scale
        self._place(colour_mapped(ramp, cmap, low, high), box)
        ticks, labels, offset = bar_ticks(low, high, h * 72, labelsize)
        length = round(3.5 / 72 * self.dpi)  # matplotlib's major tick: 3.5 points
        total = self.pixels.shape[0]
        right = round((x + w) * self.dpi)
        for tick, label in zip(ticks, labels, strict=True):
            at = y + h * (tick - low) / (high - low)
            row = min(max(total - round(at * self.dpi), 0), total - 1)
            self.pixels[row, right : right + length] = FRAME
            self._texts.append(
                Written(label, x + w + 7 / 72, at, labelsize, "left", "center_baseline")
            )
        if offset:
            self._texts.append(
                Written(offset, x + w / 2, y + h + 3 / 72, labelsize, "left", "bottom")
            )
        self.figure._mosaic_bars.append(Bar(cmap, low, high, labels, offset))
        return labels

    def draw(self) -> None:
        """Write the texts into the pasted image and put it on the figure, beneath every other
        Axes and text."""
        self._write_texts()
        axes = self.figure.add_axes((0, 0, 1, 1), zorder=-1)
        axes.set_axis_off()
        image = _Pixels(
            axes, interpolation="nearest", extent=(0, self.size[0], 0, self.size[1]), origin="upper"
        )
        image.set_data(self.pixels)
        axes.add_image(image)
        axes.set_xlim(0, self.size[0])
        axes.set_ylim(0, self.size[1])

    def _write_texts(self) -> None:
        """Write every waiting text (anchored in inches) into the image, recording each."""
        if not self._texts:
            return
        image = Image.fromarray(self.pixels, mode="RGBA")
        pen = ImageDraw.Draw(image)
        rows = self.pixels.shape[0]
        for text in self._texts:
            label = write(pen, text, text.x * self.dpi, rows - text.y * self.dpi, self.dpi)
            if label is not None:
                self.figure._mosaic_labels.append(label)
        self.pixels = np.asarray(image).copy()
        self._texts = []


def bar_ticks(
    low: float, high: float, length: float, labelsize: float
) -> tuple[np.ndarray, list[str], str]:
    """Tick values, labels and offset text of a colour bar ``length`` points long, as matplotlib's.

    matplotlib's colour bar ticks its long axis with an AutoLocator: at most
    min(9, length / (2 x label size)) intervals of 1, 2, 2.5 or 5 times a power
    of ten, kept within low..high, labelled by a ScalarFormatter.
    """
    bins = max(min(int(np.floor(length / (labelsize * 2))), 9), 1)
    ticks = MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    span = (high - low) * 1e-10
    ticks = ticks[(ticks >= low - span) & (ticks <= high + span)]
    formatter = ScalarFormatter()
    formatter.create_dummy_axis()
    formatter.axis.set_view_interval(low, high)
    formatter.set_locs(ticks)
    return ticks, [formatter(tick) for tick in ticks], formatter.get_offset()


def panels(figure: Figure) -> list[Panel]:
    """The panels a Mosaic drew on ``figure``, in the order they were pasted (empty if none)."""
    return list(getattr(figure, "_mosaic_panels", []))


def labels(figure: Figure) -> list[Label]:
    """The texts a Mosaic wrote into its image on ``figure`` (titles, tick labels), in order."""
    return list(getattr(figure, "_mosaic_labels", []))


def bars(figure: Figure) -> list[Bar]:
    """The colour bars a Mosaic drew on ``figure``, in the order they were drawn."""
    return list(getattr(figure, "_mosaic_bars", []))
