"""Series and their observations as GraphQL types.

Metadata are typed fields; observations and revisions are columns (``dates``,
``values`` ...) built only when selected, since one object per point would cost
far more to resolve than the read itself.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated

import pyarrow as pa
import strawberry
from strawberry.scalars import JSON

from catalog_store import Series as CatalogSeries
from catalog_store.observations import bound
from gateway.graphql.bounds import Bound, read_bounds
from gateway.graphql.context import GraphQLContext, context_of
from gateway.graphql.decorators import field
from gateway.graphql.errors import NOT_FOUND, VALIDATION, ApiError
from gateway.graphql.execution import Column
from gateway.graphql.scalars import AsOf, Frequency, Instant, Partitioning

OBSERVATION_ADVICE = "ask for a narrower range with start and end"
StartInstant = Annotated[
    Instant | None,
    strawberry.argument(
        description="The first instant, instead of start: for an intraday series, to the "
        "microsecond; for another, its UTC date."
    ),
]
EndInstant = Annotated[
    Instant | None,
    strawberry.argument(
        description="The last instant, instead of end: for an intraday series, to the "
        "microsecond; for another, its UTC date."
    ),
]


def day(value: dt.date | dt.datetime | None) -> dt.date | None:
    """A calendar date; an intraday instant becomes its UTC date."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date()
    return value


def instant(value: dt.date | dt.datetime | None) -> dt.datetime | None:
    """An intraday series' instant, in UTC; None for a calendar date."""
    return value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else None


def check_page(first: int, limit: int, name: str = "first") -> None:
    """Raises ApiError ``VALIDATION`` unless ``1 <= first <= limit``."""
    if not 1 <= first <= limit:
        raise ApiError(f"must be between 1 and {limit}", VALIDATION, name)


def estimate_rows(series: CatalogSeries, start: Bound, end: Bound) -> int:
    """Observations of ``series`` in ``[start, end]``: exact for the whole series, else
    its count scaled by the share of its span the range covers, in the series' units
    (days, or microseconds for an intraday series), as the catalog bounds a read."""
    frequency, count = series.frequency, series.observation_count
    first = bound(series.first_date, frequency, upper=False)
    last = bound(series.last_date, frequency, upper=False)
    if not count or first is None or last is None:
        return 0
    given_low, given_high = bound(start, frequency, False), bound(end, frequency, True)
    low = first if given_low is None else max(first, given_low)
    high = last if given_high is None else min(last, given_high)
    if low > high:
        return 0
    if low == first and high == last:
        return count
    share = (high - low + 1) / (last - first + 1)
    return min(count, math.ceil(count * share))


def date_column(table: pa.Table, intraday: bool) -> list[dt.date]:
    """The ``date`` column as ISO dates, converted by Arrow in one go (converting each
    date object on its own costs more than the read)."""
    column = table.column("date")
    if intraday:
        column = column.cast(pa.date32())  # instants are stored in UTC
    return Column(column.cast(pa.string()).to_pylist())


@strawberry.type(description="An id of the series at an outside provider (fred: GDP).")
class ExternalId:
    provider: str
    id: str


@strawberry.type(
    description="Observations as columns: dates[i] has values[i] (null for a missing value)."
)
class Observations:
    series_id: str
    version: int = strawberry.field(description="The series' version these values belong to.")
    catalog_version: int = strawberry.field(description="The catalog version read.")
    table: strawberry.Private[pa.Table]
    intraday: strawberry.Private[bool]

    @field(description="Number of observations.")
    def count(self) -> int:
        return int(self.table.num_rows)

    @field(description="Calendar dates, ascending (UTC dates for intraday series).")
    def dates(self) -> list[dt.date]:
        return date_column(self.table, self.intraday)

    @field(description="Values; null marks a missing observation.")
    def values(self) -> list[float | None]:
        return Column(self.table.column("value").to_pylist())

    @field(description="UTC instants of an intraday series; null for other series.")
    def instants(self) -> list[dt.datetime] | None:
        return self.table.column("date").to_pylist() if self.intraday else None


