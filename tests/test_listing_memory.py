"""Listing a large catalog keeps a bounded number of series in memory.

100,000 series are created in a few large batches; then a catalog with a small
object cache streams all of them. The cache counts the series records it holds
(and a shard too large for it while in use): the most it ever held must stay
near its byte bound, a small fraction of the catalog; tracemalloc confirms the
process did not build the whole listing in memory.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
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


_READ_ONLY_PROCESS = """
import sys
from catalog_store import Catalog
import gateway.app

catalog = Catalog.open(sys.argv[1])
assert catalog.list(limit=5).items
catalog.get("S000001")
catalog.history(limit=3)
catalog.close()
print("pandas" in sys.modules)
"""


def test_a_process_that_lists_and_looks_up_does_not_import_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas, when it is installed, on the first array it builds
    from Python objects: some 50 MB of a gateway's resident memory. A process
    that lists and looks series up builds none (docs/operations.md, "Caches")."""
    pytest.importorskip("pandas")
    from catalog_store import Catalog

    root = str(tmp_path / "store")
    with Catalog.open(root, create=True) as catalog, catalog.batch() as batch:
        for i in range(10):
            batch.create({"id": f"S{i:06d}", "frequency": "monthly"})
    found = subprocess.run(
        [sys.executable, "-c", _READ_ONLY_PROCESS, root],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert found.stdout.strip() == "False", found.stderr
