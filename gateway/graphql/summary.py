"""Figures that need every series: date range of the catalog and freshness per source.

The manifest knows counts but not dates or sources, so a pass reads the series of
a version, one metadata shard at a time, and keeps only running minima, maxima
and one entry per source. A shard never changes, so what it adds to a summary is
kept by its path (and the held records the manifest lays over it): the pass over
the next version reads only the shards its commits changed. Shards are read apart
from the catalog's cache, so that a pass over 10^6 series evicts nothing requests
use. The pass covers at most ``scan_limit`` series (whole shards); past that it
says it is incomplete. A version's summary is cached too
(:class:`gateway.graphql.context.Runtime`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from catalog_store import AsyncCatalog
from catalog_store.records import SeriesRecord, from_ordinal
from catalog_store.snapshot import Snapshot, StoreReader, pending_of_shard
from gateway.graphql.types import day

if TYPE_CHECKING:
    from gateway.graphql.context import Runtime

#: Bytes of shards a pass holds, apart from the catalog's cache: it reads one at a time.
PASS_CACHE_BYTES = 8 * 2**20


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
    #: Series the figures cover.
    series: int = 0

    def add(self, part: CatalogSummary) -> None:
        """Take in the figures of more series (another shard's)."""
        self.series += part.series
        if part.earliest is not None and (self.earliest is None or part.earliest < self.earliest):
            self.earliest = part.earliest
        if part.latest is not None and (self.latest is None or part.latest > self.latest):
            self.latest = part.latest
        for source, entry in part.sources.items():
            mine = self.sources.get(source)
            if mine is None:
                self.sources[source] = SourceSummary(entry.series_count, entry.last_updated_at)
            else:
                mine.series_count += entry.series_count
                mine.last_updated_at = max(mine.last_updated_at, entry.last_updated_at)


def _part_of(records: Iterable[SeriesRecord]) -> CatalogSummary:
    """The figures of one shard's series."""
    part = CatalogSummary(version=-1)
    for record in records:
        intraday = record.frequency == "intraday"
        first = None if record.first is None else from_ordinal(record.first, intraday)
        last = None if record.last is None else from_ordinal(record.last, intraday)
        one = CatalogSummary(
            version=-1,
            earliest=day(first),
            latest=day(last),
            sources={record.source: SourceSummary(1, record.updated_at)},
            series=1,
        )
        part.add(one)
    return part


class ShardSummaries:
    """Summaries of versions, built from parts kept shard by shard (see the module)."""

    def __init__(self) -> None:
        #: The parts of the shards of the last version summarised, by shard path and
        #: the held records over it: only those, so they never outgrow one version.
        self._parts: dict[tuple[str | None, tuple[tuple[str, int | None], ...]], CatalogSummary]
        self._parts = {}
        #: Shards read by the passes so far (the rest were kept).
        self.shards_read = 0

    async def summarize(
        self, catalog: AsyncCatalog, version: int, scan_limit: int
    ) -> CatalogSummary:
        """The summary of ``version``. Raises the catalog's errors."""
        manifest = (await catalog.snapshot(as_of=version)).manifest
        apart = Snapshot(StoreReader(catalog.store, PASS_CACHE_BYTES, 0.0), manifest)
        summary = CatalogSummary(version)
        parts = {}
        for index, ref in enumerate(manifest.shards):
            held = tuple(
                (entry.id, None if entry.record is None else entry.record.version)
                for entry in pending_of_shard(manifest, index)
            )
            key = (None if ref is None else ref.path, held)
            part = self._parts.get(key)
            if part is None:
                part = _part_of((await apart.shard_records(index)).values())
                self.shards_read += 1
                await asyncio.sleep(0)  # a long pass never stalls other requests
            if summary.series + part.series > scan_limit:
                summary.complete = False
                break
            parts[key] = part
            summary.add(part)
        self._parts = parts
        return summary


async def summary_at(runtime: Runtime, catalog: AsyncCatalog, version: int) -> CatalogSummary:
    """The summary of ``version``, from the runtime's cache when it was made before.

    Two requests that miss at once both compute it; the result is the same.
    """
    cached = runtime.summaries.get(version)
    if cached is not None:
        return cached
    summary = await runtime.shard_summaries.summarize(
        catalog, version, runtime.config.summary_scan_limit
    )
    runtime.remember(summary)
    return summary
