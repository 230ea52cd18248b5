"""A store wrapper that injects storage failures, for protocol tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from catalog_store.errors import StorageUnavailableError
from catalog_store.storage import ObjectInfo, Store

#: Decides per call: (operation, key) -> "ok" | "fail-before" | "fail-after".
Schedule = Callable[[str, str], str]


class FaultyStore(Store):
    """Delegates to ``inner``; ``schedule`` may fail a call before or after it runs.

    "fail-after" models a lost response: the write landed, the caller hears an error.
    """

    def __init__(self, inner: Store, schedule: Schedule) -> None:
        self.inner = inner
        self.schedule = schedule
        self.url = inner.url
        self.calls: list[tuple[str, str, str]] = []

    def _decide(self, operation: str, key: str) -> str:
        verdict = self.schedule(operation, key)
        self.calls.append((operation, key, verdict))
        if verdict == "fail-before":
            raise StorageUnavailableError(f"injected failure before {operation} {key}")
        return verdict

    def _after(self, verdict: str, operation: str, key: str) -> None:
        if verdict == "fail-after":
            raise StorageUnavailableError(f"injected lost response after {operation} {key}")

    async def get(self, key: str) -> bytes:
        verdict = self._decide("get", key)
        data = await self.inner.get(key)
        self._after(verdict, "get", key)
        return data

    async def head(self, key: str) -> ObjectInfo:
        verdict = self._decide("head", key)
        info = await self.inner.head(key)
        self._after(verdict, "head", key)
        return info

    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        verdict = self._decide("put", key)
        await self.inner.put(key, data, durable=durable)
        self._after(verdict, "put", key)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        verdict = self._decide("put_if_absent", key)
        await self.inner.put_if_absent(key, data)
        self._after(verdict, "put_if_absent", key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        self._decide("list", prefix)
        async for info in self.inner.list(prefix):
            yield info

    async def delete(self, key: str) -> None:
        verdict = self._decide("delete", key)
        await self.inner.delete(key)
        self._after(verdict, "delete", key)

    async def close(self) -> None:
        await self.inner.close()
