"""Time the notebook Explorer's answers against the page's: the playground and the journey.

The same requests are sent to two explorers holding the same run, in turn:

- the page's: a real server (uvicorn, in this process's background thread)
  asked over one kept-alive loopback HTTP connection, as a browser would;
  the time runs from sending the request to having read the whole answer.
- the widget's: convlens.Explorer's message handler given the message its
  front end sends ({type: "request", ...}), answered on the widget's
  background loop by the application in-process (notebook/channel.py); the
  time runs from handing the message over to the reply being sent (the
  widget's ``send``, which a kernel would put on the wire).

Both are the server side of one answer; what neither counts is the
browser's side (fetch, or the kernel's ZMQ and the notebook's websocket).
Requests: the playground's filter and 2x2 max pool of a 512x512 image (a
new random kernel each time, so no cache answers), one hovered pixel's
arithmetic, and the journey of one 28x28 image through the lesson's CNN
(untrained: the time does not depend on the weights). Medians of --repeat
after two warm-ups, the two explorers alternating request by request.

    flock /tmp/convlens-bench.lock python benchmarks/widget.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from explorer import lesson_run, png_bytes

import convlens
from convlens.web.app import create_app
from convlens.web.server import serve_in_thread

JSON = {"Content-Type": "application/json"}


class Page:
    """The page's transport: one kept-alive HTTP connection to the served explorer."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)

    def call(self, method: str, path: str, body: bytes, headers: dict) -> bytes:
        self.connection.request(method, path, body=body or None, headers=headers)
        answer = self.connection.getresponse()
        data = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{method} {path}: {answer.status} {data[:300]!r}")
        return data


class Widget:
    """The widget's transport: its message handler, the reply caught where it is sent."""

    def __init__(self, explorer) -> None:
        self.explorer = explorer
        self.replies: dict[str, tuple[dict, list]] = {}
        self.arrived = threading.Condition()
        self.count = 0
        explorer.send = self._sent

    def _sent(self, content: dict, buffers: list | None = None) -> None:
        with self.arrived:
            self.replies[content["id"]] = (content, list(buffers or []))
            self.arrived.notify_all()

    def call(self, method: str, path: str, body: bytes, headers: dict) -> bytes:
        self.count += 1
        key = str(self.count)
        text = body.decode() if headers == JSON else None
        message = {"type": "request", "id": key, "method": method, "url": path}
        message |= {"headers": headers, "body": text}
        self.explorer._on_message(self.explorer, message, [] if text is not None else [body])
        with self.arrived:
            self.arrived.wait_for(lambda: key in self.replies, timeout=60)
        content, buffers = self.replies.pop(key)
        if content["status"] != 200:
            raise RuntimeError(f"{method} {path}: {content['status']} {content['body'][:300]!r}")
        return bytes(buffers[0]) if buffers else content["body"].encode()


def medians(actions: dict[str, Callable[[int], object]], repeat: int) -> dict[str, float]:
    """Median milliseconds of each action, the actions alternating, after two warm-ups each."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for i in (-2, -1, *range(repeat)):
        for name, action in actions.items():
            start = time.perf_counter()
            action(i)
            if i >= 0:
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = lesson_run(Path(folder))
        url, stop = serve_in_thread(create_app(run_dir.parent, run_dir))
        try:
            sides = {"page": Page(url), "widget": Widget(convlens.Explorer(run_dir))}
            digit = png_bytes(rng.integers(0, 256, (28, 28), dtype=np.uint8))
            big = png_bytes(rng.integers(0, 256, (512, 512), dtype=np.uint8))
            upload = {"Content-Type": "image/png"}
            ids = {}
            for name, side in sides.items():
                small = json.loads(side.call("POST", "/api/images", digit, upload))["id"]
                large = json.loads(side.call("POST", "/api/images", big, upload))["id"]
                ids[name] = (small, large)

            def requests(name: str):
                side, (small, large) = sides[name], ids[name]
                journey = json.dumps({"run": run_dir.name, "image": small}).encode()

                def convolve(_i: int) -> None:
                    kernel = rng.normal(size=9).round(3).tolist()
                    body = {"image": large, "kernel": kernel, "pool": "max"}
                    side.call("POST", "/api/convolve", json.dumps(body).encode(), JSON)

                def explain(i: int) -> None:
                    body = {"image": large, "filter": "vertical", "row": i % 510, "col": 7}
                    side.call("POST", "/api/explain", json.dumps(body).encode(), JSON)

                def follow(_i: int) -> None:
                    side.call("POST", "/api/journey", journey, JSON)

                return {
                    "playground: filter + 2x2 max pool, 512x512": convolve,
                    "playground: hovered pixel's arithmetic": explain,
                    "journey, lesson's CNN, one 28x28 image": follow,
                }

            page, cell = requests("page"), requests("widget")
            print(f"medians of {args.repeat} requests (page: HTTP at {url}; widget: its channel)")
            for title in page:
                times = medians({"page": page[title], "widget": cell[title]}, args.repeat)
                ratio = times["widget"] / times["page"]
                print(
                    f"{title}: page {times['page']:.1f} ms, widget {times['widget']:.1f} ms "
                    f"(widget/page {ratio:.2f})",
                    flush=True,
                )
        finally:
            stop()


if __name__ == "__main__":
    main()
