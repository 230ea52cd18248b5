"""``/graphql`` in the gateway's Litestar app: strawberry's controller with our context.

:func:`graphql_controller` builds the schema and a controller class for one app.
Each request is authenticated and charged its rate limit once, as a REST request
is; a refusal (missing or unknown key, exhausted budget) is answered at once as a
GraphQL error with the HTTP status and headers REST would send (401 with
``WWW-Authenticate``, 429 with ``Retry-After``). GraphiQL is served only in
development mode (no API keys) and when the settings allow it.

The controller declares its handlers itself rather than through strawberry's
``make_graphql_controller``, whose handlers rely on dependencies Litestar infers by
name (deprecated, and gone in Litestar 3); the context is built in the handler.
There are no subscriptions, so there is no websocket route.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import msgspec
from cross_web import HTTPException
from litestar import MediaType, Request, Response, get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.types import Dependencies
from strawberry.http import GraphQLHTTPResponse
from strawberry.litestar.controller import GraphQLController
from strawberry.types import ExecutionResult

from gateway.graphql.auth import authenticate
from gateway.graphql.context import GraphQLContext, Runtime
from gateway.graphql.errors import BAD_REQUEST, ApiError, finish
from gateway.graphql.extensions import GraphQLMetrics
from gateway.graphql.schema import build_schema
from gateway.settings import Settings
from gateway.state import gateway_of

PATH = "/graphql"
#: Where a request keeps the response object resolvers may add headers to.
SUB_RESPONSE = "fincat_graphql_response"


_encoder = msgspec.json.Encoder()


class _Base(GraphQLController):
    """What every app's controller shares; :func:`graphql_controller` adds the rest."""

    path = PATH
    # strawberry's dependencies are replaced by nothing: the handlers build the context
    # themselves, which spares Litestar a task group per request.
    dependencies: ClassVar[Dependencies] = {}  # type: ignore[misc]
    runtime: ClassVar[Runtime]
    # strawberry's own websocket route: no subscriptions here, so no websocket.
    websocket_endpoint = None  # type: ignore[assignment]

    @get(raises=[ValidationException, NotFoundException], include_in_schema=False)
    async def handle_http_get(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return await self._serve(request)

    @post(status_code=200, include_in_schema=False)
    async def handle_http_post(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return await self._serve(request)

    async def _serve(self, request: Request[Any, Any, Any]) -> Response[Any]:
        context = self.context(request)
        if context.refusal is not None:
            return self.refuse(*context.refusal)
        # Kept per request, not on the controller, which all requests share.
        request.state[SUB_RESPONSE] = Response({})
        try:
            # strawberry types its context as None; ours is a GraphQLContext.
            served: Response[Any] = await self.run(
                request, context=cast(Any, context), root_value=None
            )
        except HTTPException as exc:  # a request strawberry cannot take: not JSON, GET mutation
            return self.refuse(ApiError(exc.reason, BAD_REQUEST), exc.status_code, {})
        return served

    def refuse(self, error: ApiError, status: int, headers: dict[str, str]) -> Response[bytes]:
        """A GraphQL error answered before (or instead of) running the document."""
        if self.runtime.metrics is not None:
            self.runtime.metrics.observe("unknown", [str((error.extensions or {})["code"])])
        body = {"data": None, "errors": [error.formatted]}
        return Response(
            _encoder.encode(body), status_code=status, media_type=MediaType.JSON, headers=headers
        )

    def context(self, request: Request[Any, Any, Any]) -> GraphQLContext:
        """The request's context: who asked (charging the rate limit), or why refused."""
        gateway = gateway_of(request)
        runtime = self.runtime
        if runtime.metrics is None:
            runtime.metrics = GraphQLMetrics(gateway.metrics.registry)
        principal, refusal = authenticate(request)
        return GraphQLContext(
            request=request,
            gateway=gateway,
            runtime=runtime,
            principal=principal,
            refusal=refusal,
        )

    def encode_json(self, data: object) -> bytes:
        # msgspec encodes long observation columns several times faster than json.
        return _encoder.encode(data)

    async def get_sub_response(self, request: Request[Any, Any, Any]) -> Response[Any]:
        sub: Response[Any] = request.state[SUB_RESPONSE]
        return sub

    async def process_result(
        self, request: Request[Any, Any, Any], result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = finish(result.errors)
        processed: GraphQLHTTPResponse = await super().process_result(request, result)
        return processed


def graphql_controller(settings: Settings) -> type[GraphQLController]:
    """The GraphQL controller of an app serving ``settings``; mount it once per app."""
    config = settings.graphql

    class Controller(_Base):
        pass

    Controller.runtime = Runtime(config)
    Controller.schema = build_schema(config)
    Controller.graphql_ide = "graphiql" if config.ide and not settings.auth_enabled else None
    Controller.__name__ = Controller.__qualname__ = "GraphQLController"
    return Controller
