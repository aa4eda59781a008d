"""The Explorer widget's transport: the page's HTTP requests answered in-process, no port.

The widget's script sends each request the page would send (method, path
and query, headers, body) as a message over the widget's channel; here it is
handed to the explorer's FastAPI application as one ASGI call, so the
answer is the application's own: the same routes, validation and 4xx
sentences as `convlens explore` serves over HTTP. Nothing listens on a
socket. Calls run on one background event loop ("convlens-explorer"), so a
kernel busy in its own loop (ipykernel runs on asyncio) is never re-entered.

Only the requests the widget's parts make are answered (WIDGET_ROUTES): the
playground, the images, the journey, the class view, why and portraits, and
what the page reads when it starts; training jobs (which stream Server-Sent
Events) are the page's, and are refused in one sentence.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from convlens.web.app import LOCAL_HOSTS

HOST = LOCAL_HOSTS[1]  # "localhost": the Host header every in-process request carries

# (method, path pattern) of every request the widget's parts send
WIDGET_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", r"/api/info"),
    ("GET", r"/api/images/builtin/[^/]+"),
    ("GET", r"/api/samples"),
    ("POST", r"/api/images"),
    ("POST", r"/api/convolve"),
    ("POST", r"/api/explain"),
    ("POST", r"/api/explain-pool"),
    ("GET", r"/api/runs/[^/]+"),
    ("POST", r"/api/journey"),
    ("POST", r"/api/class-filter"),
    ("GET", r"/api/attribution/methods"),
    ("POST", r"/api/attribution"),
    ("POST", r"/api/portrait"),
    # read when the page starts (the editor, trainer and comparison the widget keeps hidden)
    ("GET", r"/api/models/presets"),
    ("GET", r"/api/models/layer-types"),
    ("GET", r"/api/runs/[^/]+/model"),
    ("POST", r"/api/models/summary"),
    ("GET", r"/api/jobs"),
    ("GET", r"/api/compare"),
    ("POST", r"/api/compare/predict"),
)
_ROUTES = [(method, re.compile(pattern + r"\Z")) for method, pattern in WIDGET_ROUTES]


@dataclass
class Answer:
    """An HTTP answer: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str:
        """The answer's Content-Type ("" when it has none)."""
        return self.headers.get("content-type", "")


def answered_by_widget(method: str, path: str) -> bool:
    """Whether the widget's channel answers ``method path``."""
    return any(method == m and pattern.match(path) for m, pattern in _ROUTES)


def refusal(method: str, path: str) -> Answer:
    """The one-sentence 404 for a request the widget does not make."""
    sentence = (
        f"the notebook's Explorer does not answer {method} {path}; train models with "
        f"convlens.train(...) in a cell, or open the full page with `convlens explore`."
    )
    body = json.dumps({"error": sentence}).encode()
    return Answer(404, {"content-type": "application/json"}, body)


async def call_app(
    app: Any, method: str, target: str, headers: dict[str, str], body: bytes
) -> Answer:
    """One HTTP request handed to an ASGI application in this process; its whole answer."""
    parts = urlsplit(target)
    path = parts.path or "/"
    pairs = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]
    pairs = [p for p in pairs if p[0] not in (b"host", b"content-length")]
    pairs += [(b"host", HOST.encode()), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method.upper(),
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": pairs,
        "client": None,  # no socket: nobody connected
        "server": None,
        "state": {},
    }
    answer = Answer(500)
    chunks: list[bytes] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the request has no more body; never disconnects early
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = int(message["status"])
            answer.headers = {
                k.decode("latin-1").lower(): v.decode("latin-1")
                for k, v in message.get("headers", [])
            }
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    answer.body = b"".join(chunks)
    return answer


class Loop:
    """One background thread running an asyncio loop, on which every widget's requests run."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="convlens-explorer", daemon=True
                )
                thread.start()
                self._loop = loop
            return self._loop

    def submit(self, coroutine: Any, done: Callable[[Future], None] | None = None) -> Future:
        """Run ``coroutine`` on the loop; ``done(future)`` is called when it ends."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._started())
        if done is not None:
            future.add_done_callback(done)
        return future


LOOP = Loop()


def answer_request(app: Any, method: str, target: str, headers: dict, body: bytes) -> Future:
    """The widget's request ``method target`` answered by ``app`` (refused when not the widget's)."""
    method = method.upper()
    path = urlsplit(target).path

    async def refused() -> Answer:
        return refusal(method, path)

    if not answered_by_widget(method, path):
        return LOOP.submit(refused())
    return LOOP.submit(call_app(app, method, target, headers, body))
