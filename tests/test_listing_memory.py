"""Listing a large catalog keeps a bounded number of series in memory.

100,000 series are created in a few large batches; then a catalog with a small
object cache streams all of them. The cache counts the series records it holds
(and a shard too large for it while in use): the most it ever held must stay
near its byte bound, a small fraction of the catalog; tracemalloc confirms the
process did not build the whole listing in memory.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pytest

from catalog_store import AsyncCatalog, CatalogOptions
from catalog_store.changes import SHARD_MAX_RECORDS
from catalog_store.records import RECORD_OVERHEAD

SERIES = 100_000
CACHE_BYTES = 4 * 2**20


@pytest.mark.timeout(600)
def test_streaming_every_series_holds_a_bounded_number_in_memory(tmp_path: Path) -> None:
    root = str(tmp_path / "store")

    async def build() -> None:
        catalog = await AsyncCatalog.open(root, create=True)
        for first in range(0, SERIES, 25_000):
            async with catalog.batch() as batch:
                for i in range(first, first + 25_000):
                    batch.create({"id": f"S{i:06d}", "frequency": "monthly", "source": "fed"})
        await catalog.close()

    async def stream() -> tuple[int, int, int, int]:
        catalog = await AsyncCatalog.open(root, options=CatalogOptions(cache_bytes=CACHE_BYTES))
        tracemalloc.start()
        try:
            seen = 0
            async for series in catalog.iter_series():
                assert series.source == "fed"
                seen += 1
            _current, peak_bytes = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        stats = catalog.stats()
        await catalog.close()
        return seen, stats["cache_peak_records"], peak_bytes

    asyncio.run(build())
    seen, peak_records, peak_bytes = asyncio.run(stream())
    print(
        f"\n{seen} series streamed; at most {peak_records} records held; "
        f"traced peak {peak_bytes / 2**20:.1f} MiB"
    )
    assert seen == SERIES
    # A cached shard costs at least RECORD_OVERHEAD bytes a record beside its
    # encoded bytes, so the bound admits fewer records than this, plus the shards in use.
    assert 0 < peak_records <= CACHE_BYTES // RECORD_OVERHEAD + 2 * SHARD_MAX_RECORDS
    assert peak_records < SERIES // 5
    assert peak_bytes < 64 * 2**20
