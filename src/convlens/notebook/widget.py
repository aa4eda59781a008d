"""convlens.Explorer: the explorer's parts in a notebook cell, as an anywidget, with no port.

The widget shows the page itself (web/static: index.html's body, style.css
and every script in js/, one copy of each view) in a frame of its own, and
gives the page's scripts one thing the page does not have:
``globalThis.convlensFetch``, which web/static/js/api.js uses instead of
``fetch``. It sends each request over the widget's channel to this kernel,
where channel.py hands it to the explorer's FastAPI application in-process
(same routes, validation and 4xx sentences) and sends the answer back. No
server starts and nothing listens on a port, so a remote kernel (Colab, a
JupyterHub, a cloud VM) works as a local one.

Shown: the playground (any filter, each pixel's arithmetic on hover), the
journey of an image through the run's model, the class view, why
(attribution) and a filter's portrait. The page's editor, trainer and
comparison stay hidden (train with convlens.train in a cell).

anywidget and traitlets come with ``pip install "convlens[notebook]"``;
without them Explorer says so in one sentence.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import traceback
from concurrent.futures import Future
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from convlens import shown
from convlens.errors import ConvlensError
from convlens.images import read_image
from convlens.notebook.channel import Answer, answer_request
from convlens.runs.directory import RUNS_ROOT, resolve_run
from convlens.runs.loading import Run
from convlens.web.app import create_app
from convlens.web.page import STATIC_DIR

try:  # the notebook extra: pip install "convlens[notebook]"
    import anywidget  # the widget's base class: optional, so reprs work without it
    import traitlets  # the synced traits, anywidget's dependency
except ImportError:
    anywidget = traitlets = None

HERE = Path(str(resources.files("convlens.notebook") / "static"))
HOST_SCRIPT = HERE / "explorer.js"
NEEDS_EXTRA = (
    'the Explorer widget needs anywidget; install it with pip install "convlens[notebook]" '
    "and restart the kernel."
)


@cache
def page_assets() -> dict[str, Any]:
    """The page as the widget's frame shows it: body, styles and scripts (read once)."""
    index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    found = re.search(r"<body[^>]*>(.*)</body>", index, re.S)
    if found is None:
        raise ConvlensError("the explorer's index.html has no <body>; reinstall convlens.")
    modules = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted((STATIC_DIR / "js").glob("*.js"))
    }
    css = (STATIC_DIR / "style.css").read_text(encoding="utf-8")
    widget_css = (HERE / "explorer.css").read_text(encoding="utf-8")
    return {
        "body": found.group(1),
        "css": css + "\n" + widget_css,
        "modules": modules,
        "entry": "page.js",
    }


def start_image(image: Any) -> dict[str, str] | None:
    """The image the playground starts with, as a PNG file {name, png (base64)}; None: none."""
    if image is None:
        return None
    if isinstance(image, (str, Path)):
        name, pixels = Path(image).name, read_image(image)
    else:
        array = np.asarray(image)
        if array.dtype.kind == "f" and array.size and array.max() <= 1.0:
            array = array * 255.0  # the lesson's x / 255.0
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3)):
            raise ConvlensError(
                f"Explorer(image=...) takes a picture file or an (H, W[, C]) array with 1 or 3 "
                f"channels, not an array of shape {array.shape}."
            )
        name, pixels = "image.png", np.clip(np.rint(array), 0, 255).astype(np.uint8)
    png = shown.png_bytes(pixels)
    return {"name": Path(name).stem + ".png", "png": base64.b64encode(png).decode("ascii")}


def _text_or_buffer(answer: Answer) -> tuple[str | None, list[bytes]]:
    """A JSON or text answer travels as text, anything else as a binary buffer."""
    kind = answer.content_type
    if kind.startswith(("application/json", "text/")):
        return answer.body.decode("utf-8", errors="replace"), []
    return None, [answer.body]


if anywidget is not None:

    class ExplorerWidget(anywidget.AnyWidget):
        """The explorer's page in a cell, its requests answered in this kernel (see the module)."""

        _esm = HOST_SCRIPT
        _page = traitlets.Dict().tag(sync=True)
        _image = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)

        def __init__(self, app: Any, image: dict[str, str] | None = None, **kwargs: Any) -> None:
            super().__init__(_page=page_assets(), _image=image, **kwargs)
            self.app = app
            self.answered = 0
            self.on_msg(self._on_message)

        def _on_message(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
            if not isinstance(content, dict) or content.get("type") != "request":
                return
            body = bytes(buffers[0]) if buffers else str(content.get("body") or "").encode()
            headers = content.get("headers") if isinstance(content.get("headers"), dict) else {}
            future = self.answer(
                str(content.get("method") or "GET"), str(content.get("url") or "/"), headers, body
            )
            future.add_done_callback(lambda done: self._reply(content.get("id"), done))

        def answer(self, method: str, url: str, headers: dict, body: bytes) -> Future:
            """The application's answer to one request, on the background loop."""
            return answer_request(self.app, method, url, headers, body)

        def _reply(self, request_id: Any, done: Future) -> None:
            try:
                answer = done.result()
            except Exception as exc:  # a bug: the frame gets a sentence, the kernel's log the trace
                traceback.print_exception(exc, file=sys.stderr)
                sentence = f"the kernel could not answer ({exc!r}); see the kernel's log."
                answer = Answer(
                    500,
                    {"content-type": "application/json"},
                    json.dumps({"error": sentence}).encode(),
                )
            text, buffers = _text_or_buffer(answer)
            message = {
                "type": "response",
                "id": request_id,
                "status": answer.status,
                "content_type": answer.content_type,
                "body": text,
            }
            self.answered += 1
            self.send(message, buffers)


def Explorer(  # noqa: N802 - a widget, named as the class a user thinks it is
    run: Run | str | Path | None = None,
    image: Any = None,
    *,
    runs_dir: str | Path = RUNS_ROOT,
) -> Any:
    """The explorer in a notebook cell: playground, journey, class view, why and portraits.

    ``run``: the run shown first (a Run, its directory, or None for the
    latest under ``runs_dir``; the others there are listed too). ``image``:
    the picture the playground starts with (a file, or an (H, W[, C]) array;
    floats up to 1 are taken as x / 255). No server and no port: the page's
    requests go to this kernel over the widget's channel.

    >>> convlens.Explorer(run, image=x_test[0])   # doctest: +SKIP
    """
    if anywidget is None:
        raise ConvlensError(NEEDS_EXTRA)
    path = run.path if isinstance(run, Run) else None if run is None else resolve_run(run)
    app = create_app(runs_root=Path(runs_dir), run=path)
    return ExplorerWidget(app, start_image(image))
