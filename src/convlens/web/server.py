"""Serving the explorer: on a socket we bind ourselves, so a free port is known before start.

``serve`` runs in the foreground for `convlens explore`; ``serve_in_thread``
runs in the background for tests and benchmarks and returns the address and
a function that stops it.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time
import webbrowser
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

from convlens.errors import ConvlensError

STARTUP_SECONDS = 30.0
GRACE_SECONDS = 2


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); a busy port is one sentence."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
    # protocol says TCP; with the default 0 every small answer waited ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConvlensError(
                f"port {port} is already in use; choose another with --port, or leave --port "
                "out for a free one."
            ) from None
        raise ConvlensError(
            f"cannot listen on {host}:{port} ({exc.strerror}); check --host and --port."
        ) from None
    sock.listen(128)
    return sock


def address(sock: socket.socket) -> str:
    """The page's URL for a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1"
    return f"http://{shown}:{port}/"


class _Server(uvicorn.Server):
    """A uvicorn server that calls ``on_stop`` first when it is asked to stop.

    uvicorn re-raises a caught SIGTERM once ``run`` returns, which ends the
    process at once: whatever ``on_stop`` has to do and say is done before.
    """

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None] | None) -> None:
        super().__init__(config)
        self.on_stop = on_stop

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.on_stop is not None:
            await asyncio.to_thread(self.on_stop)
        await super().shutdown(sockets=sockets)


def _server(app: ASGIApp, on_stop: Callable[[], None] | None = None) -> uvicorn.Server:
    """A quiet uvicorn server for ``app`` (signals are caught only on the main thread)."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",  # its shutdown stops a training job, leaving it resumable
        timeout_graceful_shutdown=GRACE_SECONDS,  # pages following a job keep a stream open
    )
    return _Server(config, on_stop)


def serve(
    app: ASGIApp,
    host: str,
    port: int,
    open_browser: bool,
    announce: Callable[[str], None],
    on_stop: Callable[[], None] | None = None,
    token: str | None = None,
) -> None:
    """Serve ``app`` until Ctrl-C; ``announce`` gets the URL once the server listens.

    With ``token`` the URL announced and opened carries it (``?token=...``),
    as the explorer then asks for it (web/doors.py).

    ``on_stop`` runs as soon as the server is asked to stop (Ctrl-C, SIGTERM),
    before it waits for open connections: a training job is stopped and saved
    then, and the pages following it see it end.
    """
    sock = bind(host, port)
    url = address(sock) + ("" if token is None else f"?token={token}")
    server = _server(app, on_stop)

    def when_started() -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        announce(url)
        if open_browser:
            webbrowser.open(url)

    threading.Thread(target=when_started, daemon=True).start()
    server.run(sockets=[sock])


def serve_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """Start ``app`` in a background thread; return its URL and a function that stops it."""
    sock = bind(host, port)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the explorer's server did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return address(sock), stop
