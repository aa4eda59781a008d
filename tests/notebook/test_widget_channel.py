"""convlens.Explorer's channel: the page's requests answered in the kernel, as HTTP answers them.

Two explorers on the same runs and data: one served over HTTP on loopback
(what `convlens explore` does), one inside an Explorer widget whose
messages are sent as the widget's front end sends them. Every request the
widget's parts make (channel.WIDGET_ROUTES), good and bad, must get the
same status, Content-Type and body bytes from both (only why's own measured
"milliseconds" may differ: it is how long that one answer took).
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from synthetic import pattern_dataset, tiny_cnn, write_idx_dataset, write_run

import convlens
from convlens.errors import ConvlensError
from convlens.model.presets import preset
from convlens.notebook import channel, widget
from convlens.runs.loading import load_run
from convlens.web.app import create_app
from convlens.web.page import STATIC_DIR
from convlens.web.server import serve_in_thread

pytest.importorskip("anywidget", reason="the Explorer widget needs convlens[notebook]")

CLASSES = tuple(f"class {i}" for i in range(9)) + ("Ankle boot",)
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """Two runs (a CNN and a dense net) on generated data found via CONVLENS_DATA."""
    root = tmp_path_factory.mktemp("widget")
    dataset = pattern_dataset(60, 120)
    write_idx_dataset(root / "data" / "mnist", dataset)
    write_idx_dataset(root / "data" / "fashion-mnist", dataset)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_DATA", str(root / "data"))
        write_run(root / "runs" / "dense", preset("seed-dnn"), CLASSES)
        write_run(root / "runs" / "tiny", tiny_cnn(), CLASSES)
        yield root / "runs"


@pytest.fixture(scope="module")
def http(runs_root) -> str:
    """The page's explorer, served on a free loopback port."""
    url, stop = serve_in_thread(create_app(runs_root))
    yield url.rstrip("/")
    stop()


class Frame:
    """The widget's front end as the kernel sees it: messages in, answers out."""

    def __init__(self, explorer: Any) -> None:
        self.explorer = explorer
        self.answers: dict[str, tuple[dict, list]] = {}
        self.arrived = threading.Condition()
        self.count = 0
        explorer.send = self._receive  # no comm outside a kernel: keep what would be sent

    def _receive(self, content: dict, buffers: list | None = None) -> None:
        with self.arrived:
            self.answers[content["id"]] = (content, list(buffers or []))
            self.arrived.notify_all()

    def request(self, method: str, url: str, body: bytes = b"", headers: dict | None = None):
        """(status, content type, body bytes) as explorer.js would build its Response."""
        self.count += 1
        key = f"test:{self.count}"
        text = body.decode() if headers == JSON else None
        message = {"type": "request", "id": key, "method": method, "url": url}
        message |= {"headers": headers or {}, "body": text}
        self.explorer._on_message(self.explorer, message, [] if text is not None else [body])
        with self.arrived:
            assert self.arrived.wait_for(lambda: key in self.answers, timeout=60), url
        content, buffers = self.answers.pop(key)
        data = bytes(buffers[0]) if buffers else (content["body"] or "").encode()
        return content["status"], content["content_type"], data


