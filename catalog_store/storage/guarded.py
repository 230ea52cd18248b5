"""A store wrapper that puts a deadline on every call and reports each one.

No storage call may hang a caller forever: a call that outlives ``timeout`` is
abandoned with StorageUnavailableError, which the commit loop treats like any
transient failure (for a manifest write: an unknown outcome it settles by reading
back). Metrics exporters (the gateway's Prometheus endpoint, the benchmarks'
request counts) subscribe with a listener.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from catalog_store.errors import (
    AlreadyExistsError,
    ObjectNotFoundError,
    StorageUnavailableError,
)
from catalog_store.storage.base import ObjectInfo, Store

#: Called after each store call with (operation, seconds, succeeded).
StoreListener = Callable[[str, float, bool], None]

T = TypeVar("T")


class GuardedStore(Store):
    """Delegates to ``inner`` with a per-call deadline, telling ``listener`` of each call."""

    def __init__(
        self, inner: Store, timeout: float | None, listener: StoreListener | None = None
    ) -> None:
        self.inner = inner
        self.timeout = timeout
        self.listener = listener
        self.url = inner.url

    def _guard(self, operation: str, key: str, *, waits_first: bool = False) -> _Guard:
        """Deadline and report for one call (``async with``); its ``restart`` starts
        both afresh. A call that ``waits_first`` on other calls (which have
        deadlines of their own) has no deadline until it restarts."""
        return _Guard(self, operation, key, None if waits_first else self.timeout)

    async def _call(self, operation: str, key: str, call: Awaitable[T]) -> T:
        async with self._guard(operation, key):
            return await call

    async def get(self, key: str) -> bytes:
        return await self._call("get", key, self.inner.get(key))

    async def head(self, key: str) -> ObjectInfo:
        return await self._call("head", key, self.inner.head(key))

    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        await self._call("put", key, self.inner.put(key, data, durable=durable))

    async def put_if_absent(self, key: str, data: bytes) -> None:
        await self._call("put_if_absent", key, self.inner.put_if_absent(key, data))

    async def put_new(self, key: str, data: bytes) -> None:
        await self._call("put", key, self.inner.put_new(key, data))

    async def put_if_absent_after(self, key: str, data: bytes, ready: Awaitable[None]) -> None:
        async with self._guard("put_if_absent", key, waits_first=True) as guard:

            async def objects() -> None:
                await ready
                guard.restart()

            await self.inner.put_if_absent_after(key, data, objects())

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        # The deadline is per item: a long listing is fine, a stalled one is not.
        items = aiter(self.inner.list(prefix))
        while True:
            try:
                info = await self._call("list", prefix, anext(items))
            except StopAsyncIteration:
                return
            yield info

    async def delete(self, key: str) -> None:
        await self._call("delete", key, self.inner.delete(key))

    async def sweep_partial_writes(
        self, older_than: datetime, *, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        return await self.inner.sweep_partial_writes(older_than, dry_run=dry_run)

    async def close(self) -> None:
        await self.inner.close()


_ANSWERS = (ObjectNotFoundError, AlreadyExistsError, StopAsyncIteration)


class _Guard:
    """One call's deadline and report, as an ``async with`` block: a class, where a
    generator-based context manager costs a few microseconds more on every call."""

    __slots__ = ("_deadline", "_key", "_operation", "_started", "_store")

    def __init__(self, store: GuardedStore, operation: str, key: str, seconds: float | None):
        self._store, self._operation, self._key = store, operation, key
        self._deadline = asyncio.timeout(seconds)
        self._started = 0.0

    async def __aenter__(self) -> _Guard:
        self._started = time.perf_counter()
        await self._deadline.__aenter__()
        return self

    def restart(self) -> None:
        self._started = time.perf_counter()
        if self._store.timeout is not None:
            loop = asyncio.get_running_loop()
            self._deadline.reschedule(loop.time() + self._store.timeout)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: Any
    ) -> None:
        # An answer, not a failure: probes and lost races expect these, and every
        # listing ends with StopAsyncIteration.
        ok = kind is None or issubclass(kind, _ANSWERS)
        try:
            await self._deadline.__aexit__(kind, error, trace)
        except TimeoutError:
            ok = False
            raise StorageUnavailableError(
                f"{self._operation} {self._key}: no answer within {self._store.timeout}s"
            ) from None
        finally:
            listener = self._store.listener
            if listener is not None:
                listener(self._operation, time.perf_counter() - self._started, ok)
