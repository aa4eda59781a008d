"""The explorer's doors (web/doors.py, issue 22 item 6): each is tried from outside.

A page of another site may not change the explorer (uploads, jobs, cancel);
an explorer listening beyond this computer asks for its token; what uploads
leave in memory (images, loaded models) is bounded, the least recently used
dropped first. `convlens explore` says who can reach it.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from synthetic import tiny_cnn, write_run

from convlens.model.presets import preset
from convlens.web.app import create_app
from convlens.web.doors import cookie_name, is_loopback
from convlens.web.store import ImageStore, RunRegistry

CLASSES = tuple(f"class {i}" for i in range(10))
FOREIGN = "http://evil.example"
TOKEN = "the-token-of-this-explorer"


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    write_run(root / "tiny", tiny_cnn(), CLASSES)
    write_run(root / "dense", preset("seed-dnn"), CLASSES)
    return root


@pytest.fixture
def app(runs_root):
    return create_app(runs_root)


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1:8765")


def refused(answer) -> str:
    assert answer.status_code == 403, answer.text
    message = answer.json()["error"]
    assert message.endswith(".") and "\n" not in message
    return message


# ---------------------------------------------------------------- a foreign Origin


def test_an_upload_from_another_site_is_refused_and_nothing_is_kept(app, client) -> None:
    """The attack tried in the issue: text/plain, so a browser sends it without asking first."""
    images = app.state.explorer.images
    answer = client.post(
        "/api/images",
        content=png(np.zeros((8, 8), dtype=np.uint8)),
        headers={"Origin": FOREIGN, "Content-Type": "text/plain"},
    )
    assert FOREIGN in refused(answer)
    assert len(images) == 0
    # The explorer's own page (same origin) and scripts (no Origin) still upload.
    for headers in ({"Origin": "http://127.0.0.1:8765"}, {}):
        ok = client.post("/api/images", content=png(np.zeros((8, 8), dtype=np.uint8)), headers=headers)
        assert ok.status_code == 200, ok.text
    assert len(images) == 1  # the same pixels twice: one image


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/jobs", {"model": "seed-cnn", "dataset": "mnist"}),
        ("DELETE", "/api/jobs/abc", None),
        ("POST", "/api/models", None),
        ("POST", "/api/convolve", {"image": "x", "filter": "vertical"}),
        ("POST", "/api/models/summary", {"model": {}}),
    ],
)
@pytest.mark.parametrize("origin", [FOREIGN, "null", "http://127.0.0.1:9999"])
def test_every_change_from_another_origin_is_403(app, client, method, path, body, origin) -> None:
    answer = client.request(method, path, json=body, headers={"Origin": origin})
    refused(answer)
    assert app.state.jobs.current() is None and not app.state.jobs.jobs


def test_reading_from_another_origin_is_left_to_the_browser(client) -> None:
    """GETs change nothing; the browser keeps their answers from the other site (no CORS)."""
    answer = client.get("/api/info", headers={"Origin": FOREIGN})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers


# ---------------------------------------------------------------- the token


@pytest.fixture
def guarded(runs_root) -> TestClient:
    app = create_app(runs_root, host="0.0.0.0", token=TOKEN)
    return TestClient(app, base_url="http://192.0.2.7:8765", follow_redirects=False)


def test_without_the_token_every_request_is_403(guarded) -> None:
    for path in ("/", "/api/info", "/static/style.css", "/api/jobs"):
        assert "token" in refused(guarded.get(path))
    assert "token" in refused(guarded.get("/?token=wrong"))
    assert "token" in refused(guarded.get("/api/info", headers={"Authorization": "token nope"}))
    guarded.cookies.set(cookie_name(TOKEN), "wrong")
    assert "token" in refused(guarded.get("/api/info"))


def test_the_token_in_the_address_becomes_a_cookie_and_leaves_the_address(guarded) -> None:
    answer = guarded.get(f"/?run=tiny&token={TOKEN}")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/?run=tiny"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(TOKEN)}={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # The cookie now opens every door: the page, its files, the API.
    for path in ("/?run=tiny", "/static/js/page.js", "/api/info"):
        assert guarded.get(path).status_code == 200, path
    info = guarded.get("/api/info").json()
    assert info["reach"] == "Other computers can open this page with its token."


def test_a_script_may_give_the_token_in_a_header(guarded) -> None:
    answer = guarded.get("/api/info", headers={"Authorization": f"token {TOKEN}"})
    assert answer.status_code == 200
    # ... or in the address of an API call, which answers at once (and sets the cookie).
    answer = guarded.get(f"/api/info?token={TOKEN}")
    assert answer.status_code == 200 and cookie_name(TOKEN) in answer.headers["set-cookie"]


def test_the_token_does_not_let_another_site_change_anything(guarded) -> None:
    guarded.cookies.set(cookie_name(TOKEN), TOKEN)
    answer = guarded.post("/api/jobs", json={"model": "seed-cnn"}, headers={"Origin": FOREIGN})
    refused(answer)


def test_loopback_addresses() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.com"):
        assert not is_loopback(host), host


# ---------------------------------------------------------------- bounded memory


def test_stored_images_are_bounded_in_count_and_bytes_oldest_dropped_first() -> None:
    store = ImageStore(max_bytes=10_000, max_images=3)
    ids = [store.add(np.full((10, 10, 1), i, dtype=np.uint8), f"{i}").id for i in range(5)]
    assert len(store) == 3
    for gone in ids[:2]:
        with pytest.raises(Exception, match="dropped to save memory"):
            store.get(gone)
    store.get(ids[2])  # used: now the most recent; the next one in drops ids[3]
    store.add(np.full((10, 10, 1), 9, dtype=np.uint8), "9")
    with pytest.raises(Exception, match="no image"):
        store.get(ids[3])
    # Bytes: a colour image counts its pixels and the grayscale copy it is filtered as.
    big = np.zeros((40, 50, 3), dtype=np.uint8)  # 6,000 + 2,000 bytes
    store.add(big, "big")  # a fourth image: the oldest of the three goes
    assert len(store) == 3  # 100 + 100 + 8,000 bytes
    store.add(np.ones((60, 60, 3), dtype=np.uint8), "bigger")  # 14,400 bytes: over, kept alone
    assert len(store) == 1


def test_loaded_runs_are_bounded_in_count_and_bytes_oldest_dropped_first(runs_root) -> None:
    registry = RunRegistry(runs_root, max_runs=1)
    registry.get("tiny")
    registry.get("dense")
    assert registry.loaded() == ["dense"]
    dense_bytes = registry.get("dense").weight_bytes
    assert dense_bytes == 4 * preset("seed-dnn").total_params  # float32 weights
    registry = RunRegistry(runs_root, max_runs=4, max_bytes=dense_bytes + 100)
    registry.get("dense")
    registry.get("tiny")  # tiny + dense > the budget: dense, the older, goes
    assert registry.loaded() == ["tiny"]
    registry = RunRegistry(runs_root, max_runs=4, max_bytes=10 * dense_bytes)
    registry.get("dense")
    registry.get("tiny")
    registry.get("dense")  # used again: tiny is now the oldest
    assert registry.loaded() == ["tiny", "dense"]


# ---------------------------------------------------------------- the banner


def start_explorer(runs: Path, host: str) -> tuple[subprocess.Popen, str, str]:
    """`convlens explore` in its own process; its first two lines (the URL, who can reach it)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "convlens", "explore", "--runs-dir", str(runs), "--no-browser"]
        + ["--host", host],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    first = process.stdout.readline()
    second = process.stdout.readline()
    return process, first, second


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def get(url: str, headers: dict | None = None) -> int:
    """The status of GET ``url``, following redirects as a browser does (cookies kept)."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    try:
        with browser.open(urllib.request.Request(url, headers=headers or {}), timeout=30):
            return 200
    except urllib.error.HTTPError as error:
        return error.code


def test_explore_on_the_loopback_says_only_this_computer_and_asks_no_token(runs_root) -> None:
    process, first, second = start_explorer(runs_root, "127.0.0.1")
    try:
        url = re.search(r"(http://\S+)", first).group(1)
        assert "token" not in url
        assert "Only this computer can reach it" in second
        assert get(url + "api/info") == 200
    finally:
        stop(process)


def test_explore_beyond_the_loopback_prints_the_token_once_and_asks_for_it(runs_root) -> None:
    process, first, second = start_explorer(runs_root, "0.0.0.0")
    try:
        url = re.search(r"(http://\S+)", first).group(1)
        token = re.search(r"\?token=([\w-]+)$", url).group(1)
        assert len(token) >= 24
        assert "other computers" in second and "token" in second
        base = url.split("?")[0]
        assert get(base + "api/info") == 403
        assert get(base + "api/info", {"Authorization": f"token {token}"}) == 200
        assert get(url) == 200  # the printed address opens the page (redirect, then cookie)
    finally:
        stop(process)
    rest = process.stdout.read()
    assert token not in rest  # printed once
