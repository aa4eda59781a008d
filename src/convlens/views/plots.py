"""matplotlib figures, each a pure function of arrays returning a Figure.

Figures are built on ``matplotlib.figure.Figure`` with an Agg canvas, never
through pyplot, so no global figure state leaks between calls or threads.
Images are shown in grayscale on the 0..255 scale the lesson uses.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path

from convlens.errors import ConvlensError
from convlens.fsutil import atomic_write_bytes

# display_values and DISPLAY_MODES live in lab (the lab's results show with them); named here too
from convlens.lab.ops import DISPLAY_MODES, display_values, format_number  # noqa: F401
from convlens.views.figure import ShownFigure
from convlens.views.layout import (
    EDGE,
    LABEL_PAD,
    TICK,
    TITLE_PAD,
    line_inches,
    place,
    row_of_axes,
    text_inches,
    x_margin,
)
from convlens.views.mosaic import Mosaic, colour_mapped, gray_or_colour
from convlens.views.written_text import TextLayer, Written


def _new_figure(width: float, height: float) -> Figure:
    """A Figure with its own Agg canvas (no pyplot)."""
    figure = ShownFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _show(axes: Axes, values: np.ndarray, title: str) -> None:
    """Draw a 0..255 image, grayscale (H, W) or RGB (H, W, 3), with ``title`` and no ticks."""
    # "antialiased" filters when a large image is shrunk to fit (so thin lines
    # do not vanish between sampled pixels) and keeps small images blocky.
    if values.ndim == 3:  # colour: drawn as it is (imshow takes uint8 RGB on 0..255)
        rgb = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        axes.imshow(rgb, interpolation="antialiased")
    else:
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


# ---------------------------------------------------------------- inside a trained model
#
# Sizes are stated in inches at the Agg canvas's 100 dots per inch, so a
# figure of W x H inches is a PNG of 100 W x 100 H pixels.

MAP_CMAP = "inferno"  # activations: 0 (what ReLU leaves of a negative) is black
FILTER_CMAP = "RdBu"  # weights: red negative, blue positive, white zero (as the lab's kernels)
SCALES = ("row", "panel")
JOURNEY_PANEL = 2.0  # inches per journey panel (width and height)
JOURNEY_TITLE = 0.6  # inches of title band above the journey grid
MAP_PANEL = 1.25  # inches per panel of a many-panel grid (feature maps, filters)
BAR_WIDTH = 1.05  # inches at the right of such a grid for its labelled colour bar


def _gray(image: np.ndarray) -> np.ndarray:
    """An image (H, W) or (H, W, C) as 2-D values for a grayscale panel (RGB by luma)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        if image.shape[2] == 1:
            return image[:, :, 0]
        return image[..., :3] @ np.array([0.299, 0.587, 0.114])
    return image


