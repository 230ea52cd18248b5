"""A moto S3 server on loopback for tests, demos and benchmarks.

Real S3 decides a conditional PUT (``If-None-Match: *``) atomically. moto checks
for the key and then stores the object in two steps, so two concurrent creators
can both win on it. This wrapper serialises conditional requests so that the
server keeps S3's contract; every other request runs concurrently as usual.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _AtomicConditionalWrites:
    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.lock = threading.Lock()
        #: Every request as (method, path, query string), for request counting.
        self.requests: list[tuple[str, str, str]] = []
        #: GETs of paths matching this have their body cut short (see ``cut_bodies``).
        self.cut: re.Pattern[str] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.requests.append(
            (environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ["QUERY_STRING"])
        )
        cut = self.cut
        if (
            cut is not None
            and environ["REQUEST_METHOD"] == "GET"
            and cut.search(environ.get("PATH_INFO", ""))
        ):
            return _cut_short(b"".join(self.app(environ, start_response)))
        conditional = "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ
        if conditional and environ.get("REQUEST_METHOD") in ("PUT", "POST"):
            with self.lock:
                # Drain the response inside the lock: moto stores the object while
                # producing it.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def _cut_short(body: bytes) -> Iterator[bytes]:
    """Half the body after headers promising all of it, then a dropped connection:
    what a client sees when a network fails mid-response."""
    yield body[: len(body) // 2]
    raise ConnectionAbortedError("response cut short on purpose")


class LoopbackS3Server:
    """moto's S3 on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, port: int = 0) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._app = _AtomicConditionalWrites(app)
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1",
            port,
            self._app,
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def requests(self, bucket: str) -> list[tuple[str, str, str]]:
        """The requests the server has answered for ``bucket``, in order."""
        return [r for r in self._app.requests if r[1].split("/")[1:2] == [bucket]]

    @contextlib.contextmanager
    def cut_bodies(self, path: str) -> Iterator[None]:
        """Inside the block, every GET of a path matching the regex ``path`` gets
        half its body and then a closed connection."""
        self._app.cut = re.compile(path)
        try:
            yield
        finally:
            self._app.cut = None

    def start(self) -> LoopbackS3Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


def main() -> None:  # pragma: no cover - a developer tool
    """Run the server in the foreground: ``python -m tests.s3server [port]``."""
    import sys

    server = LoopbackS3Server(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(server.endpoint, flush=True)
    server._server.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    main()
