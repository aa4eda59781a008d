"""Figures of attribution maps and filter portraits, each a pure function returning a Figure.

Beside plots.py (same rules: no pyplot, an Agg canvas per figure). A map is
drawn red where it is high; maps that can be negative (saliency, integrated
gradients, occlusion) use a diverging scale centred on 0, blue below. The overlay lays
the map on the grayscale image, each pixel as opaque as its share of the
map's largest magnitude.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from convlens.inspect import attribution, methods, portraits
from convlens.inspect.methods import METHODS
from convlens.views.mosaic import Mosaic, colour_map, gray_or_colour, over, scaled
from convlens.views.plots import (
    _bare,
    _fixed_figure,
    _gray,
    _grid_title,
    _new_figure,
    _show,
    _title_band,
)


def map_colours(values: np.ndarray, signed: bool) -> tuple[str, Normalize]:
    """The colour map and range for one attribution map: red high, blue negative if signed."""
    limit = float(np.abs(values).max()) or 1.0
    if signed:
        return "RdBu_r", Normalize(-limit, limit)
    return "Reds", Normalize(0.0, limit)


def overlay_rgba(image: np.ndarray, values: np.ndarray, signed: bool) -> np.ndarray:
    """float (H, W, 4): the map's colours, each pixel as opaque as |value| / largest |value|."""
    cmap_name, norm = map_colours(values, signed)
    rgba = colour_map(cmap_name)(scaled(values, norm.vmin, norm.vmax))
    limit = float(np.abs(values).max()) or 1.0
    rgba[..., 3] = np.clip(np.abs(values) / limit, 0, 1) * 0.8
    return rgba


def draw_overlay(axes: Axes, image: np.ndarray, values: np.ndarray, signed: bool, title: str):
    """The grayscale image with the map laid over it."""
    _show(axes, _gray(image), title)
    axes.imshow(overlay_rgba(image, values, signed), interpolation="nearest")


CAPTION_CHARACTERS = 180  # of the why figure's caption per line, at 8 points on 12.5 inches


def why_figure(
    image: np.ndarray,
    values: np.ndarray,
    *,
    method: str,
    title: str,
    top: Sequence[tuple[str, float]],
    caption: str,
) -> Figure:
    """Image, map, overlay and the model's top classes for one image (uint8 (H, W, C)).

    ``values`` float (H, W); ``top`` [(class name, probability)], likeliest
    first; ``caption`` says how the map was computed. 12.5 x 3.9 inches.
    """
    signed = METHODS[method].signed
    figure = _new_figure(12.5, 3.9)
    image_axes, map_axes, over_axes, bar_axes = figure.subplots(
        1, 4, gridspec_kw={"width_ratios": [1, 1.18, 1, 1.1]}
    )
    _show(image_axes, _gray(image), "the image")
    cmap_name, norm = map_colours(values, signed)
    shown = map_axes.imshow(values, cmap=cmap_name, norm=norm, interpolation="nearest")
    map_axes.set_title(f"{method} map", fontsize=10)
    _bare(map_axes)
    figure.colorbar(shown, ax=map_axes, fraction=0.046, pad=0.03)
    draw_overlay(over_axes, image, values, signed, "overlay")
    names = [name for name, _ in top][::-1]
    probs = [p for _, p in top][::-1]
    bars = bar_axes.barh(names, probs, color="#c0c4cc")
    bars[-1].set_color("#d9480f")
    for bar, p in zip(bars, probs, strict=True):
        bar_axes.text(p + 0.02, bar.get_y() + bar.get_height() / 2, f"{p:.1%}", va="center")
    bar_axes.set_xlim(0, 1.25)
    bar_axes.set_xticks([])
    bar_axes.set_title("the model's top classes", fontsize=10)
    for side in ("top", "right", "bottom"):
        bar_axes.spines[side].set_visible(False)
    figure.suptitle(title, fontsize=12)
    figure.supxlabel(caption, fontsize=8, color="#444")
    return figure


