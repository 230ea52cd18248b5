"""``/graphql`` in the gateway's Litestar app: strawberry's controller with our context.

:func:`graphql_controller` builds the schema and a controller class for one app.
Each request is authenticated and charged its rate limit once, as a REST request
is; a refusal (missing or unknown key, exhausted budget) is answered at once as a
GraphQL error with the HTTP status and headers REST would send (401 with
``WWW-Authenticate``, 429 with ``Retry-After``). GraphiQL is served only in
development mode (no API keys) and when the settings allow it. A POSTed query
answered before at the catalog version the request reads is then answered from the
result cache (:mod:`gateway.graphql.results`) without going through strawberry's
pipeline (any other request that qualifies is answered from it by the pipeline);
bodies are decoded and responses encoded with msgspec.

The controller declares its handlers itself rather than through strawberry's
``make_graphql_controller``, whose handlers rely on dependencies Litestar infers by
name (deprecated, and gone in Litestar 3); the context is built in the handler.
There are no subscriptions, so there is no websocket route.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, cast

import msgspec
from cross_web import HTTPException
from litestar import MediaType, Request, Response, get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.types import Dependencies
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.litestar.controller import GraphQLController
from strawberry.types import ExecutionResult

from gateway.graphql.auth import authenticate
from gateway.graphql.context import GraphQLContext, Runtime
from gateway.graphql.errors import BAD_REQUEST, INPUT_TOO_LARGE, ApiError, finish
from gateway.graphql.extensions import GraphQLMetrics
from gateway.graphql.schema import FincatSchema, build_schema
from gateway.settings import Settings
from gateway.state import gateway_of

PATH = "/graphql"
#: Where a request keeps the response object resolvers may add headers to.
SUB_RESPONSE = "fincat_graphql_response"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class _Base(GraphQLController):
    """What every app's controller shares; :func:`graphql_controller` adds the rest."""

    path = PATH
    # strawberry's dependencies are replaced by nothing: the handlers build the context
    # themselves, which spares Litestar a task group per request.
    dependencies: ClassVar[Dependencies] = {}  # type: ignore[misc]
    runtime: ClassVar[Runtime]
    schema: ClassVar[FincatSchema]  # type: ignore[misc]
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
        limit = self.runtime.config.max_body_bytes
        length = request.headers.get("content-length", "")
        declared = int(length) if length.isascii() and length.isdigit() else 0
        # The declared length first: a body over the limit is then never read.
        if request.method == "POST" and (declared > limit or len(await request.body()) > limit):
            # Before decoding, which would hold the body as Python objects.
            too_large = ApiError(
                f"the request body is over {limit:,} bytes; bulk loads go through the REST API",
                INPUT_TOO_LARGE,
            )
            return self.refuse(too_large, 413, {})
        if request.method == "POST" and self.schema.results.enabled:
            cached = await self.cached(request, context)
            if cached is not None:
                return cached
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

    async def cached(
        self, request: Request[Any, Any, Any], context: GraphQLContext
    ) -> Response[bytes] | None:
        """The response to a query answered before at the catalog version this request
        reads (see gateway.graphql.results), or None: the request then runs.

        The body is parsed by strawberry's own parse_http_body, so a request it would
        refuse or stream is never answered here; it refuses it again on the way in.
        """
        try:
            data = await self.parse_http_body(self.request_adapter_class(request))
        except (HTTPException, json.JSONDecodeError, KeyError):
            return None
        if not isinstance(data, GraphQLRequestData) or data.protocol != "http":
            return None  # a batch, or a streaming transport
        found = await self.schema.results.answer(
            context, data.query, data.variables, data.operation_name
        )
        if found is None:
            return None
        if self.runtime.metrics is not None:
            self.runtime.metrics.observe_cached()
        return Response(_encoder.encode({"data": found}), media_type=MediaType.JSON)

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

    def parse_json(self, data: str | bytes) -> Any:
        """A request body: a JSON object (or a list of them, a batch). strawberry reads
        the query out of whatever JSON it is given, and fails inside on ``null`` or
        ``5``."""
        parsed = super().parse_json(data)
        items = parsed if isinstance(parsed, list) else [parsed]
        if not all(isinstance(item, dict) for item in items):
            raise HTTPException(400, "the request body must be a JSON object: a GraphQL request")
        return parsed

    def decode_json(self, data: str | bytes) -> object:
        try:
            try:
                return _decoder.decode(data)
            except msgspec.DecodeError:
                # json decides, as strawberry would: it accepts what msgspec refuses
                # (NaN, Infinity) and raises the JSONDecodeError strawberry answers 400 to.
                return json.loads(data)
        except UnicodeDecodeError:
            # Raised by msgspec and json alike for bytes that are not UTF-8; strawberry
            # answers only JSONDecodeError with a 400.
            raise HTTPException(400, "the request body is not valid UTF-8 JSON") from None
        except RecursionError:
            raise HTTPException(400, "the request body nests too deeply to be decoded") from None

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
