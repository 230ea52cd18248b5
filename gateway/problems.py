"""Every error the gateway returns, as RFC 9457 problem details, decided in this one place.

The catalog's error tree (:mod:`catalog_store.errors`) maps to statuses through
:data:`CATALOG_ERRORS`, most specific class first; Litestar's own HTTP exceptions
(401, 404 of an unknown path, 405, 413, 429 ...) keep their status and headers;
anything else is a 500 whose details go to the log, not to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, InternalServerException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from catalog_store.errors import (
    AlreadyExistsError,
    AppendOrderError,
    CatalogStoreError,
    CommitRetriesExhaustedError,
    CommitStateUnknownError,
    ConflictError,
    ExternalIdTakenError,
    FormatError,
    IntegrityError,
    NotFoundError,
    ObjectNotFoundError,
    SeriesExistsError,
    SeriesNotFoundError,
    StorageFullError,
    StoragePermissionError,
    StorageUnavailableError,
    UnsupportedOperationError,
    ValidationError,
    VersionMismatchError,
    VersionNotFoundError,
)

log = logging.getLogger("gateway")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:fincat:problem:"


class FieldError(msgspec.Struct):
    """One bad input: the dotted path of the field (``tags.0``) and what is wrong with it."""

    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem detail."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


class PreconditionFailedError(ConflictError):
    """An ``If-Match`` that does not hold (RFC 9110 13.1.1): a 412. A stale version in
    a body (a commit's ``expected_version``) is the catalog's VersionMismatchError, a 409."""


class OperationError(CatalogStoreError):
    """``error``, raised by one operation of a request of several (a commit), shown as
    ``error`` is, with ``field`` the path of that operation's input it concerns
    (``operations.2.expected_version``)."""

    def __init__(self, error: CatalogStoreError, field: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.field = field


@dataclass(frozen=True)
class Kind:
    """How one class of error is presented."""

    status: int
    slug: str
    title: str
    #: Seconds for ``Retry-After``, for errors that retrying later may cure.
    retry_after: int | None = None
    #: Whether the exception's message may be shown (else a generic sentence is).
    public: bool = True


#: The catalog's error tree as HTTP; the first class that matches wins.
CATALOG_ERRORS: tuple[tuple[type[CatalogStoreError], Kind], ...] = (
    (SeriesNotFoundError, Kind(404, "series-not-found", "Series not found")),
    (VersionNotFoundError, Kind(404, "version-not-found", "Version not found")),
    # A file a manifest references is gone: damage, not a client's mistake.
    (ObjectNotFoundError, Kind(500, "missing-object", "Stored object missing", public=False)),
    (NotFoundError, Kind(404, "not-found", "Not found")),
    (SeriesExistsError, Kind(409, "series-exists", "Series already exists")),
    (ExternalIdTakenError, Kind(409, "external-id-taken", "External id already in use")),
    (AlreadyExistsError, Kind(409, "already-exists", "Already exists")),
    (ValidationError, Kind(422, "invalid", "Invalid input")),
    (PreconditionFailedError, Kind(412, "version-mismatch", "Precondition failed")),
    (VersionMismatchError, Kind(409, "version-mismatch", "Conflicting concurrent change")),
    (AppendOrderError, Kind(409, "append-order", "Append does not follow the last date")),
    (
        CommitRetriesExhaustedError,
        Kind(503, "contention", "Too many concurrent commits", retry_after=1),
    ),
    (ConflictError, Kind(409, "conflict", "Conflicting concurrent change")),
    (
        CommitStateUnknownError,
        Kind(503, "commit-state-unknown", "Commit outcome unknown", retry_after=1),
    ),
    (IntegrityError, Kind(500, "integrity", "Stored data failed verification", public=False)),
    (
        StorageUnavailableError,
        Kind(503, "storage-unavailable", "Storage unavailable", retry_after=1, public=False),
    ),
    (StorageFullError, Kind(507, "storage-full", "Storage full", public=False)),
    (StoragePermissionError, Kind(500, "storage-denied", "Storage refused access", public=False)),
    (UnsupportedOperationError, Kind(501, "unsupported", "Not supported by this store")),
    (FormatError, Kind(500, "store-format", "Unusable store", public=False)),
    (CatalogStoreError, Kind(500, "catalog-error", "Catalog error", public=False)),
)

_INVALID = next(kind for cls, kind in CATALOG_ERRORS if cls is ValidationError)

#: ``/health/ready`` while the store cannot be read, whichever catalog error says so
#: (a missing manifest, a 500 through CATALOG_ERRORS elsewhere, is a 503 here too).
NOT_READY = Kind(503, "not-ready", "Not ready", retry_after=1)

_GENERIC_DETAIL = "the server could not complete the request; the incident is logged"


def kind_of(exc: CatalogStoreError) -> Kind:
    for cls, kind in CATALOG_ERRORS:
        if isinstance(exc, cls):
            return kind
    raise AssertionError("CatalogStoreError is last in CATALOG_ERRORS")  # pragma: no cover


def field_errors(exc: CatalogStoreError) -> list[FieldError] | None:
    """The fields at fault: each pydantic problem if known, else the error's one field."""
    field = getattr(exc, "field", None)
    problems = getattr(exc, "problems", None)
    if isinstance(exc, ValidationError) and problems and field:
        # Problems carry paths relative to what was validated; ``field`` has the full path.
        first = str(problems[0]["field"])
        prefix = field[: len(field) - len(first)] if first and field.endswith(first) else ""
        return [FieldError(prefix + str(p["field"]), str(p["message"])) for p in problems]
    if field:
        message = exc.message if isinstance(exc, ValidationError) else str(exc)
        return [FieldError(str(field), message)]
    return None


def with_prefix(exc: ValidationError, prefix: str) -> ValidationError:
    """The same error with ``prefix`` (``operations.3.``) before every field path."""
    field = f"{prefix}{exc.field}" if exc.field else prefix.rstrip(".")
    out = ValidationError(exc.message, field)
    problems = getattr(exc, "problems", None)
    if problems:
        out.problems = [
            {"field": f"{prefix}{p['field']}", "message": p["message"]} for p in problems
        ]
    return out


def retry_headers(kind: Kind) -> dict[str, str]:
    """``Retry-After`` for a kind that retrying later may cure, else nothing."""
    return {"Retry-After": str(kind.retry_after)} if kind.retry_after else {}


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[Problem]:
    body = Problem(
        type=TYPE_PREFIX + slug,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors or None,
    )
    return Response(
        body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=dict(headers or {})
    )


def catalog_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """The problem for an error of the catalog's tree."""
    assert isinstance(exc, CatalogStoreError)
    named = exc if isinstance(exc, OperationError) else None
    if named is not None:
        exc = named.error
    kind = kind_of(exc)
    status, slug, title = kind.status, kind.slug, kind.title
    headers = retry_headers(kind)
    if isinstance(exc, CommitStateUnknownError):
        log.error("%s %s failed: %r", request.method, request.url.path, exc, exc_info=exc)
        detail, errors = exc.summary(), None
    elif kind.public:
        errors = [FieldError(named.field, str(exc))] if named else field_errors(exc)
        if isinstance(exc, ValidationError) and errors:
            detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        else:
            detail = str(exc)
        detail = " ".join(detail.split())
    else:
        log.error("%s %s failed: %r", request.method, request.url.path, exc, exc_info=exc)
        detail, errors = _GENERIC_DETAIL, None
    return problem_response(request, status, slug, title, detail, errors, headers)


def http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """The problem for Litestar's HTTP exceptions, keeping their status and headers."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if isinstance(exc, InternalServerException) and exc.detail == _CLIENT_GONE:
        # Litestar's 500 for a body whose client went away before its end: the
        # client's doing, not a failure to log with its traceback and count among
        # the 5xx that page an operator. Nothing was read, so nothing was written.
        log.info("%s %s: %s", request.method, request.url.path, _CLIENT_GONE)
        return problem_response(
            request, 400, "bad-request", "Bad Request", "the request body ended before it was whole"
        )
    if status >= 500:
        return internal_error(request, exc)
    phrase = _phrase(status)
    errors = None
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        errors = [
            FieldError(
                str(item.get("key") or item.get("source") or "request"),
                str(item.get("message", "invalid")),
            )
            for item in exc.extra
            if isinstance(item, dict)
        ]
    if errors:
        # A parameter of the wrong type or out of range is invalid input naming its
        # field, as the catalog's own ValidationError is; 400 stays for what cannot
        # be parsed at all.
        kind = _INVALID
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(
            request, kind.status, kind.slug, kind.title, detail, errors, exc.headers
        )
    detail = exc.detail if exc.detail and exc.detail != phrase else phrase
    slug = phrase.lower().replace(" ", "-").replace("'", "")
    return problem_response(request, status, slug, phrase, detail, errors, exc.headers)


#: What Litestar's InternalServerException says when the body's client disconnected.
_CLIENT_GONE = "client disconnected prematurely"


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """A 500 for anything unexpected; the traceback goes to the log."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "internal", "Internal server error", _GENERIC_DETAIL)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


#: Registered once, on the app.
EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    CatalogStoreError: catalog_error,
    HTTPException: http_error,
    Exception: internal_error,
}

_DESCRIPTIONS = {
    400: "Malformed request (unparseable body or header, an encoded separator in the path).",
    401: "Missing or unknown API key.",
    403: "The API key lacks the scope this operation needs.",
    404: "No such series or version.",
    406: "None of the accepted media types can be produced.",
    409: "Conflicts with the current state (exists already, or lost to a concurrent change).",
    412: "If-Match does not hold: a version no longer current, a weak ETag, no such series.",
    413: "Request body or observation count over the limit.",
    415: "Unsupported request body media type.",
    416: "The byte range lies outside the representation.",
    422: "Invalid input; `errors` names the fields.",
    429: "Rate limit exceeded; see Retry-After.",
    503: "Storage unavailable or too much contention; see Retry-After.",
}


def problem_specs(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI descriptions of the problem responses an operation may return."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS.get(status, _phrase(status)),
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }
