"""Observations of one series: read in four formats, write in three, and revisions.

A read is pinned to one catalog version (the latest, or ``as_of``) for both the
metadata and the values, so a concurrent commit never mixes into one response.
Large encodings run in a worker thread so one big read does not stall the others.
Reads and revisions carry the series version as a weak ETag; revisions add the
oldest version kept once retention has expired history.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec
import pyarrow as pa
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_304_NOT_MODIFIED, HTTP_413_REQUEST_ENTITY_TOO_LARGE

from catalog_store.asof import parse_as_of
from catalog_store.errors import ValidationError
from catalog_store.tasks import outcome_seen
from gateway.formats import (
    ARROW_FILE,
    ARROW_STREAM,
    CSV,
    JSON,
    PARQUET,
    Format,
    arrow_stream,
    decode_table,
    encode_arrow,
    encode_columns,
    encode_csv,
    encode_parquet,
    is_json,
    media_type_of,
    negotiate,
    observations_as_written,
)
from gateway.head import is_head
from gateway.openapi import BINARY, TEXT, documented, struct_schema
from gateway.params import (
    JsonValue,
    conditional,
    decode_json,
    etag,
    none_match,
    parse_bound,
)
from gateway.problems import problem_specs
from gateway.ranges import ranged
from gateway.routes.series import (
    READ,
    WRITE,
    AsOfParam,
    IfMatch,
    IfNoneMatch,
    SeriesId,
    SeriesOut,
    series_response,
)
from gateway.state import gateway_of

T = TypeVar("T")
#: Tables with more rows than this are encoded in a worker thread.
THREAD_ROWS = 20_000
#: Large encodings and decodings one process runs at once; others wait their turn.
#: Each holds its rows as Python objects while it runs (a 100,000-row JSON metadata
#: answer some 200 MB), so four at once took a replica past 1 GiB.
LARGE_AT_ONCE = 2
_large_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
#: Every format-negotiated answer varies by Accept, a 304 included (RFC 9110 15.4.5).
VARY = {"Vary": "Accept"}
OBSERVATION_KEYS = {"date": "dates", "value": "values"}
REVISION_KEYS = {
    "date": "dates",
    "value": "values",
    "realtime_start": "realtime_start",
    "realtime_end": "realtime_end",
}

FormatParam = Annotated[
    str | None,
    QueryParameter(
        required=False,
        description="json, csv, arrow or parquet; overrides the Accept header.",
    ),
]
DateParam = Annotated[
    str | None,
    QueryParameter(required=False, description="A date (2024-01-31) or an RFC 3339 instant."),
]


class Observations(msgspec.Struct):
    """Columnar JSON: ``dates[i]`` has ``values[i]`` (null for a missing observation)."""

    series_id: str
    version: int
    dates: list[str]
    values: list[float | None]


class Revisions(msgspec.Struct):
    """Every value each date has had, and when (UTC) it was current; ``realtime_end``
    is null while the value is current."""

    series_id: str
    dates: list[str]
    values: list[float | None]
    realtime_start: list[str]
    realtime_end: list[str | None]


class ObservationsWrite(msgspec.Struct, forbid_unknown_fields=True):
    """A JSON write. ``start``/``end`` bound ``replace_range`` and ``delete_range``."""

    mode: str | None = None
    dates: list[str] | None = None
    values: list[JsonValue] | None = None
    start: str | None = None
    end: str | None = None


def _table_responses(kind: Any) -> dict[int, dict[str, Any]]:
    return {
        200: {
            JSON: struct_schema(kind),
            CSV: TEXT,
            ARROW_STREAM: BINARY,
            PARQUET: BINARY,
        },
        304: {},
    }


async def off_loop(rows: int, work: Callable[[], T]) -> T:
    """``work`` on the event loop, or for more than :data:`THREAD_ROWS` rows in a
    worker thread, at most :data:`LARGE_AT_ONCE` such at once."""
    if rows <= THREAD_ROWS:
        return work()
    # One per event loop: an asyncio semaphore belongs to the loop it first waits on.
    turns = _large_turns.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(LARGE_AT_ONCE))
    await turns.acquire()
    # The turn ends when the thread does: a client that goes away cancels the wait,
    # not the thread, which would otherwise run on beside the next one let in.
    running = asyncio.ensure_future(asyncio.to_thread(work))
    running.add_done_callback(lambda _done: turns.release())
    running.add_done_callback(outcome_seen)  # its error is the caller's, if still waiting
    return await asyncio.shield(running)


async def encode(table: pa.Table, fmt: Format, head: dict[str, Any], keys: dict[str, str]) -> bytes:
    """``table`` as one byte string in ``fmt`` (large tables in a worker thread)."""
    encoders: dict[str, Callable[[], bytes]] = {
        "json": lambda: encode_columns(head, table, keys),
        "csv": lambda: encode_csv(table),
        "parquet": lambda: encode_parquet(table),
        "arrow": lambda: encode_arrow(table),
    }
    return await off_loop(table.num_rows, encoders[fmt.name])


def representation_headers(headers: dict[str, str], fmt: Format, name: str) -> dict[str, str]:
    out = {**headers, **VARY}
    if fmt.name in ("arrow", "parquet"):
        out["Content-Disposition"] = f'inline; filename="{name}.{fmt.extension}"'
    return out


def not_modified(headers: dict[str, str]) -> Response[Any]:
    """304 with the validators of the 200 (``headers``) and its ``Vary``."""
    return Response(None, status_code=HTTP_304_NOT_MODIFIED, headers={**headers, **VARY})


async def table_response(
    request: Request[Any, Any, Any],
    table: pa.Table,
    fmt: Format,
    head: dict[str, Any],
    keys: dict[str, str],
    headers: dict[str, str],
    name: str,
) -> Response[Any]:
    """``table`` in the negotiated format; Arrow is streamed batch by batch unless a
    byte range is asked for, or a HEAD, which must tell its ``Content-Length``."""
    headers = representation_headers(headers, fmt, name)
    if fmt.name == "arrow" and "range" not in request.headers and not is_head(request):
        headers["Accept-Ranges"] = "bytes"
        return Stream(arrow_stream(table), media_type=fmt.content_type, headers=headers)
    body = await encode(table, fmt, head, keys)
    return ranged(request, body, fmt.content_type, headers)


def check_text_rows(table: pa.Table, fmt: Format, limit: int) -> None:
    """Refuse a JSON or CSV answer of more than ``limit`` rows (ValidationError on
    ``format``): those encodings build Python objects per row, some 250 bytes each,
    where Arrow and Parquet go from the table's buffers (10^7 rows of JSON took a
    replica to 2.5 GB)."""
    if fmt.name in ("json", "csv") and table.num_rows > limit:
        raise ValidationError(
            f"{table.num_rows} rows; {fmt.name} answers hold at most {limit}: ask for "
            "format=arrow or parquet, or narrow the range with start and end",
            "format",
        )


async def pin_series(
    request: Request[Any, Any, Any], series_id: str, as_of: str | None
) -> tuple[int, Any, dict[str, str]]:
    """The catalog version a read pins (so the metadata and the values agree), the
    series at it, and the validator headers of its representations."""
    catalog = gateway_of(request).catalog
    pinned = (await catalog.snapshot(parse_as_of(as_of))).version
    series = await catalog.get(series_id, as_of=pinned)
    headers = {"ETag": etag(series.version, weak=True), "Fincat-Catalog-Version": str(pinned)}
    return pinned, series, headers


@get(
    "/v1/series/{series_id:str}/observations",
    opt=READ,
    summary="Read observations",
    responses=problem_specs(400, 401, 403, 404, 406, 416, 422, 429),
    operation_class=documented(
        responses=_table_responses(Observations),
        headers={200: {"ETag": 'Weak ETag of the series version: W/"42".'}},
        ranged=True,
    ),
)
async def read_observations(
    request: Request[Any, Any, Any],
    series_id: SeriesId,
    start: DateParam = None,
    end: DateParam = None,
    as_of: AsOfParam = None,
    format: FormatParam = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Any]:
    """Observations in ``[start, end]`` sorted by date, in the negotiated format.

    A ``Range: bytes=...`` header gets 206 with that part of the representation."""
    gateway = gateway_of(request)
    fmt = negotiate(format, request.headers.get("accept"))
    low, high = parse_bound(start, "start"), parse_bound(end, "end")
    pinned, series, headers = await pin_series(request, series_id, as_of)
    if none_match(if_none_match, series.version):
        return not_modified(headers)
    head = {"series_id": series_id, "version": series.version}

    async def table() -> pa.Table:
        read = await gateway.catalog.read(series_id, start=low, end=high, as_of=pinned)
        check_text_rows(read, fmt, gateway.settings.max_observations)
        return read

    if "range" not in request.headers and not is_head(request):
        return await table_response(
            request, await table(), fmt, head, OBSERVATION_KEYS, headers, series_id
        )

    # A ranged reader asks for one representation again and again, part by part.
    async def encoded() -> bytes:
        return await encode(await table(), fmt, head, OBSERVATION_KEYS)

    key = f"{series_id}\x00{series.version}\x00{low}\x00{high}\x00{fmt.name}"
    body = await gateway.ranged_bodies.get_or_load(key, encoded, len)
    headers = representation_headers(headers, fmt, series_id)
    return ranged(request, body, fmt.content_type, headers)


@get(
    "/v1/series/{series_id:str}/revisions",
    opt=READ,
    summary="Read the revision history",
    responses=problem_specs(400, 401, 403, 404, 406, 416, 422, 429),
    operation_class=documented(
        responses=_table_responses(Revisions),
        headers={
            200: {
                "ETag": 'Weak ETag of the series version: W/"42"; once retention has '
                'expired history, with the oldest version kept: W/"42.7".'
            }
        },
        ranged=True,
    ),
)
async def read_revisions(
    request: Request[Any, Any, Any],
    series_id: SeriesId,
    start: DateParam = None,
    end: DateParam = None,
    first_release_only: FromQuery[bool] = False,
    format: FormatParam = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Any]:
    """Every value each date in ``[start, end]`` has had, with its realtime interval
    (the ALFRED view); ``first_release_only`` keeps each date's first value."""
    fmt = negotiate(format, request.headers.get("accept"))
    low, high = parse_bound(start, "start"), parse_bound(end, "end")
    gateway = gateway_of(request)
    catalog = gateway.catalog
    # The history changes when the series does, and loses rows when retention raises
    # the oldest version kept: the two are the validator. Read before the history: a
    # history newer than its ETag costs the client one more 200 later, where one
    # older than its ETag would be kept by a wrong 304.
    series = await catalog.get(series_id)
    floor = await catalog.reader.oldest_version()
    headers = {"ETag": etag(series.version, weak=True, floor=floor)}
    if none_match(if_none_match, series.version, floor):
        return not_modified(headers)
    table = await catalog.revisions(
        series_id,
        start=low,
        end=high,
        first_release_only=first_release_only,
        max_values=gateway.settings.max_revision_values,
    )
    check_text_rows(table, fmt, gateway.settings.max_observations)
    head_fields = {"series_id": series_id}
    name = f"{series_id}-revisions"
    return await table_response(request, table, fmt, head_fields, REVISION_KEYS, headers, name)