def _picture(image: np.ndarray) -> np.ndarray:
    """A model input (H, W), (H, W, 1) or (H, W, 3) as drawn: gray as (H, W), colour kept."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    return _gray(image)


def _bare(axes: Axes) -> None:
    axes.set_xticks([])
    axes.set_yticks([])


def _scale_text(scale: str) -> str:
    if scale == "row":
        return "one colour scale per row (colour bar at the right of the row)"
    if scale == "panel":
        return "one colour scale per panel (each with its colour bar)"
    raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")


def _limits(low: float, high: float) -> tuple[float, float]:
    """A colour range that is never empty (a map of one value, like a dead filter's 0)."""
    return (low, high) if high > low else (low, low + 1.0)


def _fixed_figure(width: float, height: float) -> Figure:
    """A Figure with its own Agg canvas and no layout engine: axes go where they are put."""
    figure = ShownFigure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _axes_at(figure: Figure, x: float, y: float, w: float, h: float) -> Axes:
    """New axes at (x, y) inches from the bottom left, w by h inches."""
    width, height = figure.get_size_inches()
    return figure.add_axes((x / width, y / height, w / width, h / height))


def wrap_to_width(text: str, width: float, fontsize: float) -> str:
    """``text`` with each line broken between words so none is wider than ``width`` inches.

    Widths are measured in matplotlib's default font at ``fontsize`` points,
    as the figure will draw them; a single word wider than ``width`` stays whole.
    """
    prop = FontProperties(size=fontsize)
    limit = width * 72  # points

    def fits(line: str) -> bool:
        return text_to_path.get_text_width_height_descent(line, prop, ismath=False)[0] <= limit

    lines = []
    for line in text.split("\n"):
        words = line.split(" ")
        while words:
            low, high = 1, len(words)  # words[:low] is kept whole; find the most that fit
            while low < high:
                middle = (low + high + 1) // 2
                if fits(" ".join(words[:middle])):
                    low = middle
                else:
                    high = middle - 1
            lines.append(" ".join(words[:low]))
            words = words[low:]
    return "\n".join(lines)


TITLE_SIZE = 11  # points of a grid figure's title
TITLE_LINE = TITLE_SIZE * 1.2 / 72  # inches per title line


def _title_band(text: str, width: float, band: float) -> tuple[str, float]:
    """The title wrapped to a figure ``width`` inches wide, and its band grown a line per added line."""
    wrapped = wrap_to_width(text, width - 0.2, TITLE_SIZE)
    return wrapped, band + TITLE_LINE * (wrapped.count("\n") - text.count("\n"))


def _grid_title(figure: Figure, text: str) -> None:
    """The figure's title (already wrapped to fit) at the top of its title band."""
    figure.suptitle(text, fontsize=TITLE_SIZE, y=1 - 0.06 / figure.get_figheight(), va="top")


def journey_figure(
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    filter_index: int,
    layer_shapes: Mapping[str, tuple[int, ...]],
    row_labels: Sequence[str],
    title: str,
    scale: str = "panel",
) -> Figure:
    """The lesson's journey grid: one image per row, one layer's map per column.

    ``images`` are the inputs (N, H, W) or (N, H, W, C) on 0..255, drawn in
    the first column titled ``row_labels``; ``maps`` {layer name: (N, h, w)}
    is filter ``filter_index``'s map after each layer, drawn in order, each
    panel titled with the layer's name and output shape (``layer_shapes``,
    without batch). ``scale`` "panel" gives each map its own colour range and
    colour bar; "row" shares one range and one bar across a row's maps.
    Returns a Figure of N rows by 1 + len(maps) columns: JOURNEY_PANEL
    inches per panel, plus 0.5 inch per map column for colour bars ("panel")
    or 0.6 inch for the row's bar ("row"), plus JOURNEY_TITLE inches of title.
    """
    _scale_text(scale)  # refuses an unknown scale before drawing
    names = list(maps)
    count = len(images)
    bar_room = 0.5 if scale == "panel" else 0.0
    widths = [JOURNEY_PANEL] + [JOURNEY_PANEL + bar_room] * len(names)
    lefts = np.concatenate([[0.0], np.cumsum(widths)[:-1]])
    width = sum(widths) + (0.6 if scale == "row" else 0.0)
    text, band = _title_band(
        f"{title}\nFilter {filter_index} (numbered from 0) after each convolution and pooling "
        f"layer; {_scale_text(scale)}",
        width,
        JOURNEY_TITLE,
    )
    height = JOURNEY_PANEL * count + band
    figure = _fixed_figure(width, height)
    side = JOURNEY_PANEL - 0.5  # the square panel; 0.45 inch above it for a two-line title
    inset = (JOURNEY_PANEL - side) / 2
    mosaic = Mosaic(figure)
    for r in range(count):
        y = height - band - (r + 1) * JOURNEY_PANEL + 0.05
        box = (lefts[0] + inset, y, side, side)
        mosaic.paste(gray_or_colour(_picture(images[r])), box, row_labels[r], fontsize=9)
        values = [np.asarray(maps[name][r], dtype=np.float64) for name in names]
        row_range = _limits(min(v.min() for v in values), max(v.max() for v in values))
        for left, name, value in zip(lefts[1:], names, values, strict=True):
            low, high = row_range if scale == "row" else _limits(value.min(), value.max())
            shape = ", ".join(str(n) for n in layer_shapes.get(name, value.shape))
            pixels = colour_mapped(value, MAP_CMAP, low, high)
            mosaic.paste(pixels, (left + inset, y, side, side), f"{name}\n({shape})", fontsize=9)
            if scale == "panel":
                mosaic.colour_bar((left + inset + side + 0.06, y, 0.1, side), MAP_CMAP, low, high)
        if scale == "row":
            mosaic.colour_bar((sum(widths) + 0.05, y, 0.12, side), MAP_CMAP, *row_range)
    mosaic.draw()
    _grid_title(figure, text)
    return figure


def _panel_grid(
    count: int,
    columns: int,
    title: str,
    title_height: float,
    bar_width: float,
    cell: tuple[float, float] = (MAP_PANEL, MAP_PANEL),
    title_gap: float = 0.22,
) -> tuple[Figure, list[tuple[float, float, float, float]], Axes | None]:
    """A Figure of ``cell``-inch cells (width, height) for ``count`` panels, under a title band.

    ``title`` goes in the band of ``title_height`` inches on top, wrapped to
    the figure's width (the band grows a line per added line);
    ``title_gap`` inches above each panel hold its title. Returns (figure, the
    panels' boxes (x, y, w, h inches from the bottom left) row by row, colour
    bar axes at the right, or None when ``bar_width`` is 0). The panels are
    drawn by a Mosaic: as 64 matplotlib Axes they took a second to draw.
    """
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    grid_w, grid_h = cell[0] * columns, cell[1] * rows
    title, title_height = _title_band(title, grid_w + bar_width, title_height)
    figure = _fixed_figure(grid_w + bar_width, grid_h + title_height)
    _grid_title(figure, title)
    margin, side_gap = 0.05, 0.1  # inches
    panel_h = (grid_h - margin - rows * title_gap) / rows
    panel_w = (grid_w - 2 * margin - (columns - 1) * side_gap) / columns
    boxes = []
    for k in range(count):
        row, column = divmod(k, columns)
        top = grid_h - title_gap - row * (panel_h + title_gap)
        boxes.append((margin + column * (panel_w + side_gap), top - panel_h, panel_w, panel_h))
    bar = None
    if bar_width:
        bar = _axes_at(figure, grid_w + 0.1, 0.2 * grid_h, 0.18, 0.6 * grid_h)
    return figure, boxes, bar


def _colour_bar(figure: Figure, bar: Axes, cmap: str, low: float, high: float, label: str = ""):
    """A matplotlib colour bar in ``bar`` for ``cmap`` on low..high (the panels are not Axes)."""
    mappable = ScalarMappable(norm=Normalize(low, high), cmap=cmap)
    return figure.colorbar(mappable, cax=bar, label=label)


def feature_maps_figure(
    maps: np.ndarray, *, title: str, columns: int = 8, scale: str = "layer"
) -> Figure:
    """Every map of one layer for one image: maps (H, W, C) drawn as C panels titled 0..C-1.

    ``scale`` "layer" draws every panel on one colour range with one colour
    bar, so a weak or dead filter looks dark; "panel" stretches each map to
    its own min..max and writes that max in its title. Returns a Figure
    ``columns`` panels wide, MAP_PANEL inches per panel (+BAR_WIDTH for the
    colour bar with "layer") and 0.6 inch of title.
    """
    if scale not in ("layer", "panel"):
        raise ValueError(f"scale must be 'layer' or 'panel', not {scale!r}")
    maps = np.asarray(maps, dtype=np.float64)
    depth = maps.shape[-1]
    how = (
        "one colour scale for the whole layer"
        if scale == "layer"
        else "each panel stretched to its own range"
    )
    text = f"{title}\nPanels titled by filter number (from 0); {how}"
    bar_width = BAR_WIDTH if scale == "layer" else 0.0
    figure, boxes, bar = _panel_grid(depth, columns, text, 0.6, bar_width)
    low, high = _limits(float(maps.min()), float(maps.max()))
    mosaic = Mosaic(figure)
    for k, box in enumerate(boxes):
        value = maps[..., k]
        if scale == "layer":
            mosaic.paste(colour_mapped(value, MAP_CMAP, low, high), box, str(k), 8, pad=2)
        else:
            own = colour_mapped(value, MAP_CMAP, *_limits(value.min(), value.max()))
            mosaic.paste(own, box, f"{k}: max {format_number(round(float(value.max()), 2))}", 7)
    mosaic.draw()
    if scale == "layer":
        _colour_bar(figure, bar, MAP_CMAP, low, high, "value after the activation")
    return figure


def filters_figure(
    kernels: np.ndarray, *, title: str, columns: int = 8, scale: str = "panel"
) -> Figure:
    """Learned kernels (kh, kw, in_channels, filters) as a grid on a diverging scale.

    White is zero, blue positive and red negative. ``scale`` "panel" divides
    each kernel by its own largest absolute weight (written in its title) so
    every pattern shows, on a colour bar from -1 to 1; "shared" draws all on
    one range symmetric about zero, so their sizes compare (a few strong
    kernels can then wash out the rest). A kernel with several input channels
    is drawn as the sum over them (the title says so). Returns a Figure
    ``columns`` panels wide, MAP_PANEL inches per panel (+BAR_WIDTH for the
    colour bar) and 0.8 inch of title.
    """
    if scale not in ("panel", "shared"):
        raise ValueError(f"scale must be 'panel' or 'shared', not {scale!r}")
    kernels = np.asarray(kernels, dtype=np.float64)
    kh, kw, channels, count = kernels.shape
    if channels == 3:
        return _colour_filters_figure(kernels, title=title, columns=columns)
    flat = kernels.sum(axis=2)  # (kh, kw, filters)
    peaks = np.abs(flat).max(axis=(0, 1))  # (filters,)
    limit = float(peaks.max()) or 1.0
    how = (
        "each scaled to its own largest |weight| (in its title)"
        if scale == "panel"
        else "one scale for all"
    )
    summed = f", each the sum over its {channels} input channels" if channels > 1 else ""
    text = (
        f"{title}\n{count} kernels of {kh}x{kw}{summed}, titled by filter number (from 0)\n"
        f"{how}; white is zero, blue positive, red negative"
    )
    figure, boxes, bar = _panel_grid(count, columns, text, 0.8, BAR_WIDTH)
    mosaic = Mosaic(figure)
    for k, box in enumerate(boxes):
        if scale == "panel":
            values, caption = flat[..., k] / (peaks[k] or 1.0), f"{k}: ±{peaks[k]:.2g}"
            pixels = colour_mapped(values, FILTER_CMAP, -1.0, 1.0)
        else:
            caption = str(k)
            pixels = colour_mapped(flat[..., k], FILTER_CMAP, -limit, limit)
        mosaic.paste(pixels, box, caption, 8, pad=2)
    mosaic.draw()
    label = "weight ÷ the panel's largest |weight|" if scale == "panel" else "weight"
    span = (-1.0, 1.0) if scale == "panel" else (-limit, limit)
    _colour_bar(figure, bar, FILTER_CMAP, *span, label)
    return figure


def _colour_filters_figure(kernels: np.ndarray, *, title: str, columns: int) -> Figure:
    """A first layer's kernels on RGB input (kh, kw, 3, filters), each drawn in colour.

    Each kernel's red, green and blue weights become its pixel's red, green and
    blue: 0.5 + 0.5 * weight / the kernel's largest |weight|, so mid-grey is
    zero, a bright red pixel weighs the red channel positively, and the
    kernel's pattern shows the colours it looks for.
    """
    kh, kw, _, count = kernels.shape
    peaks = np.abs(kernels).max(axis=(0, 1, 2))  # (filters,)
    text = (
        f"{title}\n{count} kernels of {kh}x{kw}x3 in colour, titled by filter number (from 0)\n"
        "each pixel's red, green, blue = its weights for those channels, scaled to the "
        "kernel's largest |weight|; mid-grey is zero"
    )
    figure, boxes, _ = _panel_grid(count, columns, text, 0.8, 0.0)
    mosaic = Mosaic(figure)
    for k, box in enumerate(boxes):
        shown = 0.5 + 0.5 * kernels[..., k] / (peaks[k] or 1.0)  # (kh, kw, 3) in 0..1
        pixels = gray_or_colour(np.clip(shown, 0.0, 1.0) * 255)
        mosaic.paste(pixels, box, f"{k}: ±{peaks[k]:.2g}", 8, pad=2)
    mosaic.draw()
    return figure


def _series(history: Sequence[Mapping[str, float | None]], key: str) -> tuple[list, list]:
    """(epochs, values) of one history column, leaving out epochs where it was not measured."""
    pairs = [(row["epoch"], row.get(key)) for row in history if row.get(key) is not None]
    return [int(e) for e, _ in pairs], [float(v) for _, v in pairs]


def training_curves_figure(
    history: Sequence[Mapping[str, float | None]], *, title: str, note: str = ""
) -> Figure:
    """Loss and accuracy per epoch, train and test, side by side (two panels).

    ``history`` is history.csv's rows (epoch, train_loss, train_accuracy,
    test_loss, test_accuracy, ...); ``note`` is printed under the title.
    Returns a Figure 11 x 4.2 inches.
    """
    figure = _fixed_figure(11, 4.2)
    loss_axes, acc_axes = figure.subplots(1, 2)
    for axes, metric, label in ((loss_axes, "loss", "Loss"), (acc_axes, "accuracy", "Accuracy")):
        for split, style in (("train", "o-"), ("test", "s--")):
            epochs, values = _series(history, f"{split}_{metric}")
            if values:
                axes.plot(epochs, values, style, label=split)
        axes.set_xlabel("epoch")
        axes.set_title(label, fontsize=10)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        axes.legend()
    acc_axes.yaxis.set_major_formatter(lambda value, _pos: f"{value:.0%}")
    text = f"{title}\n{note}" if note else title
    wrapped = wrap_to_width(text, figure.get_figwidth() - 0.3, 11)
    figure.suptitle(wrapped, fontsize=11, y=1 - EDGE / 4.2, va="top")
    top = EDGE + line_inches(11, wrapped.count("\n") + 1) + 0.1 + line_inches(10) + TITLE_PAD
    row_of_axes(figure, [loss_axes, acc_axes], top=top, bottom=x_margin(), gap=0.35)
    return figure


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str], *, title: str) -> Figure:
    """The confusion matrix (K, K) of counts, rows true class and columns predicted.

    Each cell shows its count; its colour is the share of the true class
    (the row) it holds, with a colour bar, so small mistakes stay visible
    beside the large diagonal. Returns a Figure 0.62 K + 3.6 by at most 0.55 K + 2.4
    inches (less when long class names leave the square matrix narrower).
    """
    confusion = np.asarray(confusion)
    k = len(class_names)
    totals = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    width, height = 0.62 * k + 3.6, 0.55 * k + 2.4
    figure = _fixed_figure(width, height)
    axes = figure.add_axes((0, 0, 1, 1))
    shown = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    counts = TextLayer(axes)  # K x K texts: written by Pillow, 2 ms each as matplotlib's
    axes.add_artist(counts)
    for (i, j), count in np.ndenumerate(confusion):
        colour = "white" if share[i, j] > 0.5 else "black"
        counts.add(Written(str(int(count)), j, i, 8, "center", "center", colour))
    labels = [f"{name} ({i})" for i, name in enumerate(class_names)]
    axes.set_xticks(range(k), [str(i) for i in range(k)], fontsize=8)
    axes.set_yticks(range(k), labels, fontsize=8)
    axes.set_xlabel("predicted class (number)")
    axes.set_ylabel("true class")
    # Over the whole figure: a few classes make a matrix narrower than its title.
    title_text = figure.text(0.5, 1 - EDGE / height, title, ha="center", va="top", fontsize=11)
    # The square matrix as large as the margins leave, its colour bar at its right.
    left = EDGE + line_inches("medium") + LABEL_PAD + max(text_inches(t, 8) for t in labels) + TICK
    bar_room = 0.15 + 0.22 + TICK + text_inches("0.0", "medium") + LABEL_PAD
    bar_room += line_inches("medium") + EDGE
    top = EDGE + line_inches(11) + TITLE_PAD / 2
    bottom = x_margin(8)
    side = min(width - left - bar_room, height - top - bottom)
    left += (width - left - bar_room - side) / 2  # what the square leaves, on both sides
    if top + side + bottom < height:  # long class names left a narrower square: no blank band
        height = top + side + bottom
        figure.set_size_inches(width, height)
        title_text.set_y(1 - EDGE / height)
    place(figure, axes, left, height - top - side, side, side)
    bar = figure.add_axes((0, 0, 1, 1))
    place(figure, bar, left + side + 0.15, height - top - side, 0.22, side)
    figure.colorbar(shown, cax=bar).set_label("share of the true class")
    return figure


