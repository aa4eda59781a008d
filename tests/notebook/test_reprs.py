"""What a notebook shows of convlens objects: their _repr_html_ and _repr_png_.

The numbers in them are checked against independent computations: Keras's
summary numbers (the golden 243,786), scipy's correlation, the receptive
fields the text summary prints, the run's own metrics and figures.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
from IPython.core.formatters import DisplayFormatter
from scipy import signal
from synthetic import make_run, tiny_cnn

import convlens
from convlens.lab import ops
from convlens.lab.convolution import convolve
from convlens.runs.evaluate import Evaluation
from convlens.views import plots

HISTORY = [
    {"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.1, "test_accuracy": 0.4}
]
LESSON_PATCH = np.array([[0, 64, 128], [48, 192, 144], [142, 226, 168]], dtype=float)


def shown_by_a_notebook(value) -> dict:
    """The mime bundle IPython (every Jupyter kernel) makes of a cell's value."""
    bundle, _ = DisplayFormatter().format(value)
    return bundle


def text_of(markup: str) -> str:
    """The visible text of an HTML block, tags removed and entities read."""
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def test_a_spec_shows_its_summary_table_with_the_why_column():
    model = convlens.preset("seed-cnn")
    bundle = shown_by_a_notebook(model)
    assert "text/html" in bundle and bundle["text/plain"].startswith("Sequential('seed-cnn'")
    text = " ".join(text_of(bundle["text/html"]).split())
    assert "Total params: 243,786" in text and "Why" in text
    fields = model.receptive_fields()
    for row in model.rows:
        assert f"{row.name} ({row.layer.keras_type})" in text
        assert row.keras_shape in text and f"{row.params:,}" in text
        assert " ".join(row.shape_why.split()) in text
        if fields[row.name] is not None:
            assert f"sees {' '.join(fields[row.name].why.split())}" in text


def test_a_spec_escapes_what_it_shows():
    model = tiny_cnn().with_class_names(tuple(f"<b>{i}</b>" for i in range(10)))
    markup = model._repr_html_()
    assert "<script" not in markup and "<b>0</b>" not in markup


def test_a_convolution_shows_three_pictures_with_the_arithmetic_scipy_agrees_with():
    image = convlens.facade()
    result = convolve(image, "vertical")
    expected = signal.correlate2d(image.astype(float), ops.FILTERS["vertical"], mode="valid")
    np.testing.assert_array_equal(result.filtered, expected)
    pooled = expected[:254, :254].reshape(127, 2, 127, 2).max(axis=(1, 3))
    np.testing.assert_array_equal(result.pooled, pooled)
    np.testing.assert_array_equal(np.asarray(result), expected)
    markup = result._repr_html_()
    assert markup.count("<img") == 2 + 1  # input, filtered, pooled
    text = text_of(markup)
    assert "filtered 254x254: 256 - 3 + 1" in text and "127x127, floor(254 / 2)" in text


def test_an_explained_pixel_shows_the_lessons_577():
    explanation = ops.explain_pixel(LESSON_PATCH, ops.FILTERS["lesson"], 0, 0)
    text = " ".join(text_of(explanation._repr_html_()).split())
    assert text.endswith("= 577") and "neighbourhood" in text and "products" in text
    for value in ("192", "226", "-1.5"):
        assert value in text


def test_a_pooled_pixel_shows_its_window_and_the_kept_value():
    result = convolve(LESSON_PATCH.repeat(2, 0).repeat(2, 1), "identity", pool_size=2)
    pooled = result.explain_pool(0, 0)
    text = " ".join(text_of(pooled._repr_html_()).split())
    assert text.endswith(f"= {ops.format_number(pooled.value)}") and "the largest is kept" in text


def test_a_run_shows_its_headline_curves_and_confusion(tmp_path):
    path = make_run(tmp_path / "run", tiny_cnn())
    figures = path / "figures"
    figures.mkdir()
    for stem in ("curves", "confusion"):
        (figures / f"{stem}.png").write_bytes(
            plots.training_curves_figure(HISTORY, title=stem)._repr_png_()
        )
    run = convlens.load_run(path)
    bundle = shown_by_a_notebook(run)
    text = text_of(bundle["text/html"])
    assert "test accuracy 56.00%" in text and "2 epochs" in text and "trained on mnist" in text
    assert bundle["text/html"].count("data:image/png;base64,") == 2
    assert "test accuracy 56.00%" in bundle["text/plain"]


def test_a_run_without_figures_says_how_to_score_it(tmp_path):
    run = convlens.load_run(make_run(tmp_path / "run", tiny_cnn()))
    assert "convlens.evaluate(run)" in text_of(run._repr_html_())


def test_figures_show_as_pictures_where_they_are_returned():
    figure = plots.training_curves_figure(HISTORY, title="curves")
    bundle = shown_by_a_notebook(figure)
    assert bundle["image/png"].startswith(b"\x89PNG")


def test_an_evaluation_shows_accuracy_and_the_confusion_matrix():
    confusion = np.array([[8, 2], [1, 9]])
    evaluation = Evaluation(
        0.85, 0.4, np.array([0.8, 0.9]), confusion, np.zeros(20), np.zeros((20, 2))
    )
    text = " ".join(text_of(evaluation._repr_html_()).split())
    assert "accuracy 85.00%" in text and "20 test images" in text and "0 8 2 1 1 9" in text
    assert repr(evaluation) == "Evaluation(accuracy 0.8500, loss 0.4000, 20 images)"


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3)), np.zeros(5)])
def test_convolve_refuses_what_is_not_a_grayscale_image(bad):
    with pytest.raises(convlens.ConvlensError, match="grayscale image"):
        convolve(bad)
