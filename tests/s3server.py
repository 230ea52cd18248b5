"""A moto S3 server on loopback for tests, demos and benchmarks.

Real S3 decides a conditional PUT (``If-None-Match: *``) atomically. moto checks
for the key and then stores the object in two steps, so two concurrent creators
can both win on it. This wrapper serialises conditional requests so that the
server keeps S3's contract; every other request runs concurrently as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
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

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.requests.append(
            (environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ["QUERY_STRING"])
        )
        conditional = "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ
        if conditional and environ.get("REQUEST_METHOD") in ("PUT", "POST"):
            with self.lock:
                # Drain the response inside the lock: moto stores the object while
                # producing it.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


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