def per_class_figure(
    accuracy: np.ndarray, class_names: Sequence[str], *, overall: float, title: str
) -> Figure:
    """Per-class test accuracy (K,) as horizontal bars with their values; NaN: no images.

    A dashed line marks the overall accuracy. Returns a Figure 8 x 0.35 K + 1.4 inches.
    """
    accuracy = np.asarray(accuracy, dtype=np.float64)
    k = len(class_names)
    height = 0.35 * k + 1.4
    figure = _fixed_figure(8, height)
    axes = figure.add_axes((0, 0, 1, 1))
    positions = np.arange(k)
    axes.barh(positions, np.nan_to_num(accuracy), color="#4c72b0")
    for i, value in enumerate(accuracy):
        text = "no images" if np.isnan(value) else f"{value:.1%}"
        axes.text(
            min(np.nan_to_num(value), 1.0) + 0.01,
            i,
            text,
            va="center",
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
            zorder=3,
        )
    # The line runs down the bars and stops under its label, which sits above the first bar
    # (left-aligned near 0% so that it stays inside the axes).
    axes.plot([overall, overall], [k - 0.5, -0.6], color="black", linestyle="--", linewidth=1)
    axes.text(
        overall,
        -0.95,
        f"overall {overall:.1%}",
        ha="left" if overall < 0.1 else "center",
        va="center",
        fontsize=8,
    )
    axes.set_yticks(positions, list(class_names), fontsize=9)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.12)
    axes.set_ylim(k - 0.5, -1.3)
    axes.xaxis.set_major_formatter(lambda value, _pos: f"{value:.0%}")
    axes.set_xlabel("test accuracy")
    axes.set_title(title, fontsize=11)
    left = EDGE + max(text_inches(name, 9) for name in class_names) + TICK
    top, bottom = EDGE + line_inches(11) + TITLE_PAD, x_margin()
    place(figure, axes, left, bottom, 8 - left - 0.15, height - top - bottom)
    return figure


