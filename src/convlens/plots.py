"""matplotlib figures, each a pure function of arrays returning a Figure.

Figures are built on ``matplotlib.figure.Figure`` with an Agg canvas, never
through pyplot, so no global figure state leaks between calls or threads.
Images are shown in grayscale on the 0..255 scale the lesson uses.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from convlens.ops import format_number

DISPLAY_MODES = ("clip", "rescale")


def _new_figure(width: float, height: float) -> Figure:
    """A Figure with its own Agg canvas (no pyplot)."""
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


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


def _show(axes: Axes, values: np.ndarray, title: str) -> None:
    """Draw a 0..255 grayscale image on ``axes`` with ``title`` and no ticks."""
    # "antialiased" filters when a large image is shrunk to fit (so thin lines
    # do not vanish between sampled pixels) and keeps small images blocky.
    axes.imshow(values, cmap="gray", vmin=0, vmax=255, interpolation="antialiased")
    axes.set_title(title, fontsize=10)
    axes.set_xticks([])
    axes.set_yticks([])


def _show_kernel(axes: Axes, kernel: np.ndarray, title: str) -> None:
    """Draw a 2-D kernel as a red (negative) / blue (positive) grid with its numbers."""
    limit = float(np.abs(kernel).max()) or 1.0
    axes.imshow(kernel, cmap="RdBu", vmin=-limit, vmax=limit)
    for (i, j), value in np.ndenumerate(kernel):
        colour = "white" if abs(value) > 0.6 * limit else "black"  # readable on dark cells
        axes.text(j, i, format_number(value), ha="center", va="center", fontsize=9, color=colour)
    axes.set_title(title, fontsize=10)
    axes.set_xticks([])
    axes.set_yticks([])


def convolution_figure(
    image: np.ndarray,
    kernel: np.ndarray,
    filtered: np.ndarray,
    pooled: np.ndarray | None = None,
    *,
    title: str,
    pool_label: str = "pooled",
    display: str = "clip",
) -> Figure:
    """Input, kernel, filtered and (optionally) pooled images side by side.

    image is grayscale (H, W) on 0..255; kernel (kh, kw); filtered and pooled
    are the 2-D outputs of ops.conv2d and ops.pool2d. Every panel is titled
    with its shape; the filtered panel says how values were brought to 0..255
    (``display``: "clip" or "rescale"), and the pooled panel is shown the same way.
    Returns a Figure about 13 x 4.4 inches.
    """
    shown, caption = display_values(filtered, display)
    panels = 4 if pooled is not None else 3
    figure = _new_figure(3.6 * (panels - 1) + 1.8, 4.4)
    axes = figure.subplots(1, panels, width_ratios=[1, 0.5] + [1] * (panels - 2))
    _show(axes[0], image, f"Input {image.shape}")
    _show_kernel(axes[1], kernel, f"Filter {kernel.shape}")
    _show(axes[2], shown, f"Filtered {filtered.shape}")
    if pooled is not None:
        _show(axes[3], display_values(pooled, display)[0], f"{pool_label} {pooled.shape}")
    figure.suptitle(f"{title}\nFiltered values {caption}", fontsize=11)
    return figure


def filter_grid_figure(
    image: np.ndarray,
    filtered: Mapping[str, np.ndarray],
    pooled: Mapping[str, np.ndarray] | None = None,
    *,
    title: str,
    pool_label: str = "pooled",
    display: str = "clip",
    columns: int = 5,
) -> Figure:
    """A grid: the input, then every named filter's output, each titled with its shape.

    image is grayscale (H, W) on 0..255; ``filtered`` maps a filter's name to
    its 2-D output; ``pooled``, when given, maps the same names to pooled
    outputs, drawn in the row beneath. Returns a Figure ``columns`` panels wide.
    """
    names = list(filtered)
    rows_per_band = 2 if pooled is not None else 1
    bands = -(-(len(names) + 1) // columns)  # ceil: the input takes the first cell
    figure = _new_figure(2.7 * columns, 2.9 * bands * rows_per_band + 0.6)
    grid = figure.subplots(bands * rows_per_band, columns, squeeze=False)
    _show(grid[0, 0], image, f"Input {image.shape}")
    for cell, name in enumerate(names, start=1):
        band, column = divmod(cell, columns)
        row = band * rows_per_band
        shown = display_values(filtered[name], display)[0]
        _show(grid[row, column], shown, f"{name} {filtered[name].shape}")
        if pooled is not None:
            shown = display_values(pooled[name], display)[0]
            _show(grid[row + 1, column], shown, f"{pool_label} {pooled[name].shape}")
    for axes in grid.ravel():
        if not axes.images:
            axes.set_axis_off()  # cells left empty: no frame
    how = (
        "clipped to 0..255, as the lesson does"
        if display == "clip"
        else "each panel rescaled from its own min..max to 0..255"
    )
    figure.suptitle(f"{title}\nValues {how}", fontsize=12)
    return figure
