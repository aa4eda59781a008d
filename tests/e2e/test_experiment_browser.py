"""The experiment parts of the page in Chromium: edit a model, train it live, compare runs.

A real server (create_app under uvicorn in a thread) with one untrained run
of the tiny CNN; jobs train on generated MNIST-named IDX files (300 training
images) found through CONVLENS_DATA, in their own process, as in use. The
summary's numbers are checked against Keras's published counts for the
lesson's CNN (and layers.py's arithmetic is checked against Keras itself in
tests/test_layers.py).
"""

from __future__ import annotations

import sys
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
pytest.importorskip("fastapi", reason="the explorer's server needs FastAPI")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the synthetic data
from synthetic import pattern_dataset, tiny_cnn, write_idx_dataset, write_run  # noqa: E402

from convlens.runs.directory import is_run  # noqa: E402
from convlens.web.app import create_app  # noqa: E402
from convlens.web.server import serve_in_thread  # noqa: E402

RUN = "tiny-run"
WAIT_MS = 30_000
JOB_MS = 120_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The explorer on a free port, its runs folder, and its job manager."""
    data = tmp_path_factory.mktemp("data")
    write_idx_dataset(data / "mnist", pattern_dataset(300, 100, seed=4))
    runs = tmp_path_factory.mktemp("runs")
    write_run(runs / RUN, tiny_cnn(), tuple(str(i) for i in range(10)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_DATA", str(data))
        app = create_app(runs_root=runs)
        url, stop = serve_in_thread(app)
        try:
            yield url, runs, app.state.jobs
        finally:
            app.state.jobs.shutdown()
            stop()


@pytest.fixture
def page(browser, server):
    """The page, loaded, with the editor showing the lesson's CNN."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    exceptions: list[str] = []
    tab.on("pageerror", lambda error: exceptions.append(str(error)))
    tab.goto(server[0])
    tab.wait_for_selector("body[data-ready='true']")
    tab.wait_for_selector("#editor[data-state='ok']")
    yield tab
    context.close()
    assert exceptions == [], "the page threw exceptions"


def layer_params(page) -> list[int]:
    page.wait_for_selector("#editor[data-state='ok']")
    return [
        int(value)
        for value in page.eval_on_selector_all(
            "#editor-layers .layer-params", "nodes => nodes.map(n => n.dataset.params)"
        )
    ]


def use_tiny_model(page) -> None:
    """Start the editor from the tiny run's model (fast to train)."""
    page.select_option("#editor-start", f"run:{RUN}")
    page.click("#editor-load")
    page.wait_for_function("document.querySelectorAll('#editor-layers .editor-layer').length === 6")
    assert layer_params(page)[0] == 60  # Conv2D(6, 3x3) on one channel: 6 x 9 + 6


def start_job(page, epochs: int) -> None:
    page.select_option("#train-dataset", "mnist")
    page.fill("#train-epochs", str(epochs))
    page.click("#train-start")
    page.wait_for_selector("#trainer[data-job]")


def test_sixteen_filters_give_kerass_parameter_counts(page) -> None:
    # The lesson's CNN as loaded: Keras's model.summary() counts.
    assert layer_params(page) == [640, 0, 36928, 0, 0, 204928, 1290]
    assert page.get_attribute("#editor-total", "data-params") == "243786"
    page.click("[data-exercise='filters-16']")
    page.wait_for_function("document.querySelector('#editor-total').dataset.params !== '243786'")
    params = layer_params(page)
    assert (params[0], params[2]) == (160, 2320)  # 16x(3x3x1)+16 and 16x(3x3x16)+16
    assert page.get_attribute("#editor-total", "data-params") == str(sum(params))
    why = page.inner_text("#editor-layers .editor-layer[data-index='2'] .layer-why")
    assert "2,320 = 16 x (3 x 3 x 16) + 16" in why
    # Editing an argument by hand recomputes too: 32 filters in the first convolution.
    page.fill("#editor-layers .editor-layer[data-index='0'] [data-arg='filters']", "32")
    page.wait_for_function(
        "document.querySelector('#editor-layers .layer-params').dataset.params === '320'"
    )
    assert layer_params(page)[2] == 16 * 9 * 32 + 16


def test_exercises_and_reordering(page) -> None:
    page.click("[data-exercise='no-second-conv']")
    page.wait_for_function("document.querySelectorAll('.editor-layer').length === 5")
    types = page.eval_on_selector_all(".editor-layer", "n => n.map(x => x.dataset.type)")
    assert types == ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    assert layer_params(page)[3] == 13 * 13 * 64 * 128 + 128
    page.click("[data-exercise='third-conv']")
    page.wait_for_function("document.querySelectorAll('.editor-layer').length === 8")
    assert layer_params(page)[4] == 64 * 9 * 64 + 64
    page.click("[data-exercise='dense-baseline']")
    page.wait_for_function("document.querySelectorAll('.editor-layer').length === 3")
    assert layer_params(page) == [0, 100480, 1290]


