"""HEAD on every route that answers GET: the GET's status and headers, no body.

RFC 9110 (9.3.2) asks a server to answer HEAD wherever it answers GET, with the
status and header fields the GET would have had. Litestar routes a HEAD only to a
handler declared for it, and one declared for both methods still sends its body
for the server to drop. So, around the whole app, a HEAD is run as the GET of the
same URL and only the GET's status and headers go out: authentication, rate limits,
parameter checks, ``If-None-Match`` and errors are the GET's by construction, with
no second handler per route to keep in step. ``Allow`` headers (of 405s and of
OPTIONS answers) name HEAD wherever they name GET, since it is served there too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from litestar import Request
from litestar.status_codes import HTTP_405_METHOD_NOT_ALLOWED
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Send

#: The per-request state key that tells a GET handler it is answering a HEAD.
HEAD_KEY = "fincat.head"
#: Range handling is defined for GET alone, so a HEAD's is ignored (RFC 9110 14.2):
#: its answer is the whole representation's status and length, never a 206 or 416.
_IGNORED_HEADERS = frozenset({b"range", b"if-range"})


def is_head(request: Request[Any, Any, Any]) -> bool:
    """Whether the GET being answered is a HEAD's, whose body is never sent.

    A handler that would stream a body of unknown length can then encode it whole
    to give its ``Content-Length``, which readers that open a URL like a file ask
    HEAD for.
    """
    return bool(request.scope["state"].get(HEAD_KEY))


def allow_head(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with HEAD named after GET in an ``Allow`` that names GET but not HEAD."""
    return [
        (name, _with_head(value) if name.lower() == b"allow" else value) for name, value in headers
    ]


def _with_head(allow: bytes) -> bytes:
    methods = [method.strip() for method in allow.split(b",")]
    if b"GET" not in methods or b"HEAD" in methods:
        return allow
    methods.insert(methods.index(b"GET") + 1, b"HEAD")
    return b", ".join(methods)


def _with_allow(
    headers: Iterable[tuple[bytes, bytes]], methods: Iterable[str]
) -> list[tuple[bytes, bytes]]:
    allow = ", ".join(sorted(methods)).encode()
    return [(n, v) for n, v in headers if n.lower() != b"allow"] + [(b"allow", allow)]


async def head_as_get(
    app: ASGIApp,
    scope: HTTPScope,
    receive: Receive,
    send: Send,
    allowed: Callable[[HTTPScope], Collection[str]] | None = None,
) -> None:
    """Run ``app`` for one HTTP request; a HEAD runs as its GET, and the body is dropped.

    The app gets a copy of the scope saying GET: the server's own scope keeps
    saying HEAD while the response goes out (a server may frame a HEAD's answer
    by it), and only the route the GET matched is copied back, for the request
    metrics that read it after the app.

    ``allowed`` gives the methods of the route an OPTIONS request matched, for its
    ``Allow``: Litestar's own answer names only the methods of the first handler
    registered for a path (a path's GET, without the PATCH and DELETE added next),
    where its 405s name them all.
    """
    head = scope["method"] == "HEAD"
    options = scope["method"] == "OPTIONS"

    async def answer(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message["headers"]
            methods = allowed(scope) if options and allowed is not None else ()
            if methods and message["status"] < 300:
                headers = _with_allow(headers, methods)
            if message["status"] == HTTP_405_METHOD_NOT_ALLOWED or options:
                message = {**message, "headers": allow_head(headers)}
        elif head and message["type"] == "http.response.body":
            if message.get("more_body", False):
                return
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    if not head:
        await app(scope, receive, answer)
        return
    as_get: HTTPScope = {
        **scope,
        "method": "GET",
        "headers": [
            (name, value) for name, value in scope["headers"] if name not in _IGNORED_HEADERS
        ],
        "state": {**scope.get("state", {}), HEAD_KEY: True},
    }
    try:
        await app(as_get, receive, answer)
    finally:
        if "path_template" in as_get:
            scope["path_template"] = as_get["path_template"]