def misclassified_figure(
    images: np.ndarray,
    true: Sequence[int],
    predicted: Sequence[int],
    class_names: Sequence[str],
    *,
    confidence: Sequence[float] | None = None,
    captions: Sequence[str] | None = None,
    title: str,
    columns: int = 8,
) -> Figure:
    """A gallery of mistakes: each image (N, H, W[, C]) titled with its true and predicted class.

    ``confidence`` (N,), the probability given to the wrong class, is shown
    beside the prediction; ``captions`` (N,) add a first title line (e.g. the
    test index). Returns a Figure ``columns`` panels wide, 1.6 by 2.1 inches
    per panel plus 0.5 inch of title.
    """
    count = len(images)
    figure, boxes, _ = _panel_grid(count, columns, title, 0.5, 0.0, cell=(1.6, 2.1), title_gap=0.5)
    mosaic = Mosaic(figure)
    for n, box in enumerate(boxes):
        said = class_names[predicted[n]]
        if confidence is not None:
            said += f" {confidence[n]:.0%}"
        lines = [captions[n]] if captions is not None else []
        lines += [f"true: {class_names[true[n]]}", f"said: {said}"]
        mosaic.paste(gray_or_colour(_picture(images[n])), box, "\n".join(lines), 8)
    mosaic.draw()
    return figure


