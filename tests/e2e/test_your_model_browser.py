"""The explorer's "Your model" in a real browser: upload a tf.keras 2 .h5, see its journey.

Reuses the live server, browser and page fixtures of test_explorer_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright")
from test_explorer_browser import (  # noqa: E402,F401  (fixtures)
    api_probabilities,
    console,
    page,
    runs_root,
    server,
    shown_probabilities,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "keras2" / "lesson_cnn_tfkeras2.h5"


def test_an_uploaded_keras_file_is_walked_through_at_once(page, tmp_path):  # noqa: F811
    page.set_input_files("#model-upload", str(FIXTURE))
    page.wait_for_url("**/?run=*")
    page.wait_for_selector("body[data-ready='true']")
    page.wait_for_selector("#journey .journey-layer[data-layer='conv2d_1']")
    chosen = page.eval_on_selector("#run-select", "select => select.value")
    assert chosen.startswith("lesson_cnn_tfkeras2-")  # named after the file
    layers = page.eval_on_selector_all(
        "#journey .journey-layer", "nodes => nodes.map(n => n.dataset.layer)"
    )
    assert layers[:4] == ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1"]
    facts = page.inner_text("#run-facts")
    assert "imported from lesson_cnn_tfkeras2.h5 (keras-h5 2.15.0)" in facts
    page.wait_for_selector("#probabilities li.prob-bar")
    shown = shown_probabilities(page)
    expected = api_probabilities(page)
    assert len(shown) == 10 and shown == pytest.approx(expected, abs=1e-6)
    assert page.eval_on_selector("#journey", "j => j.dataset.run") == chosen
    page.locator("#your-model").scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "your-model.png"))


def test_a_refused_file_shows_the_sentence(page, tmp_path):  # noqa: F811
    bogus = tmp_path / "broken.keras"
    bogus.write_bytes(b"not a model at all")
    page.set_input_files("#model-upload", str(bogus))
    error = page.wait_for_selector("#model-error:not([hidden])")
    assert "neither a Keras 3 .keras archive nor an HDF5 .h5 file" in error.inner_text()
