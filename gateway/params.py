"""Parsing what clients send: versions, instants, dates, ETags, JSON bodies, changes.

Bad values raise the catalog's ValidationError (or Litestar's ValidationException)
naming the parameter, so they become 422 problems like every other invalid input;
unparseable syntax (a malformed ETag list, a body that is not JSON) raises
ClientException (400).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from litestar import Litestar, Request
from litestar.exceptions import ClientException, ValidationException
from litestar.openapi.spec import OpenAPIType
from litestar.types import Scope

from catalog_store.asof import MAX_VERSION, parse_date, parse_instant
from catalog_store.errors import SeriesNotFoundError, ValidationError, VersionMismatchError
from catalog_store.models import SeriesSpec, apply_changes
from gateway.problems import PreconditionFailedError

T = TypeVar("T")

#: An ETag as this server issues them: a version without leading zeros ("074" is
#: not "74": ETags are compared as text).
#: One entity-tag as RFC 9110 (8.8.3) writes it; those this server issues are a
#: version's digits (with the oldest version kept after a dot, on weak ones).
_ETAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*')
_VERSION_TAG = re.compile(r"0|[1-9]\d{0,18}")
_PATH_PART = re.compile(r"\[(\d+)\]")
_DECLARED = "fincat.query_parameters"
_BOUND = (
    "must be a date like 2024-01-31 or, for an intraday series, an RFC 3339 instant with an offset"
)
#: msgspec's wording for a missing or unknown key: the key is the field at fault.
_NAMED_KEY = re.compile(r"Object (?:missing required|contains unknown) field `(.*)`", re.DOTALL)

#: An observation value in a JSON body, as the client wrote it. An integer stays an
#: int, for the catalog to refuse one a float cannot hold exactly (beyond 2^53) as it
#: refuses it from Python; decoded as a float, it would be rounded unseen.
JsonValue = int | float | None


def etag(version: int, weak: bool = False, floor: int = 0) -> str:
    """The ETag of a series version: ``"42"`` (or ``W/"42"`` for a derived representation).

    ``floor`` is the oldest catalog version kept, for a representation that also
    depends on it (a revision history loses rows when retention raises it):
    ``W/"42.7"``. Without expired history (0) the tag is the version alone.
    """
    tag = f"{version}.{floor}" if floor else str(version)
    return f'W/"{tag}"' if weak else f'"{tag}"'


def parse_bound(text: str | None, name: str) -> dt.date | dt.datetime | None:
    """A ``start``/``end``: a calendar date (``2024-01-31``) or an instant with an offset.

    Text with a time of day after a date is read as an instant (its errors speak of
    instants); anything else must be a date, and an error names both forms, since
    the client may have meant either.
    """
    if text is None:
        return None
    value = text.strip()
    if not value:
        # Read as open, a bound a client's template left empty would widen a range
        # delete to the end of the series.
        raise ValidationError("must not be empty; leave it out for an open end", name)
    if len(value) > 10 and value[10] in "Tt ":
        return parse_instant(value, name)
    try:
        return parse_date(value, name)
    except ValidationError:
        raise ValidationError(_BOUND, name) from None


async def conditional(header: str | None, change: Callable[[int | None], Awaitable[T]]) -> T:
    """Make ``change`` to one series under an ``If-Match`` header: it is called with
    the version the header requires as its expected version (None: no header, or
    ``*``), which the catalog checks inside the commit, on the newest version.

    As RFC 9110 (13.1.1) has it, the comparison is strong, so a weak ETag
    (``W/"17"``) never matches, and the condition fails for a series that does not
    exist, ``*`` included: PreconditionFailedError (412) for either, as for a
    version that is no longer current. Raises ClientException (400) for anything
    but ``*`` or one ETag as this server issues them.
    """
    if header is None:
        return await change(None)
    expected = None
    if header.strip() != "*":
        match = _ETAG.fullmatch(header)
        if match is None:
            raise ClientException('If-Match must be one ETag as issued by this server, e.g. "42"')
        if match.group(1):
            raise PreconditionFailedError(
                f"If-Match compares ETags strongly, so the weak {header.strip()} never "
                f'matches; send the series\' ETag, "{match.group(2)}"'
            )
        tag = match.group(2)
        expected = int(tag) if _VERSION_TAG.fullmatch(tag) else None
        if expected is None or expected > MAX_VERSION:
            # Well formed, so a tag that matches no version: the condition fails.
            raise PreconditionFailedError(
                f"If-Match names {header.strip()}, the ETag of no version of a "
                f"catalog (versions run to {MAX_VERSION}): it matches nothing"
            )
    try:
        return await change(expected)
    except (VersionMismatchError, SeriesNotFoundError) as exc:
        detail = f"{exc}, which If-Match requires" if expected is None else str(exc)
        raise PreconditionFailedError(detail) from None


def none_match(header: str | None, version: int, floor: int = 0) -> bool:
    """True if ``If-None-Match`` lists the ETag of ``version`` and ``floor`` (see
    :func:`etag`), or ``*``: the client's copy is current.

    Comparison is weak, as RFC 9110 asks for If-None-Match; malformed entries never match.
    """
    if header is None:
        return False
    # ETags are opaque: compared as text, so "074" or "74.0" is not "74".
    tag = etag(version, floor=floor)
    sent = (item.strip() for item in header.split(","))
    return any(item == "*" or item.removeprefix("W/") == tag for item in sent)


async def check_request(request: Request[Any, Any, Any]) -> None:
    """The ``before_request`` hook: refuses what no route should see."""
    refuse_unknown_parameters(request)


def refuse_encoded_separators(scope: Scope) -> None:
    """400 for ``%2F`` or ``%5C`` in the path, checked before routing.

    Servers decode the path before routing, so an id holding an encoded slash
    (``GDP%2Fobservations``) would otherwise reach a different route, or none (a
    404 that hides the client's mistake). No valid series id contains either
    character.
    """
    # Only the path: httpx's test transport puts the query string in raw_path too.
    raw = (scope.get("raw_path") or b"").partition(b"?")[0].lower()
    if b"%2f" in raw or b"%5c" in raw:
        raise ClientException("encoded '/' or '\\' is not allowed in a path")


def refuse_unknown_parameters(request: Request[Any, Any, Any]) -> None:
    """422 naming a query parameter the REST operation does not take.

    Ignored, it would give an answer to another question: ``as_of`` on revisions
    (which have no as-of) would return today's revisions, a misspelt ``format``
    JSON. The parameters each operation takes are those its OpenAPI lists.
    """
    template = request.scope.get("path_template") or ""
    if not template.startswith("/v1/"):
        return
    # A HEAD is here as its GET (gateway.head), so it takes what the GET takes.
    taken = _declared_parameters(request.app).get((request.method, template), {})
    _check_integer_path_parameters(template, request.scope["path"], taken)
    for name, values in request.query_params.dict().items():
        kind = taken.get(name)
        if kind is None:
            known = ", ".join(sorted(n for n, k in taken.items() if not k.path)) or "none"
            message = f"unknown query parameter; this operation takes {known}"
        elif len(values) > 1 and not kind.repeatable:
            # Else the last would win unseen: format=csv&format=json answers JSON.
            message = "given more than once; it takes one value"
        elif kind.path:
            message = "is part of the path here, not a query parameter"
        elif kind.integer and not all(_INTEGER.fullmatch(value) for value in values):
            # Converted leniently, 1e2 and 5.0 would be taken for 100 and 5.
            message = _NOT_AN_INTEGER
        else:
            continue
        raise _invalid(name, message)


def _check_integer_path_parameters(template: str, path: str, taken: dict[str, _Declared]) -> None:
    """422 for an integer path parameter not written in digits: the router reads
    it with int(), which takes " 0", "+0", "0_0" and a full-width zero."""
    # From the end: a path served under a prefix (root_path) has more at the start.
    pairs = zip(reversed(template.split("/")), reversed(path.split("/")), strict=False)
    for pattern, segment in pairs:
        name = pattern[1:-1] if pattern.startswith("{") else None
        kind = taken.get(name) if name else None
        if kind is not None and kind.path and kind.integer and not _INTEGER.fullmatch(segment):
            raise _invalid(name, _NOT_AN_INTEGER)


def _invalid(name: str | None, message: str) -> ValidationException:
    return ValidationException(f"{name}: {message}", extra=[{"key": name, "message": message}])


@dataclass(frozen=True)
class _Declared:
    """How a query or path parameter is declared in the OpenAPI document."""

    repeatable: bool  # an array: it may be given more than once
    integer: bool
    path: bool


#: An integer as a client writes one (as msgspec reads it: no leading zero, no +);
#: its range is the parameter's own check.
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NOT_AN_INTEGER = "must be an integer written in digits, with no leading zero"


def _declared_parameters(app: Litestar) -> dict[tuple[str, str], dict[str, _Declared]]:
    """For each operation, its query parameters and how each is declared."""
    declared: dict[tuple[str, str], dict[str, _Declared]] | None = app.state.get(_DECLARED)
    if declared is None:
        declared = {}
        for path, item in (app.openapi_schema.paths or {}).items():
            for method in ("get", "post", "put", "patch", "delete"):
                operation = getattr(item, method, None)
                if operation is not None:
                    declared[(method.upper(), path)] = {
                        p.name: _Declared(
                            _repeatable(p.schema), _is_integer(p.schema), p.param_in == "path"
                        )
                        for p in operation.parameters or ()
                        if getattr(p, "param_in", None) in ("query", "path")
                    }
        app.state[_DECLARED] = declared
    return declared


def _repeatable(schema: Any) -> bool:
    """Whether a parameter's OpenAPI schema is an array (or null or an array)."""
    return OpenAPIType.ARRAY in _types(schema)


def _is_integer(schema: Any) -> bool:
    """Whether a parameter's OpenAPI schema is an integer (or null or an integer)."""
    return OpenAPIType.INTEGER in _types(schema)


def _types(schema: Any) -> list[Any]:
    """The types a schema allows: its own, a list of them, or its ``one_of``'s."""
    found: list[Any] = []
    for kind in (schema, *(getattr(schema, "one_of", None) or ())):
        named = getattr(kind, "type", None)
        found.extend(named if isinstance(named, list) else [named])
    return found


def decode_json(body: bytes, kind: type[T]) -> T:
    """Decode and type-check a JSON body.

    Raises ClientException (400) if it is not JSON (not UTF-8, or nesting deeper
    than the decoder's recursion limit) and ValidationError (422) naming the field
    (``operations.2.id``; ``body`` when the document itself has the wrong type)
    if it does not fit ``kind``.
    """
    if not body.strip():
        raise ClientException("the request body is empty; send a JSON document")
    try:
        try:
            return msgspec.json.decode(body, type=kind, strict=True)
        except msgspec.ValidationError as exc:
            # Typed decoding stops at the first misfit, which may hide broken syntax.
            msgspec.json.decode(body)
            raise ValidationError(*_misfit(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise ClientException(f"the request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:  # msgspec's own error for a bad byte inside a string
        raise ClientException(f"the request body is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise ClientException("the request body nests too deeply to be decoded") from None


def _misfit(text: str) -> tuple[str, str]:
    """The message and dotted field path of a msgspec ValidationError's text."""
    message, _, where = text.partition(" - at `$")
    parts = [_PATH_PART.sub(r".\1", where.rstrip("`")).lstrip(".")]
    named = _NAMED_KEY.fullmatch(message)
    if named:
        parts.append(named.group(1))
    return message, ".".join(p for p in parts if p) or "body"


def decode_json_object(body: bytes) -> dict[str, Any]:
    """A JSON body that must be an object (400 if not JSON, 422 if not an object)."""
    return decode_json(body, dict[str, Any])


def check_changes(series_id: str, changes: Mapping[str, Any]) -> None:
    """Raises ValidationError naming the field of ``changes`` at fault (``tags.0``).

    A batch validates an update's changes only when it commits, and the error then
    no longer tells which operation it came from; checked as the operation is
    read, the caller can put the operation's index before the field. Each field is
    validated on its own (no rule of SeriesSpec spans two fields), so a stand-in
    series with this id (which must be valid) shows what the stored one would;
    rules about the stored series (the frequency of a series with observations, an
    external id taken) are checked at commit.
    """
    apply_changes(SeriesSpec.model_construct(id=series_id, frequency="daily"), changes)