def mistakes_why_figure(
    images: np.ndarray,
    wrong_maps: np.ndarray,
    true_maps: np.ndarray,
    true: Sequence[int],
    predicted: Sequence[int],
    class_names: Sequence[str],
    *,
    captions: Sequence[str],
    title: str,
    columns: int = 4,
    signed: bool = False,
) -> Figure:
    """Each mistake three times: the image, a map toward the wrong class, toward the true one.

    ``images`` uint8 (N, H, W, C); maps float (N, H, W), ``signed`` as the
    method's (then blue shows evidence against the class). ``columns`` mistakes
    per row, each taking three panels in cells of 1.25 x 1.75 inches, under
    0.5 inch of title. The 3N panels are drawn as one image (mosaic.Mosaic).
    """
    count = len(images)
    rows = -(-count // columns)
    width = columns * 3 * 1.25
    title, band = _title_band(title, width, 0.5)
    height = rows * 1.75 + band
    figure = _fixed_figure(width, height)
    mosaic = Mosaic(figure)
    side = 1.19  # inches of each square panel; the rest of the cell holds a two-line title
    for n in range(count):
        row, col = divmod(n, columns)
        y = height - band - (row + 1) * 1.75 + 0.05
        gray = gray_or_colour(_gray(images[n]))
        said, truth = class_names[predicted[n]], class_names[true[n]]
        panels = (
            (gray, f"{captions[n]}\ntrue {truth}"),
            (over(gray, overlay_pixels(images[n], wrong_maps[n], signed)), f"why {said}?"),
            (over(gray, overlay_pixels(images[n], true_maps[n], signed)), f"why {truth}?"),
        )
        for k, (pixels, text) in enumerate(panels):
            x = (col * 3 + k) * 1.25 + (1.25 - side) / 2
            mosaic.paste(pixels, (x, y, side, side), text, fontsize=7)
    mosaic.draw()
    _grid_title(figure, title)
    return figure


def overlay_pixels(image: np.ndarray, values: np.ndarray, signed: bool) -> np.ndarray:
    """uint8 RGBA (H, W, 4) of ``overlay_rgba``: the map's colours, opaque where it is strong."""
    return np.clip(np.rint(overlay_rgba(image, values, signed) * 255), 0, 255).astype(np.uint8)


def draw_box(axes: Axes, top: int, left: int, height: int, width: int, colour: str = "#00e5ff"):
    """A rectangle around pixels [top, top + height) x [left, left + width) of an image panel."""
    axes.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5), width, height, fill=False, edgecolor=colour, linewidth=1.2
        )
    )


def run_why_figure(
    run, image: np.ndarray, method: str, target=None, layer: str | None = None, label: str = ""
) -> Figure:
    """The why figure of one uint8 image (H, W, C) for a Run: the map toward ``target``.

    ``target`` a class name or number (default: the predicted class);
    ``label`` names the image in the title ("test image 12, a Sandal").
    """
    found = attribution.explain(run, image[None], method, target, layer)
    names = run.class_names
    target_name = names[int(found.targets[0])]
    title = methods.describe(method, target_name)
    if label:
        title = f"{label}: {title}"
    caption = f"{found.meaning(target_name)} {method}: {found.note}"
    if found.delta is not None:
        caption += f"; completeness error {float(found.delta[0]):+.3g}"
    caption = textwrap.fill(caption, CAPTION_CHARACTERS)
    top = attribution.top_classes(found.probabilities[0], names)
    return why_figure(image, found.maps[0], method=method, title=title, top=top, caption=caption)


def portraits_figure(
    synthesised: np.ndarray,
    images: np.ndarray,
    patches,
    *,
    captions: Sequence[Sequence[str]],
    title: str,
) -> Figure:
    """One row per filter: its synthesised input, then its most exciting test images.

    ``synthesised`` uint8 (F, H, W, C); ``images`` uint8 (F, K, H, W, C);
    ``patches`` a portraits.TopPatches (each image's receptive-field patch is
    drawn as a cyan box); ``captions`` (F, K) strings. 1.15 inches per panel.
    """
    filters, count = images.shape[:2]
    figure = _new_figure(1.15 * (count + 1) + 0.3, 1.3 * filters + 0.7)
    grid = figure.subplots(filters, count + 1, squeeze=False)
    for f in range(filters):
        silent = not (patches.values[f] > 0).any()
        label = f"filter {patches.filters[f]}\n" + ("never fires" if silent else "synthesised")
        _show(grid[f, 0], _gray(synthesised[f]), label)
        grid[f, 0].title.set_fontsize(7)
        for k in range(count):
            axes = grid[f, k + 1]
            _show(axes, _gray(images[f, k]), captions[f][k])
            axes.title.set_fontsize(7)
            if patches.values[f, k] > 0:  # a filter at 0 everywhere has no strongest patch
                top, left, bottom, right = (int(v) for v in patches.windows[f, k])
                draw_box(axes, top, left, bottom - top, right - left)
    figure.suptitle(title, fontsize=10)
    return figure


def run_portraits_figure(
    run, test, layer: str | None = None, filters: str | None = None, count: int = 6
) -> Figure:
    """Portraits of ``filters`` ("0-15"; default the first 16) of ``layer`` over a test Split."""
    row = portraits.portrait_layer(run.model, layer)
    chosen = portraits.parse_filters(filters, row.output_shape[-1])
    found = portraits.top_patches(run, test.images, row.name, chosen, count)
    synthesised = portraits.synthesise(run, row.name, chosen)
    names = run.class_names
    captions = [
        [f"test {i} {names[test.labels[i]]}\n{v:.3g}" for i, v in zip(idx, vals, strict=True)]
        for idx, vals in zip(found.indices, found.values, strict=True)
    ]
    size = f"{found.field.size[0]}x{found.field.size[1]}"
    title = (
        f"What each filter of {row.name} responds to:\nthe {count} test images of "
        f"{len(test.images):,} exciting it most (box: the {size} pixels\nits strongest "
        "value sees) and an input synthesised to maximise its mean activation"
    )
    return portraits_figure(
        synthesised, test.images[found.indices], found, captions=captions, title=title
    )
