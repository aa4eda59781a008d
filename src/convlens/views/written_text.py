"""Texts written with Pillow in matplotlib's font, placed as matplotlib places a text.

A matplotlib Text costs about 2 ms to lay out and draw with Agg; a figure
with a hundred of them (a confusion matrix's counts, a grid's panel titles,
colour bars' tick labels) spends most of its drawing time there. Pillow
writes the same font (matplotlib's default, as its rcParams name it) at the
same size in about 0.05 ms. ``baselines`` lays the lines out as matplotlib's
``Text`` does (each line 1.2 times the font's typographic height, the ink
centred in it, the same vertical alignments), so the ink lands where
matplotlib's would, to a pixel (held so in the tests).

``write`` puts a text into a Pillow image; ``TextLayer`` is an Artist that
writes its texts, anchored in data coordinates of an Axes, onto an Agg canvas
and lets matplotlib's own Text draw them for any other renderer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from matplotlib import font_manager
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import to_rgba
from matplotlib.ft2font import FT2Font
from matplotlib.text import Text
from PIL import Image, ImageDraw, ImageFont

LINE_SPACING = 1.2  # matplotlib's Text linespacing
ANCHORS = {"center": "m", "left": "l", "right": "r"}  # Pillow's horizontal anchor letters


@dataclass(frozen=True)
class Written:
    """A text to write: anchored at (x, y), in whatever units its writer says."""

    text: str
    x: float
    y: float
    fontsize: float  # points
    ha: str = "center"  # "center", "left" or "right"
    va: str = "baseline"  # "baseline" (of the last line), "center_baseline", "center", "bottom"
    colour: str = "black"


@dataclass(frozen=True)
class Label:
    """A text as written, and the pixels it covers (left, top, right, bottom exclusive)."""

    text: str
    box: tuple[int, int, int, int]


@lru_cache(maxsize=32)
def font(fontsize: float, dpi: float) -> ImageFont.FreeTypeFont:
    """matplotlib's default font (as its rcParams name it) at ``fontsize`` points and ``dpi``."""
    path = font_manager.findfont(font_manager.FontProperties(size=fontsize))
    return ImageFont.truetype(path, size=fontsize * dpi / 72, layout_engine=ImageFont.Layout.BASIC)


@lru_cache(maxsize=32)
def line_height(fontsize: float, dpi: float) -> float:
    """Pixels from one baseline to the next: 1.2 x the font's typographic ascent + descent
    (its OS/2 table, else its hhea table), as matplotlib's Text spaces lines."""
    path = font_manager.findfont(font_manager.FontProperties(size=fontsize))
    face = FT2Font(path)
    scale = fontsize * dpi / 72 / face.get_sfnt_table("head")["unitsPerEm"]
    for table, up, down in (
        ("OS/2", "sTypoAscender", "sTypoDescender"),
        ("hhea", "ascent", "descent"),
    ):
        metrics = face.get_sfnt_table(table)
        if metrics:
            return LINE_SPACING * (metrics[up] - metrics[down]) * scale
    ascent, descent = font(fontsize, dpi).getmetrics()
    return LINE_SPACING * (ascent + descent)


def baselines(text: Written, x: float, y: float, dpi: float) -> list[tuple[str, float]]:
    """Each line of ``text`` with the pixel row of its baseline, the anchor at pixel (x, y)
    counted from the top left.

    As matplotlib's Text lays lines out: each line one line height tall, its
    own ink centred in it; "baseline" puts the last line's baseline at the
    anchor, "center_baseline" the anchor halfway from the box's top to that
    baseline, "center" the box's middle, "bottom" the box's bottom.
    """
    pen, height = font(text.fontsize, dpi), line_height(text.fontsize, dpi)
    lines = text.text.split("\n")
    tops: list[float] = []  # each baseline, pixels below the box's top
    below = 0.0
    for line in lines:
        _, top, _, bottom = pen.getbbox(line, anchor="ls") if line else (0, 0, 0, 0)
        leading = height - (bottom - top)
        ascent, descent = -top + leading / 2, bottom + leading / 2
        tops.append(below + ascent)
        below += ascent + descent
    if text.va == "bottom":
        top_row = y - below
    elif text.va == "center":
        top_row = y - below / 2
    elif text.va == "center_baseline":
        top_row = y - tops[-1] / 2
    else:  # "baseline": of the last line
        top_row = y - tops[-1]
    return [(line, top_row + at) for line, at in zip(lines, tops, strict=True)]