@post(
    "/v1/series/{series_id:str}/observations",
    opt=WRITE,
    summary="Write observations",
    status_code=200,
    responses=problem_specs(400, 401, 403, 404, 409, 412, 413, 415, 422, 429),
    operation_class=documented(
        request_body={
            JSON: struct_schema(ObservationsWrite),
            CSV: TEXT,
            ARROW_STREAM: BINARY,
            ARROW_FILE: BINARY,
        },
        headers={200: {"ETag": "The series version after the write."}},
    ),
)
async def write_observations(
    request: Request[Any, Any, Any],
    series_id: SeriesId,
    mode: Annotated[
        str | None,
        QueryParameter(
            required=False,
            description="append (default), upsert, replace_range or delete_range; "
            "a JSON body's own mode wins.",
        ),
    ] = None,
    start: DateParam = None,
    end: DateParam = None,
    if_match: IfMatch = None,
) -> Response[SeriesOut]:
    """Write observations as one commit: JSON ``{mode, dates, values, start, end}``,
    CSV (``date,value``) or an Arrow IPC stream; returns the series after the write."""
    gateway = gateway_of(request)
    limit = gateway.settings.max_observations
    media = media_type_of(request.headers.get("content-type"))
    body = await request.body()
    observations: Any
    # Bytes a row takes at the least, to send a large body's decoding to a thread.
    rows_at_most = len(body) // 8
    if is_json(media):
        data = await off_loop(rows_at_most, lambda: decode_json(body, ObservationsWrite))
        mode = data.mode if data.mode is not None else mode
        start = data.start if data.start is not None else start
        end = data.end if data.end is not None else end
        rows = max(len(data.dates or ()), len(data.values or ()))
        _check_rows(rows, limit)
        given = data.dates is not None or data.values is not None
        observations = (data.dates or [], data.values or []) if given else None
    else:
        # delete_range takes no rows, which a CSV or Arrow body can only say by holding
        # none (a header alone, a stream of no batches, no bytes at all).
        deleting = mode == "delete_range"
        table = await off_loop(
            rows_at_most, lambda: decode_table(media, body, allow_empty=deleting)
        )
        _check_rows(table.num_rows, limit)
        deleted = deleting and table.num_rows == 0
        observations = (
            None
            if deleted
            else await off_loop(table.num_rows, lambda: observations_as_written(media, table, body))
        )
    low, high = parse_bound(start, "start"), parse_bound(end, "end")
    series = await conditional(
        if_match,
        lambda expected: gateway.catalog.write(
            series_id,
            observations,
            "append" if mode is None else mode,
            start=low,
            end=high,
            expected_version=expected,
        ),
    )
    return series_response(series)


def _check_rows(rows: int, limit: int) -> None:
    if rows > limit:
        raise HTTPException(
            status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            detail=f"{rows} observations in one request; the limit is {limit}",
        )


ROUTES = [read_observations, read_revisions, write_observations]