def test_a_broken_model_shows_its_sentence_beside_the_layer(page) -> None:
    page.click("#editor-layers .editor-layer[data-index='4'] .remove-layer")  # Flatten
    page.wait_for_selector("#editor[data-state='error']")
    broken = page.locator("#editor-layers .editor-layer.broken")
    assert broken.get_attribute("data-index") == "4"  # the Dense that lost its Flatten
    assert "add Flatten() before it" in broken.locator(".layer-error").inner_text()
    assert page.is_disabled("#train-start")
    # A kernel larger than its input: the sentence goes beside that convolution.
    page.click("[data-exercise='filters-64']")
    page.wait_for_selector("#editor[data-state='ok']")
    page.fill("#editor-layers .editor-layer[data-index='2'] [data-arg='kernel_size']", "15")
    page.wait_for_selector("#editor[data-state='error']")
    message = page.inner_text("#editor-layers .editor-layer[data-index='2'] .layer-error")
    assert "15x15 kernel" in message and "13x13x64" in message
    page.fill("#editor-layers .editor-layer[data-index='2'] [data-arg='kernel_size']", "3")
    page.wait_for_selector("#editor[data-state='ok']")
    assert not page.is_disabled("#train-start")


def test_download_gives_the_model_json(page, tmp_path) -> None:
    page.click("[data-exercise='filters-16']")
    page.wait_for_selector("#editor[data-state='ok']")
    with page.expect_download() as waiting:
        page.click("#editor-download")
    path = tmp_path / "model.json"
    waiting.value.save_as(path)
    from convlens.model.files import read_spec

    model = read_spec(path)
    assert model.total_params == int(page.get_attribute("#editor-total", "data-params"))
    assert [row.params for row in model.rows][:3] == [160, 0, 2320]


def test_a_job_trains_live_and_its_run_is_listed_and_compared(page, server) -> None:
    _, runs, _ = server
    use_tiny_model(page)
    start_job(page, 1)
    page.wait_for_selector("#trainer[data-state='done']", timeout=JOB_MS)
    assert int(page.get_attribute("#curve-loss", "data-points")) >= 2
    assert int(page.get_attribute("#train-filters", "data-redraws")) >= 2
    assert int(page.get_attribute("#train-maps", "data-redraws")) >= 2
    assert page.locator("#train-epochs-table tbody tr").count() == 1
    assert page.locator("#train-progress").evaluate("p => p.value") == 1
    name = page.inner_text("#train-status").split("the run ")[1].split(" is written")[0]
    assert is_run(runs / name)
    # The run selector and the comparison have it at once, beside the other run.
    page.wait_for_selector(f"#run-select option[value='{name}']", state="attached")
    page.wait_for_selector(f"#compare-table tr[data-run='{name}']")
    page.wait_for_selector(f"#compare-table tr[data-run='{RUN}']")
    assert page.locator("#compare-predictions .run-prediction").count() == 2
    assert page.get_attribute(f"#compare-table tr[data-run='{name}'] .params", "data-params") == (
        "1290"
    )
    assert page.locator("#compare-classes tbody tr").count() == 10


def test_cancel_and_reload_reconnect(page, server) -> None:
    _, runs, manager = server
    use_tiny_model(page)
    start_job(page, 100)
    job = page.get_attribute("#trainer", "data-job")
    page.wait_for_selector("#train-epochs-table tbody tr", timeout=JOB_MS)
    # A reload finds the running job and follows it again, with what happened so far.
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    page.wait_for_selector(f"#trainer[data-job='{job}']")
    page.wait_for_function("Number(document.querySelector('#curve-loss').dataset.points || 0) >= 2")
    page.wait_for_selector("#train-epochs-table tbody tr")
    assert not page.is_disabled("#train-cancel")
    page.click("#train-cancel")
    page.wait_for_selector("#trainer[data-state='cancelled']")
    message = page.inner_text("#train-message")
    assert "--resume" in message
    assert manager.current() is None
    assert not page.is_disabled("#train-start")


def test_the_journeys_caption_says_inverted_once(page) -> None:
    """The built-in picture (light border) is inverted for an MNIST run; the caption says so once."""
    page.wait_for_selector("#journey .journey-layer")
    caption = page.inner_text("#journey-input-caption")
    assert caption.lower().count("inverted") == 1, caption
