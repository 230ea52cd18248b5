"""The byte-bounded cache of decoded immutable objects (manifests, shards, table parts).

Everything a manifest references is immutable, so an object is cached by its key
for good, evicted least-recently-used when the estimate of the bytes held passes
the bound (``CatalogOptions.cache_bytes``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import cachetools

from catalog_store.errors import IntegrityError

T = TypeVar("T")


async def load_checked(load: Callable[[], Awaitable[T]]) -> T:
    """``load()``, tried once more when what it read fails its checksum or does not
    decode (IntegrityError). A body cut short in transit fails them as damage does
    wherever the store sends no length or checksum to tell the client: a single
    such read taken for damage made verify report it, and repair roll the catalog
    back over a healthy version. Only a second failure is damage."""
    try:
        return await load()
    except IntegrityError:
        return await load()


class _CountingLRU(cachetools.LRUCache[str, tuple[Any, int, int]]):
    """An LRU of (value, bytes, records) that keeps the sum of records as it changes."""

    records = 0

    def __setitem__(self, key: str, value: tuple[Any, int, int]) -> None:
        old = self.get(key)
        super().__setitem__(key, value)  # may evict others first, through __delitem__
        self.records += value[2] - (old[2] if old is not None else 0)

    def __delitem__(self, key: str) -> None:
        count = super().__getitem__(key)[2]
        super().__delitem__(key)
        self.records -= count


class ObjectCache:
    """Decoded immutable objects by key, bounded by an estimate of their bytes.

    It also counts the series records it holds, and the most ever held at once,
    including a shard too large to cache while its caller holds it: the figure
    that shows a listing of any size keeps memory bounded.
    """

    def __init__(self, max_bytes: int) -> None:
        self._lru = _CountingLRU(maxsize=max(max_bytes, 1), getsizeof=lambda item: item[1])
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.peak_records = 0
        #: Loads under way, by key: a concurrent miss of the same key waits for the
        #: one load rather than read and decode its own copy (each one outside the
        #: byte bound while held).
        self._loading: dict[str, asyncio.Future[Any]] = {}

    @property
    def current_bytes(self) -> int:
        return int(self._lru.currsize)

    @property
    def records(self) -> int:
        """Series records held now."""
        return self._lru.records

    def __len__(self) -> int:
        return len(self._lru)

    def put(self, key: str, value: object, nbytes: int, records: int = 0) -> None:
        """Keep ``value`` if it fits the bound; a value too large is counted while held."""
        if nbytes <= self.max_bytes:
            self._lru[key] = (value, nbytes, records)
            self.peak_records = max(self.peak_records, self.records)
        else:
            self.peak_records = max(self.peak_records, self.records + records)

    def discard(self, key: str) -> None:
        """Drop ``key`` if held: an object a newer version has superseded."""
        self._lru.pop(key, None)

    async def get_or_load(
        self,
        key: str,
        load: Callable[[], Awaitable[T]],
        size: Callable[[T], int],
        records: Callable[[T], int] = lambda _value: 0,
    ) -> T:
        found = self._lru.get(key)
        if found is not None:
            self.hits += 1
            return found[0]  # type: ignore[no-any-return]
        pending = self._loading.get(key)
        if pending is not None:
            self.hits += 1  # no read of the store
            try:
                # Shielded: a waiter cancelled leaves the load to the others.
                return await asyncio.shield(pending)
            except _LoadFailed:
                # Its loader was cancelled, or failed: what it found (not found yet,
                # a transient error) may be past by now, so this waiter asks itself.
                pass
        self.misses += 1
        loading: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[key] = loading
        try:
            value = await load_checked(load)
        except BaseException:
            loading.set_exception(_LoadFailed())
            loading.exception()  # seen: nobody may be waiting
            raise
        finally:
            if self._loading.get(key) is loading:
                del self._loading[key]
        self.put(key, value, size(value), records(value))
        loading.set_result(value)
        return value

    def counters(self) -> dict[str, int]:
        """What a metrics exporter shows of the cache (``AsyncCatalog.stats``)."""
        return {
            "cache_hits": self.hits,
            "cache_misses": self.misses,
            "cache_bytes": self.current_bytes,
            "cache_max_bytes": self.max_bytes,
            "cache_entries": len(self),
            "cache_records": self.records,
            "cache_peak_records": self.peak_records,
        }


class _LoadFailed(Exception):
    """The load a concurrent miss waited for did not succeed; the waiter loads itself."""
