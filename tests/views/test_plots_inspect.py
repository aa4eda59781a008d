"""Figures of a trained model: pixel sizes, panels, titles and colour bars."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image

from convlens.views import mosaic, plots
from convlens.views.written_text import TextLayer

NAMES = tuple(f"class {i}" for i in range(10))


def png_pixels(figure: Figure) -> np.ndarray:
    """The figure as matplotlib saves it: uint8 RGBA (rows, columns, 4) read back from the PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        return np.asarray(image.convert("RGBA"))


def png_size(figure: Figure) -> tuple[int, int]:
    rows, columns = png_pixels(figure).shape[:2]
    return columns, rows


def assert_size(figure: Figure, width_in: float, height_in: float) -> None:
    """The PNG is the documented size in inches at 100 dots per inch (to a pixel)."""
    width, height = png_size(figure)
    assert abs(width - 100 * width_in) <= 1 and abs(height - 100 * height_in) <= 1


def assert_fits(figure: Figure, text) -> None:
    """The drawn text lies within the figure's width, and above every panel's title (those
    the Mosaic wrote into its image included)."""
    renderer = figure.canvas.get_renderer()
    box = text.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= figure.bbox.width, (box, figure.bbox)
    for other in figure.texts:
        if other is not text and other.get_text():
            assert other.get_window_extent(renderer).y1 <= box.y0, other.get_text()
    written = mosaic.labels(figure)
    assert written, "the panels' titles are written into the mosaic"
    for label in written:  # pixel rows from the top: a label's top lies below the text's bottom
        assert figure.bbox.height - label.box[1] <= box.y0, label.text


def panels(figure: Figure) -> list:
    """The pictures a grid figure drew (its panels, colour bars excluded)."""
    return mosaic.panels(figure)


def titles(figure: Figure) -> list[str]:
    return [panel.title for panel in panels(figure)]


def bar_limits(figure: Figure) -> list[tuple[float, float]]:
    """The value range of each colour bar."""
    return [
        axes._colorbar.mappable.get_clim() for axes in figure.axes if hasattr(axes, "_colorbar")
    ]


def colour_bars(figure: Figure) -> int:
    return sum(1 for axes in figure.axes if hasattr(axes, "_colorbar"))


@pytest.fixture(scope="module")
def journey_data() -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, tuple]]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 28, 28, 1), dtype=np.uint8)
    shapes = {"conv2d": (26, 26, 64), "max_pooling2d": (13, 13, 64), "conv2d_1": (11, 11, 64)}
    maps = {name: rng.random((3, *shape[:2])) for name, shape in shapes.items()}
    maps["conv2d_1"][1] = 0.0  # a dead filter's map: one value, still drawable
    return images, maps, shapes


@pytest.mark.parametrize("scale", ["panel", "row"])
def test_journey_grid_has_a_row_per_image_and_a_column_per_layer(journey_data, scale) -> None:
    images, maps, shapes = journey_data
    labels = [f"test image {i}" for i in range(3)]
    figure = plots.journey_figure(
        images,
        maps,
        filter_index=1,
        layer_shapes=shapes,
        row_labels=labels,
        title="Journey",
        scale=scale,
    )
    shown = panels(figure)
    assert len(shown) == 3 * 4
    assert titles(figure)[:4] == [
        "test image 0",
        "conv2d\n(26, 26, 64)",
        "max_pooling2d\n(13, 13, 64)",
        "conv2d_1\n(11, 11, 64)",
    ]
    assert len(mosaic.bars(figure)) == (9 if scale == "panel" else 3)
    assert colour_bars(figure) == 0  # drawn in the mosaic, not as 9 Axes
    expected = "one colour scale per panel" if scale == "panel" else "one colour scale per row"
    assert (
        expected in figure.get_suptitle() and "Filter 1 (numbered from 0)" in figure.get_suptitle()
    )
    bars = 0.5 * 3 if scale == "panel" else 0.6
    wrapped = figure.get_suptitle().count("\n") - 1  # lines added to fit the title's width
    assert wrapped == (1 if scale == "row" else 0)  # 8.6 inches is too narrow for "row"'s line
    assert_fits(figure, figure._suptitle)
    title = plots.JOURNEY_TITLE + wrapped * plots.TITLE_LINE
    assert_size(figure, plots.JOURNEY_PANEL * 4 + bars, plots.JOURNEY_PANEL * 3 + title)


