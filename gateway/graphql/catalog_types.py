"""The catalog as GraphQL types: versions, pages of series, statistics, freshness, health,
and the report of a verification."""

from __future__ import annotations

import datetime as dt

import strawberry

from catalog_store import VersionInfo
from catalog_store.verify_report import VerifyReport
from gateway.graphql.context import GraphQLContext, context_of
from gateway.graphql.decorators import field
from gateway.graphql.types import Series, series_node


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="One change of a commit.")
class Change:
    action: str = strawberry.field(description="create, update, write, delete, compact ...")
    series_id: str
    catalog_version: strawberry.Private[int]

    @field(description="The series as the commit left it; null if it deleted it.")
    async def series(self, info: strawberry.Info[GraphQLContext, None]) -> Series | None:
        found = await context_of(info).loaders.series.load((self.series_id, self.catalog_version))
        return series_node(found, self.catalog_version) if found is not None else None


@strawberry.type(description="One commit of the catalog.")
class Version:
    version: int
    committed_at: dt.datetime
    commit_id: str
    message: str
    series_count: int = strawberry.field(description="Series in the catalog at this version.")
    observation_count: int = strawberry.field(
        description="Observations in the catalog at this version."
    )
    changes: list[Change]


def version_node(info: VersionInfo) -> Version:
    return Version(
        version=info.version,
        committed_at=info.committed_at,
        commit_id=info.commit_id,
        message=info.message,
        series_count=info.series_count,
        observation_count=info.observation_count,
        changes=[
            Change(action=a, series_id=s, catalog_version=info.version) for a, s in info.changes
        ],
    )


@strawberry.type
class VersionEdge:
    cursor: str
    node: Version


@strawberry.type(description="Catalog versions, newest first.")
class VersionConnection:
    edges: list[VersionEdge]
    page_info: PageInfo


@strawberry.type
class SeriesEdge:
    cursor: str
    node: Series


@strawberry.type(description="A page of series, all read at one catalog version.")
class SeriesConnection:
    edges: list[SeriesEdge]
    page_info: PageInfo
    catalog_version: int = strawberry.field(description="The catalog version listed.")


@strawberry.type(description="Figures of the catalog at one version.")
class CatalogStats:
    version: int
    series_count: int
    observation_count: int
    last_commit_at: dt.datetime
    earliest_observation: dt.date | None = strawberry.field(
        description="The earliest first date of any series (UTC date for intraday ones)."
    )
    latest_observation: dt.date | None = strawberry.field(
        description="The latest last date of any series."
    )
    dates_complete: bool = strawberry.field(
        description="False if the catalog had more series than the server reads for these "
        "dates; they then cover only the series read."
    )


@strawberry.type(description="When one source's series last changed.")
class SourceFreshness:
    source: str = strawberry.field(description="The source; empty for series without one.")
    series_count: int
    last_updated_at: dt.datetime
    age_seconds: float
    stale: bool = strawberry.field(description="Older than the server's maximum age.")


@strawberry.type(description="Freshness of every source.")
class DataFreshness:
    version: int
    checked_at: dt.datetime
    max_age_seconds: float
    complete: bool = strawberry.field(
        description="False if the catalog had more series than the server reads for this."
    )
    sources: list[SourceFreshness]


@strawberry.type
class Health:
    status: str = strawberry.field(description="ready, or not-ready if the store cannot be read.")
    version: int | None = strawberry.field(description="The newest catalog version.")


@strawberry.type
class ProblemCount:
    kind: str
    count: int


@strawberry.type(description="One problem verification found.")
class Problem:
    kind: str
    key: str
    detail: str
    version: int | None
    series_id: str | None


@strawberry.type(description="What validateCatalog checked and found.")
class ValidationReport:
    ok: bool
    latest_version: int
    versions_checked: int
    objects_checked: int
    series_checked: int
    problem_counts: list[ProblemCount]
    problems: list[Problem] = strawberry.field(description="The first problems found.")
    problems_truncated: bool
    orphans: int = strawberry.field(
        description="Objects no version references (leftovers that `fincat gc` reclaims)."
    )


def report_node(report: VerifyReport, max_problems: int) -> ValidationReport:
    return ValidationReport(
        ok=report.ok,
        latest_version=report.latest_version,
        versions_checked=report.versions_checked,
        objects_checked=report.objects_checked,
        series_checked=report.series_checked,
        problem_counts=[ProblemCount(kind=k, count=c) for k, c in report.counts().items()],
        problems=[
            Problem(
                kind=p.kind, key=p.key, detail=p.detail, version=p.version, series_id=p.series_id
            )
            for p in report.problems[:max_problems]
        ],
        problems_truncated=len(report.problems) > max_problems,
        orphans=len(report.orphans),
    )
