"""``POST /v1/commits``: changes to many series as one atomic commit.

The operations are checked as they are added to a catalog batch, and what only the
stored series can tell (a stale ``expected_version``, dates its frequency does not
take) as the commit is made. The first bad one aborts the whole request with its
index in the field path (``operations.3.series.frequency``,
``operations.1.expected_version``) and nothing is committed. Each operation
carries its own precondition: ``If-Match`` is not read here.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_413_REQUEST_ENTITY_TOO_LARGE

from catalog_store.batch import Batch
from catalog_store.errors import (
    AppendOrderError,
    CatalogStoreError,
    SeriesExistsError,
    SeriesNotFoundError,
    ValidationError,
    VersionMismatchError,
)
from catalog_store.models import check_series_id
from gateway.formats import JSON, require_json
from gateway.openapi import documented, struct_schema
from gateway.params import JsonValue, check_changes, decode_json, parse_bound
from gateway.problems import OperationError, problem_specs, with_prefix
from gateway.routes.series import WRITE
from gateway.state import gateway_of


class CreateOp(msgspec.Struct, tag="create", tag_field="op", forbid_unknown_fields=True):
    """Create a series; ``series`` holds its metadata as for ``POST /v1/series``."""

    series: dict[str, Any]


class UpdateOp(msgspec.Struct, tag="update", tag_field="op", forbid_unknown_fields=True):
    """Replace top-level metadata fields; with ``expected_version``, only at that version."""

    id: str
    changes: dict[str, Any]
    expected_version: int | None = None


class DeleteOp(msgspec.Struct, tag="delete", tag_field="op", forbid_unknown_fields=True):
    id: str
    expected_version: int | None = None


class WriteOp(msgspec.Struct, tag="write", tag_field="op", forbid_unknown_fields=True):
    """Write observations, as the JSON body of ``POST /v1/series/{id}/observations``."""

    id: str
    mode: str = "append"
    dates: list[str] | None = None
    values: list[JsonValue] | None = None
    start: str | None = None
    end: str | None = None
    expected_version: int | None = None


Op = CreateOp | UpdateOp | DeleteOp | WriteOp


class CommitRequest(msgspec.Struct, forbid_unknown_fields=True):
    operations: list[Op]
    message: str = ""


class CommitResult(msgspec.Struct):
    """The catalog version that holds every change of the commit."""

    version: int
    operations: int


@post(
    "/v1/commits",
    opt=WRITE,
    summary="Commit several changes atomically",
    status_code=HTTP_201_CREATED,
    responses=problem_specs(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
    operation_class=documented(
        request_body={JSON: struct_schema(CommitRequest)},
        responses={200: {JSON: struct_schema(CommitResult)}},
        headers={201: {"Location": "The URL of the new catalog version."}},
        descriptions={200: "Nothing changed: no new version, the current one is given"},
    ),
)
async def commit(request: Request[Any, Any, Any]) -> Response[CommitResult]:
    """Apply every operation as one commit: all are visible at once, or none is."""
    gateway = gateway_of(request)
    settings = gateway.settings
    require_json(request.headers.get("content-type"))
    data = decode_json(await request.body(), CommitRequest)
    count = len(data.operations)
    if not 1 <= count <= settings.max_operations:
        raise ValidationError(
            f"between 1 and {settings.max_operations} operations, not {count}", "operations"
        )
    rows = sum(
        max(len(op.dates or ()), len(op.values or ()))
        for op in data.operations
        if isinstance(op, WriteOp)
    )
    if rows > settings.max_observations:
        raise HTTPException(
            status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            detail=f"{rows} observations in one commit; the limit is {settings.max_observations}",
        )
    batch: Batch | None = None
    try:
        async with gateway.catalog.batch(data.message) as batch:
            for index, op in enumerate(data.operations):
                try:
                    await _add(batch, op)
                except ValidationError as exc:
                    raise with_prefix(exc, f"operations.{index}.") from None
    except CatalogStoreError as exc:
        failed = batch.failed_operation if batch is not None else None
        if failed is None:
            raise
        raise _in_operation(exc, failed, data.operations[failed]) from None
    if batch.version is None:  # every change was to what the series already hold
        current = await gateway.catalog.version()
        return Response(CommitResult(current, count), status_code=HTTP_200_OK)
    response = Response(CommitResult(batch.version, count), status_code=HTTP_201_CREATED)
    response.headers["Location"] = f"/v1/versions/{batch.version}"
    return response


#: Where in each kind of operation the series' own fields are.
_INPUT: dict[type[Op], str] = {CreateOp: "series.", UpdateOp: "changes."}


def _in_operation(exc: CatalogStoreError, index: int, op: Op) -> CatalogStoreError:
    """``exc``, with which the commit refused ``op`` (the ``index``th operation),
    naming the field of that operation at fault."""
    prefix = f"operations.{index}."
    if isinstance(exc, ValidationError):
        return with_prefix(exc, prefix + _INPUT.get(type(op), ""))
    if isinstance(exc, VersionMismatchError):
        return OperationError(exc, f"{prefix}expected_version")
    if isinstance(exc, AppendOrderError):
        return OperationError(exc, prefix + exc.field)
    if isinstance(exc, SeriesNotFoundError | SeriesExistsError):
        # A create names its series in its metadata; the others in their own ``id``.
        return OperationError(exc, prefix + ("series.id" if isinstance(op, CreateOp) else "id"))
    return exc


async def _add(batch: Batch, op: Op) -> None:
    if isinstance(op, CreateOp):
        try:
            batch.create(op.series)
        except ValidationError as exc:
            raise with_prefix(exc, "series.") from None
    elif isinstance(op, UpdateOp):
        check_series_id(op.id)
        try:
            check_changes(op.id, op.changes)
        except ValidationError as exc:
            raise with_prefix(exc, "changes.") from None
        batch.update(op.id, op.changes, expected_version=op.expected_version)
    elif isinstance(op, DeleteOp):
        batch.delete(op.id, expected_version=op.expected_version)
    else:
        given = op.dates is not None or op.values is not None
        await batch.write(
            op.id,
            (op.dates or [], op.values or []) if given else None,
            op.mode,
            start=parse_bound(op.start, "start"),
            end=parse_bound(op.end, "end"),
            expected_version=op.expected_version,
        )