def over_http(base: str, method: str, url: str, body: bytes = b"", headers: dict | None = None):
    """(status, content type, body bytes) of the same request sent to the served page."""
    data = body if method != "GET" else None
    request = urllib.request.Request(base + url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


TIMING = re.compile(rb'"milliseconds":[0-9.e+-]+')


def timeless(answer: tuple[int, str, bytes]) -> tuple[int, str, bytes]:
    """An answer with the time it measured itself (why's "milliseconds") blanked out."""
    status, kind, body = answer
    return status, kind, TIMING.sub(b'"milliseconds":0', body)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def frame(runs_root) -> Frame:
    return Frame(convlens.Explorer(runs_dir=runs_root))


def requests_of_the_widget(
    image: str, sample: str, model: dict
) -> list[tuple[str, str, bytes, dict]]:
    """Every request the widget's parts send, each route good, and the bad ones they may send."""
    upload = png(np.arange(28 * 28, dtype=np.uint8).reshape(28, 28))

    def post(url: str, body: dict) -> tuple[str, str, bytes, dict]:
        return ("POST", url, json.dumps(body).encode(), JSON)

    convolve = {"image": image, "filter": "vertical"}
    pixel = {**convolve, "row": 3, "col": 4}
    journey = {"run": "tiny", "image": sample}
    return [
        ("GET", "/api/info", b"", {}),
        ("GET", "/api/images/builtin/facade", b"", {}),
        ("GET", "/api/images/builtin/nope", b"", {}),
        ("GET", "/api/samples?class_choice=Ankle+boot&count=3&run=tiny", b"", {}),
        ("GET", "/api/samples?class_choice=2&count=99", b"", {}),
        ("POST", "/api/images", upload, {"Content-Type": "image/png", "X-Filename": "a.png"}),
        ("POST", "/api/images", b"not a picture", {"X-Filename": "b.png"}),
        post("/api/convolve", convolve),
        post("/api/convolve", {**convolve, "filter": "sharpen", "pool": "avg", "stride": 2}),
        post("/api/convolve", {**convolve, "filter": "no such filter"}),
        post("/api/explain", pixel),
        post("/api/explain", {**pixel, "row": 9999}),
        post("/api/explain-pool", pixel),
        post("/api/explain-pool", {**pixel, "pool": "none"}),
        ("GET", "/api/runs/tiny", b"", {}),
        ("GET", "/api/runs/missing", b"", {}),
        post("/api/journey", journey),
        post("/api/journey", {**journey, "run": "dense"}),
        post("/api/journey", {"run": "tiny"}),
        post("/api/class-filter", {"run": "tiny", "class_choice": "Ankle boot", "filter": 1}),
        post("/api/class-filter", {"run": "tiny", "class_choice": "Ankle boot", "filter": 99}),
        ("GET", "/api/attribution/methods", b"", {}),
        post("/api/attribution", {**journey, "method": "gradcam"}),
        post("/api/attribution", {**journey, "method": "saliency", "target": 7}),
        post("/api/attribution", {**journey, "run": "dense"}),
        post("/api/portrait", {"run": "tiny", "layer": "conv2d_1", "filter": 2}),
        post("/api/portrait", {"run": "tiny", "layer": "conv2d_1", "filter": 400}),
        ("GET", "/api/models/presets", b"", {}),
        ("GET", "/api/models/layer-types", b"", {}),
        ("GET", "/api/runs/tiny/model", b"", {}),
        post("/api/models/summary", {"model": model}),
        post("/api/models/summary", {"model": {"layers": [{"type": "Nope"}]}}),
        ("GET", "/api/jobs", b"", {}),
        ("GET", "/api/compare?run=tiny&run=dense", b"", {}),
        ("GET", "/api/compare?run=nope", b"", {}),
        post("/api/compare/predict", {"runs": ["tiny", "dense"], "image": sample}),
    ]


def test_every_widget_request_gets_the_same_answer_as_over_http(frame, http) -> None:
    facade = over_http(http, "GET", "/api/images/builtin/facade")
    image = json.loads(facade[2])["id"]
    found = over_http(http, "GET", "/api/samples?class_choice=2&count=1&run=tiny")
    sample = json.loads(found[2])["images"][0]["id"]
    model = json.loads(over_http(http, "GET", "/api/runs/tiny/model")[2])
    # the widget's explorer holds its own images: the same requests give it the same ids
    assert frame.request("GET", "/api/images/builtin/facade") == facade
    assert frame.request("GET", "/api/samples?class_choice=2&count=1&run=tiny") == found
    covered, statuses = set(), set()
    for method, url, body, headers in requests_of_the_widget(image, sample, model):
        page = over_http(http, method, url, body, headers)
        cell = frame.request(method, url, body, headers)
        assert timeless(cell) == timeless(page), f"{method} {url}: the channel's answer differs"
        statuses.add(page[0])
        if page[0] >= 400:
            sentence = json.loads(page[2])["error"]
            assert isinstance(sentence, str) and "Traceback" not in sentence, (method, url)
        path = url.split("?")[0]
        covered |= {
            (m, p) for m, p in channel.WIDGET_ROUTES if m == method and re.fullmatch(p, path)
        }
    assert covered == set(channel.WIDGET_ROUTES), "a route the widget uses was not compared"
    assert {200, 400, 404, 422} <= statuses


@pytest.mark.parametrize(
    ("method", "url"),
    [("POST", "/api/jobs"), ("GET", "/api/jobs/abc/events"), ("POST", "/api/models"), ("GET", "/")],
)
def test_requests_the_widget_never_makes_are_one_sentence(frame, method, url) -> None:
    status, kind, body = frame.request(method, url, b"{}", JSON)
    sentence = json.loads(body)["error"]
    assert status == 404 and kind == "application/json"
    assert sentence.endswith(".") and "\n" not in sentence and "convlens.train" in sentence


def test_the_widget_ships_the_pages_own_scripts_and_body(frame) -> None:
    page = frame.explorer._page
    scripts = {path.name: path.read_text() for path in (STATIC_DIR / "js").glob("*.js")}
    assert page["modules"] == scripts and page["entry"] in scripts
    assert 'id="playground"' in page["body"] and "<body" not in page["body"]
    assert "convlensFetch" in scripts["api.js"]  # the one transport switch


def test_explorer_takes_a_run_and_a_start_image(runs_root) -> None:
    run = load_run(runs_root / "dense")
    explorer = convlens.Explorer(run, image=np.linspace(0, 1, 28 * 28).reshape(28, 28))
    info = Frame(explorer).request("GET", "/api/info")
    assert json.loads(info[2])["runs"][0]["name"] == "dense"
    start = explorer._image
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(start["png"]))))
    assert shown.shape == (28, 28) and shown[0, 0] == 0 and shown[-1, -1] == 255
    with pytest.raises(ConvlensError, match=r"not an array of shape \(2, 3, 4\)"):
        convlens.Explorer(run, image=np.zeros((2, 3, 4)))


def test_without_anywidget_explorer_says_what_to_install(monkeypatch, runs_root) -> None:
    monkeypatch.setattr(widget, "anywidget", None)
    with pytest.raises(ConvlensError) as error:
        convlens.Explorer(runs_dir=runs_root)
    sentence = str(error.value)
    assert 'pip install "convlens[notebook]"' in sentence and sentence.count(". ") == 0
