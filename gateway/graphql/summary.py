"""Figures that need every series: date range of the catalog and freshness per source.

The manifest knows counts but not dates or sources, so one pass streams the
series of a version (a shard in memory at a time) and keeps only running minima,
maxima and one entry per source. A version never changes, so its summary is
computed once per process and cached (:class:`gateway.graphql.context.Runtime`).
The pass reads at most ``scan_limit`` series; past that it says it is incomplete.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass, field

from catalog_store import AsyncCatalog
from gateway.graphql.context import Runtime
from gateway.graphql.types import day

#: Series between two yields to the event loop, so a long pass never stalls other requests.
YIELD_EVERY = 2_000


@dataclass
class SourceSummary:
    series_count: int
    last_updated_at: dt.datetime


@dataclass
class CatalogSummary:
    """What one pass over the series of ``version`` found."""

    version: int
    complete: bool = True
    earliest: dt.date | None = None
    latest: dt.date | None = None
    sources: dict[str, SourceSummary] = field(default_factory=dict)


async def summarize(catalog: AsyncCatalog, version: int, scan_limit: int) -> CatalogSummary:
    """One pass over the series of ``version``. Raises the catalog's errors."""
    summary = CatalogSummary(version)
    seen = 0
    async with contextlib.aclosing(catalog.iter_series(as_of=version)) as every:
        async for series in every:
            if seen == scan_limit:
                summary.complete = False
                break
            seen += 1
            if seen % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            first, last = day(series.first_date), day(series.last_date)
            if first is not None and (summary.earliest is None or first < summary.earliest):
                summary.earliest = first
            if last is not None and (summary.latest is None or last > summary.latest):
                summary.latest = last
            entry = summary.sources.get(series.source)
            if entry is None:
                summary.sources[series.source] = SourceSummary(1, series.updated_at)
            else:
                entry.series_count += 1
                entry.last_updated_at = max(entry.last_updated_at, series.updated_at)
    return summary


async def summary_at(runtime: Runtime, catalog: AsyncCatalog, version: int) -> CatalogSummary:
    """The summary of ``version``, from the runtime's cache when it was made before.

    Two requests that miss at once both compute it; the result is the same.
    """
    cached = runtime.summaries.get(version)
    if cached is not None:
        return cached
    summary = await summarize(catalog, version, runtime.config.summary_scan_limit)
    runtime.remember(summary)
    return summary
