"""The explorer's doors: who may open the page, and who may change what the server holds.

``Doors`` is an ASGI middleware that create_app puts before every route:

- A request that changes state (POST, PUT, PATCH, DELETE: uploads, jobs,
  cancel) whose Origin is not the explorer's own is refused with 403. A
  browser sends Origin with every such request, so a page on another site
  cannot upload, train or cancel through the reader's browser; scripts and
  curl send none and are let in (they could reach the port anyway).
- With a token (the explorer listens beyond this computer), every request
  needs it, as Jupyter's does: in the address once (``?token=...``, which sets
  a cookie and, for a page, is taken out of the address), then in that
  cookie, or in an ``Authorization: token ...`` header. Without it: 403.

Refusals are the API's usual {"error": "one sentence"}.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_PARAMETER = "token"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address, IPv6 maybe in brackets) is this computer only."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh random token for an explorer that listens beyond this computer."""
    return secrets.token_urlsafe(24)


def cookie_name(token: str) -> str:
    """The cookie that carries ``token``: named after it, so explorers on other ports differ."""
    return "convlens-" + hashlib.sha256(token.encode()).hexdigest()[:12]


def who_can_reach(host: str) -> str:
    """One sentence for the banner: who can open the explorer listening on ``host``."""
    if is_loopback(host):
        return f"Only this computer can reach it (listening on {host})."
    where = "" if host not in ("0.0.0.0", "::") else " (at this computer's name or address)"
    return (
        f"Listening on {host}: other computers that reach this one can open it{where}, but "
        "only with the token in this address; a browser keeps it in a cookie after one visit."
    )


def reach_note(host: str | None, token: str | None) -> str:
    """For the page's header: who can open it (``host`` None: the loopback)."""
    if host is None or is_loopback(host):
        return "Only this computer can open this page."
    if token is None:
        return f"Any computer that reaches {host} can open this page."
    return "Other computers can open this page with its token."


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers, names in lower case (the last of a repeated one)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def own_origin(scope: Scope, headers: dict[str, str]) -> str:
    """The origin a page served by this explorer sends: scheme://host[:port] as requested."""
    return f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()


def foreign_origin(scope: Scope, headers: dict[str, str]) -> str | None:
    """The Origin of a state-changing request from another site, else None."""
    if scope["method"] not in CHANGING_METHODS or "origin" not in headers:
        return None
    origin = headers["origin"].strip().lower().rstrip("/")
    return None if origin == own_origin(scope, headers) else headers["origin"]


class Doors:
    """An ASGI middleware: refuses foreign-origin changes and, with a token, tokenless requests."""

    def __init__(self, app: ASGIApp, token: str | None = None) -> None:
        self.app = app
        self.token = token
        self.cookie = None if token is None else cookie_name(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        origin = foreign_origin(scope, headers)
        if origin is not None:
            await _refuse(
                send,
                f"a page from {origin} may not change this explorer (uploads, training, "
                "cancelling are for its own page); open the explorer at the address "
                "`convlens explore` printed.",
            )
            return
        if self.token is None:
            await self.app(scope, receive, send)
            return
        given = self._query_token(scope)
        if given is not None and secrets.compare_digest(given, self.token):
            await self._admit_from_address(scope, receive, send)
            return
        if self._carried_token(headers):
            await self.app(scope, receive, send)
            return
        await _refuse(
            send,
            "this explorer listens beyond this computer and asks for its token; open the "
            "address with ?token=... that `convlens explore` printed in its terminal.",
        )

    def _query_token(self, scope: Scope) -> str | None:
        """The token given in the address, if any."""
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        return query.get(TOKEN_PARAMETER)

    def _carried_token(self, headers: dict[str, str]) -> bool:
        """Whether the request carries the token in its cookie or an Authorization header."""
        assert self.token is not None and self.cookie is not None
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except CookieError:  # a malformed Cookie header carries no token
            cookies = SimpleCookie()
        found = cookies.get(self.cookie)
        if found is not None and secrets.compare_digest(found.value, self.token):
            return True
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "token" and secrets.compare_digest(value.strip(), self.token)

    async def _admit_from_address(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request with the token in its address: set the cookie; a page loses the token."""
        assert self.token is not None and self.cookie is not None
        cookie = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        if scope["method"] == "GET" and not scope["path"].startswith("/api/"):
            query = [
                (key, value)
                for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"))
                if key != TOKEN_PARAMETER
            ]
            location = scope["path"] + (f"?{urlencode(query)}" if query else "")
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [
                        (b"location", location.encode("latin-1")),
                        (b"set-cookie", cookie.encode("latin-1")),
                        (b"cache-control", b"no-store"),
                        (b"content-length", b"0"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())],
                }
            await send(message)

        await self.app(scope, receive, with_cookie)


async def _refuse(send: Send, sentence: str) -> None:
    """A 403 answer {"error": sentence}."""
    body = json.dumps({"error": sentence}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
