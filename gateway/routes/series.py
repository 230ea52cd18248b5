"""Series metadata: list, create, read, update, delete.

A series' ``version`` (the catalog version of its last change) is its ETag:
``If-None-Match`` gives 304 on reads and ``If-Match`` makes updates and deletes
conditional, which the catalog enforces inside the commit (412 when stale), so
two clients that read the same version can never both overwrite it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.openapi.spec import Example
from litestar.params import FromQuery, HeaderParameter, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_304_NOT_MODIFIED

from catalog_store.asof import parse_as_of
from catalog_store.errors import SeriesNotFoundError, ValidationError
from catalog_store.listing import MAX_PAGE
from catalog_store.models import SERIES_ID_PATTERN, Frequency, Series, SeriesSpec
from gateway.auth import needs
from gateway.formats import JSON, require_json
from gateway.openapi import documented, inline_defs
from gateway.params import conditional, decode_json_object, etag, none_match
from gateway.problems import problem_specs
from gateway.state import gateway_of

READ = needs("read")
WRITE = needs("write")
_SPEC_SCHEMA = inline_defs(SeriesSpec.model_json_schema())
_SPEC_SCHEMA["properties"]["id"]["pattern"] = SERIES_ID_PATTERN
_SPEC_SCHEMA["examples"] = [
    {
        "id": "DGS10",
        "frequency": "business_daily",
        "title": "10-Year Treasury constant maturity rate",
        "source": "FRED",
        "units": "percent",
        "tags": ["rates"],
        "external_ids": {"fred": "DGS10"},
    }
]
_CHANGES_SCHEMA = {**_SPEC_SCHEMA, "required": [], "examples": [{"title": "New title"}]}
_ETAG_DOC = {"ETag": 'The series version, quoted: "42".'}

SeriesId = Annotated[
    str,
    PathParameter(
        description="1-128 ASCII letters, digits, '_', '.', '-', starting with a letter or digit.",
        schema_extra={"pattern": SERIES_ID_PATTERN},
        examples=[Example(value="GDP")],
    ),
]
Cursor = Annotated[str | None, QueryParameter(description="next_cursor of the last page.")]
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        description='Apply only if the series is still at this version: its ETag ("42"), '
        "compared strongly (a weak one never matches), or * (only that it exists).",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(name="If-None-Match", required=False, description="304 if still current."),
]
TextParam = Annotated[
    str | None, QueryParameter(description="Text in the id, title or description.")
]
TagParam = Annotated[
    list[str] | None, QueryParameter(description="Repeatable; every tag must be present.")
]
AsOfParam = Annotated[
    str | None,
    QueryParameter(
        required=False,
        description="A catalog version number, or an RFC 3339 instant with a UTC offset.",
    ),
]


class SeriesOut(msgspec.Struct, frozen=True):
    """A series as the API shows it.

    ``version`` is the catalog version of its last change, and its ETag.
    ``first_date``/``last_date`` are dates (``2024-01-31``), or RFC 3339 UTC
    instants for intraday series; null while there is no observation.
    """

    id: str
    frequency: Frequency
    title: str
    description: str
    source: str
    units: str
    seasonal_adjustment: str
    tags: list[str]
    external_ids: dict[str, str]
    attributes: dict[str, Any]
    partitioning: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    first_date: str | None
    last_date: str | None
    observation_count: int


def _moment(value: dt.date | dt.datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def wire(series: Series) -> SeriesOut:
    """The API's view of a catalog series."""
    return SeriesOut(
        id=series.id,
        frequency=series.frequency,
        title=series.title,
        description=series.description,
        source=series.source,
        units=series.units,
        seasonal_adjustment=series.seasonal_adjustment,
        tags=list(series.tags),
        external_ids=dict(series.external_ids),
        attributes=dict(series.attributes),
        partitioning=series.partitioning,
        created_at=series.created_at,
        updated_at=series.updated_at,
        version=series.version,
        first_date=_moment(series.first_date),
        last_date=_moment(series.last_date),
        observation_count=series.observation_count,
    )


