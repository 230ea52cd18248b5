"""The metadata table over HTTP: what users set on every matching series, in one
response, as JSON columns, CSV, an Arrow IPC stream or Parquet.

``/v1/series`` pages through series as objects; this is the bulk view for
dataframes (``pandas.read_csv(url)``, ``pyarrow`` on the Arrow stream), read from
the catalog's metadata table, so a whole source costs its table parts rather
than a model per series. Rows are in id order, at one catalog version.
"""

from __future__ import annotations

import io
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from litestar import Request, Response, get
from litestar.params import FromQuery

from catalog_store.asof import parse_as_of
from catalog_store.errors import ValidationError
from gateway.formats import (
    ARROW_STREAM,
    CSV,
    JSON,
    PARQUET,
    json_values,
    negotiate,
    text_column,
)
from gateway.openapi import BINARY, TEXT, documented, struct_schema
from gateway.problems import problem_specs
from gateway.ranges import ranged
from gateway.routes.observations import (
    FormatParam,
    off_loop,
    representation_headers,
    table_response,
)
from gateway.routes.series import READ, AsOfParam, TagParam, TextParam
from gateway.state import gateway_of

#: Rows a JSON or CSV answer may hold: those encodings build Python objects per row
#: (~1 KB each for JSON), so a whole 10^6-series catalog would take a gigabyte of a
#: gateway's memory. Arrow and Parquet go from the table's buffers and have no limit.
TEXT_ROWS_MAX = 100_000


class MetadataColumns(msgspec.Struct):
    """Columnar JSON: row ``i`` of the table is element ``i`` of every list."""

    version: int
    count: int
    id: list[str]
    title: list[str]
    description: list[str]
    source: list[str]
    frequency: list[str]
    units: list[str]
    seasonal_adjustment: list[str]
    tags: list[list[str]]
    external_ids: list[dict[str, str]]
    attributes: list[dict[str, Any]]
    partitioning: list[str | None]
    created_at: list[str]


def encode_json(version: int, table: pa.Table) -> bytes:
    body: dict[str, Any] = {"version": version, "count": table.num_rows}
    for name in table.column_names:
        if name == "attributes":  # JSON text already: embedded as it is
            body[name] = [msgspec.Raw(text.encode()) for text in table[name].to_pylist()]
        else:
            body[name] = json_values(table[name])
    return msgspec.json.encode(body)


def encode_csv(table: pa.Table) -> bytes:
    """One line per series: tags joined by ``|``, external ids and attributes as JSON
    text; titles may hold commas and quotes, so fields are quoted where needed."""
    external_ids = [
        msgspec.json.encode(dict(pairs)).decode() for pairs in table["external_ids"].to_pylist()
    ]
    flat = (
        table.set_column(
            table.schema.get_field_index("tags"),
            "tags",
            pc.binary_join(table["tags"], "|"),
        )
        .set_column(
            table.schema.get_field_index("external_ids"),
            "external_ids",
            pa.array(external_ids, pa.string()),
        )
        .set_column(
            table.schema.get_field_index("created_at"),
            "created_at",
            text_column(table["created_at"]),
        )
    )
    sink = io.BytesIO()
    pacsv.write_csv(flat, sink)
    return sink.getvalue()


@get(
    "/v1/metadata",
    opt=READ,
    summary="The metadata table",
    responses=problem_specs(400, 401, 403, 404, 406, 422, 429),
    operation_class=documented(
        responses={
            200: {
                JSON: struct_schema(MetadataColumns),
                CSV: TEXT,
                ARROW_STREAM: BINARY,
                PARQUET: BINARY,
            }
        },
        headers={200: {"Fincat-Catalog-Version": "The catalog version the table is of."}},
        ranged=True,
    ),
)
async def read_metadata_table(
    request: Request[Any, Any, Any],
    q: TextParam = None,
    source: FromQuery[str | None] = None,
    frequency: FromQuery[str | None] = None,
    tag: TagParam = None,
    as_of: AsOfParam = None,
    format: FormatParam = None,
) -> Response[Any]:
    """The user-set metadata of every series matching all filters, in id order, in the
    negotiated format. With ``source`` only that source's part of the table is read."""
    fmt = negotiate(format, request.headers.get("accept"))
    catalog = gateway_of(request).catalog
    version = (await catalog.snapshot(parse_as_of(as_of))).version
    table = await catalog.metadata_table(
        source=source, frequency=frequency, tags=tag or (), text=q, as_of=version
    )
    headers = {"Fincat-Catalog-Version": str(version)}
    if fmt.name in ("arrow", "parquet"):
        return await table_response(request, table, fmt, {}, {}, headers, "metadata")
    if table.num_rows > TEXT_ROWS_MAX:
        raise ValidationError(
            f"{table.num_rows} rows; {fmt.name} answers hold at most {TEXT_ROWS_MAX}: "
            "ask for format=arrow or parquet, or narrow the filters",
            "format",
        )
    body = await off_loop(
        table.num_rows,
        lambda: encode_json(version, table) if fmt.name == "json" else encode_csv(table),
    )
    return ranged(request, body, fmt.content_type, representation_headers(headers, fmt, "metadata"))


ROUTES = [read_metadata_table]
