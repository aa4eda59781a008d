# ruff: noqa: F811  (pytest fixtures imported from the explorer's browser tests are parameters)
"""The page's "why" parts in Chromium: the overlay on what the model sees, a filter's portrait.

Same live server, run and generated test split as test_explorer_browser.py;
what the page draws is compared with the API's answer and with
convlens.portraits computed here.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from test_explorer_browser import (  # noqa: F401 (fixtures)
    RUN,
    WAIT_MS,
    console,
    model,
    page,
    pattern_dataset,
    runs_root,
    server,
)

from convlens.inspect import portraits
from convlens.runs.loading import load_run


def canvas_pixels(page, selector: str) -> np.ndarray:
    url = page.eval_on_selector(selector, "canvas => canvas.toDataURL()")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def api_overlay(page, method: str, target: int | None) -> tuple[np.ndarray, dict]:
    """The API's overlay for the journey's image, fetched by the page itself."""
    body = page.evaluate(
        """async ([run, method, target]) => {
            const image = document.querySelector('#journey').dataset.imageId;
            const invert = document.querySelector('#invert').value;
            const answer = await fetch('/api/attribution', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({run, image, invert, method, target})});
            return answer.json();
        }""",
        [RUN, method, target],
    )
    data = base64.b64decode(body["overlay"].split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), body


def test_the_why_switch_lays_the_map_over_the_input_for_any_class(page, console):
    assert page.locator("#why-overlay").is_hidden()
    page.check("#why-toggle")
    page.wait_for_selector("#why-overlay:not([hidden])")
    predicted = page.locator("#probabilities li.predicted").get_attribute("data-index")
    assert page.get_attribute("#why-overlay", "data-target") == predicted
    default = page.evaluate(
        """async (run) => {
            const answer = await fetch('/api/attribution/methods?run=' + run);
            return (await answer.json()).find((m) => m.default).name;
        }""",
        RUN,
    )
    assert page.input_value("#why-method") == default  # the run's measured default first
    drawn = canvas_pixels(page, "#why-overlay")[..., :3]
    expected, body = api_overlay(page, default, None)
    np.testing.assert_array_equal(drawn, expected)
    assert page.locator("#why-title").inner_text() == body["title"]

    page.select_option("#why-method", "occlusion")
    page.select_option("#why-class", "4")
    page.wait_for_function(
        "(() => { const o = document.querySelector('#why-overlay').dataset;"
        " return o.target === '4' && o.method === 'occlusion'; })()"
    )
    drawn = canvas_pixels(page, "#why-overlay")[..., :3]
    expected, body = api_overlay(page, "occlusion", 4)
    np.testing.assert_array_equal(drawn, expected)
    assert "Coat" in page.locator("#why-title").inner_text()
    assert "black 4x4 patch, stride 2" in page.locator("#why-note").inner_text()

    page.uncheck("#why-toggle")
    assert page.locator("#why-overlay").is_hidden()
    assert console.errors == []


def test_a_feature_map_click_opens_the_filters_portrait(page, runs_root):
    section = page.locator("#journey .journey-layer[data-layer='conv2d_1']")
    section.locator(".map-tile").nth(2).click()
    page.wait_for_selector("#portrait[data-loaded='true']")
    portrait = section.locator("#portrait")
    assert portrait.get_attribute("data-filter") == "2"
    run = load_run(runs_root / RUN)
    test = pattern_dataset(60, 120, seed=4).test
    found = portraits.top_patches(run, test.images, "conv2d_1", [2], count=6)
    patches = portrait.locator("canvas.portrait-patch")
    assert patches.count() == 6
    shown = [int(patches.nth(i).get_attribute("data-test-index")) for i in range(6)]
    assert shown == list(found.indices[0])
    windows = [patches.nth(i).get_attribute("data-window") for i in range(6)]
    assert windows == [",".join(str(v) for v in w) for w in found.windows[0]]
    synthesised = canvas_pixels(page, "#portrait canvas.portrait-synthesised")
    made = portraits.synthesise(run, "conv2d_1", [2])[0, :, :, 0]
    np.testing.assert_array_equal(synthesised[..., 0], made)  # canvas pixel = image pixel
    assert "8x8" in portrait.inner_text()
    portrait.locator("button.portrait-close").click()
    assert page.locator("#portrait").count() == 0


def with_default(answer: list[dict], form: str) -> list[dict] | dict:
    """GET /api/attribution/methods's answer with saliency as the default, in ``form`` ("none":
    no default at all, as a server before the measured default answered)."""
    if form == "marked":
        return [dict(method, default=method["name"] == "saliency") for method in answer]
    if form == "named":
        return {"methods": [strip(method) for method in answer], "default": "saliency"}
    return [strip(method) for method in answer]


def strip(method: dict) -> dict:
    """A method's entry without its "default" mark."""
    return {key: value for key, value in method.items() if key != "default"}


@pytest.mark.parametrize(("form", "expected"), [("marked", "saliency"), ("named", "saliency"), ("none", None)])
def test_the_method_menu_starts_on_the_servers_default(browser, server, form, expected):
    """A "default" in the methods' answer (for the run, where the server knows one) is chosen."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    asked: list[str] = []

    def answer(route) -> None:
        asked.append(route.request.url)
        real = route.fetch().json()
        route.fulfill(json=with_default(real, form))

    tab.route("**/api/attribution/methods*", answer)
    try:
        tab.goto(server)
        tab.wait_for_selector("#journey .journey-layer")
        tab.wait_for_function("document.querySelector('#why-method').options.length > 1")
        first = tab.eval_on_selector("#why-method", "s => s.options[0].value")
        assert tab.input_value("#why-method") == (expected or first)
        assert any(f"run={RUN}" in url for url in asked)  # asked again for the run shown
        tab.check("#why-toggle")
        tab.wait_for_selector("#why-overlay:not([hidden])")
        assert tab.get_attribute("#why-overlay", "data-method") == (expected or first)
        # The reader's choice stays; the server's default does not take it back.
        tab.select_option("#why-method", "saliency")
        tab.wait_for_function("document.querySelector('#why-overlay').dataset.method === 'saliency'")
    finally:
        context.close()
