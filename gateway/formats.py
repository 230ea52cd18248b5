"""Observation payloads in and out: content negotiation, encoders and decoders.

Tables go out as columnar JSON, CSV, an Arrow IPC stream or Parquet, chosen by
``format=`` (which wins) or the ``Accept`` header; they come in as JSON, CSV or an
Arrow IPC stream by ``Content-Type``. Everything here is pure: bytes and pyarrow
tables in, bytes out.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from litestar.exceptions import ClientException, HTTPException
from litestar.status_codes import HTTP_406_NOT_ACCEPTABLE, HTTP_415_UNSUPPORTED_MEDIA_TYPE
from pyarrow import ipc

from catalog_store.errors import ValidationError

JSON = "application/json"
CSV = "text/csv"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: The Arrow IPC file format (random access, a footer), which a body may also be.
ARROW_FILE = "application/vnd.apache.arrow.file"
PARQUET = "application/vnd.apache.parquet"
#: The media types a CSV body may be declared as.
CSV_TYPES = (CSV, "application/csv")


@dataclass(frozen=True)
class Format:
    """One representation of a table."""

    name: str
    media_type: str
    #: What the response's ``Content-Type`` says.
    content_type: str
    #: A file name extension, for ``Content-Disposition``.
    extension: str


FORMATS: dict[str, Format] = {
    "json": Format("json", JSON, JSON, "json"),
    "csv": Format("csv", CSV, CSV, "csv"),  # Litestar adds "; charset=utf-8"
    "arrow": Format("arrow", ARROW_STREAM, ARROW_STREAM, "arrows"),
    "parquet": Format("parquet", PARQUET, PARQUET, "parquet"),
}
FORMAT_NAMES = tuple(FORMATS)
#: Rows per Arrow record batch when streaming: a few MB, so the first bytes leave early.
BATCH_ROWS = 65_536
#: A float read from CSV text this large may be a rounded integer: 2^53 + 1 reads as 2^53.
_ROUNDED_FROM = 2.0**53
#: CSV text of an integer, as the float reader takes it (a sign, spaces around).
_INTEGER_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")


class NotAcceptableError(HTTPException):
    """406: no format the client accepts can be produced."""

    status_code = HTTP_406_NOT_ACCEPTABLE


class UnsupportedMediaTypeError(HTTPException):
    """415: the request body's media type cannot be read."""

    status_code = HTTP_415_UNSUPPORTED_MEDIA_TYPE


def negotiate(format_param: str | None, accept: str | None) -> Format:
    """The format to answer with: ``format=`` if given, else the best match for ``Accept``.

    No ``Accept`` (or ``*/*``) means JSON. Raises ValidationError (field
    ``format``) for an unknown format name and NotAcceptableError (406) when the
    Accept header admits none of the four media types.
    """
    if format_param is not None:
        chosen = FORMATS.get(format_param.strip().lower())
        if chosen is None:
            raise ValidationError(f"unknown format; one of {', '.join(FORMAT_NAMES)}", "format")
        return chosen
    if not accept or not accept.strip():
        return FORMATS["json"]
    best = _best_match(accept, [f.media_type for f in FORMATS.values()])
    if best is None:
        raise NotAcceptableError(
            "cannot produce any media type the Accept header allows; available: "
            + ", ".join(f.media_type for f in FORMATS.values())
        )
    return next(f for f in FORMATS.values() if f.media_type == best)


