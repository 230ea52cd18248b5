"""GraphQL errors: every error a client sees carries ``extensions.code``, decided here.

The catalog's error tree maps to codes through :data:`CATALOG_CODES` (most specific
class first), as :mod:`gateway.problems` maps it to HTTP statuses. Errors in the
client's document (syntax, validation, variables) keep graphql-core's message and
get a code; anything else, an internal failure, is masked by :class:`MaskInternalErrors`
and its details go to the log only.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors

from catalog_store.errors import (
    AlreadyExistsError,
    AppendOrderError,
    CatalogStoreError,
    CommitRetriesExhaustedError,
    CommitStateUnknownError,
    ConflictError,
    ExternalIdTakenError,
    NotFoundError,
    ObjectNotFoundError,
    SeriesExistsError,
    SeriesNotFoundError,
    StorageUnavailableError,
    UnsupportedOperationError,
    ValidationError,
    VersionMismatchError,
)

log = logging.getLogger("gateway.graphql")

# The codes, in ``extensions.code``; docs/graphql.md lists them for clients.
NOT_FOUND = "NOT_FOUND"
CONFLICT = "CONFLICT"
PRECONDITION_FAILED = "PRECONDITION_FAILED"
VALIDATION = "VALIDATION"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
RATE_LIMITED = "RATE_LIMITED"
UNAVAILABLE = "UNAVAILABLE"
COMMIT_STATE_UNKNOWN = "COMMIT_STATE_UNKNOWN"
UNSUPPORTED = "UNSUPPORTED"
RESULT_TOO_LARGE = "RESULT_TOO_LARGE"
INPUT_TOO_LARGE = "INPUT_TOO_LARGE"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_REQUEST = "BAD_REQUEST"
INTERNAL = "INTERNAL"

#: Codes of failures on the server's side (the store, a commit, a bug), not the
#: client's: an operation with one of them ends with outcome ``server_error``.
SERVER_CODES = frozenset({INTERNAL, UNAVAILABLE, COMMIT_STATE_UNKNOWN})

CODES = (
    NOT_FOUND,
    CONFLICT,
    PRECONDITION_FAILED,
    VALIDATION,
    UNAUTHENTICATED,
    FORBIDDEN,
    RATE_LIMITED,
    UNAVAILABLE,
    COMMIT_STATE_UNKNOWN,
    UNSUPPORTED,
    RESULT_TOO_LARGE,
    INPUT_TOO_LARGE,
    QUERY_TOO_COMPLEX,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    BAD_REQUEST,
    INTERNAL,
)

#: The catalog's error tree as codes; the first class that matches wins. A class
#: mapped to None is an internal failure (damaged store, storage refusing access):
#: the client sees only "internal error".
CATALOG_CODES: tuple[tuple[type[CatalogStoreError], str | None], ...] = (
    (ObjectNotFoundError, None),  # a file a manifest references is gone: damage
    (NotFoundError, NOT_FOUND),
    (AlreadyExistsError, CONFLICT),
    (ValidationError, VALIDATION),
    (VersionMismatchError, PRECONDITION_FAILED),
    (CommitRetriesExhaustedError, UNAVAILABLE),
    (ConflictError, CONFLICT),
    (CommitStateUnknownError, COMMIT_STATE_UNKNOWN),
    (StorageUnavailableError, UNAVAILABLE),
    (UnsupportedOperationError, UNSUPPORTED),
    (CatalogStoreError, None),
)

# graphql-core's and strawberry's wording for documents over a limit; tests pin them.
_TOO_COMPLEX = re.compile(
    r"exceeds maximum operation depth|aliases found\. Allowed|Document contains more than"
)
_SNAKE = re.compile(r"_([a-z0-9])")
_STORAGE_DOWN = "the storage is unavailable; retry shortly"
INTERNAL_MESSAGE = "internal error; the incident is logged"


class OutputCoercionError(Exception):
    """A value the server produced that its field's type refuses (a Float that is not
    finite, an Int past 32 bits). graphql-core raises these as GraphQLErrors without
    an original error, the form of the client's own document and variable errors;
    wrapped in this, whose class is no GraphQLError, it is internal: masked, logged
    and counted as ``INTERNAL``.
    """


class ApiError(GraphQLError):
    """An error shown to the client as it is: a message and ``extensions.code``.

    ``field`` (``extensions.field``) is the dotted path of the argument at fault,
    in the schema's names (``input.seasonalAdjustment``, ``operations.2.write.dates``).
    """

    def __init__(self, message: str, code: str, field: str | None = None, **extra: Any) -> None:
        extensions: dict[str, Any] = {"code": code}
        if field:
            extensions["field"] = field
        extensions.update(extra)
        super().__init__(message, extensions=extensions)


def camel(path: str) -> str:
    """A catalog field path in the schema's names: ``seasonal_adjustment.x`` becomes
    ``seasonalAdjustment.x``. Only the first part is a field name; the rest are keys
    or indices, left as given."""
    head, dot, rest = path.partition(".")
    return _SNAKE.sub(lambda m: m.group(1).upper(), head) + dot + rest


#: The catalog's names for what an operation takes beside the input object that holds
#: the series' fields (``updateSeries(id, input, expectedVersion)``, a batch's
#: ``update {id changes expectedVersion}``).
_OWN_FIELDS = frozenset({"id", "expected_version"})
#: The commit's own arguments, beside every operation and input: ``message``.
_MUTATION_FIELDS = frozenset({"message"})


@dataclasses.dataclass(frozen=True)
class Arguments:
    """Where the catalog's field names are among the arguments a client sent: the one
    mapping from the catalog's field paths to the schema's.

    ``prefix`` goes before every path (``operations.2.update.``); ``nested`` before
    the fields of the input object that holds the series' fields (``input.``,
    ``changes.``), not before the operation's own (:data:`_OWN_FIELDS`); ``names``
    gives the argument for a catalog name the schema calls otherwise (a write's
    ``dates`` may be its ``instants``, its ``start`` a ``startInstant``). Any other
    name is put in camel case.
    """

    prefix: str = ""
    nested: str = ""
    names: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def path(self, name: str) -> str:
        head, dot, rest = name.partition(".")
        if head in _MUTATION_FIELDS:
            return name
        within = "" if head in _OWN_FIELDS else self.nested
        argument = self.names.get(head) or camel(head)
        return f"{self.prefix}{within}{argument}{dot}{rest}"

    def error(self, exc: CatalogStoreError) -> Exception:
        """The client's view of ``exc`` naming the argument at fault, or ``exc`` itself
        if it must be masked."""
        return from_catalog(exc, self) or exc

    @contextmanager
    def named(self) -> Iterator[None]:
        """Catalog errors raised inside as the client sees them, naming its arguments."""
        try:
            yield
        except CatalogStoreError as exc:
            raise self.error(exc) from None


def code_of(exc: CatalogStoreError) -> str | None:
    """The code of a catalog error, or None for an internal failure."""
    for cls, code in CATALOG_CODES:
        if isinstance(exc, cls):
            return code
    return None  # pragma: no cover - CatalogStoreError is last in CATALOG_CODES


def from_catalog(exc: CatalogStoreError, arguments: Arguments | None = None) -> ApiError | None:
    """The client's view of a catalog error, or None if it must be masked.

    ``arguments`` says where the fields the error names are (by default, each is the
    argument of its name)."""
    code = code_of(exc)
    if code is None:
        return None
    names = arguments or Arguments()
    message = " ".join(str(exc).split())
    extra: dict[str, Any] = {}
    field: str | None = None
    if isinstance(exc, ValidationError):
        field = names.path(exc.field) if exc.field else None
        message = exc.message
        if len(exc.problems) > 1:
            extra["problems"] = [
                {"field": names.path(str(p["field"])), "message": str(p["message"])}
                for p in exc.problems
            ]
    elif isinstance(exc, VersionMismatchError):
        field = names.path("expected_version")
        extra = {"expectedVersion": exc.expected, "actualVersion": exc.actual}
    elif isinstance(exc, ExternalIdTakenError):
        # The schema's externalIds is a list; the message names the provider.
        field, extra = names.path("external_ids"), {"owner": exc.owner}
    elif isinstance(exc, SeriesExistsError):
        field = names.path("id")
    elif isinstance(exc, SeriesNotFoundError) and arguments is not None:
        field = names.path("id")  # in a batch, the operation whose series is missing
    elif isinstance(exc, AppendOrderError):
        field = names.path(exc.field)
    elif isinstance(exc, StorageUnavailableError):
        message = _STORAGE_DOWN
    elif isinstance(exc, CommitStateUnknownError):
        log.error("commit outcome unknown: %r", exc, exc_info=exc)
        message = exc.summary()
    if code in (UNAVAILABLE, COMMIT_STATE_UNKNOWN):
        extra["retryable"] = True
    return ApiError(message, code, field, **extra)


def is_client_error(error: GraphQLError) -> bool:
    """True for errors the client caused or may see: those with a code, and graphql-core's
    own document, validation and variable errors (which wrap no foreign exception)."""
    if (error.extensions or {}).get("code") in CODES:
        return True
    original = error.original_error
    return original is None or isinstance(original, GraphQLError)


def classify(error: GraphQLError) -> GraphQLError:
    """``error`` with ``extensions.code`` set (a new error; the input is not changed).

    Catalog errors get their code (internal ones are returned unchanged, to be
    masked); errors in the document get a parse, validation or complexity code.
    """
    extensions = dict(error.extensions or {})
    if extensions.get("code") in CODES:
        return error
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, CatalogStoreError):
        translated = from_catalog(original)
        if translated is None:
            return error
        message, extensions = translated.message, {**extensions, **(translated.extensions or {})}
    elif not is_client_error(error):
        return error
    else:
        message = error.message
        if _TOO_COMPLEX.search(message):
            extensions["code"] = QUERY_TOO_COMPLEX
        elif isinstance(error, GraphQLSyntaxError) or message.startswith("Syntax Error"):
            extensions["code"] = GRAPHQL_PARSE_FAILED
        else:
            extensions["code"] = GRAPHQL_VALIDATION_FAILED
    return GraphQLError(
        message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        error.original_error,
        extensions,
    )


class MaskInternalErrors(MaskErrors):
    """strawberry's MaskErrors, keeping every client error and coding the masked ones
    ``INTERNAL``."""

    def __init__(self) -> None:
        super().__init__(
            should_mask_error=lambda error: not is_client_error(error),
            error_message=INTERNAL_MESSAGE,
        )

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL}
        return masked


def finish(errors: list[GraphQLError]) -> list[GraphQLError]:
    """Every error classified, internal ones masked: the last word before a response.

    The extensions do this for every operation that runs; this catches the rest
    (an operation stopped by an exception outside any resolver).
    """
    out = []
    for error in map(classify, errors):
        if is_client_error(error):
            out.append(error)
        else:
            out.append(
                GraphQLError(
                    INTERNAL_MESSAGE, error.nodes, path=error.path, extensions={"code": INTERNAL}
                )
            )
    return out


def log_internal(errors: list[GraphQLError]) -> None:
    """Log the errors that will be masked, with their traceback; client errors are not
    logged (they are the client's to read)."""
    for error in errors:
        if not is_client_error(error) and not _is_public_catalog_error(error):
            original = error.original_error
            log.error(
                "GraphQL %s failed: %r",
                ".".join(str(p) for p in error.path or ()) or "operation",
                original,
                exc_info=original,
            )


def _is_public_catalog_error(error: GraphQLError) -> bool:
    original = error.original_error
    return isinstance(original, CatalogStoreError) and code_of(original) is not None
