"""Grids drawn as one image: the pixels in the saved PNG are the values through the colour map."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.colors import Normalize
from PIL import Image

from convlens.views import attribution_figures, mosaic, plots


def saved(figure) -> np.ndarray:
    """The figure as saved to PNG, read back: uint8 RGBA (rows, columns, 4)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        return np.asarray(image.convert("RGBA"))


def cell_centres(figure, panel: mosaic.Panel, shape: tuple[int, int]) -> np.ndarray:
    """The PNG's pixels at the centre of each value's block of ``panel``: uint8 (h, w, 4)."""
    pixels = saved(figure)
    dpi, rows = figure.dpi, pixels.shape[0]
    x, y, w, h = panel.box
    top = rows - (y + h) * dpi
    r = (top + (np.arange(shape[0]) + 0.5) * h * dpi / shape[0]).astype(int)
    c = (x * dpi + (np.arange(shape[1]) + 0.5) * w * dpi / shape[1]).astype(int)
    return pixels[r[:, None], c[None, :]]


def test_feature_map_panels_are_the_maps_through_the_colour_map_in_the_png() -> None:
    maps = np.random.default_rng(3).random((13, 13, 20)) * 4 - 1  # some below 0
    figure = plots.feature_maps_figure(maps, title="maps", columns=8)
    shown = mosaic.panels(figure)
    norm = Normalize(maps.min(), maps.max())  # one colour scale for the layer
    for k in (0, 7, 8, 19):  # corners of the grid and the last, lone row
        expected = colormaps[plots.MAP_CMAP](norm(maps[..., k]), bytes=True)
        found = cell_centres(figure, shown[k], (13, 13))
        assert np.abs(found.astype(int) - expected).max() <= 1, k


def test_panel_scale_stretches_each_map_to_its_own_range_in_the_png() -> None:
    maps = np.random.default_rng(4).random((6, 6, 3)) * np.array([1.0, 10.0, 100.0])
    figure = plots.feature_maps_figure(maps, title="maps", scale="panel")
    for k, panel in enumerate(mosaic.panels(figure)):
        value = maps[..., k]
        expected = colormaps[plots.MAP_CMAP](Normalize(value.min(), value.max())(value), bytes=True)
        assert np.abs(cell_centres(figure, panel, (6, 6)).astype(int) - expected).max() <= 1


def test_a_grid_draws_one_axes_for_all_panels_plus_its_colour_bar() -> None:
    figure = plots.feature_maps_figure(np.zeros((26, 26, 64)), title="64 maps")
    assert len(mosaic.panels(figure)) == 64 and len(figure.axes) == 2


