"""The convolution lab's figures: pure functions returning Figures, titled with shapes."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from convlens.lab import ops
from convlens.lab.sample_images import facade
from convlens.views import plots


def titles(figure: Figure) -> list[str]:
    return [axes.get_title() for axes in figure.axes if axes.get_title()]


def png_size(figure: Figure) -> tuple[int, int]:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        return image.size


@pytest.fixture(scope="module")
def stages() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    image = facade()
    kernel = ops.FILTERS["vertical"]
    filtered = ops.conv2d(image, kernel)
    return image, kernel, filtered, ops.pool2d(filtered)


def test_clip_display_says_how_much_was_cut() -> None:
    shown, caption = plots.display_values(np.array([[-10.0, 0, 100, 300]]), "clip")
    assert shown.tolist() == [[0, 0, 100, 255]]
    assert caption == (
        "clipped to 0..255: 25% of pixels below 0 shown black, 25% above 255 shown white"
    )


def test_rescale_display_maps_min_and_max_to_the_ends() -> None:
    shown, caption = plots.display_values(np.array([[-100.0, 0, 300]]), "rescale")
    assert shown.tolist() == [[0, 63.75, 255]]
    assert caption == "rescaled from -100..300 to 0..255"
    assert plots.display_values(np.full((2, 2), 7.0), "rescale")[0].tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError):
        plots.display_values(np.zeros((1, 1)), "stretch")


def test_convolution_figure_titles_every_stage_with_its_shape(stages: tuple) -> None:
    image, kernel, filtered, pooled = stages
    figure = plots.convolution_figure(
        image, kernel, filtered, pooled, title="Filter 'vertical'", pool_label="max pooled 2x2"
    )
    assert isinstance(figure, Figure) and isinstance(figure.canvas, FigureCanvasAgg)
    assert titles(figure) == [
        "Input (256, 256)",
        "Filter (3, 3)",
        "Filtered (254, 254)",
        "max pooled 2x2 (127, 127)",
    ]
    assert "Filtered values clipped to 0..255" in figure.get_suptitle()
    width, height = png_size(figure)
    assert width > 1000 and height > 350


def test_convolution_figure_without_pooling_says_it_rescaled(stages: tuple) -> None:
    image, kernel, filtered, _ = stages
    figure = plots.convolution_figure(image, kernel, filtered, title="t", display="rescale")
    assert len(figure.axes) == 3
    assert "Filtered values rescaled from" in figure.get_suptitle()


def test_filter_grid_shows_every_filter_and_its_pooled_map(stages: tuple) -> None:
    image = stages[0]
    filtered = {name: ops.conv2d(image, kernel) for name, kernel in ops.FILTERS.items()}
    pooled = {name: ops.pool2d(values) for name, values in filtered.items()}
    figure = plots.filter_grid_figure(
        image, filtered, pooled, title="All", pool_label="max pooled 2x2"
    )
    shown = titles(figure)
    assert shown[0] == "Input (256, 256)"
    assert all(f"{name} (254, 254)" in shown for name in ops.FILTERS)
    assert shown.count("max pooled 2x2 (127, 127)") == len(ops.FILTERS)
    assert "clipped to 0..255" in figure.get_suptitle()
    assert png_size(figure)[1] > 900


def test_figures_never_touch_pyplot() -> None:
    code = (
        "import sys, numpy as np\n"
        "from convlens.views import plots\n"
        "x = np.zeros((8, 8))\n"
        "plots.convolution_figure(x, np.ones((3, 3)), x[:6, :6], x[:3, :3], title='t')\n"
        "plots.filter_grid_figure(x, {'a': x}, title='t', display='rescale')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
