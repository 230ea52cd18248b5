"""The app factory. Nothing is created at import: each call builds an independent app.

The catalog is opened once per app, when the server starts it (Litestar's
lifespan), with ``max_staleness`` = ``settings.cache_ttl``: a replica may answer
from its cache for that long before it sees another replica's commit, while its
own commits are visible to it at once. All state is in the store, so any number
of replicas can serve one catalog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import (
    HTTPScope,
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Message,
    Receive,
    Scope,
    Send,
)

from catalog_store import AsyncCatalog
from gateway.auth import AccessMiddleware, KeyRing
from gateway.graphql.router import graphql_controller
from gateway.head import head_as_get
from gateway.metrics import GatewayMetrics, observe_request
from gateway.monitor import MonitorCollector, Observed, watch
from gateway.params import check_request, refuse_encoded_separators
from gateway.problems import EXCEPTION_HANDLERS, http_error, problem_response
from gateway.ratelimit import TokenBuckets
from gateway.routes import all_routes
from gateway.settings import Settings
from gateway.state import STATE_KEY, Gateway

DESCRIPTION = """\
Financial and economic time series with their full history. Every change is an
atomic commit; `as_of` reads the catalog as it was at any version or instant.
Errors are RFC 9457 problem details (`application/problem+json`). Every `GET`
also answers `HEAD`, with the status and headers the `GET` would have and no body.
"""


def _version() -> str:
    try:
        return package_version("fincat")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0+unknown"


class GatewayApp(Litestar):
    """Litestar, with every HTTP request counted and timed around the whole app, HEAD
    answered by the GET of the same URL, and paths holding an encoded separator
    refused before routing.

    Litestar runs middleware only for requests that match a route; measured here,
    a request for an unknown path is in the latency histogram as in the counter,
    and ``a%2Fb``, decoded by the server to ``a/b`` and so matching no route, is a
    400 rather than a 404. HEAD is turned into GET before routing, since Litestar
    routes it only to handlers declared for it (see gateway.head).
    """

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if scope["type"] != ScopeType.HTTP:
            await super().__call__(scope, receive, send)
            return
        metrics = self.state[STATE_KEY].metrics
        await observe_request(metrics, self._serve, scope, receive, send)  # type: ignore[arg-type]

    async def _serve(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        started = False

        async def send_and_note(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await head_as_get(self._route, scope, receive, send_and_note, self._methods)
        except asyncio.CancelledError:
            # The server cuts requests off when a stop outlasts its shutdown timeout;
            # it answered one with no response yet by a plain-text 500, counted
            # among the errors that page an operator. The request's task ends here.
            if started:
                raise
            request: Request[Any, Any, Any] = Request(scope)
            response = problem_response(
                request,
                503,
                "shutting-down",
                "Server stopping",
                "the server stopped before this request was answered; a write it "
                "carried was applied whole or not at all: read it back before you retry",
                headers={"Retry-After": "1", "Connection": "close"},
            )
            await response.to_asgi_response(None, request)(scope, receive, send_and_note)

    def _methods(self, scope: HTTPScope) -> set[str]:
        """Every method the route matched by ``scope`` takes (routing has set its handler)."""
        handler = scope.get("route_handler")
        methods: set[str] = set()
        for path in getattr(handler, "paths", ()):
            methods.update(self.route_handler_method_map.get(path, {}))
        return methods

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            refuse_encoded_separators(scope)
        except ClientException as exc:
            # Litestar's exception handling wraps only its router, which this precedes:
            # the app's own handler gives the problem it would give.
            request: Request[Any, Any, Any] = Request(scope)
            response = http_error(request, exc).to_asgi_response(None, request)
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings) -> Litestar:
    """A gateway app over the catalog at ``settings.root``.

    Raises SettingsError if ``settings`` allow unauthenticated access on a
    non-loopback address. The catalog itself is opened at startup, which
    raises FormatError if there is no catalog there (unless ``settings.create``).
    """
    settings.check_bind()
    metrics = GatewayMetrics()
    gateway = Gateway(
        settings=settings,
        keyring=KeyRing(settings.api_keys),
        limiter=TokenBuckets(settings.rate_limit, settings.rate_burst),
        metrics=metrics,
    )

    @asynccontextmanager
    async def open_catalog(_: Litestar) -> AsyncIterator[None]:
        catalog = await AsyncCatalog.open(
            settings.root,
            dict(settings.storage_options) or None,
            create=settings.create,
            options=settings.catalog_options(metrics.store_listener),
        )
        gateway.attach(catalog)
        metrics.watch_catalog(catalog.stats)
        observed = Observed()
        metrics.watch_monitor(MonitorCollector(observed))
        monitor = (
            asyncio.create_task(watch(catalog, observed, settings.monitor_interval))
            if settings.monitor_interval > 0
            else None
        )
        try:
            yield
        finally:
            if monitor is not None:
                monitor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await monitor
            metrics.watch_monitor(None)
            metrics.watch_catalog(None)
            gateway.attach(None)
            await catalog.close()

    components = Components(
        security_schemes={
            "bearer": SecurityScheme(
                type="http",
                scheme="bearer",
                description="An API key: `Authorization: Bearer <key>`.",
            )
        }
    )
    openapi = OpenAPIConfig(
        title="fincat",
        version=_version(),
        description=DESCRIPTION,
        path="/schema",
        render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
        components=components,
        security=[{"bearer": []}] if settings.auth_enabled else None,
    )
    return GatewayApp(
        route_handlers=[*all_routes(), graphql_controller(settings)],
        lifespan=[open_catalog],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[AccessMiddleware()],
        before_request=check_request,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi,
        state=State({STATE_KEY: gateway}),
        debug=False,
    )


def app_from_env() -> Litestar:
    """The app factory uvicorn calls in each worker (``factory=True``).

    Reads ``FINCAT_*`` variables (see :meth:`Settings.from_env`); raises SettingsError.
    """
    return create_app(Settings.from_env())
