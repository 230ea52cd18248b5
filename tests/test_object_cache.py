"""The object cache's one load per key: concurrent misses share it, whatever becomes of it."""

from __future__ import annotations

import asyncio

import pytest

from catalog_store.cache import ObjectCache
from catalog_store.errors import IntegrityError


def test_a_waiter_loads_for_itself_when_the_load_it_waited_for_is_cancelled() -> None:
    async def main() -> None:
        cache = ObjectCache(1000)
        release = asyncio.Event()
        loads: list[int] = []

        async def load() -> str:
            loads.append(1)
            await release.wait()
            return "value"

        first = asyncio.create_task(cache.get_or_load("k", load, len))
        await asyncio.sleep(0)
        second = asyncio.create_task(cache.get_or_load("k", load, len))
        await asyncio.sleep(0)
        assert loads == [1]  # the second waits for the first's load
        first.cancel()
        await asyncio.sleep(0)
        release.set()
        assert await second == "value"
        assert loads == [1, 1]
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await cache.get_or_load("k", load, len) == "value"  # cached: no third load
        assert loads == [1, 1]

    asyncio.run(main())


def test_a_failed_load_fails_its_waiters_and_is_not_remembered() -> None:
    async def main() -> None:
        cache = ObjectCache(1000)
        release = asyncio.Event()
        attempts: list[int] = []

        async def damaged() -> str:
            attempts.append(1)
            await release.wait()
            raise IntegrityError("k: checksum mismatch")

        waiters = [asyncio.create_task(cache.get_or_load("k", damaged, len)) for _ in range(3)]
        await asyncio.sleep(0)
        release.set()
        outcomes = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(o, IntegrityError) for o in outcomes) and attempts == [1]

        async def whole() -> str:
            return "value"

        assert await cache.get_or_load("k", whole, len) == "value"  # read again, not the error

    asyncio.run(main())
