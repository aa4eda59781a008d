"""Axes placed by measured margins, instead of matplotlib's constrained layout.

Constrained layout measures every text of a figure twice, at each draw: half
of the drawing time of a plot of two axes (0.08 of 0.15 s for the training
curves). These figures have a known shape, so their margins are measured
once, from the texts that will sit in them (tick labels as the axis's own
locator and formatter make them, titles, axis labels), in matplotlib's font
(written_text.font), and the axes are put there.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from convlens.views.written_text import font, line_height

EDGE = 0.08  # inches kept clear at the figure's edges
TICK = 7 / 72  # inches of a tick and its pad (3.5 + 3.5 points)
LABEL_PAD = 4 / 72  # inches between tick labels and the axis label
TITLE_PAD = 6 / 72  # inches between an axes and its title


def points(size: float | str) -> float:
    """A font size in points, from a number or matplotlib's names ("medium": 10 by default)."""
    return FontProperties(size=size).get_size_in_points()


def line_inches(size: float | str, lines: int = 1) -> float:
    """Inches ``lines`` lines of text take at ``size``, spaced as matplotlib spaces them."""
    return lines * line_height(points(size), 72.0) / 72


def text_inches(text: str, size: float | str) -> float:
    """Inches the widest line of ``text`` takes at ``size``, in matplotlib's font."""
    face = font(points(size), 72.0)
    return max((face.getlength(line) for line in text.split("\n")), default=0.0) / 72


def x_margin(tick_size: float | str = "medium", label_size: float | str = "medium") -> float:
    """Inches under an axes for its x tick labels and its x label."""
    return EDGE + line_inches(tick_size) + TICK + line_inches(label_size) + LABEL_PAD


def tick_labels(axis: Axis) -> list[str]:
    """The major tick labels ``axis`` will draw: its locator's ticks within the view, through
    its formatter."""
    low, high = sorted(axis.get_view_interval())
    span = (high - low) * 1e-10
    ticks = [tick for tick in axis.get_majorticklocs() if low - span <= tick <= high + span]
    return list(axis.get_major_formatter().format_ticks(ticks))


def widest_tick_label(axis: Axis, size: float | str | None = None) -> float:
    """Inches of ``axis``'s widest tick label at ``size`` (default: the axis's own)."""
    if size is None:
        size = mpl.rcParams[f"{axis.axis_name}tick.labelsize"]
    return max((text_inches(label, size) for label in tick_labels(axis)), default=0.0)


def place(
    figure: Figure, axes: Axes, left: float, bottom: float, width: float, height: float
) -> None:
    """Put ``axes`` at (left, bottom) inches from the figure's bottom left, width x height."""
    figure_width, figure_height = figure.get_size_inches()
    axes.set_position(
        (left / figure_width, bottom / figure_height, width / figure_width, height / figure_height)
    )


def row_of_axes(
    figure: Figure,
    axes: Sequence[Axes],
    *,
    top: float,
    bottom: float,
    gap: float = 0.3,
    right: float = 0.15,
) -> None:
    """Put ``axes`` side by side, equally wide, between ``top`` and ``bottom`` inches of margin;
    each axes' left margin holds its y tick labels, ``gap`` inches more between two axes."""
    width, height = figure.get_size_inches()
    lefts = [widest_tick_label(a.yaxis) + TICK for a in axes]
    spare = width - EDGE - right - sum(lefts) - gap * (len(axes) - 1)
    each = spare / len(axes)
    x = EDGE
    for a, margin in zip(axes, lefts, strict=True):
        x += margin
        place(figure, a, x, bottom, each, height - top - bottom)
        x += each + gap