@strawberry.type(
    description="Every value each date has had and when (UTC) it was current, as columns; "
    "realtimeEnd is null while the value is current (the ALFRED view)."
)
class Revisions:
    series_id: str
    table: strawberry.Private[pa.Table]
    intraday: strawberry.Private[bool]

    @field(description="Number of rows.")
    def count(self) -> int:
        return int(self.table.num_rows)

    @field(description="Calendar dates (UTC dates for intraday series).")
    def dates(self) -> list[dt.date]:
        return date_column(self.table, self.intraday)

    @field()
    def values(self) -> list[float | None]:
        return Column(self.table.column("value").to_pylist())

    @field(description="When each value was first published.")
    def realtime_start(self) -> list[dt.datetime]:
        starts: list[dt.datetime] = self.table.column("realtime_start").to_pylist()
        return starts

    @field(description="When each value was superseded; null while current.")
    def realtime_end(self) -> list[dt.datetime | None]:
        ends: list[dt.datetime | None] = self.table.column("realtime_end").to_pylist()
        return ends

    @field(description="UTC instants of an intraday series; null for other series.")
    def instants(self) -> list[dt.datetime] | None:
        return self.table.column("date").to_pylist() if self.intraday else None


@strawberry.type(description="A version of the catalog at which a series changed.")
class SeriesVersion:
    version: int
    committed_at: dt.datetime
    message: str
    action: str | None = strawberry.field(
        description="What the commit did to the series first: create, update, append, "
        "upsert, replace_range or delete_range; null for a repair's restore, and past the "
        "first 1,000 changes of a batch"
    )
    actions: list[str] = strawberry.field(
        description="Everything the commit did to the series, in order (a batch may create "
        "a series and write to it); empty where action is null"
    )
    series: Series = strawberry.field(description="The series as that commit left it.")