class SeriesPage(msgspec.Struct):
    """One page of a listing; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[SeriesOut]
    next_cursor: str | None


class Deleted(msgspec.Struct):
    series_id: str
    version: int


def series_response(series: Series, status: int = HTTP_200_OK) -> Response[SeriesOut]:
    return Response(wire(series), status_code=status, headers={"ETag": etag(series.version)})


def not_modified(version: int, weak: bool = False, floor: int = 0) -> Response[Any]:
    """304 with the ETag of ``version`` (see :func:`gateway.params.etag`)."""
    headers = {"ETag": etag(version, weak, floor)}
    return Response(None, status_code=HTTP_304_NOT_MODIFIED, headers=headers)


@get(
    "/v1/series",
    opt=READ,
    summary="List series",
    responses=problem_specs(400, 401, 403, 404, 422, 429),
)
async def list_series(
    request: Request[Any, Any, Any],
    q: TextParam = None,
    source: FromQuery[str | None] = None,
    frequency: FromQuery[str | None] = None,
    tag: TagParam = None,
    external_id: Annotated[
        str | None,
        QueryParameter(
            description="provider:id, e.g. fred:GDP (or the id alone with `provider`); "
            "gives at most the one series."
        ),
    ] = None,
    provider: Annotated[
        str | None,
        QueryParameter(
            description="The provider of `external_id`, which is then the id alone "
            "(for a provider whose name holds ':')."
        ),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[
        str | None, QueryParameter(description="next_cursor of the last page.")
    ] = None,
    as_of: AsOfParam = None,
) -> SeriesPage:
    """Series matching every filter, one page at a time, at one consistent version."""
    catalog = gateway_of(request).catalog
    when = parse_as_of(as_of)
    if provider is not None and external_id is None:
        raise ValidationError("provider is given with external_id only", "provider")
    if external_id is not None:
        if any(v is not None for v in (q, source, frequency, tag, cursor)):
            raise ValidationError(
                "external_id names one series; it cannot be combined with other filters",
                "external_id",
            )
        if provider is not None:
            ident = external_id
        else:
            provider, sep, ident = external_id.partition(":")
            if not sep:
                raise ValidationError("must be provider:id, e.g. fred:GDP", "external_id")
        if not provider or not ident:
            raise ValidationError("must be provider:id, e.g. fred:GDP", "external_id")
        try:
            found = await catalog.find_by_external_id(provider, ident, as_of=when)
        except SeriesNotFoundError:  # a filter that matches nothing
            return SeriesPage([], None)
        return SeriesPage([wire(found)], None)
    page = await catalog.list(
        source=source,
        frequency=frequency,
        tags=tag or (),
        text=q,
        limit=limit,
        cursor=cursor,
        as_of=when,
    )
    return SeriesPage([wire(s) for s in page.items], page.next_cursor)


@post(
    "/v1/series",
    opt=WRITE,
    summary="Create a series",
    status_code=HTTP_201_CREATED,
    responses=problem_specs(400, 401, 403, 409, 413, 415, 422, 429),
    operation_class=documented(
        request_body={JSON: _SPEC_SCHEMA},
        headers={201: {**_ETAG_DOC, "Location": "The new series' URL."}},
    ),
)
async def create_series(request: Request[Any, Any, Any]) -> Response[SeriesOut]:
    """Create a series from its metadata (409 if the id exists, 422 naming a bad field)."""
    require_json(request.headers.get("content-type"))
    spec = decode_json_object(await request.body())
    series = await gateway_of(request).catalog.create(spec)
    response = series_response(series, HTTP_201_CREATED)
    response.headers["Location"] = f"/v1/series/{series.id}"
    return response


@get(
    "/v1/series/{series_id:str}",
    opt=READ,
    summary="Get a series",
    responses=problem_specs(400, 401, 403, 404, 422, 429),
    operation_class=documented(
        headers={200: _ETAG_DOC},
        responses={304: {}},
    ),
)
async def get_series(
    request: Request[Any, Any, Any],
    series_id: SeriesId,
    as_of: AsOfParam = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Any]:
    """The series' metadata, now or as of a version or instant; 304 if unchanged."""
    gateway = gateway_of(request)
    catalog = gateway.catalog
    if as_of is None:
        # The hot path: the latest version is known within the cache TTL, and a
        # series' view at one catalog version never changes.
        latest = await catalog.version(refresh=False)
        view = gateway.series_views.get((latest, series_id))
        if view is None:
            view = wire(await catalog.get(series_id, as_of=latest))
            gateway.series_views[(latest, series_id)] = view
    else:
        view = wire(await catalog.get(series_id, as_of=parse_as_of(as_of)))
    if none_match(if_none_match, view.version):
        return not_modified(view.version)
    return Response(view, headers={"ETag": etag(view.version)})


@patch(
    "/v1/series/{series_id:str}",
    opt=WRITE,
    summary="Update a series",
    responses=problem_specs(400, 401, 403, 404, 409, 412, 413, 415, 422, 429),
    operation_class=documented(
        request_body={JSON: _CHANGES_SCHEMA, "application/merge-patch+json": _CHANGES_SCHEMA},
        headers={200: _ETAG_DOC},
    ),
)
async def update_series(
    request: Request[Any, Any, Any], series_id: SeriesId, if_match: IfMatch = None
) -> Response[SeriesOut]:
    """Replace the given top-level metadata fields; ``If-Match`` makes it conditional."""
    require_json(request.headers.get("content-type"))
    changes = decode_json_object(await request.body())
    catalog = gateway_of(request).catalog
    series = await conditional(
        if_match, lambda expected: catalog.update(series_id, changes, expected_version=expected)
    )
    return series_response(series)


@delete(
    "/v1/series/{series_id:str}",
    opt=WRITE,
    summary="Delete a series",
    status_code=HTTP_200_OK,
    responses=problem_specs(400, 401, 403, 404, 409, 412, 422, 429),
    operation_class=documented(headers={200: {"ETag": "The catalog version of the deletion."}}),
)
async def delete_series(
    request: Request[Any, Any, Any], series_id: SeriesId, if_match: IfMatch = None
) -> Response[Deleted]:
    """Delete a series; its history stays readable with ``as_of``."""
    catalog = gateway_of(request).catalog
    version = await conditional(
        if_match, lambda expected: catalog.delete(series_id, expected_version=expected)
    )
    return Response(Deleted(series_id, version), headers={"ETag": etag(version)})


ROUTES = [list_series, create_series, get_series, update_series, delete_series]
