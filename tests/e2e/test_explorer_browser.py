"""The explorer's page in a real browser: Chromium (Playwright's sync API) against a live server.

The server is the real one (convlens.web.app.create_app under uvicorn, in a
background thread); the run is an untrained tiny CNN saved in a few KB, and
the test split is small generated IDX files found through CONVLENS_DATA. The
checks are the page's: every number it shows comes from the API, so the
tests compare what the page shows with convlens.ops and the model's summary
computed here.
"""

from __future__ import annotations

import base64
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "the browser tests need Chromium at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need Playwright for Python"
)
pytest.importorskip("fastapi", reason="the explorer's server needs FastAPI")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the synthetic data
from synthetic import pattern_dataset, tiny_cnn, write_idx_dataset, write_run  # noqa: E402

from convlens.inspect.journey import journey_layers  # noqa: E402
from convlens.lab import ops  # noqa: E402
from convlens.lab.sample_images import facade  # noqa: E402
from convlens.model.sequential import Sequential  # noqa: E402
from convlens.web.app import create_app  # noqa: E402
from convlens.web.server import serve_in_thread  # noqa: E402

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "<b>Pullover</b>",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
RUN = "tiny-run"
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def model() -> Sequential:
    return tiny_cnn().with_class_names(CLASSES)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder with one untrained run of the tiny CNN, as `convlens train` lays it out."""
    root = tmp_path_factory.mktemp("runs")
    write_run(root / RUN, tiny_cnn(), CLASSES)
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, runs_root):
    """The explorer on a free port; the run's "mnist" test split is generated IDX files."""
    data = tmp_path_factory.mktemp("data")
    write_idx_dataset(data / "mnist", pattern_dataset(60, 120, seed=4))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_DATA", str(data))
        url, stop = serve_in_thread(create_app(runs_root=runs_root))
        try:
            yield url
        finally:
            stop()


class Console:
    """What the page said on its console, and the exceptions it did not catch."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.exceptions: list[str] = []


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser, server, console):
    """The page, loaded and settled: pictures drawn, the journey and the class grid shown."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda error: console.exceptions.append(str(error)))
    tab.goto(server)
    tab.wait_for_selector("body[data-ready='true']")
    tab.wait_for_selector("#stages[data-shown]")  # all three pictures drawn: hovers land
    tab.wait_for_selector("#journey .journey-layer")
    tab.wait_for_selector("#class-grid tbody tr.class-row")
    yield tab
    context.close()
    assert console.exceptions == [], "the page threw exceptions"


# ---------------------------------------------------------------- helpers


def data_url(page, selector: str) -> str:
    """A canvas's pixels as a PNG data URL."""
    return page.eval_on_selector(selector, "canvas => canvas.toDataURL()")


def canvas_gray(page, selector: str) -> np.ndarray:
    """A grayscale picture's canvas as uint8 (H, W): its red channel, checked equal to the rest."""
    url = data_url(page, selector)
    rgba = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))
    assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 0] == rgba[..., 2]).all()
    return rgba[..., 0]


