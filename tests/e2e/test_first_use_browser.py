"""A new user's first visit in Chromium (issue 22, items 1-6): what tripped them, tried again.

The explorer is started as `convlens explore --dataset FOLDER` would start it,
on a folder of 3 classes of colour shapes in PNGs of mixed sizes, with three
runs (the lesson's CNN on that folder, newest; the lesson's CNN and its dense
baseline on Fashion-MNIST, generated IDX files found through CONVLENS_DATA).
Screenshots go to $CONVLENS_SCREENSHOTS when it is set (else the test's
temporary folder): the editor on the folder, compare with 3 runs, the page
without runs, and the whole page at 400 px.
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "the browser tests need Chromium at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need Playwright for Python"
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the synthetic data
from synthetic import (  # noqa: E402
    SHAPE_CLASSES,
    pattern_dataset,
    shapes_folder,
    write_idx_dataset,
    write_run,
)

from convlens.model.presets import preset  # noqa: E402
from convlens.runs.directory import write_history  # noqa: E402
from convlens.web.app import create_app  # noqa: E402
from convlens.web.server import serve_in_thread  # noqa: E402

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker")
FASHION = (*FASHION, "Bag", "Ankle boot")
SHAPES_CNN = "seed-cnn-20261205-090000"  # the newest: trained on the folder
FASHION_CNN = "seed-cnn-20261204-101500"
FASHION_DNN = "seed-dnn-20261204-102000"
WAIT_MS = 30_000
JOB_MS = 180_000


def shots_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $CONVLENS_SCREENSHOTS, else the test's temporary folder."""
    folder = Path(os.environ.get("CONVLENS_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def add_run(root: Path, name: str, model, classes, dataset: str, accuracies, source=None) -> None:
    """An untrained run with a history, as `convlens train` lays one out."""
    directory = write_run(root / name, model, classes, dataset)
    write_history(
        directory,
        [
            {"epoch": e + 1, "train_loss": 1.0 / (e + 1), "train_accuracy": a - 0.02,
             "test_loss": 1.1 / (e + 1), "test_accuracy": a, "seconds": 10.0,
             "learning_rate": 0.001}
            for e, a in enumerate(accuracies)
        ],
    )
    metrics = json.loads((directory / "metrics.json").read_text())
    metrics.update(seconds=30.0, test_accuracy=accuracies[-1], epochs=len(accuracies))
    if source is not None:
        metrics["data_source"] = str(source)
    (directory / "metrics.json").write_text(json.dumps(metrics))
    time.sleep(0.02)  # listed newest first by when they finished


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data")
    write_idx_dataset(data / "fashion-mnist", pattern_dataset(60, 120, seed=3))
    write_idx_dataset(data / "mnist", pattern_dataset(60, 60, seed=4))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_DATA", str(data))
        yield shapes_folder(data / "shapes", per_class=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory, folder):
    """`convlens explore --dataset FOLDER` with three runs; its URL, runs folder and app."""
    runs = tmp_path_factory.mktemp("runs")
    add_run(runs, FASHION_CNN, preset("seed-cnn"), FASHION, "fashion-mnist", [0.86, 0.89, 0.905])
    add_run(runs, FASHION_DNN, preset("seed-dnn"), FASHION, "fashion-mnist", [0.82, 0.85, 0.86])
    on_folder = preset("seed-cnn").with_input_shape((48, 48, 3)).with_output_units(3)
    add_run(runs, SHAPES_CNN, on_folder, SHAPE_CLASSES, "shapes", [0.5, 0.7], source=folder)
    app = create_app(runs, dataset=folder)
    url, stop = serve_in_thread(app)
    try:
        yield url, runs, app
    finally:
        app.state.jobs.shutdown()
        stop()


def open_page(browser, url: str, width: int, height: int = 900):
    """A page at ``width`` px, loaded; the exceptions it throws are collected."""
    context = browser.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.exceptions = []
    tab.on("pageerror", lambda error: tab.exceptions.append(str(error)))
    tab.goto(url)
    tab.wait_for_selector("body[data-ready='true']")
    return context, tab


@pytest.fixture
def page(browser, server):
    context, tab = open_page(browser, server[0], 1232)
    tab.wait_for_selector("#editor[data-state='ok'][data-dataset='shapes']")
    yield tab
    context.close()
    assert tab.exceptions == [], "the page threw exceptions"


def input_shape(page) -> list[int]:
    return [int(v) for v in page.eval_on_selector_all("#editor-input input", "l => l.map(i => i.value)")]


def last_shape(page) -> str:
    return page.inner_text("#editor-layers .editor-layer:last-child .layer-shape")


def wait_for_dataset(page, dataset: str) -> None:
    page.wait_for_selector(f"#editor[data-state='ok'][data-dataset='{dataset}']")


# ---------------------------------------------------------------- 1. training on your folder


def test_the_editor_shows_a_preset_fitted_to_the_dataset_and_trains_it(page, server, tmp_path):
    _, runs, _ = server
    # `--dataset FOLDER` comes first: the untouched seed-cnn is shown as it will train on it.
    assert page.input_value("#train-dataset") == "shapes"
    assert input_shape(page) == [48, 48, 3] and last_shape(page) == "(None, 3)"
    assert page.is_checked("#editor-fit")
    fitted = page.inner_text("#editor-fitted")
    assert "shapes" in fitted and "48x48x3" in fitted and "circle, square, triangle" in fitted
    page.locator("#editor-section").screenshot(
        path=str(shots_dir(tmp_path) / "editor-folder.png"), style=".site-header{position:static}"
    )
    # Another dataset: the shapes follow; back again.
    page.select_option("#train-dataset", "mnist")
    wait_for_dataset(page, "mnist")
    assert input_shape(page) == [28, 28, 1] and last_shape(page) == "(None, 10)"
    assert page.get_attribute("#editor-total", "data-params") == "243786"
    page.select_option("#train-dataset", "shapes")
    wait_for_dataset(page, "shapes")
    assert input_shape(page) == [48, 48, 3]
    # The 16-filters exercise is fitted too, and trains on the folder from the page.
    page.click("[data-exercise='filters-16']")
    page.wait_for_function(
        "document.querySelector('#editor-layers .layer-params')?.dataset.params === '448'"
    )  # 16 x (3 x 3 x 3) + 16: colour
    wait_for_dataset(page, "shapes")
    page.fill("#train-epochs", "1")
    page.click("#train-start")
    page.wait_for_selector("#trainer[data-state='done']", timeout=JOB_MS)
    assert page.locator("#train-error").is_hidden()
    name = page.inner_text("#train-status").split("the run ")[1].split(" is written")[0]
    spec = json.loads((runs / name / "model.json").read_text())
    assert spec["input_shape"] == [48, 48, 3] and spec["layers"][-1]["units"] == 3
    assert spec["layers"][0]["filters"] == 16 and spec["class_names"] == list(SHAPE_CLASSES)
    # Taken as written instead, a model that reads colour as gray says so before training.
    page.click("[data-exercise='filters-16']")
    wait_for_dataset(page, "shapes")
    page.fill("#editor-input input[data-axis='2']", "1")
    wait_for_dataset(page, "shapes")
    assert not page.is_checked("#editor-fit")
    assert "fitted, it would read them at 48x48x3" in page.inner_text("#editor-fitted")


def test_a_model_that_cannot_learn_the_folder_is_refused_in_the_editor(page, server):
    page.select_option("#editor-start", f"run:{FASHION_CNN}")  # a run's model: as written
    page.click("#editor-load")
    page.wait_for_selector("#editor[data-state='error']")
    broken = page.locator("#editor-layers .editor-layer.broken")
    assert broken.get_attribute("data-index") == "6"
    assert "change the last layer to Dense(3)" in broken.locator(".layer-error").inner_text()
    assert page.is_disabled("#train-start")  # nothing to start, nothing to fail
    page.check("#editor-fit")
    wait_for_dataset(page, "shapes")
    assert last_shape(page) == "(None, 3)" and not page.is_disabled("#train-start")


# ---------------------------------------------------------------- 2. compare


def boxes_overlap(a, b) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def test_compare_defaults_to_the_lessons_pair_and_draws_three_legends_clear(page, tmp_path):
    page.wait_for_selector("#comparison[data-runs]")
    default = page.get_attribute("#comparison", "data-runs").split(",")
    assert sorted(default) == sorted([FASHION_CNN, FASHION_DNN])  # one dataset, not the folder's
    page.check(f"#compare-runs input[value='{SHAPES_CNN}']")
    page.wait_for_function("document.querySelector('#compare-accuracy').dataset.runs === '3'")
    for chart in ("#compare-accuracy", "#compare-loss"):
        layout = json.loads(page.get_attribute(chart, "data-layout"))
        width = page.eval_on_selector(chart, "c => c.clientWidth")
        assert [item["name"] for item in layout["legend"]] == [SHAPES_CNN, FASHION_DNN, FASHION_CNN]
        for item in layout["legend"]:
            assert item["shown"] == item["name"]  # whole names, none cut
            assert not boxes_overlap(item["box"], layout["title"]), (chart, item)
            assert item["box"][0] >= 0 and item["box"][0] + item["box"][2] <= width
        boxes = [item["box"] for item in layout["legend"]]
        assert not any(boxes_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    page.locator("#compare-section").screenshot(path=str(shots_dir(tmp_path) / "compare-3-runs.png"))


def choose_sample(page, class_index: int, run: str) -> str:
    page.select_option("#run-select", run)
    page.click("label[for='source-sample']")
    page.fill("#sample-count", "2")  # the folder's test split holds 2 images of a class
    page.select_option("#sample-class", str(class_index))
    page.wait_for_function(
        "name => document.querySelector('#sample-note').textContent.startsWith(name)",
        arg=page.eval_on_selector(
            "#sample-class", "s => s.options[s.selectedIndex].textContent.split(': ')[1]"
        ),
    )
    thumb = page.locator("#sample-thumbs .sample-thumb").first
    image = thumb.get_attribute("data-image-id")
    thumb.click()
    page.wait_for_function(
        "id => [...document.querySelectorAll('#compare-predictions .run-prediction')].length > 0 "
        "&& document.querySelector('#playground').dataset.imageId === id",
        arg=image,
    )
    return image


def test_no_verdict_for_a_label_the_run_does_not_know(page):
    page.wait_for_selector("#comparison[data-runs]")
    choose_sample(page, 0, SHAPES_CNN)  # a circle: not one of Fashion-MNIST's classes
    page.wait_for_selector(f"#compare-predictions .run-prediction[data-run='{FASHION_CNN}']")
    time.sleep(0.5)  # the answer for this image has arrived; nothing more is coming
    assert page.locator("#compare-predictions .run-prediction").count() == 2
    assert page.locator("#compare-predictions .verdict").count() == 0
    choose_sample(page, 1, FASHION_CNN)  # a trouser: both runs know it
    page.wait_for_function("document.querySelectorAll('#compare-predictions .verdict').length === 2")


# ---------------------------------------------------------------- 3. without runs


def test_without_runs_the_page_says_how_in_order_and_by_name(browser, folder, tmp_path):
    url, stop = serve_in_thread(create_app(tmp_path / "no-runs", dataset=folder))
    context, tab = open_page(browser, url, 1232)
    try:
        hint = tab.locator("#no-run-hint")
        hint.wait_for(state="visible")
        text = hint.inner_text()
        assert "3 minutes" not in text and "reload" not in text and "30 seconds" in text
        headings = [
            tab.locator(f"#{part} h2").inner_text()
            for part in tab.eval_on_selector_all(
                "main > section.part:not([hidden])", "nodes => nodes.map(n => n.id)"
            )
        ]
        assert len(set(headings)) == len(headings), headings  # no two alike
        steps = tab.eval_on_selector_all(
            "main > section.part:not([hidden]) .step", "nodes => nodes.map(n => n.textContent)"
        )
        assert steps == [str(n) for n in range(1, len(steps) + 1)] and len(steps) == 5
        tab.click("label[for='source-sample']")
        tab.wait_for_selector("#sample-thumbs .sample-thumb")
        options = tab.eval_on_selector_all("#sample-class option", "l => l.map(o => o.textContent)")
        assert options[:2] == ["0: T-shirt/top", "1: Trouser"] and len(options) == 10
        tab.screenshot(path=str(shots_dir(tmp_path) / "no-runs.png"), full_page=True)
        assert tab.exceptions == []
    finally:
        context.close()
        stop()


# ---------------------------------------------------------------- 5. narrow windows


OUTSIDE = """width => {
  const out = [];
  for (const node of document.querySelectorAll('body *')) {
    const box = node.getBoundingClientRect();
    if (!box.width || !box.height || (box.left >= -0.5 && box.right <= width + 0.5)) continue;
    let scrolls = false;  // inside a part that scrolls sideways on its own (a wide table)
    for (let up = node.parentElement; up && !scrolls; up = up.parentElement) {
      scrolls = ['auto', 'scroll'].includes(getComputedStyle(up).overflowX);
    }
    if (!scrolls) out.push(`${node.tagName} ${node.id} ${node.className}`);
  }
  return out;
}"""


@pytest.mark.parametrize("width", [360, 400])
def test_the_page_fits_a_phone(browser, server, width, tmp_path):
    context, tab = open_page(browser, server[0], width, height=800)
    try:
        tab.wait_for_selector("#editor[data-state='ok'][data-dataset='shapes']")
        tab.wait_for_selector("#journey .journey-layer")
        tab.wait_for_function("document.querySelector('#compare-accuracy').dataset.runs === '2'")
        assert tab.evaluate("document.documentElement.scrollWidth") <= width
        assert tab.evaluate(OUTSIDE, width) == []
        # The editor's shapes, parameter counts and buttons are on screen.
        for selector in (".layer-shape", ".layer-params", ".remove-layer"):
            right = tab.eval_on_selector_all(
                f"#editor-layers {selector}", "l => Math.max(...l.map(n => n.getBoundingClientRect().right))"
            )
            assert right <= width, selector
        header = tab.evaluate("document.querySelector('.site-header').getBoundingClientRect().height")
        assert header <= 0.12 * 800, header  # it was a quarter of the window
        if width == 400:
            tab.screenshot(path=str(shots_dir(tmp_path) / "page-400px.png"), full_page=True)
        assert tab.exceptions == []
    finally:
        context.close()


# ---------------------------------------------------------------- 6. the doors


EVIL_PAGE = """<!doctype html><title>evil</title><script>
async function attack(url) {
  const body = new Blob([new Uint8Array([137, 80, 78, 71])], {type: "text/plain"});
  try { await fetch(url + "api/images", {method: "POST", mode: "no-cors", body}); } catch (e) {}
  try { await fetch(url + "api/jobs", {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: '{"model": "seed-cnn", "dataset": "mnist"}'}); }
  catch (e) {}
  document.title = "done";
}
</script>"""


@pytest.fixture
def other_site():
    """Another site's page, served from another port of this computer (another origin).

    On this computer, not at a made-up public name: Chromium's Private Network
    Access would stop a public page's requests to 127.0.0.1 before they reach
    the explorer, and the test would see nothing of its doors.
    """

    class EvilPage(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = EVIL_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EvilPage)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}/"
    finally:
        site.shutdown()
        site.server_close()


def test_a_page_of_another_site_cannot_change_the_explorer(browser, server, other_site):
    url, _, app = server
    explorer = app.state.explorer
    context = browser.new_context()
    tab = context.new_page()
    seen: list[tuple[int, str]] = []
    tab.on("response", lambda r: seen.append((r.status, r.url)) if "/api/" in r.url else None)
    try:
        before = len(explorer.images)
        jobs = dict(app.state.jobs.jobs)
        tab.goto(other_site)
        tab.evaluate("url => attack(url)", url)
        tab.wait_for_function("document.title === 'done'")
        assert len(explorer.images) == before and app.state.jobs.jobs == jobs
        assert sorted(status for status, _ in seen) == [403, 403], seen  # they reached it
    finally:
        context.close()


def test_with_a_token_the_printed_address_opens_the_page_and_it_works(browser, folder, tmp_path):
    app = create_app(tmp_path / "runs", host="0.0.0.0", token="a-token-for-the-test")
    url, stop = serve_in_thread(app)
    context = browser.new_context(viewport={"width": 1232, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    try:
        answer = tab.goto(url)
        assert answer.status == 403 and "token" in answer.text()
        tab.goto(url + "?token=a-token-for-the-test")
        assert "token" not in tab.url  # the cookie carries it now
        tab.wait_for_selector("body[data-ready='true']")
        tab.wait_for_function("document.querySelector('#filtered-canvas').width > 0")
        assert tab.inner_text("#reach") == "Other computers can open this page with its token."
    finally:
        context.close()
        stop()
