"""Texts written by Pillow land where matplotlib's own Text puts its ink (the oracle)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from convlens.views import mosaic, written_text
from convlens.views.written_text import TextLayer, Written

CASES = [
    ("test image 23\ntrue: Ankle boot\nsaid: Sandal 97%", 8, "center", "baseline"),
    ("conv2d\n(26, 26, 64)", 9, "center", "baseline"),
    ("17", 8, "center", "baseline"),
    ("0.15", 7, "left", "center_baseline"),
    ("-2.5", 7, "left", "center_baseline"),
    ("1e-6", 7, "left", "bottom"),
    ("912", 8, "center", "center"),
    ("Ankle boot", 10, "right", "center"),
]


def blank(width: float = 3, height: float = 2) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def ink(figure: Figure) -> np.ndarray:
    """Where the drawn figure is dark: bool (rows, columns)."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., 0] < 160


def extent(inked: np.ndarray) -> np.ndarray:
    rows, columns = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    return np.array([columns[0], rows[0], columns[-1], rows[-1]])


def matplotlibs(text: str, fontsize: float, ha: str, va: str, anchor=(1.5, 1.0)) -> np.ndarray:
    """matplotlib's own figure text at ``anchor`` inches, drawn alone on a white figure."""
    reference = blank()
    reference.text(anchor[0] / 3, anchor[1] / 2, text, fontsize=fontsize, ha=ha, va=va)
    return ink(reference)


@pytest.mark.parametrize("text, fontsize, ha, va", CASES)
def test_a_mosaic_text_covers_what_matplotlib_draws_for_the_same_text(
    text, fontsize, ha, va
) -> None:
    theirs = matplotlibs(text, fontsize, ha, va)
    figure = blank()
    drawn = mosaic.Mosaic(figure)
    drawn._texts.append(Written(text, 1.5, 1.0, fontsize, ha, va))
    drawn.draw()
    ours = ink(figure)
    assert np.abs(extent(ours) - extent(theirs)).max() <= 1
    lines = [line for line in text.split("\n") if line]
    ink_rows = np.flatnonzero(ours.any(axis=1))
    assert (np.diff(ink_rows) > 1).sum() == len(lines) - 1  # one band of ink per line
    [label] = mosaic.labels(figure)
    left, top, right, bottom = label.box
    assert label.text == text and ours[top:bottom, left:right].sum() == ours.sum()


@pytest.mark.parametrize("text, fontsize, ha, va", CASES[2:])
def test_a_layer_text_in_data_coordinates_covers_what_matplotlib_draws(
    text, fontsize, ha, va
) -> None:
    theirs = matplotlibs(text, fontsize, ha, va)
    figure = blank()
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    axes.set_xlim(0, 3)
    axes.set_ylim(0, 2)  # data units are inches
    layer = TextLayer(axes)
    axes.add_artist(layer)
    layer.add(Written(text, 1.5, 1.0, fontsize, ha, va))
    ours = ink(figure)
    assert np.abs(extent(ours) - extent(theirs)).max() <= 1
    [label] = layer.labels
    left, top, right, bottom = label.box
    assert ours[top:bottom, left:right].sum() == ours.sum()


def test_a_layer_writes_in_its_colour_over_what_is_beneath_and_keeps_the_rest() -> None:
    figure = blank(1, 1)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    axes.imshow(np.zeros((2, 2)), cmap="gray", vmin=0, vmax=1, extent=(0, 1, 0, 1))
    before = np.asarray(ink(figure), dtype=bool)  # all black beneath
    layer = TextLayer(axes)
    axes.add_artist(layer)
    layer.add(Written("88", 0.5, 0.5, 20, "center", "center", colour="white"))
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())
    left, top, right, bottom = layer.labels[0].box
    assert before.all()
    assert pixels[top:bottom, left:right, 0].max() == 255  # white ink
    outside = np.ones(before.shape, bool)
    outside[top:bottom, left:right] = False
    assert (pixels[outside][:, :3] == 0).all() and (pixels[..., 3] == 255).all()


def test_other_renderers_draw_the_layer_as_matplotlib_texts() -> None:
    figure = blank(2, 1)
    axes = figure.add_axes((0, 0, 1, 1))
    layer = TextLayer(axes)
    axes.add_artist(layer)
    layer.add(Written("forty-two", 0.5, 0.5, 10))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    assert b"forty-two" in buffer.getvalue() or b"<!-- forty-two -->" in buffer.getvalue()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=200)  # Agg at another dpi: written at that dpi
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        assert image.size == (400, 200)
    assert written_text.font(10, 200.0).size == pytest.approx(10 * 200 / 72)
