"""A store wrapper that reports every call's operation, duration and outcome.

Metrics exporters (the gateway's Prometheus endpoint, the benchmarks' request
counts) subscribe with a listener; the wrapped store does the work unchanged.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from catalog_store.storage.base import ObjectInfo, Store

#: Called after each store call with (operation, seconds, succeeded).
StoreListener = Callable[[str, float, bool], None]


class ObservedStore(Store):
    """Delegates to ``inner`` and tells ``listener`` about each call."""

    def __init__(self, inner: Store, listener: StoreListener) -> None:
        self.inner = inner
        self.listener = listener
        self.url = inner.url

    def _report(self, operation: str, started: float, ok: bool) -> None:
        self.listener(operation, time.perf_counter() - started, ok)

    async def get(self, key: str) -> bytes:
        started, ok = time.perf_counter(), False
        try:
            data = await self.inner.get(key)
            ok = True
            return data
        finally:
            self._report("get", started, ok)

    async def head(self, key: str) -> ObjectInfo:
        started, ok = time.perf_counter(), False
        try:
            info = await self.inner.head(key)
            ok = True
            return info
        finally:
            self._report("head", started, ok)

    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        started, ok = time.perf_counter(), False
        try:
            await self.inner.put(key, data, durable=durable)
            ok = True
        finally:
            self._report("put", started, ok)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        started, ok = time.perf_counter(), False
        try:
            await self.inner.put_if_absent(key, data)
            ok = True
        finally:
            self._report("put_if_absent", started, ok)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        started, ok = time.perf_counter(), False
        try:
            async for info in self.inner.list(prefix):
                yield info
            ok = True
        finally:
            self._report("list", started, ok)

    async def delete(self, key: str) -> None:
        started, ok = time.perf_counter(), False
        try:
            await self.inner.delete(key)
            ok = True
        finally:
            self._report("delete", started, ok)

    async def sweep_partial_writes(
        self, older_than: datetime, *, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        return await self.inner.sweep_partial_writes(older_than, dry_run=dry_run)

    async def close(self) -> None:
        await self.inner.close()