@strawberry.type(
    description="A time series: its metadata, and its observations, revisions and "
    "history on request."
)
class Series:
    id: str
    frequency: Frequency
    title: str
    description: str
    source: str
    units: str
    seasonal_adjustment: str
    tags: list[str]
    external_ids: list[ExternalId]
    attributes: JSON
    partitioning: Partitioning | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int = strawberry.field(
        description="The catalog version of the commit that last changed the series; "
        "pass it as expectedVersion to change it only if nobody else has."
    )
    first_date: dt.date | None = strawberry.field(
        description="The date of the first observation; an intraday series' UTC date "
        "of it (firstInstant has the instant)."
    )
    last_date: dt.date | None = strawberry.field(
        description="The date of the last observation; an intraday series' UTC date "
        "of it (lastInstant has the instant)."
    )
    first_instant: dt.datetime | None = strawberry.field(
        description="An intraday series' first instant (UTC); null for other series."
    )
    last_instant: dt.datetime | None = strawberry.field(
        description="An intraday series' last instant (UTC); null for other series."
    )
    observation_count: int
    catalog_version: int = strawberry.field(
        description="The catalog version this view of the series was read at."
    )
    record: strawberry.Private[CatalogSeries]

    @field(
        description="Observations in [start, end], ascending by date; an intraday series "
        "may be bounded by instants (startInstant, endInstant) rather than whole UTC days."
    )
    async def observations(
        self,
        info: strawberry.Info[GraphQLContext, None],
        start: dt.date | None = None,
        end: dt.date | None = None,
        start_instant: StartInstant = None,
        end_instant: EndInstant = None,
        as_of: Annotated[
            AsOf | None,
            strawberry.argument(
                description="Read the series as it was then (default: as this view of the series)."
            ),
        ] = None,
    ) -> Observations:
        context = context_of(info)
        bounds = read_bounds(start, end, start_instant, end_instant)
        series = self.record
        version = self.catalog_version
        if as_of is not None:
            version = (await context.catalog.snapshot(as_of)).version  # type: ignore[arg-type]
            found = await context.loaders.series.load((self.id, version))
            if found is None:
                raise ApiError(f"series {self.id!r} did not exist at version {version}", NOT_FOUND)
            series = found
        bounds.check(series.frequency)
        budget = context.observations
        what = f"observations of {self.id!r}"
        estimate = estimate_rows(series, bounds.start, bounds.end)
        if estimate > budget.limit - budget.used:
            # The span's share of the count guesses high where rows bunch up (a burst
            # of ticks, then a few): the files' own counts may tell it is less.
            with bounds.named():
                most = await context.catalog.rows_at_most(
                    self.id, bounds.start, bounds.end, as_of=version
                )
            estimate = min(estimate, most)
        budget.reserve(estimate, what, OBSERVATION_ADVICE)
        try:
            with bounds.named():
                table = await context.loaders.observations.load(
                    (self.id, version, bounds.start, bounds.end)
                )
        finally:
            budget.release(estimate)
        budget.reserve(table.num_rows, what, OBSERVATION_ADVICE)
        return Observations(
            series_id=self.id,
            version=series.version,
            catalog_version=version,
            table=table,
            intraday=series.frequency == "intraday",
        )

    @field(
        description="Every value each date in [start, end] has had, over the series' "
        "history up to the catalog version read (a value still current then has no "
        "realtimeEnd); firstReleaseOnly keeps each date's first value. An intraday series "
        "may be bounded by instants (startInstant, endInstant)."
    )
    async def revisions(
        self,
        info: strawberry.Info[GraphQLContext, None],
        start: dt.date | None = None,
        end: dt.date | None = None,
        first_release_only: bool = False,
        start_instant: StartInstant = None,
        end_instant: EndInstant = None,
    ) -> Revisions:
        context = context_of(info)
        bounds = read_bounds(start, end, start_instant, end_instant)
        # The catalog takes the bounds in the series' current frequency.
        with bounds.named():
            table = await context.catalog.revisions(
                self.id,
                start=bounds.start,
                end=bounds.end,
                first_release_only=first_release_only,
                max_values=context.gateway.settings.max_revision_values,
                as_of=self.catalog_version,
            )
        context.observations.reserve(
            table.num_rows, f"revisions of {self.id!r}", OBSERVATION_ADVICE
        )
        # Instants when any state of the series held them, not only when it does now.
        intraday = pa.types.is_timestamp(table.schema.field("date").type)
        return Revisions(series_id=self.id, table=table, intraday=intraday)

    @field(
        description="The catalog versions at which this series changed, newest first, "
        "from this view of it. With `before` the version of a change listed, the changes "
        "before it; any other version, the changes of the series as it was just below it."
    )
    async def history(
        self,
        info: strawberry.Info[GraphQLContext, None],
        first: int = 10,
        before: int | None = None,
    ) -> list[SeriesVersion]:
        context = context_of(info)
        check_page(first, context.config.max_page)
        changes = await context.catalog.series_history(
            self.id, as_of=self.catalog_version, before=before, limit=first
        )
        return [
            SeriesVersion(
                version=change.series.version,
                committed_at=change.commit.committed_at,
                message=change.commit.message,
                action=change.action,
                actions=list(change.actions),
                series=series_node(change.series, change.series.version),
            )
            for change in changes
        ]


def series_node(series: CatalogSeries, catalog_version: int) -> Series:
    """The GraphQL view of a catalog series read at ``catalog_version``."""
    return Series(
        id=series.id,
        frequency=Frequency(series.frequency),
        title=series.title,
        description=series.description,
        source=series.source,
        units=series.units,
        seasonal_adjustment=series.seasonal_adjustment,
        tags=list(series.tags),
        external_ids=[ExternalId(provider=p, id=i) for p, i in series.external_ids.items()],
        attributes=JSON(dict(series.attributes)),
        partitioning=Partitioning(series.partitioning) if series.partitioning else None,
        created_at=series.created_at,
        updated_at=series.updated_at,
        version=series.version,
        first_date=day(series.first_date),
        last_date=day(series.last_date),
        first_instant=instant(series.first_date),
        last_instant=instant(series.last_date),
        observation_count=series.observation_count,
        catalog_version=catalog_version,
        record=series,
    )