def test_journey_refuses_an_unknown_scale(journey_data) -> None:
    images, maps, shapes = journey_data
    with pytest.raises(ValueError):
        plots.journey_figure(
            images,
            maps,
            filter_index=0,
            layer_shapes=shapes,
            row_labels="abc",
            title="t",
            scale="column",
        )


def test_feature_maps_grid_has_one_panel_per_map() -> None:
    maps = np.random.default_rng(1).random((13, 13, 20))
    figure = plots.feature_maps_figure(maps, title="maps", columns=8)
    assert len(panels(figure)) == 20 and colour_bars(figure) == 1
    assert titles(figure)[:3] == ["0", "1", "2"]
    assert "one colour scale for the whole layer" in figure.get_suptitle()
    assert_size(figure, plots.MAP_PANEL * 8 + plots.BAR_WIDTH, plots.MAP_PANEL * 3 + 0.6)
    each = plots.feature_maps_figure(maps, title="maps", columns=5, scale="panel")
    assert len(panels(each)) == 20 and titles(each)[0].startswith("0: max ")
    assert_size(each, plots.MAP_PANEL * 5, plots.MAP_PANEL * 4 + 0.6)


@pytest.mark.parametrize("scale", ["panel", "shared"])
def test_filters_grid_is_diverging_and_centred_on_zero(scale) -> None:
    kernels = np.random.default_rng(2).normal(size=(3, 3, 1, 12))
    kernels[..., 0] *= 10  # one strong filter
    figure = plots.filters_figure(kernels, title="filters", columns=6, scale=scale)
    shown = panels(figure)
    assert len(shown) == 12 and colour_bars(figure) == 1
    [(low, high)] = bar_limits(figure)
    assert low == -high
    kernel = kernels[:, :, 0, 1]
    if scale == "panel":
        assert high == 1 and titles(figure)[0].startswith("0: ±")
        expected = kernel / np.abs(kernel).max()
    else:
        assert high == pytest.approx(np.abs(kernels).max())
        expected = kernel / high
    # diverging: the colour map's own colours, zero in the middle of the scale
    rgba = colormaps[plots.FILTER_CMAP](Normalize(-1, 1)(expected), bytes=True)
    np.testing.assert_array_equal(shown[1].pixels, rgba)
    assert_size(figure, plots.MAP_PANEL * 6 + plots.BAR_WIDTH, plots.MAP_PANEL * 2 + 0.8)


def test_filters_with_several_input_channels_are_summed() -> None:
    kernels = np.ones((3, 3, 4, 2))
    figure = plots.filters_figure(kernels, title="four channels")
    assert "sum over its 4 input channels" in " ".join(figure.get_suptitle().split())
    assert_fits(figure, figure._suptitle)  # 2 panels wide: the title wraps to fit
    top = colormaps[plots.FILTER_CMAP](1.0, bytes=True)  # 4 / its largest |weight| 4 = 1
    assert (panels(figure)[0].pixels == top).all()


def test_filters_on_rgb_input_are_drawn_in_their_colours() -> None:
    kernels = np.zeros((3, 3, 3, 2))
    kernels[1, 1, 0, 0] = 2.0  # filter 0 weighs red at its centre
    kernels[0, 0, 2, 1] = -0.5  # filter 1 weighs blue negatively in its top-left corner
    figure = plots.filters_figure(kernels, title="rgb")
    title = " ".join(figure.get_suptitle().split())  # wrapped to the figure's width
    assert "3x3x3 in colour" in title and "mid-grey is zero" in title
    first, second = (panel.pixels[..., :3] / 255 for panel in panels(figure))
    np.testing.assert_allclose(first[1, 1], [1.0, 0.5, 0.5], atol=0.5 / 255)  # red
    np.testing.assert_allclose(first[0, 0], [0.5, 0.5, 0.5], atol=0.5 / 255)  # zero: mid-grey
    np.testing.assert_allclose(second[0, 0], [0.5, 0.5, 0.0], atol=0.5 / 255)  # yellowish
    assert first.shape == (3, 3, 3) and colour_bars(figure) == 0


