"""The per-source summary behind the freshness metrics and GraphQL's catalog figures."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from catalog_store import AsyncCatalog
from gateway.graphql.summary import CatalogSummary, ShardSummaries, SourceSummary


async def brute_force(catalog: AsyncCatalog, version: int) -> CatalogSummary:
    """The summary from every series as the API lists them."""
    every = [series async for series in catalog.iter_series(as_of=version)]
    firsts = [s.first_date for s in every if s.first_date is not None]
    lasts = [s.last_date for s in every if s.last_date is not None]
    sources: dict[str, SourceSummary] = {}
    for series in every:
        entry = sources.setdefault(series.source, SourceSummary(0, series.updated_at))
        entry.series_count += 1
        entry.last_updated_at = max(entry.last_updated_at, series.updated_at)
    return CatalogSummary(
        version,
        earliest=min(firsts, default=None),
        latest=max(lasts, default=None),
        sources=sources,
        series=len(every),
    )


def test_a_pass_after_a_commit_reads_only_the_shards_it_changed(tmp_path: Path) -> None:
    """Each round after a commit summarised every series again: at 10^6 series, the
    whole catalog downloaded again by every gateway worker, through the cache that
    requests use, evicting what they had."""

    async def main() -> None:
        catalog = await AsyncCatalog.open(tmp_path / "store", create=True)
        for first in range(0, 3000, 500):
            async with catalog.batch() as batch:
                for i in range(first, first + 500):
                    spec = {"id": f"S{i:05d}", "frequency": "monthly", "source": f"src{i % 3}"}
                    batch.create(spec)
        await catalog.write("S00007", ([dt.date(1990, 1, 1)], [1.0]))
        await catalog.checkpoint()
        shards = len((await catalog.snapshot()).manifest.shards)
        assert shards > 2
        passes = ShardSummaries()
        cache = catalog.stats()["cache_bytes"]
        version = await catalog.version()
        summary = await passes.summarize(catalog, version, 10**7)
        assert passes.shards_read == shards
        assert catalog.stats()["cache_bytes"] == cache  # read apart from the requests' cache
        assert summary == await brute_force(catalog, version)
        assert summary.series == 3000 and summary.earliest == dt.date(1990, 1, 1)

        await catalog.write("S01500", ([dt.date(2024, 1, 1)], [1.0]))  # held in the manifest
        version = await catalog.version()
        summary = await passes.summarize(catalog, version, 10**7)
        assert passes.shards_read == shards + 1
        assert summary == await brute_force(catalog, version)
        assert summary.latest is not None and summary.latest >= dt.date(2024, 1, 1)
        again = await passes.summarize(catalog, version, 10**7)
        assert passes.shards_read == shards + 1 and again == summary

        # Past the scan limit, whole shards are covered and the summary says so.
        partial = await ShardSummaries().summarize(catalog, version, 1000)
        assert not partial.complete and 0 < partial.series <= 1000
        await catalog.close()

    asyncio.run(main())