def test_panels_are_framed_and_keep_their_aspect_ratio() -> None:
    figure = plots.misclassified_figure(
        np.full((1, 10, 20, 1), 255, np.uint8), [0], [1], ["a", "b"], title="wide"
    )
    [panel] = mosaic.panels(figure)
    x, y, w, h = panel.box
    assert w / h == pytest.approx(2.0)  # 20 columns by 10 rows
    pixels = saved(figure)
    rows = pixels.shape[0]
    middle = int(rows - (y + h / 2) * figure.dpi)
    left, right = round(x * figure.dpi), round((x + w) * figure.dpi) - 1
    assert tuple(pixels[middle, left][:3]) == (0, 0, 0)  # the frame, as an Axes' spine
    assert tuple(pixels[middle, right][:3]) == (0, 0, 0)
    assert tuple(pixels[middle, (left + right) // 2][:3]) == (255, 255, 255)  # the picture


def test_a_large_picture_is_averaged_when_shrunk() -> None:
    checker = np.indices((200, 200)).sum(axis=0) % 2 * 255  # 1-pixel black and white squares
    rgba = mosaic.gray_or_colour(checker)
    small = mosaic.resampled(rgba, 100, 100)
    assert small.shape == (100, 100, 4)
    assert np.abs(small[..., :3].astype(int) - 127.5).max() <= 1  # grey, not aliased stripes


def test_an_enlarged_picture_repeats_each_value_as_a_block() -> None:
    values = np.arange(6, dtype=np.uint8).reshape(2, 3)
    rgba = np.repeat(values[..., None], 4, axis=2)
    big = mosaic.resampled(rgba, 4, 6)
    np.testing.assert_array_equal(big[..., 0], np.kron(values, np.ones((2, 2), np.uint8)))


def test_gradcam_overlay_is_the_red_map_over_the_gray_image_as_opaque_as_it_is_strong() -> None:
    image = np.full((1, 8, 8, 1), 100, np.uint8)
    maps = np.zeros((1, 8, 8))
    maps[0, :, 4:] = np.linspace(0.5, 2.0, 4)  # right half positive, left half zero
    figure = attribution_figures.mistakes_why_figure(
        image, maps, maps, [0], [1], ["a", "b"], captions=["test image 0"], title="why"
    )
    photo, wrong, true = mosaic.panels(figure)
    assert wrong.title == "why b?" and true.title == "why a?"
    found = cell_centres(figure, wrong, (8, 8))[..., :3].astype(float)
    np.testing.assert_allclose(found[:, :4], 100, atol=1)  # no evidence: the image itself
    strength = maps[0] / maps.max()
    colour = colormaps["Reds"](strength)[..., :3] * 255  # the overlay's Reds on 0..largest
    alpha = 0.8 * strength[..., None]
    expected = alpha * colour + (1 - alpha) * 100
    np.testing.assert_allclose(found, expected, atol=1.5)


def test_training_curves_subtitle_is_wrapped_inside_the_figure() -> None:
    history = [{"epoch": 1.0, "train_loss": 1.0, "test_loss": 0.9, "test_accuracy": 0.8}]
    note = (
        "train: averaged over each epoch while the weights change; test: the weights' moving "
        "average (EMA 0.99) after the epoch; train loss includes label smoothing 0.1, test loss "
        "does not; from epoch 2 an epoch trains on 33% of the images, the hardest"
    )
    figure = plots.training_curves_figure(history, title="Training curves of run", note=note)
    figure.canvas.draw()
    box = figure._suptitle.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= figure.bbox.width  # was cut at both edges
    text = figure.get_suptitle()
    assert text.count("\n") >= 2 and " ".join(text.split()) == f"Training curves of run {note}"


def test_wrapping_keeps_every_word_and_breaks_only_lines_too_wide() -> None:
    assert plots.wrap_to_width("short line", 5, 11) == "short line"
    words = ("word " * 60).strip()
    wrapped = plots.wrap_to_width(words, 3, 11)
    assert wrapped.replace("\n", " ") == words and wrapped.count("\n") > 3
    assert plots.wrap_to_width("a\nb", 5, 11) == "a\nb"  # lines already broken stay broken


@pytest.mark.parametrize(
    "low, high",
    [(0.0, 0.31), (0.0, 1.42), (-3.0, 250.0), (0.0, 1.0), (1000.0, 1000.004), (0.0, 2e-6)],
)
def test_a_mosaic_colour_bar_ticks_as_matplotlibs_own_colour_bar(low, high) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure

    reference = Figure(figsize=(3, 3), dpi=100)
    FigureCanvasAgg(reference)
    cax = reference.add_axes((0.4, 0.25, 0.1 / 3, 1.5 / 3))  # 0.1 x 1.5 inches, as the journey's
    bar = reference.colorbar(ScalarMappable(Normalize(low, high), "inferno"), cax=cax)
    bar.ax.tick_params(labelsize=7)
    reference.canvas.draw()
    locations = bar.ax.yaxis.get_majorticklocs()
    texts = [t.get_text() for t in bar.ax.get_yticklabels()]
    inside = (locations >= low - 1e-12) & (locations <= high + 1e-12)  # the ticks on the bar
    expected = [text for text, keep in zip(texts, inside, strict=True) if keep]
    offset = bar.ax.yaxis.get_offset_text().get_text()

    figure = Figure(figsize=(3, 3), dpi=100)
    FigureCanvasAgg(figure)
    drawn = mosaic.Mosaic(figure)
    labels = drawn.colour_bar((1.2, 0.75, 0.1, 1.5), "inferno", low, high)
    assert labels == expected and mosaic.bars(figure)[0].offset == offset


def test_pixels_are_copied_as_they_are_at_the_figures_dpi_and_resampled_at_another() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1), dpi=100)
    FigureCanvasAgg(figure)
    drawn = mosaic.Mosaic(figure)
    values = np.random.default_rng(5).random((7, 9))
    drawn.paste(mosaic.colour_mapped(values, "viridis", 0, 1), (0.1, 0.1, 0.9, 0.7))
    drawn.draw()
    np.testing.assert_array_equal(saved(figure), drawn.pixels)  # not one value changed
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=200)  # the other path: matplotlib's resampling
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        twice = np.asarray(image.convert("RGBA"))
    assert twice.shape == (200, 400, 4)
    np.testing.assert_array_equal(twice[1::2, 1::2][5:-5, 5:-5], drawn.pixels[5:-5, 5:-5])


@pytest.mark.parametrize("low, high", [(0.0, 1.0), (-3.0, 250.0), (0.2, 0.2), (1e-9, 2e-9)])
def test_colour_mapping_is_matplotlibs_normalize_and_colour_map_exactly(low, high) -> None:
    values = np.random.default_rng(6).normal(size=(9, 7)) * (high - low + 1) + low
    values[0, 0] = np.nan  # the colour map's "bad" colour, as imshow shows it
    for name in ("inferno", "RdBu", "gray"):
        expected = colormaps[name](Normalize(low, high)(values), bytes=True)
        np.testing.assert_array_equal(mosaic.colour_mapped(values, name, low, high), expected)