def comparison_figure(histories: Mapping[str, Sequence[Mapping[str, float | None]]]) -> Figure:
    """Test accuracy per epoch of several runs {run name: history rows} in one panel.

    Returns a Figure 7 x 3.8 inches.
    """
    figure = _new_figure(7, 3.8)
    axes = figure.subplots()
    for name, history in histories.items():
        epochs, values = _series(history, "test_accuracy")
        if values:
            axes.plot(epochs, values, "o-", label=name)
    axes.set_xlabel("epoch")
    axes.set_ylabel("test accuracy")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.yaxis.set_major_formatter(lambda value, _pos: f"{value:.0%}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title("Test accuracy per epoch", fontsize=11)
    return figure


# ---------------------------------------------------------------- saving

FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")


def check_figure_path(path: Path) -> None:
    """Refuse, before any work, a figure path that could not be written (one sentence)."""
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise ConvlensError(
            f"--out {path} has no figure extension; end it in {', '.join(FIGURE_SUFFIXES)}."
        )
    if not path.parent.is_dir():
        raise ConvlensError(
            f"the folder {path.parent} does not exist; create it or choose another --out."
        )


def save_figure(figure: Figure, path: Path) -> None:
    """Render ``figure`` in memory, then write it atomically: never half-written."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lower().lstrip("."))
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise ConvlensError(
            f"could not write {path} ({exc.strerror or exc}); choose a writable --out."
        ) from None
