"""The object cache's one load per key: concurrent misses share it, whatever becomes of it."""

from __future__ import annotations

import asyncio

import pytest

from catalog_store.cache import ObjectCache
from catalog_store.errors import IntegrityError, ObjectNotFoundError


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


def test_a_failed_load_is_not_handed_to_its_waiters_nor_remembered() -> None:
    # What the load found (an object not there yet, a transient error) may be past
    # for a read that joined later: each waiter asks for itself.
    async def main() -> None:
        cache = ObjectCache(1000)
        release = asyncio.Event()
        attempts: list[int] = []

        async def first_missing_then_there() -> str:
            attempts.append(1)
            if len(attempts) == 1:
                await release.wait()
                raise ObjectNotFoundError("k")
            return "value"

        waiters = [
            asyncio.create_task(cache.get_or_load("k", first_missing_then_there, len))
            for _ in range(3)
        ]
        await asyncio.sleep(0)
        release.set()
        outcomes = await asyncio.gather(*waiters, return_exceptions=True)
        assert isinstance(outcomes[0], ObjectNotFoundError)
        assert outcomes[1:] == ["value", "value"] and len(attempts) in (2, 3)
        loads = len(attempts)
        assert await cache.get_or_load("k", first_missing_then_there, len) == "value"
        assert len(attempts) == loads  # the value is kept; the error never was

    asyncio.run(main())


def test_a_load_that_reads_damage_once_is_tried_again_and_twice_fails() -> None:
    """A body cut short in transit fails its checksum as damage does: one such read
    is tried again; a second is damage, raised and not remembered."""

    async def main() -> None:
        cache = ObjectCache(1000)
        reads: list[str] = []

        async def cut_once() -> str:
            reads.append("read")
            if len(reads) == 1:
                raise IntegrityError("k: checksum mismatch")
            return "value"

        assert await cache.get_or_load("k", cut_once, len) == "value"
        assert len(reads) == 2

        async def damaged() -> str:
            reads.append("read")
            raise IntegrityError("j: checksum mismatch")

        with pytest.raises(IntegrityError):
            await cache.get_or_load("j", damaged, len)
        assert len(reads) == 4

    asyncio.run(main())