def test_training_curves_have_train_and_test_lines() -> None:
    history = [
        {
            "epoch": 1.0,
            "train_loss": 1.0,
            "train_accuracy": 0.6,
            "test_loss": 0.8,
            "test_accuracy": 0.7,
        },
        {
            "epoch": 2.0,
            "train_loss": 0.5,
            "train_accuracy": 0.8,
            "test_loss": None,
            "test_accuracy": None,
        },
    ]
    figure = plots.training_curves_figure(history, title="curves", note="a note")
    loss, accuracy = figure.axes
    assert [line.get_label() for line in loss.lines] == ["train", "test"]
    assert len(loss.lines[1].get_xdata()) == 1  # epoch 2 was not measured on test
    assert accuracy.get_title() == "Accuracy" and "a note" in figure.get_suptitle()
    assert_size(figure, 11, 4.2)


def test_confusion_matrix_names_the_classes_and_counts_every_cell() -> None:
    confusion = np.diag(np.full(10, 90)) + 1
    figure = plots.confusion_figure(confusion, NAMES, title="Confusion")
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()][:2] == ["class 0 (0)", "class 1 (1)"]
    [counts] = [a for a in axes.get_children() if isinstance(a, TextLayer)]
    assert [t.text for t in counts.texts][:11] == ["91"] + ["1"] * 9 + ["1"]
    assert (counts.texts[0].x, counts.texts[0].y, counts.texts[1].x) == (0, 0, 1)  # column j
    assert_size(figure, 0.62 * 10 + 3.6, 0.55 * 10 + 2.4)
    assert len(counts.labels) == 100 and colour_bars(figure) == 1
    pixels = png_pixels(figure)[..., :3].astype(int)
    for label, written in zip(counts.labels, counts.texts, strict=True):
        left, top, right, bottom = label.box  # white ink on the dark diagonal, black elsewhere
        inked = pixels[top:bottom, left:right].sum(axis=2)
        assert (inked.max() > 600) if written.colour == "white" else (inked.min() < 150)


def test_per_class_accuracy_bars_with_values_and_overall_line() -> None:
    accuracy = np.array([0.5, np.nan, 1.0])
    figure = plots.per_class_figure(accuracy, NAMES[:3], overall=0.7, title="Per class")
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts[:3] == ["50.0%", "no images", "100.0%"] and "overall 70.0%" in texts
    assert_size(figure, 8, 0.35 * 3 + 1.4)


@pytest.mark.parametrize("overall", [0.05, 0.7, 0.914, 1.0])
def test_the_overall_line_stops_short_of_its_label(overall) -> None:
    figure = plots.per_class_figure(
        np.array([0.5, 0.9, 1.0, 0.86]), NAMES[:4], overall=overall, title="Per class"
    )
    renderer = figure.canvas.get_renderer()
    axes = figure.axes[0]
    label = next(t for t in axes.texts if t.get_text().startswith("overall"))
    box = label.get_window_extent(renderer)
    (line,) = [a for a in axes.lines if a.get_linestyle() == "--"]
    drawn = line.get_transform().transform(line.get_xydata())  # display pixels
    assert np.allclose(drawn[:, 0], drawn[0, 0]) and box.x0 - 1 <= drawn[0, 0] <= box.x1
    assert drawn[:, 1].max() < box.y0 or drawn[:, 1].min() > box.y1, "the line crosses its label"
    inside = axes.get_window_extent(renderer)
    assert inside.x0 <= box.x0 and box.x1 <= inside.x1, "the label leaves the axes"