def write(pen: ImageDraw.ImageDraw, text: Written, x: float, y: float, dpi: float) -> Label | None:
    """Write ``text`` with its anchor at pixel (x, y) from the top left; what it covers, or
    None when it has no ink (empty)."""
    face = font(text.fontsize, dpi)
    anchor = ANCHORS[text.ha] + "s"
    colour = tuple(round(c * 255) for c in to_rgba(text.colour))
    covered = []
    for line, row in baselines(text, x, y, dpi):
        if line:
            pen.text((x, row), line, font=face, fill=colour, anchor=anchor)
            covered.append(pen.textbbox((x, row), line, font=face, anchor=anchor))
    if not covered:
        return None
    box = [f(b[i] for b in covered) for i, f in enumerate((min, min, max, max))]
    return Label(text.text, pixel_box(box))


def pixel_box(box: list[float]) -> tuple[int, int, int, int]:
    """A box in fractional pixels widened to whole ones (left, top, right, bottom exclusive)."""
    left, top, right, bottom = box
    return math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom)


def blit(renderer: RendererAgg, pixels: np.ndarray, left: int, bottom: int) -> None:
    """Put uint8 RGBA ``pixels`` (rows from the top) on an Agg canvas as they are, blended by
    their alpha, their bottom-left corner at pixel (left, bottom) from the canvas's bottom left
    (Agg reads an image's rows from the bottom)."""
    gc = renderer.new_gc()
    renderer.draw_image(gc, left, bottom, np.ascontiguousarray(pixels[::-1]))
    gc.restore()


class TextLayer(Artist):
    """Texts anchored in ``axes``' data coordinates, written by Pillow onto an Agg canvas.

    Drawn above the Axes' own artists (zorder 3, as matplotlib's texts). With
    any other renderer (PDF, SVG) each text is drawn as matplotlib's Text.
    """

    def __init__(self, axes: Axes) -> None:
        super().__init__()
        self.set_zorder(3)
        self._anchored = axes
        self.texts: list[Written] = []
        self.labels: list[Label] = []  # as last written, for tests

    def add(self, written: Written) -> None:
        """Write ``written`` (x, y in data coordinates) when the figure is drawn."""
        self.texts.append(written)
        self.stale = True

    def draw(self, renderer) -> None:
        """Write every text onto the canvas (Agg), or draw each as a matplotlib Text."""
        if not self.get_visible() or not self.texts:
            return
        if not isinstance(renderer, RendererAgg):
            for written in self.texts:
                self._as_text(written).draw(renderer)
            return
        width, height = int(renderer.width), int(renderer.height)
        layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))  # the texts alone, over it all
        pen = ImageDraw.Draw(layer)
        places = self._anchored.transData.transform([(t.x, t.y) for t in self.texts])
        self.labels = []
        for written, (x, y) in zip(self.texts, places, strict=True):
            label = write(pen, written, x, height - y, renderer.dpi)
            if label is not None:
                self.labels.append(label)
        if self.labels:
            left, top = (max(min(b.box[i] for b in self.labels), 0) for i in (0, 1))
            right = min(max(b.box[2] for b in self.labels), width)
            bottom = min(max(b.box[3] for b in self.labels), height)
            inked = np.asarray(layer)[top:bottom, left:right]
            blit(renderer, inked, left, height - bottom)
        self.stale = False

    def _as_text(self, written: Written) -> Text:
        """matplotlib's own Text for ``written``, on this layer's Axes."""
        text = Text(
            written.x,
            written.y,
            written.text,
            fontsize=written.fontsize,
            ha=written.ha,
            va=written.va,
            color=written.colour,
            transform=self._anchored.transData,
        )
        text.set_figure(self._anchored.figure)
        return text
