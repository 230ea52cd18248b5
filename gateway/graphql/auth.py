"""Who may do what over GraphQL: the REST gateway's keys, scopes and rate limits.

A request is authenticated (and charged one token of its rate limit) once, before
its document is even parsed; a missing or unknown key or an exhausted budget
stops it there. Scopes are checked per field: queries need ``read`` (every key
has it), mutations ``write``, ``validateCatalog`` ``admin``. In development mode
(no keys configured) everything is allowed, as over REST.
"""

from __future__ import annotations

from typing import Any, ClassVar

from graphql.error import GraphQLErrorExtensions
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from strawberry.permission import BasePermission
from strawberry.types import Info

from gateway.auth import CHALLENGE, Principal, identify
from gateway.graphql.context import context_of
from gateway.graphql.errors import FORBIDDEN, RATE_LIMITED, UNAUTHENTICATED, ApiError
from gateway.ratelimit import RateLimitedError

#: Why a request may not run at all, the HTTP status and the headers to answer with.
Refusal = tuple[ApiError, int, dict[str, str]]


def authenticate(
    connection: ASGIConnection[Any, Any, Any, Any],
) -> tuple[Principal | None, Refusal | None]:
    """The request's principal, or why it is refused: ``UNAUTHENTICATED`` (401 with
    ``WWW-Authenticate: Bearer``) or ``RATE_LIMITED`` (429 with ``Retry-After``).

    Raises nothing: the refusal is answered as a GraphQL error.
    """
    try:
        return identify(connection), None
    except RateLimitedError as exc:
        error = ApiError(exc.detail, RATE_LIMITED, retryAfter=exc.retry_after)
        return None, (error, 429, {"Retry-After": str(exc.retry_after)})
    except NotAuthorizedException as exc:
        error = ApiError(exc.detail, UNAUTHENTICATED)
        return None, (error, 401, {"WWW-Authenticate": CHALLENGE})


class _Scope(BasePermission):
    scope: ClassVar[str]
    error_extensions: GraphQLErrorExtensions | None = {"code": FORBIDDEN}  # noqa: RUF012

    def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
        principal = context_of(info).principal
        return principal is not None and principal.allows(self.scope)


class CanWrite(_Scope):
    """Mutations: the key needs the ``write`` scope (``admin`` implies it)."""

    scope = "write"
    message = "the API key lacks the 'write' scope"


class IsAdmin(_Scope):
    """Maintenance: the key needs the ``admin`` scope."""

    scope = "admin"
    message = "the API key lacks the 'admin' scope"