def test_misclassified_gallery_titles_true_and_predicted() -> None:
    images = np.zeros((5, 28, 28, 1), dtype=np.uint8)
    figure = plots.misclassified_figure(
        images,
        [0, 1, 2, 3, 4],
        [1, 2, 3, 4, 5],
        NAMES,
        confidence=[0.9] * 5,
        captions=[f"#{i}" for i in range(5)],
        title="Mistakes",
        columns=4,
    )
    shown = panels(figure)
    assert len(shown) == 5
    assert shown[0].title == "#0\ntrue: class 0\nsaid: class 1 90%"
    assert_size(figure, 1.6 * 4, 2.1 * 2 + 0.5)


def test_comparison_has_a_line_per_run() -> None:
    rows = [{"epoch": 1.0, "test_accuracy": 0.8}, {"epoch": 2.0, "test_accuracy": 0.9}]
    figure = plots.comparison_figure({"cnn": rows, "dnn": rows[:1]})
    assert [line.get_label() for line in figure.axes[0].lines] == ["cnn", "dnn"]
    assert_size(figure, 7, 3.8)


def test_inspection_figures_never_touch_pyplot() -> None:
    code = (
        "import sys, numpy as np\n"
        "from convlens.views import plots\n"
        "plots.feature_maps_figure(np.zeros((4, 4, 2)), title='t')\n"
        "plots.filters_figure(np.zeros((3, 3, 1, 2)), title='t')\n"
        "plots.confusion_figure(np.eye(2, dtype=int), ['a', 'b'], title='t')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_colour_inputs_stay_in_colour_in_the_journey_and_the_gallery() -> None:
    rgb = np.zeros((2, 6, 6, 3), np.uint8)
    rgb[..., 1] = 200  # green pictures
    maps = {"conv2d": np.random.default_rng(0).random((2, 4, 4))}
    figure = plots.journey_figure(
        rgb, maps, filter_index=0, layer_shapes={"conv2d": (4, 4, 8)},
        row_labels=["a", "b"], title="colour",
    )  # fmt: skip
    shown = panels(figure)[0].pixels
    assert shown.shape == (6, 6, 4) and tuple(shown[0, 0]) == (0, 200, 0, 255)
    gallery = plots.misclassified_figure(rgb, [0, 1], [1, 0], ["x", "y"], title="mistakes")
    assert tuple(panels(gallery)[0].pixels[0, 0]) == (0, 200, 0, 255)


def assert_inside_and_apart(figure: Figure) -> None:
    """Each axes with everything it draws (tick labels, axis labels, title: matplotlib's own
    tight box of it) and every figure text lies in the figure, and no two axes' boxes meet."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [axes.get_tightbbox(renderer) for axes in figure.axes]
    boxes += [text.get_window_extent(renderer) for text in figure.texts if text.get_text()]
    for box in boxes:
        assert box.x0 >= -1 and box.y0 >= -1, box
        assert box.x1 <= figure.bbox.width + 1 and box.y1 <= figure.bbox.height + 1, box
    drawn = boxes[: len(figure.axes)]
    for i, box in enumerate(drawn):
        for other in drawn[i + 1 :]:
            assert not box.overlaps(other), (box, other)


LONG = ["a class with a long name", "b", "another rather long class name", "d"]


@pytest.mark.parametrize("names", [NAMES, LONG, ["x"]])
def test_placed_plots_keep_their_texts_inside_and_apart(names) -> None:
    k = len(names)
    confusion = np.arange(k * k).reshape(k, k) * 37
    accuracy = np.linspace(0.2, 1.0, k)
    history = [
        {"epoch": e, "train_loss": 2.5 / e, "test_loss": 2.6 / e,
         "train_accuracy": 1 - 0.5 / e, "test_accuracy": 1 - 0.6 / e}
        for e in range(1, 8)
    ]  # fmt: skip
    note = "a note long enough to need wrapping " * 6
    for figure in (
        plots.confusion_figure(confusion, names, title="Confusion matrix on the test split"),
        plots.per_class_figure(accuracy, names, overall=0.7, title="Test accuracy per class"),
        plots.training_curves_figure(history, title="Training curves of a run", note=note),
    ):
        assert_inside_and_apart(figure)
