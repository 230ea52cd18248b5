"""The ``Mutation`` type: each field is one atomic commit of the catalog.

``expectedVersion`` makes a change conditional: the catalog checks it inside the
commit, so of two clients that read the same version only one can change it; the
other gets ``PRECONDITION_FAILED``. ``commitBatch`` applies many changes as one
commit: all become visible at once, or none does.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import strawberry
from strawberry.permission import BasePermission

from catalog_store.batch import Batch
from catalog_store.errors import CatalogStoreError
from catalog_store.models import check_series_id
from gateway.graphql.auth import CanWrite
from gateway.graphql.bounds import Bounds, read_bounds
from gateway.graphql.catalog_types import Version, version_node
from gateway.graphql.context import GraphQLContext, context_of
from gateway.graphql.decorators import field, mutation
from gateway.graphql.errors import INPUT_TOO_LARGE, VALIDATION, ApiError, Arguments
from gateway.graphql.inputs import (
    BatchOperation,
    SeriesChanges,
    SeriesInput,
    WriteOperation,
    changes_of,
    observations_of,
    spec_of,
)
from gateway.graphql.scalars import Instant, WriteMode, catalog_mode
from gateway.graphql.types import Series, series_node
from gateway.params import check_changes

Context = strawberry.Info[GraphQLContext, None]
Message = Annotated[
    str | None, strawberry.argument(description="The commit message (a default names the change).")
]
ExpectedVersion = Annotated[
    int | None,
    strawberry.argument(
        description="Change only if the series is still at this version (else PRECONDITION_FAILED)."
    ),
]
WRITE: list[type[BasePermission]] = [CanWrite]


@strawberry.type
class DeletedSeries:
    series_id: str
    version: int = strawberry.field(description="The catalog version of the deletion.")


@strawberry.type
class CommitResult:
    version: int = strawberry.field(
        description="The catalog version holding every change: the new one, or the "
        "current one when nothing was committed."
    )
    operations: int
    committed: bool = strawberry.field(
        default=True,
        description="Whether the batch made a new version; false when every change was "
        "to what the series already hold.",
    )

    @field(
        description="The commit, with each change and the series it left; null when "
        "nothing was committed (the current version is another writer's commit)."
    )
    async def commit(self, info: Context) -> Version | None:
        if not self.committed:
            return None
        return version_node(await context_of(info).catalog.version_details(self.version))


def _check_rows(context: GraphQLContext, rows: int, field: str) -> None:
    limit = min(context.gateway.settings.max_observations, context.config.max_input_items)
    if rows > limit:
        raise ApiError(
            f"{rows:,} observations in one request; the limit is {limit:,} (load bulk "
            "observations through the REST API: CSV, Arrow or Parquet)",
            INPUT_TOO_LARGE,
            field,
            limit=limit,
        )


def _rows(dates: list[Any] | None, instants: list[Any] | None, values: list[Any] | None) -> int:
    return max(len(dates or ()), len(instants or ()), len(values or ()))


#: A write's rows as the catalog takes them, or None for none.
Rows = tuple[list[Any], list[float | None]] | None


def _write_input(op: WriteOperation, prefix: str) -> tuple[Rows, Bounds, Arguments]:
    """A write's rows and bounds, and where its fields are among the arguments: the
    catalog's ``dates`` are its ``instants`` when it gave those, and its bounds the
    arguments it gave for them. ``prefix`` goes before the argument names in errors."""
    rows = observations_of(op.dates, op.instants, op.values, prefix)
    bounds = read_bounds(op.start, op.end, op.start_instant, op.end_instant, prefix)
    keys = "instants" if op.instants is not None else "dates"
    names = {"id": "seriesId", "observations": keys, "dates": keys, "date": keys}
    return rows, bounds, Arguments(prefix, names={**names, **bounds.names()})


async def _add(batch: Batch, index: int, op: BatchOperation) -> Arguments:
    """Add one operation to ``batch``; return where its fields are among the arguments."""
    prefix = f"operations.{index}."
    if op.create:
        names = Arguments(prefix + "create.")
        spec = spec_of(op.create, prefix + "create")
        with names.named():
            batch.create(spec)
    elif op.update:
        names = Arguments(prefix + "update.", "changes.")
        with names.named():
            check_series_id(op.update.id)
        changes = changes_of(op.update.changes, prefix + "update.changes")
        with names.named():
            check_changes(op.update.id, changes)
            batch.update(op.update.id, changes, expected_version=op.update.expected_version)
    elif op.delete:
        names = Arguments(prefix + "delete.")
        with names.named():
            batch.delete(op.delete.id, expected_version=op.delete.expected_version)
    elif op.write:
        write = op.write
        rows, bounds, names = _write_input(write, prefix + "write.")
        with names.named():
            check_series_id(write.series_id)
            await batch.write(
                write.series_id,
                rows,
                catalog_mode(write.mode),
                start=bounds.start,
                end=bounds.end,
                expected_version=write.expected_version,
            )
    else:  # pragma: no cover - graphql-core enforces exactly one field of a oneOf input
        raise ApiError("give exactly one operation", VALIDATION, prefix.rstrip("."))
    return names


@strawberry.type
class Mutation:
    """Each field is one commit, and nullable: in a document of several mutations
    (run one after another), one that fails is null beside the results of those
    that committed, where a non-null field's error would null them all."""

    @mutation(permission_classes=WRITE, description="Create a series.")
    async def create_series(
        self, info: Context, input: SeriesInput, message: Message = None
    ) -> Series | None:
        context = context_of(info)
        spec = spec_of(input, "input")
        with Arguments("input.").named():
            series = await context.catalog.create(spec, message=message or "")
        return series_node(series, series.version)

    @mutation(permission_classes=WRITE, description="Change the given metadata fields of a series.")
    async def update_series(
        self,
        info: Context,
        series_id: Annotated[str, strawberry.argument(name="id")],
        input: SeriesChanges,
        expected_version: ExpectedVersion = None,
        message: Message = None,
    ) -> Series | None:
        context = context_of(info)
        check_series_id(series_id)
        changes = changes_of(input, "input")
        with Arguments(nested="input.").named():
            series = await context.catalog.update(
                series_id, changes, expected_version=expected_version, message=message or ""
            )
        return series_node(series, series.version)

    @mutation(
        permission_classes=WRITE,
        description="Delete a series; its history stays readable with asOf.",
    )
    async def delete_series(
        self,
        info: Context,
        series_id: Annotated[str, strawberry.argument(name="id")],
        expected_version: ExpectedVersion = None,
        message: Message = None,
    ) -> DeletedSeries | None:
        with Arguments().named():
            version = await context_of(info).catalog.delete(
                series_id, expected_version=expected_version, message=message or ""
            )
        return DeletedSeries(series_id=series_id, version=version)

    @mutation(
        permission_classes=WRITE,
        description="Write observations of one series as one commit: dates[i] gets "
        "values[i]; intraday series take instants instead of dates. start and end bound "
        "REPLACE_RANGE and DELETE_RANGE; startInstant and endInstant bound them by instants "
        "instead (an intraday series to the microsecond).",
    )
    async def write_observations(
        self,
        info: Context,
        series_id: str,
        mode: WriteMode = WriteMode.APPEND,
        dates: list[dt.date] | None = None,
        values: list[float | None] | None = None,
        instants: list[dt.datetime] | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        start_instant: Instant | None = None,
        end_instant: Instant | None = None,
        expected_version: ExpectedVersion = None,
        message: Message = None,
    ) -> Series | None:
        context = context_of(info)
        _check_rows(context, _rows(dates, instants, values), "values")
        op = WriteOperation(
            series_id=series_id,
            mode=mode,
            dates=dates,
            instants=instants,
            values=values,
            start=start,
            end=end,
            start_instant=start_instant,
            end_instant=end_instant,
            expected_version=expected_version,
        )
        rows, bounds, names = _write_input(op, "")
        with names.named():
            check_series_id(series_id)
            series = await context.catalog.write(
                series_id,
                rows,
                catalog_mode(mode),
                start=bounds.start,
                end=bounds.end,
                expected_version=expected_version,
                message=message or "",
            )
        return series_node(series, series.version)

    @mutation(
        permission_classes=WRITE,
        description="Apply every operation as one atomic commit: all become visible at "
        "once, or none does.",
    )
    async def commit_batch(
        self, info: Context, operations: list[BatchOperation], message: Message = None
    ) -> CommitResult | None:
        context = context_of(info)
        limit = context.gateway.settings.max_operations
        if not 1 <= len(operations) <= limit:
            raise ApiError(
                f"between 1 and {limit} operations, not {len(operations)}",
                VALIDATION,
                "operations",
            )
        rows = sum(
            _rows(op.write.dates, op.write.instants, op.write.values)
            for op in operations
            if op.write
        )
        _check_rows(context, rows, "operations")
        # Where each operation's fields are, to name the one the commit refuses.
        names: list[Arguments] = []
        batch: Batch | None = None
        try:
            async with context.catalog.batch(message or "") as batch:
                for index, op in enumerate(operations):
                    names.append(await _add(batch, index, op))
        except CatalogStoreError as exc:
            failed = batch.failed_operation if batch is not None else None
            if failed is None:
                raise
            raise names[failed].error(exc) from None
        if batch.version is None:  # every change was to what the series already hold
            current = await context.catalog.version()
            return CommitResult(version=current, operations=len(operations), committed=False)
        return CommitResult(version=batch.version, operations=len(operations))