def _best_match(accept: str, provided: list[str]) -> str | None:
    """RFC 9110 proactive negotiation: highest q wins, then the most specific range.

    Ties go to the server's order of preference (``provided``). A range with q=0
    excludes what it matches.
    """
    ranges: list[tuple[str, str, float, int]] = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        kind, _, sub = fields[0].lower().partition("/")
        if not kind or not sub:
            continue
        quality = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        specificity = (kind != "*") + (sub != "*")
        ranges.append((kind, sub, quality, specificity))
    best: tuple[float, int] | None = None
    chosen = None
    for index, media_type in enumerate(provided):
        kind, _, sub = media_type.partition("/")
        matches = [(q, spec) for k, s, q, spec in ranges if k in ("*", kind) and s in ("*", sub)]
        if not matches:
            continue
        quality, _spec = max(matches, key=lambda m: m[1])  # the most specific range decides
        if quality <= 0:
            continue
        score = (quality, -index)
        if best is None or score > (best[0], -best[1]):
            best, chosen = (quality, index), media_type
    return chosen


# -- encoding ------------------------------------------------------------------------


def text_column(column: pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray:
    """Dates as ``2024-01-31``; UTC instants as RFC 3339 ``2024-01-31T15:04:05.000000Z``."""
    if pa.types.is_timestamp(column.type):
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
    return column.cast(pa.string())


def json_values(column: pa.ChunkedArray) -> list[Any]:
    """A column as JSON-ready values: dates and instants as strings, maps as objects,
    missing values as None."""
    if pa.types.is_temporal(column.type):
        return text_column(column).to_pylist()  # type: ignore[no-any-return]
    if pa.types.is_map(column.type):
        return [dict(pairs) for pairs in column.to_pylist()]
    return column.to_pylist()  # type: ignore[no-any-return]


def encode_columns(head: dict[str, Any], table: pa.Table, names: dict[str, str]) -> bytes:
    """Columnar JSON: ``head`` fields, then each column of ``table`` as a list.

    ``names`` maps table columns to JSON keys (``date`` -> ``dates``); values as
    :func:`json_values` gives them.
    """
    body = dict(head)
    for column, key in names.items():
        body[key] = json_values(table.column(column))
    return msgspec.json.encode(body)


def encode_csv(table: pa.Table) -> bytes:
    """CSV with a plain header (``date,value``), ISO dates, empty fields for missing values."""
    columns = {
        name: text_column(col) if pa.types.is_temporal(col.type) else col
        for name, col in zip(table.column_names, table.columns, strict=True)
    }
    sink = io.BytesIO()
    sink.write((",".join(table.column_names) + "\n").encode())
    pacsv.write_csv(
        # One chunk per column: pyarrow 26 writes zeros for columns chunked unlike.
        pa.table(columns).combine_chunks(),
        sink,
        # Dates and numbers never hold a comma or a quote, so nothing needs quoting.
        pacsv.WriteOptions(include_header=False, quoting_style="none"),
    )
    return sink.getvalue()


def encode_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    # Dictionaries do not pay off for unique dates and noisy floats; level 1 keeps it fast.
    pq.write_table(table, sink, compression="zstd", compression_level=1, use_dictionary=False)
    return sink.getvalue()


def arrow_chunks(table: pa.Table) -> Iterator[bytes]:
    """An Arrow IPC stream, one chunk of bytes per record batch, ending with
    end-of-stream. The one encoding a GET streams and a HEAD or a byte range
    measures: a range cut from another batching splices into a stream that reads
    whole, short of rows."""
    sink = io.BytesIO()
    writer = ipc.new_stream(sink, table.schema)

    def take() -> bytes:
        data = sink.getvalue()
        sink.seek(0)
        sink.truncate()
        return data

    yield take()
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        writer.write_batch(batch)
        yield take()
    writer.close()
    yield take()


async def arrow_stream(table: pa.Table) -> AsyncIterator[bytes]:
    for chunk in arrow_chunks(table):
        yield chunk


def encode_arrow(table: pa.Table) -> bytes:
    return b"".join(arrow_chunks(table))


# -- decoding --------------------------------------------------------------------------


def media_type_of(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(media_type: str) -> bool:
    """``application/json`` or a JSON-based ``application/*+json`` (``merge-patch+json``)."""
    return media_type == JSON or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def require_json(content_type: str | None) -> None:
    """Raises UnsupportedMediaTypeError (415) unless ``content_type`` declares JSON.

    A body declared as anything else (or not declared) is refused even if it
    parses: a web page may send text/plain, a form or an untyped body to any
    origin without a CORS preflight, and must not be able to write that way.
    """
    media = media_type_of(content_type)
    if not is_json(media):
        raise UnsupportedMediaTypeError(
            f"cannot read a body of type {media or 'none'!r}; send {JSON}"
        )


def decode_table(media_type: str, body: bytes, allow_empty: bool = False) -> pa.Table:
    """A CSV or Arrow IPC stream body as a table (columns are checked by the catalog).

    An empty body is a table of no rows with ``allow_empty``, else a ClientException
    (400), as is a body that does not parse; any other media type is an
    UnsupportedMediaTypeError (415), with a body or without.
    """
    is_csv = media_type in CSV_TYPES
    if not is_csv and media_type not in (ARROW_STREAM, ARROW_FILE):
        raise UnsupportedMediaTypeError(
            f"cannot read a body of type {media_type or 'none'!r}; "
            f"send {JSON}, {CSV}, {ARROW_STREAM} or {ARROW_FILE}"
        )
    if not body or body.isspace():  # isspace stops at the first other byte: no copy
        if allow_empty:
            return pa.table(
                {"date": pa.array([], pa.string()), "value": pa.array([], pa.float64())}
            )
        wanted = "a CSV header line 'date,value'" if is_csv else "Arrow IPC"
        raise ClientException(f"the request body is empty; send {wanted}")
    if is_csv:
        return _decode_csv(body)
    kind, read = (
        ("file", ipc.open_file) if media_type == ARROW_FILE else ("stream", ipc.open_stream)
    )
    try:
        table = read(pa.BufferReader(body)).read_all()
        # Fully: a stream pyarrow opens may still be inconsistent inside (offsets
        # past their buffer, a null count beyond the length, bytes that are not
        # UTF-8), which the catalog's reads then met as errors of their own (500s),
        # or read past the buffer.
        table.validate(full=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ClientException(f"not a readable Arrow IPC {kind}: {exc}") from None
    return table


def observations_as_written(media_type: str, table: pa.Table, body: bytes) -> Any:
    """What the catalog is given for a body :func:`decode_table` read as ``table``.

    That is ``table``, unless it is CSV holding an integer a float cannot hold
    exactly: the CSV reader rounds it (2^53 + 1 to 2^53) unseen, so then the dates
    and the values with such integers as written, which the catalog refuses as it
    refuses them from Python. Only a body holding a value from 2^53 up is read
    again, as text, to tell.
    """
    if media_type not in CSV_TYPES or table.column_names.count("value") != 1:
        return table  # no value column, or several: the catalog says which
    values = table.column("value")
    large = pc.fill_null(pc.greater_equal(pc.abs(values), _ROUNDED_FROM), False)
    if not pc.any(large).as_py():
        return table
    texts = _decode_csv(body, pa.string()).column("value")
    written: list[Any] | None = None
    for index in map(int, np.flatnonzero(large.to_numpy())):
        text = texts[index].as_py()
        if _INTEGER_TEXT.fullmatch(text):
            written = values.to_pylist() if written is None else written
            written[index] = int(text)
    return table if written is None else (table.column("date"), written)


def _decode_csv(body: bytes, value_type: pa.DataType | None = None) -> pa.Table:
    try:
        return pacsv.read_csv(
            pa.BufferReader(body),
            convert_options=pacsv.ConvertOptions(
                column_types={"date": pa.string(), "value": value_type or pa.float64()},
                # Only an empty field is a missing value. pyarrow would also read
                # NaN, NA, null, #N/A ... as null, and so store a NaN a client sent
                # as a missing value; NaN is then refused like JSON and Arrow NaN.
                null_values=[""],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ClientException(f"not a readable CSV body: {' '.join(str(exc).split())}") from None
