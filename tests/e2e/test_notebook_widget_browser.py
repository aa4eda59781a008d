"""convlens.Explorer in a real JupyterLab and Notebook 7, driven in Chromium: no port.

The test starts JupyterLab (then Notebook 7) on loopback with its own config and runtime
folders, opens a copy of docs/notebooks/04-inside-the-model.ipynb whose
first cell names a small run (a seeded CNN on generated images), runs every
cell, then works the Explorer widget the notebook ends with as a learner
would: a new filter, a hovered pixel's arithmetic, a test image walked
through the journey, why. The kernel listens on the same ports after all of
it as before the first cell ran (ipykernel's own: the five of its
connection file and one more it opens itself), and the browser never sent the explorer's
requests over HTTP. Screenshots land in the test's folder (its path is
printed) for a person to look at.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("jupyterlab", reason="the notebook's browser test needs JupyterLab")
pytest.importorskip("ipykernel", reason="the notebook's browser test needs ipykernel")
pytest.importorskip("anywidget", reason="the Explorer widget needs convlens[notebook]")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic import pattern_dataset, tiny_cnn, write_idx_dataset, write_run  # noqa: E402

from convlens.lab import ops  # noqa: E402
from convlens.lab.sample_images import facade  # noqa: E402
from convlens.notebook.channel import WIDGET_ROUTES  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LESSON = REPO / "docs" / "notebooks" / "04-inside-the-model.ipynb"
CLASSES = tuple(f"class {i}" for i in range(9)) + ("Ankle boot",)
START_SECONDS = 90
CELLS_MS = 180_000  # the kernel imports torch and draws the notebook's figures first
WAIT_MS = 60_000
KERNEL_IDLE = (
    "window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lesson_copy(folder: Path, run: Path) -> Path:
    """The lesson notebook with its parameters cell naming ``run`` (as papermill would)."""
    notebook = json.loads(LESSON.read_text())
    cell = next((c for c in notebook["cells"] if "RUN = None" in "".join(c["source"])), None)
    if cell is None:
        pytest.fail(f"{LESSON.name} has no parameters cell (RUN = None) for the test to fill in.")
    if not any("convlens.Explorer(" in "".join(c["source"]) for c in notebook["cells"]):
        pytest.fail(f"{LESSON.name} has no convlens.Explorer cell for the test to work.")
    cell["source"] = f"RUN = {str(run)!r}\nEPOCHS = 1\nTRAIN_IMAGES = None\n"
    path = folder / LESSON.name
    path.write_text(json.dumps(notebook))
    return path


# front end -> (its server's module, the class whose expose_app_in_browser is set, its tree URL)
FRONT_ENDS = {
    "jupyterlab": ("jupyterlab", "LabApp", "lab/tree"),
    "notebook7": ("notebook", "JupyterNotebookApp", "notebooks"),
}


@pytest.fixture(scope="module", params=sorted(FRONT_ENDS))
def lab(request, tmp_path_factory):
    """JupyterLab or Notebook 7 on a loopback port: (lesson's URL, its folder, runtime folder)."""
    module, app, tree = FRONT_ENDS[request.param]
    if request.param == "notebook7":
        pytest.importorskip("notebook", reason="Notebook 7's browser test needs notebook")
    if not LESSON.exists():
        pytest.skip("docs/notebooks/04-inside-the-model.ipynb is not in this checkout")
    root = tmp_path_factory.mktemp(request.param)
    dataset = pattern_dataset(60, 120)
    write_idx_dataset(root / "data" / "mnist", dataset)
    write_idx_dataset(root / "data" / "fashion-mnist", dataset)
    run = write_run(root / "runs" / "tiny", tiny_cnn(), CLASSES)
    notebook = lesson_copy(root, run)
    port, token = free_port(), secrets.token_hex(16)
    env = os.environ | {
        "CONVLENS_DATA": str(root / "data"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
        "JUPYTER_CONFIG_DIR": str(root / "config"),  # no user settings or workspaces
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "MPLBACKEND": "Agg",
    }
    command = [sys.executable, "-m", module, "--no-browser", "--allow-root"]
    command += ["--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0"]
    command += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    command += [f"--{app}.expose_app_in_browser=True"]
    log = (root / "server.log").open("w")
    server = subprocess.Popen(command, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"{module} did not start:\n" + (root / "server.log").read_text())
            time.sleep(0.5)
    try:
        yield f"{base}/{tree}/{notebook.name}?token={token}", root, root / "runtime"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (its socket inodes found in /proc/net/tcp*)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def kernel_processes(runtime: Path) -> list[tuple[int, set[int]]]:
    """(pid, the ports of its connection file) of every kernel started from ``runtime``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in args]
        files = [w for w in words if w.startswith(str(runtime)) and w.endswith(".json")]
        if files and any("ipykernel" in w for w in words):
            connection = json.loads(Path(files[0]).read_text())
            ports = {v for k, v in connection.items() if k.endswith("_port")}
            found.append((int(proc.name), ports))
    return found


def data_url(frame, selector: str) -> str:
    return frame.eval_on_selector(selector, "canvas => canvas.toDataURL()")


def hover_pixel(page, frame, selector: str, row: int, col: int) -> None:
    """Move the mouse to the middle of image pixel (row, col) of a canvas inside the widget."""
    frame.locator(selector).scroll_into_view_if_needed()
    size = frame.eval_on_selector(selector, "c => [c.height, c.width]")
    box = frame.locator(selector).bounding_box()
    page.mouse.move(
        box["x"] + (col + 0.5) * box["width"] / size[1],
        box["y"] + (row + 0.5) * box["height"] / size[0],
    )


def convlens_request(url: str) -> bool:
    """Whether ``url`` is one of the explorer's API requests (never sent over HTTP here)."""
    path = url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
    return any(re.fullmatch(pattern, "/" + path) for _m, pattern in WIDGET_ROUTES)


def front_ends_own(error: str) -> bool:
    """Whether a page error is the front end's own (Notebook 7 throws one reading its settings).

    The widget's code runs from anywidget's module and blob: URLs (explorer.js
    links the page's scripts so); the front ends' bundles are under /static/.
    """
    ours = "blob:" in error or "anywidget" in error or "convlens" in error
    return not ours and ("/static/notebook/" in error or "/static/lab/" in error)


def test_the_lessons_explorer_works_in_a_notebook_without_a_port(browser, lab) -> None:
    url, root, runtime = lab
    shots = root / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    context = browser.new_context(viewport={"width": 1232, "height": 900})
    page = context.new_page()
    sent = []
    page.on("request", lambda request: sent.append(request.url))
    errors = []
    page.on("pageerror", lambda error: errors.append(f"{error}\n{error.stack}"))
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    # the kernel must be up before "run all", or JupyterLab runs nothing
    page.wait_for_function(KERNEL_IDLE, timeout=CELLS_MS)
    kernels = kernel_processes(runtime)
    assert len(kernels) == 1, "the lesson's kernel was not found"
    pid, own = kernels[0]
    before_convlens = listening_ports(pid)  # ipykernel's: its connection file's and its own
    assert own <= before_convlens
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    news = page.get_by_role("button", name="No", exact=True)  # JupyterLab's news question
    if news.count():
        news.first.click()

    holder = page.wait_for_selector("iframe.convlens-explorer", timeout=CELLS_MS)
    holder.scroll_into_view_if_needed()
    frame = holder.content_frame()
    frame.wait_for_selector("body[data-ready='true']", timeout=CELLS_MS)
    frame.wait_for_function("document.querySelector('#filtered-canvas').width > 0")
    frame.wait_for_selector("#journey .journey-layer")
    assert frame.locator("#train-section").is_hidden()  # the page's trainer stays out of a cell
    holder.screenshot(path=shots / "explorer-in-a-cell.png")

    # a new filter redraws the filtered picture
    before = data_url(frame, "#filtered-canvas")
    frame.wait_for_selector("#stages[data-shown]")
    drawn = frame.eval_on_selector("#stages", "s => Number(s.dataset.shown)")
    frame.select_option("#filter-select", "horizontal")
    frame.wait_for_function(  # the new answer drawn in full: a hover now explains it
        "drawn => Number(document.querySelector('#stages').dataset.shown) > drawn", arg=drawn
    )
    assert data_url(frame, "#filtered-canvas") != before
    # a hovered pixel shows its arithmetic, as convlens.lab computes it
    row, col = 60, 80
    for attempt in range(3):  # a hover that lands on a neighbour is made again, as a user would
        page.mouse.move(0, 0)
        hover_pixel(page, frame, "#filtered-canvas", row, col)
        try:
            frame.wait_for_function(
                "text => document.querySelector('#pixel-where').textContent.includes(text)",
                arg=f"(row {row}, col {col})",
                timeout=WAIT_MS / 3 if attempt < 2 else WAIT_MS,
            )
            break
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
    expected = ops.explain_pixel(facade(), ops.get_filter("horizontal"), row, col)
    assert frame.locator("[data-testid='equation']").inner_text() == expected.equation()
    frame.locator("#playground").screenshot(path=shots / "playground-hover.png")

    # a test image walks through the journey
    before = frame.eval_on_selector("#journey", "j => j.dataset.imageId || ''")
    frame.click("label[for='source-sample']")
    frame.select_option("#sample-class", "9")
    frame.wait_for_function(
        "document.querySelector('#sample-note').textContent.startsWith('Ankle boot')"
    )
    frame.locator("#sample-thumbs .sample-thumb").first.click()
    frame.wait_for_function(
        """before => {
            const id = document.querySelector('#playground').dataset.imageId;
            return id && id !== before && document.querySelector('#journey').dataset.imageId === id;
        }""",
        arg=before,
    )
    layers = frame.locator("#journey .journey-layer")
    assert layers.count() == 6  # tiny_cnn's six layers, each with its Keras shape
    assert frame.locator("#journey-input-shape").inner_text() == "(28, 28, 1)"

    # why: the attribution map laid over the input
    frame.locator("#why-toggle").scroll_into_view_if_needed()
    frame.check("#why-toggle")
    frame.wait_for_selector("#why-overlay:not([hidden])")
    assert "class" in frame.locator("#why-title").inner_text()
    frame.locator("#journey-section").screenshot(path=shots / "journey-and-why.png")
    page.screenshot(path=shots / "front-end-1232.png")
    page.evaluate(
        "(c => c.hasCommand(LEFT) && c.execute(LEFT))(window.jupyterapp.commands)".replace(
            "LEFT", "'application:toggle-left-area'"
        )
    )
    page.set_viewport_size({"width": 400, "height": 900})
    frame.locator("#playground").scroll_into_view_if_needed()
    page.screenshot(path=shots / "front-end-400.png")

    assert listening_ports(pid) == before_convlens, "the Explorer opened a listening socket"
    assert kernel_processes(runtime) == kernels
    over_http = [u for u in sent if convlens_request(u)]
    assert over_http == [], "the widget sent explorer requests over HTTP"
    assert [e for e in errors if not front_ends_own(e)] == [], "the widget threw exceptions"
    context.close()
    if os.environ.get("CONVLENS_KEEP_SCREENSHOTS"):
        kept = Path(os.environ["CONVLENS_KEEP_SCREENSHOTS"]) / root.name
        shutil.copytree(shots, kept, dirs_exist_ok=True)
