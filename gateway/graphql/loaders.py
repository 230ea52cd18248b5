"""DataLoaders: the reads of one request, batched, deduplicated and pinned to versions.

Every key names the catalog version it reads, so the catalog resolves each read
from its cache of immutable manifests and shards: a page of 100 series with their
observations costs one metadata shard per shard touched and the data files
themselves, never a "which version is latest" probe or a shard read per series.
Reads of one batch run concurrently, at most :data:`READ_CONCURRENCY` at a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa
from strawberry.dataloader import DataLoader

from catalog_store import AsyncCatalog, Series
from catalog_store.errors import CatalogStoreError, SeriesNotFoundError

#: Catalog reads one batch runs at once; more would only queue on the store.
READ_CONCURRENCY = 16
#: Keys per batch; a larger page is split into several batches.
MAX_BATCH = 200

K = TypeVar("K")
V = TypeVar("V")

#: (series id, catalog version)
SeriesKey = tuple[str, int]
#: (series id, catalog version, start, end): a date or, for an intraday series, an
#: instant (a datetime never equals a date, so the two are distinct keys); None is open.
RangeKey = tuple[str, int, dt.date | dt.datetime | None, dt.date | dt.datetime | None]


async def _each(keys: Sequence[K], read: Callable[[K], Awaitable[V]]) -> list[V | BaseException]:
    """``read`` every key, a bounded number at once; a failed key carries its error
    instead of failing its neighbours."""

    async def one(key: K) -> V | BaseException:
        try:
            return await read(key)
        except CatalogStoreError as exc:
            return exc

    if len(keys) == 1:  # the common case of a single field: no task, no gate
        return [await one(keys[0])]
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def gated(key: K) -> V | BaseException:
        async with gate:
            return await one(key)

    return list(await asyncio.gather(*(gated(key) for key in keys)))


@dataclass
class Loaders:
    """The loaders of one request; they cache for that request only."""

    series: DataLoader[SeriesKey, Series | None]
    observations: DataLoader[RangeKey, pa.Table]


def make_loaders(catalog: AsyncCatalog) -> Loaders:
    """Fresh loaders over ``catalog``."""

    async def get(key: SeriesKey) -> Series | None:
        series_id, version = key
        try:
            return await catalog.get(series_id, as_of=version)
        except SeriesNotFoundError:
            return None

    async def read(key: RangeKey) -> pa.Table:
        series_id, version, start, end = key
        return await catalog.read(series_id, start=start, end=end, as_of=version)

    async def load_series(keys: list[SeriesKey]) -> list[Series | BaseException | None]:
        return await _each(keys, get)

    async def load_observations(keys: list[RangeKey]) -> list[pa.Table | BaseException]:
        return await _each(keys, read)

    return Loaders(
        series=DataLoader(load_fn=load_series, max_batch_size=MAX_BATCH),
        observations=DataLoader(load_fn=load_observations, max_batch_size=MAX_BATCH),
    )