def clipped(values: np.ndarray) -> np.ndarray:
    """A filter's output as the lesson shows it: clipped to 0..255, rounded."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def assert_shows(drawn: np.ndarray, expected: np.ndarray) -> None:
    """Every pixel drawn is the expected value (to 1 level: a float's rounding at .5)."""
    assert drawn.shape == expected.shape
    assert np.abs(drawn.astype(int) - expected.astype(int)).max() <= 1


def api_probabilities(page) -> dict[str, float]:
    """The API's class probabilities for the journey's run and image, asked by the page."""
    body = page.evaluate(
        """async () => {
            const journey = document.querySelector('#journey').dataset;
            const answer = await fetch('/api/journey', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({run: journey.run, image: journey.imageId,
                                      invert: document.querySelector('#invert').value})});
            return answer.json();
        }"""
    )
    return {p["name"]: p["probability"] for p in body["probabilities"]}


def shown_probabilities(page) -> dict[str, float]:
    """The bars' probabilities, by class name."""
    return dict(
        page.eval_on_selector_all(
            "#probabilities .prob-bar",
            "bars => bars.map(b => [b.dataset.class, Number(b.dataset.probability)])",
        )
    )


def wait_for_change(page, selector: str, before: str) -> None:
    """Wait until the canvas at ``selector`` shows something other than ``before``."""
    page.wait_for_function(
        "([selector, before]) => document.querySelector(selector).toDataURL() !== before",
        arg=[selector, before],
    )


def hover_pixel(page, selector: str, row: int, col: int) -> None:
    """Move the mouse to the middle of image pixel (row, col) of a picture's canvas."""
    size = page.eval_on_selector(selector, "c => [c.height, c.width]")
    box = page.locator(selector).bounding_box()
    x = box["x"] + (col + 0.5) * box["width"] / size[1]
    y = box["y"] + (row + 0.5) * box["height"] / size[0]
    page.mouse.move(x, y)


def hover_until_explained(page, selector: str, where: str, row: int, col: int) -> None:
    """Hover pixel (row, col) until the text of ``where`` names it, as a user moves again.

    A hover that lands while the page is still busy (or on a neighbour, the pixel being
    under one screen pixel wide) is followed by a move off the picture and back, three
    tries in all; the test fails with what the page shows when none is explained.
    """
    wanted = f"(row {row}, col {col})"
    for _ in range(3):
        page.mouse.move(0, 0)
        hover_pixel(page, selector, row, col)
        try:
            page.wait_for_function(
                "([where, text]) => document.querySelector(where).textContent.includes(text)",
                arg=[where, wanted],
                timeout=WAIT_MS / 3,
            )
            return
        except sync_api.TimeoutError:
            continue
    state = page.evaluate(
        """where => ({shown: document.querySelector('#stages').dataset.shown,
                      busy: document.querySelector('#stages').getAttribute('aria-busy'),
                      where: document.querySelector(where).textContent,
                      errors: [...document.querySelectorAll('[role=alert]')]
                        .map(e => e.textContent).filter(Boolean)})""",
        where,
    )
    pytest.fail(f"hovering {selector} at {wanted} was never explained; the page shows {state}")


def last_number(equation: str) -> float:
    """The result of an equation: the number after its last "="."""
    return float(equation.rsplit("=", 1)[1].strip())


def painted(page, selector: str) -> bool:
    """Whether anything is drawn on an overlay canvas."""
    return page.eval_on_selector(
        selector,
        """c => {
            const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) return true;
            return false;
        }""",
    )


def png_file(path: Path, height: int, width: int) -> Path:
    """A small grayscale PNG: a diagonal ramp with a bright square."""
    rows, cols = np.mgrid[0:height, 0:width]
    pixels = ((rows + cols) * 255 // (height + width)).astype(np.uint8)
    pixels[height // 4 : height // 2, width // 4 : width // 2] = 250
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


# ---------------------------------------------------------------- the page


def test_the_page_loads_without_console_errors(page, console):
    assert page.title() == "convlens explorer"
    for part in ("#playground", "#journey-section", "#class-section"):
        assert page.locator(part).is_visible()
    assert page.locator("#no-run").is_hidden()
    assert page.locator("#input-shape").inner_text() == "(256, 256)"
    assert page.locator("#filtered-shape").inner_text() == "(254, 254)"
    assert page.locator("#pooled-shape").inner_text() == "(127, 127)"
    assert page.locator("#run-select").input_value() == RUN
    # Class names are text, never markup.
    assert "<b>Pullover</b>" in page.locator("#class-select").inner_text()
    assert page.locator("#class-select b").count() == 0
    assert console.errors == []


def test_choosing_a_filter_redraws_the_filtered_image(page):
    before = data_url(page, "#filtered-canvas")
    page.select_option("#filter-select", "horizontal")
    wait_for_change(page, "#filtered-canvas", before)
    cells = [
        float(v)
        for v in page.eval_on_selector_all("#kernel-grid input", "l => l.map(i => i.value)")
    ]
    assert cells == ops.get_filter("horizontal").ravel().tolist()
    # What is drawn is the convolution, clipped as the lesson shows it.
    assert_shows(canvas_gray(page, "#filtered-canvas"), clipped(ops.conv2d(facade(), ops.get_filter("horizontal"))))

    # Editing a cell makes a custom kernel, sent as nine numbers.
    before = data_url(page, "#filtered-canvas")
    page.fill("#kernel-grid input[data-index='4']", "5")
    wait_for_change(page, "#filtered-canvas", before)
    assert page.locator("#filter-select").input_value() == "custom"
    kernel = ops.get_filter("horizontal").astype(np.float64)
    kernel[1, 1] = 5
    assert_shows(canvas_gray(page, "#filtered-canvas"), clipped(ops.conv2d(facade(), kernel)))


def test_a_bad_stride_is_explained_next_to_the_geometry(page):
    page.fill("#stride", "0")
    page.press("#stride", "Enter")
    error = page.locator("#geometry-error")
    error.wait_for(state="visible")
    # Named by the control's label, with the real reason (issue 22, item 4).
    assert error.inner_text().startswith('"Stride" must be at least 1, not 0;')
    before = data_url(page, "#filtered-canvas")
    page.fill("#stride", "2")
    page.press("#stride", "Enter")
    error.wait_for(state="hidden")
    wait_for_change(page, "#filtered-canvas", before)
    assert page.locator("#filtered-shape").inner_text() == "(127, 127)"


def test_hovering_a_filtered_pixel_shows_its_arithmetic(page):
    row, col = 60, 80
    hover_until_explained(page, "#filtered-canvas", "#pixel-where", row, col)
    equation = page.locator("[data-testid='equation']").inner_text()
    shown_sum = float(page.locator("[data-testid='sum']").inner_text())
    expected = ops.explain_pixel(facade(), ops.get_filter("vertical"), row, col)
    assert equation.startswith("New pixel = (")
    assert equation == expected.equation()
    assert last_number(equation) == pytest.approx(shown_sum)
    assert shown_sum == pytest.approx(expected.sum)
    grid = page.eval_on_selector_all(
        "[data-testid='neighbourhood'] td", "cells => cells.map(c => Number(c.textContent))"
    )
    assert grid == expected.neighbourhood.ravel().tolist()
    assert painted(page, "#input-overlay")  # the 3x3 window is outlined on the input


def test_hovering_a_pooled_pixel_shows_its_window(page):
    row, col = 10, 20
    hover_until_explained(page, "#pooled-canvas", "#pool-where", row, col)
    equation = page.locator("#pool-arithmetic").inner_text()
    filtered = ops.conv2d(facade(), ops.get_filter("vertical"))
    expected = ops.explain_pool(filtered, row, col, 2, mode="max")
    assert equation.startswith("max(")
    assert last_number(equation) == pytest.approx(expected.value)
    assert float(page.locator("[data-testid='pool-value']").inner_text()) == pytest.approx(
        expected.value
    )
    assert page.locator("#pool-grids td.chosen").count() == 1
    assert painted(page, "#filtered-overlay")  # the 2x2 window is outlined on the filtered image


def test_an_uploaded_image_becomes_the_input(page, tmp_path):
    before = data_url(page, "#input-canvas")
    page.click("label[for='source-upload']")
    page.set_input_files("#upload", str(png_file(tmp_path / "ramp.png", 30, 40)))
    page.wait_for_function("document.querySelector('#input-shape').textContent === '(30, 40)'")
    assert data_url(page, "#input-canvas") != before
    ramp = np.asarray(Image.open(tmp_path / "ramp.png"))
    np.testing.assert_array_equal(canvas_gray(page, "#input-canvas"), ramp)
    assert page.locator("#filtered-shape").inner_text() == "(28, 38)"
    vertical = ops.get_filter("vertical")
    page.wait_for_function("document.querySelector('#filtered-canvas').width === 38")
    assert_shows(canvas_gray(page, "#filtered-canvas"), clipped(ops.conv2d(ramp.astype(np.float64), vertical)))
    assert page.locator("#image-error").is_hidden()


def test_a_file_that_is_not_an_image_shows_one_sentence_and_the_page_goes_on(page, tmp_path):
    not_image = tmp_path / "notes.txt"
    not_image.write_text("these are words, not pixels\n")
    page.click("label[for='source-upload']")
    page.set_input_files("#upload", str(not_image))
    error = page.locator("#image-error")
    error.wait_for(state="visible")
    assert error.get_attribute("role") == "alert"
    sentence = error.inner_text()
    assert sentence and sentence.rstrip().endswith(".")
    assert page.locator("#input-shape").inner_text() == "(256, 256)"  # the image is kept

    before = data_url(page, "#filtered-canvas")
    page.select_option("#filter-select", "laplacian")
    wait_for_change(page, "#filtered-canvas", before)


def test_drawing_updates_the_prediction(page):
    page.click("label[for='source-draw']")
    image_before = page.get_attribute("#playground", "data-image-id")
    box = page.locator("#draw-canvas").bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(
            box["x"] + 0.5 * box["width"], box["y"] + (0.2 + 0.08 * step) * box["height"]
        )
    page.mouse.up()
    page.wait_for_function(
        """before => {
            const id = document.querySelector('#playground').dataset.imageId;
            return id && id !== before && document.querySelector('#journey').dataset.imageId === id;
        }""",
        arg=image_before,
    )
    # The playground's picture of the drawing arrives by its own request, maybe after the journey.
    page.wait_for_function("document.querySelector('#input-shape').textContent === '(280, 280)'")
    assert page.locator("#journey-input-shape").inner_text() == "(28, 28, 1)"
    bars = page.locator("#probabilities .prob-bar")
    assert bars.count() == len(CLASSES)
    names = [bars.nth(i).get_attribute("data-class") for i in range(bars.count())]
    assert names == list(CLASSES)
    shown = shown_probabilities(page)
    expected = api_probabilities(page)
    assert shown == pytest.approx(expected, abs=1e-6)  # the API's answer for the drawing
    predicted = page.get_attribute("#probabilities .prob-bar[data-predicted='true']", "data-class")
    assert predicted == max(expected, key=expected.get)
    assert page.locator("#draw-prediction").inner_text().startswith("The model says")


def test_the_journey_has_one_section_per_layer_with_its_keras_shape(page, model):
    layers = page.locator("#journey .journey-layer")
    names = [layers.nth(i).get_attribute("data-layer") for i in range(layers.count())]
    shapes = [layers.nth(i).locator(".shape").inner_text() for i in range(layers.count())]
    assert names == [row.name for row in model.rows]
    assert shapes == [row.keras_shape for row in model.rows]

    first = page.locator("#journey .journey-layer[data-layer='conv2d']")
    assert first.locator("#learned-filters").count() == 1
    assert first.locator(".maps-block .map-tile").count() == 6
    assert page.locator("#journey .journey-layer[data-layer='conv2d_1'] .map-tile").count() == 4
    first.locator(".maps-block .map-tile[data-index='3']").click()
    assert first.locator(".maps-block .zoom-caption").inner_text().startswith("Map 3")


def test_the_class_view_is_images_by_conv_and_pool_layers(page, model):
    columns = [row.name for row in journey_layers(model)]
    page.select_option("#class-select", "Trouser")
    page.wait_for_function(
        "document.querySelector('#class-grid .corner')?.textContent.startsWith('Trouser')"
    )
    rows = page.locator("#class-grid tbody tr.class-row")
    assert rows.count() == 3
    for i in range(3):
        assert rows.nth(i).locator("td.class-cell").count() == len(columns)
        assert rows.nth(i).locator("td.class-cell img").count() == len(columns)
    heads = page.locator("#class-grid thead th.layer-col")
    assert [heads.nth(i).get_attribute("data-layer") for i in range(heads.count())] == columns

    page.fill("#class-count", "2")
    page.press("#class-count", "Enter")
    page.wait_for_function("document.querySelectorAll('#class-grid tr.class-row').length === 2")


def choose_test_image(page, class_index: int) -> None:
    """Pick the first test-set thumbnail of a class in the playground."""
    page.click("label[for='source-sample']")
    page.select_option("#sample-class", str(class_index))
    page.wait_for_function(
        "name => document.querySelector('#sample-note').textContent.startsWith(name)",
        arg=CLASSES[class_index],
    )
    page.locator("#sample-thumbs .sample-thumb").first.click()


def test_the_class_view_follows_the_test_image_until_a_class_is_picked_there(page):
    corner = "name => document.querySelector('#class-grid .corner')?.textContent.startsWith(name)"
    choose_test_image(page, 3)
    page.wait_for_function(corner, arg=CLASSES[3])
    assert page.locator("#class-select").input_value() == CLASSES[3]

    page.select_option("#class-select", CLASSES[1])
    page.wait_for_function(corner, arg=CLASSES[1])
    choose_test_image(page, 5)
    page.wait_for_function(
        "document.querySelector('#journey').dataset.imageId === "
        "document.querySelector('#playground').dataset.imageId"
    )
    assert page.locator("#class-select").input_value() == CLASSES[1]  # the reader's choice stays


def test_an_unknown_filter_number_shows_the_error_and_keeps_the_grid(page):
    before = page.inner_html("#class-grid")
    page.fill("#filter-index", "99")
    page.press("#filter-index", "Enter")
    error = page.locator("#class-error")
    error.wait_for(state="visible")
    assert re.search(r"\b99\b", error.inner_text())
    # A refused request leaves what was shown (issue 22, item 4), dimmed.
    assert page.inner_html("#class-grid") == before
    assert "stale" in page.get_attribute("#class-grid", "class")

    page.fill("#filter-index", "0")
    page.press("#filter-index", "Enter")
    error.wait_for(state="hidden")
    page.wait_for_function("!document.querySelector('#class-grid').classList.contains('stale')")
    page.wait_for_selector("#class-grid tr.class-row")


def test_a_refused_image_count_names_its_control_and_keeps_the_grid(page):
    page.fill("#class-count", "13")
    page.press("#class-count", "Enter")
    error = page.locator("#class-error")
    error.wait_for(state="visible")
    assert error.inner_text() == '"Images" must be at most 12, not 13; change it and try again.'
    assert page.locator("#class-grid tr.class-row").count() == 3


def test_an_unreadable_kernel_cell_is_named_not_called_empty(page):
    start = data_url(page, "#filtered-canvas")
    cell = page.locator("#kernel-grid input[data-index='5']")
    cell.fill("1e40")  # a number still: the picture is redrawn with it
    wait_for_change(page, "#filtered-canvas", start)
    page.wait_for_selector("#stages[aria-busy='false']")
    before = data_url(page, "#filtered-canvas")
    cell.press("End")
    cell.type("0")  # 1e400: past what a number holds; the browser reads nothing
    error = page.locator("#filter-error")
    error.wait_for(state="visible")
    sentence = error.inner_text()
    assert sentence.startswith("Kernel row 2, column 3 is not a number a filter can use")
    assert "empty" not in sentence
    assert data_url(page, "#filtered-canvas") == before  # the pictures stay as they were
    cell.press("Control+a")
    cell.press("Delete")
    error.wait_for(state="visible")
    assert error.inner_text() == "Kernel row 2, column 3 is empty; give it a number, like 0."


def test_without_a_run_the_page_says_how_to_get_one(browser, tmp_path):
    url, stop = serve_in_thread(create_app(runs_root=tmp_path / "no-runs"))
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.set_default_timeout(WAIT_MS)
        tab.goto(url)
        tab.wait_for_function("document.querySelector('#filtered-canvas').width > 0")
        assert tab.locator("#no-run-hint").is_visible()
        assert "convlens train" in tab.locator("#no-run-hint").inner_text()
        assert tab.locator("#journey-section").is_hidden()
        assert tab.locator("#class-section").is_hidden()
    finally:
        context.close()
        stop()
