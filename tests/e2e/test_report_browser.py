"""The report as a person opens it: in Chromium, on a desktop and on a phone."""

from __future__ import annotations

import pytest
from synthetic import make_run, pattern_dataset

from convlens.model.presets import preset
from convlens.runs.loading import load_run
from convlens.views import report


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The lesson's CNN's report (its model table is the widest thing on the page)."""
    root = tmp_path_factory.mktemp("runs")
    make_run(root / "lesson", preset("seed-cnn"))
    run = load_run(root / "lesson")
    return report.write_report(run, pattern_dataset(60, 120, seed=4).test)


@pytest.mark.parametrize("width", [1280, 400])
def test_the_page_never_scrolls_sideways_and_every_figure_loads(browser, written, width) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(written.as_uri())
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        loaded = page.evaluate(
            "[...document.images].map(i => i.complete && i.naturalWidth > 0 && "
            "i.getBoundingClientRect().right <= window.innerWidth + 1)"
        )
        assert loaded and all(loaded)
        tables = page.evaluate(
            "[...document.querySelectorAll('table')].map(t => t.parentElement.className)"
        )
        assert tables and set(tables) == {"wide"}  # a wide table scrolls in its own box
    finally:
        page.close()
