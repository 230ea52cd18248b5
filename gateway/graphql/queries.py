"""The ``Query`` type: series, listings, history, statistics, freshness, health, verification.

Every field without ``asOf`` reads the one catalog version the request pinned at
its first read, so a response never mixes two commits.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from catalog_store.asof import parse_version
from catalog_store.errors import CatalogStoreError, SeriesNotFoundError
from gateway.graphql.auth import IsAdmin
from gateway.graphql.catalog_types import (
    CatalogStats,
    DataFreshness,
    Health,
    PageInfo,
    SeriesConnection,
    SeriesEdge,
    SourceFreshness,
    ValidationReport,
    Version,
    VersionConnection,
    VersionEdge,
    report_node,
    version_node,
)
from gateway.graphql.config import DEFAULT_PAGE
from gateway.graphql.context import GraphQLContext, context_of
from gateway.graphql.decorators import field
from gateway.graphql.errors import VALIDATION, ApiError
from gateway.graphql.inputs import SeriesFilter
from gateway.graphql.paging import SCAN_LIMIT, Conditions, check_external_id, list_series
from gateway.graphql.scalars import AsOf
from gateway.graphql.summary import summary_at
from gateway.graphql.types import Series, check_page, series_node
from gateway.state import CatalogNotOpenError

Context = strawberry.Info[GraphQLContext, None]
AsOfArgument = Annotated[
    AsOf | None,
    strawberry.argument(
        description="Read the catalog as it was at this version or instant (default: now)."
    ),
]


async def version_of(context: GraphQLContext, as_of: object | None) -> int:
    """The catalog version ``asOf`` names, or the request's pinned version.

    Raises VersionNotFoundError for an instant before the catalog existed.
    """
    if as_of is None:
        return await context.version()
    if isinstance(as_of, int):
        return as_of
    assert isinstance(as_of, dt.datetime)
    return (await context.catalog.snapshot(as_of)).version


def conditions_of(value: SeriesFilter | None) -> Conditions:
    if value is None:
        return Conditions()
    between = value.observed_between
    if between is not None and between.start and between.end and between.start > between.end:
        raise ApiError("start is after end", VALIDATION, "filter.observedBetween.start")
    return Conditions(
        text=value.text,
        source=value.source,
        frequency=value.frequency.value if value.frequency is not None else None,
        tags=tuple(value.tags or ()),
        external_provider=value.external_provider,
        external_id=value.external_id,
        # Unbounded still asks for observations: a series with none has none in range.
        observed=between is not None,
        observed_from=between.start if between is not None else None,
        observed_to=between.end if between is not None else None,
    )


@strawberry.type
class Query:
    @field(description="One series, or null if there is none with this id.")
    async def series(
        self,
        info: Context,
        series_id: Annotated[str, strawberry.argument(name="id")],
        as_of: AsOfArgument = None,
    ) -> Series | None:
        context = context_of(info)
        version = await version_of(context, as_of)
        found = await context.loaders.series.load((series_id, version))
        return series_node(found, version) if found is not None else None

    @field(
        description="Series matching every condition of the filter, a page at a time, all "
        "at the catalog version the first page was read at."
    )
    async def series_list(
        self,
        info: Context,
        filter: SeriesFilter | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        as_of: AsOfArgument = None,
    ) -> SeriesConnection:
        context = context_of(info)
        check_page(first, context.config.max_page)
        version = await version_of(context, as_of)
        listing = await list_series(
            context.catalog, conditions_of(filter), first, after, version, SCAN_LIMIT
        )
        return SeriesConnection(
            edges=[
                SeriesEdge(cursor=cursor, node=series_node(series, listing.version))
                for series, cursor in listing.items
            ],
            page_info=PageInfo(has_next_page=listing.has_next, end_cursor=listing.end_cursor),
            catalog_version=listing.version,
        )

    @field(description="The series carrying an external id, or null.")
    async def series_by_external_id(
        self,
        info: Context,
        provider: str,
        external_id: Annotated[str, strawberry.argument(name="id")],
        as_of: AsOfArgument = None,
    ) -> Series | None:
        check_external_id(provider, external_id, ("provider", "id"))
        context = context_of(info)
        version = await version_of(context, as_of)
        try:
            found = await context.catalog.find_by_external_id(provider, external_id, version)
        except SeriesNotFoundError:
            return None
        return series_node(found, version)

    @field(description="Catalog versions, newest first.")
    async def versions(
        self,
        info: Context,
        first: int = DEFAULT_PAGE,
        after: Annotated[
            str | None, strawberry.argument(description="endCursor of the previous page.")
        ] = None,
    ) -> VersionConnection:
        context = context_of(info)
        check_page(first, context.config.max_page)
        # Versions below ``before``: the pinned one and older, or older than the cursor.
        before = await context.version() + 1 if after is None else parse_version(after, "after")
        if after is not None:
            await context.catalog.check_pinned(before, "after")
        # One more than the page: there is a next page only where older versions are kept.
        history = await context.catalog.history(limit=first + 1, before=before) if before else []
        edges = [VersionEdge(cursor=str(v.version), node=version_node(v)) for v in history[:first]]
        more = len(history) > first
        end = edges[-1].cursor if edges else None
        return VersionConnection(
            edges=edges, page_info=PageInfo(has_next_page=more, end_cursor=end)
        )

    @field(
        description="One catalog version (0 is the empty catalog); null, with a NOT_FOUND "
        "error, for one not made yet or expired."
    )
    async def version(self, info: Context, number: int) -> Version | None:
        # Nullable, as series is: a version that is not there fails this field
        # alone, where a non-null field's error would null the whole response.
        if number < 0:
            raise ApiError("a version is a non-negative integer", VALIDATION, "number")
        return version_node(await context_of(info).catalog.version_details(number))

    @field(description="Counts, dates and last commit of the catalog.")
    async def catalog_stats(self, info: Context) -> CatalogStats:
        context = context_of(info)
        version = await context.version()
        details = await context.catalog.version_details(version)
        summary = await summary_at(context.runtime, context.catalog, version)
        return CatalogStats(
            version=version,
            series_count=details.series_count,
            observation_count=details.observation_count,
            last_commit_at=details.committed_at,
            earliest_observation=summary.earliest,
            latest_observation=summary.latest,
            dates_complete=summary.complete,
        )

    @field(
        description="For each source, when its series last changed and whether that is "
        "longer ago than the server's maximum age."
    )
    async def data_freshness(self, info: Context) -> DataFreshness:
        context = context_of(info)
        version = await context.version()
        summary = await summary_at(context.runtime, context.catalog, version)
        now = dt.datetime.now(dt.UTC)
        max_age = context.config.freshness_max_age
        sources = []
        for source, entry in sorted(summary.sources.items()):
            age = (now - entry.last_updated_at).total_seconds()
            sources.append(
                SourceFreshness(
                    source=source,
                    series_count=entry.series_count,
                    last_updated_at=entry.last_updated_at,
                    age_seconds=age,
                    stale=age > max_age,
                )
            )
        return DataFreshness(
            version=version,
            checked_at=now,
            max_age_seconds=max_age,
            complete=summary.complete,
            sources=sources,
        )

    @field(description="Whether the store can be read, as /health/ready tells.")
    async def health(self, info: Context) -> Health:
        try:
            version = await context_of(info).gateway.ready()
        except (CatalogStoreError, CatalogNotOpenError):
            return Health(status="not-ready", version=None)
        return Health(status="ready", version=version)

    @field(
        permission_classes=[IsAdmin],
        description="Verify the store end to end (admin scope): every object of the "
        "latest version, or of every live version with latestOnly: false.",
    )
    async def validate_catalog(
        self, info: Context, latest_only: bool = True
    ) -> ValidationReport | None:
        context = context_of(info)
        report = await context.catalog.verify(latest_only=latest_only)
        return report_node(report, context.config.max_problems)
