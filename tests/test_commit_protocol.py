"""The commit protocol under lost responses, failures, stale hints and lost races."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from catalog_store import AsyncCatalog, CatalogOptions, RetryPolicy
from catalog_store.errors import (
    CommitRetriesExhaustedError,
    CommitStateUnknownError,
    ConflictError,
)
from catalog_store.hint import LatestHint, decode_hint
from catalog_store.keys import LATEST_HINT, MANIFEST_DIR, manifest_key
from catalog_store.storage import LocalStore, Store, open_store
from tests.conftest import StoreTarget
from tests.faults import FaultyStore, Schedule

T = TypeVar("T")
FAST = RetryPolicy(max_attempts=5, max_seconds=10, base_delay=0.001, max_delay=0.005)


def with_faults(
    target: StoreTarget,
    schedule: Schedule,
    body: Callable[[AsyncCatalog, FaultyStore], Awaitable[T]],
    policy: RetryPolicy = FAST,
) -> T:
    async def main() -> T:
        setup = await AsyncCatalog.open(target.url, target.options or None, create=True)
        await setup.create({"id": "S", "frequency": "annual"})
        await setup.close()
        faulty = FaultyStore(open_store(target.url, target.options or None), schedule)
        catalog = await AsyncCatalog.open_store(faulty, options=CatalogOptions(retry=policy))
        try:
            return await body(catalog, faulty)
        finally:
            await catalog.close()

    return asyncio.run(main())


def once(operation: str, verdict: str, key_part: str = MANIFEST_DIR) -> Schedule:
    fired = itertools.count()

    def schedule(op: str, key: str) -> str:
        if op == operation and key_part in key and next(fired) == 0:
            return verdict
        return "ok"

    return schedule


async def manifest_count(store: Store) -> int:
    return len([i async for i in store.list(f"{MANIFEST_DIR}/") if i.key.endswith(".json")])


def test_a_lost_response_is_recognised_by_commit_id(target: StoreTarget) -> None:
    async def body(catalog: AsyncCatalog, store: FaultyStore) -> None:
        before = await catalog.version()
        series = await catalog.update("S", {"title": "landed once"})
        assert series.version == before + 1
        assert await catalog.version() == before + 1
        assert await manifest_count(store.inner) == before + 2  # versions 0..before+1
        verdicts = [v for op, _k, v in store.calls if op == "put_if_absent"]
        assert verdicts == ["fail-after"]
        history = await catalog.history(limit=1)
        assert history[0].changes == [("update", "S")]

    with_faults(target, once("put_if_absent", "fail-after"), body)


def test_a_failure_before_the_write_is_retried(target: StoreTarget) -> None:
    async def body(catalog: AsyncCatalog, store: FaultyStore) -> None:
        before = await catalog.version()
        await catalog.update("S", {"title": "second try"})
        assert await catalog.version() == before + 1
        verdicts = [v for op, _k, v in store.calls if op == "put_if_absent"]
        assert verdicts == ["fail-before", "ok"]
        assert catalog.stats()["commit_unknown_outcomes"] == 1

    with_faults(target, once("put_if_absent", "fail-before"), body)


def test_storage_refusing_every_write_fails_cleanly(target: StoreTarget) -> None:
    def always(op: str, key: str) -> str:
        return "fail-before" if op == "put_if_absent" else "ok"

    async def body(catalog: AsyncCatalog, store: FaultyStore) -> None:
        before = await catalog.version()
        # A failed write may be one still on its way (a request the store received
        # before the deadline): its key found empty proves nothing, so the outcome
        # is unknown, not "did not land", and every attempt wrote that same key.
        with pytest.raises(CommitStateUnknownError) as unknown:
            await catalog.update("S", {"title": "never"})
        assert unknown.value.versions == [before + 1]
        keys = {k for op, k, _v in store.calls if op == "put_if_absent"}
        assert keys == {manifest_key(before + 1)}
        assert await catalog.version() == before
        assert (await catalog.get("S")).title == ""

    with_faults(target, always, body)


def test_an_outcome_that_cannot_be_read_back_is_reported_unknown(target: StoreTarget) -> None:
    writes = itertools.count()

    def schedule(op: str, key: str) -> str:
        if op == "put_if_absent" and MANIFEST_DIR in key:
            return "fail-after" if next(writes) == 0 else "fail-before"
        if op == "get" and key.endswith(".json") and MANIFEST_DIR in key and next(writes) > 0:
            return "fail-before"
        return "ok"

    async def body(catalog: AsyncCatalog, store: FaultyStore) -> None:
        await catalog.version()
        with pytest.raises(CommitStateUnknownError):
            await catalog.update("S", {"title": "maybe"})

    with_faults(target, schedule, body)


def test_lost_response_even_when_the_read_back_fails_first(target: StoreTarget) -> None:
    state = {"put": 0, "get": 0}

    def schedule(op: str, key: str) -> str:
        if op == "put_if_absent" and MANIFEST_DIR in key:
            state["put"] += 1
            return "fail-after" if state["put"] == 1 else "ok"
        if op == "get" and MANIFEST_DIR in key and state["put"] == 1 and state["get"] == 0:
            state["get"] += 1
            return "fail-before"
        return "ok"

    async def body(catalog: AsyncCatalog, store: FaultyStore) -> None:
        before = await catalog.version()
        await catalog.update("S", {"title": "exactly once"})
        assert await catalog.version() == before + 1
        assert (await catalog.get("S")).title == "exactly once"

    with_faults(target, schedule, body)


def test_a_lost_race_rebases_and_counts(target: StoreTarget) -> None:
    async def main() -> None:
        opts = CatalogOptions(max_staleness=3600.0, retry=FAST)
        stale = await AsyncCatalog.open(
            target.url, target.options or None, create=True, options=opts
        )
        other = await AsyncCatalog.open(target.url, target.options or None)
        try:
            await stale.create({"id": "A", "frequency": "annual"})
            await other.create({"id": "B", "frequency": "annual"})
            # ``stale`` still believes version 1 is the newest and loses the race for 2.
            series = await stale.update("A", {"title": "rebased"})
            assert series.version == 3
            assert stale.stats()["commit_lost_races"] == 1
            assert (await other.get("B")).version == 2
        finally:
            await stale.close()
            await other.close()

    asyncio.run(main())


def test_too_many_lost_races_give_up_with_a_reason(target: StoreTarget) -> None:
    async def main() -> None:
        opts = CatalogOptions(max_staleness=3600.0, retry=RetryPolicy(max_attempts=1))
        stale = await AsyncCatalog.open(
            target.url, target.options or None, create=True, options=opts
        )
        other = await AsyncCatalog.open(target.url, target.options or None)
        try:
            await stale.create({"id": "A", "frequency": "annual"})
            await other.update("A", {"title": "other"})
            with pytest.raises(CommitRetriesExhaustedError) as info:
                await stale.update("A", {"title": "mine"})
            assert isinstance(info.value, ConflictError)
            assert "lost the race" in info.value.reason
            assert (await other.get("A")).title == "other"
        finally:
            await stale.close()
            await other.close()

    asyncio.run(main())


def test_latest_is_found_without_or_with_a_stale_hint(target: StoreTarget) -> None:
    async def main() -> None:
        cat = await AsyncCatalog.open(target.url, target.options or None, create=True)
        for i in range(6):
            await cat.create({"id": f"S{i}", "frequency": "annual"})
        await cat.close()
        store = open_store(target.url, target.options or None)
        await store.delete(LATEST_HINT)
        fresh = await AsyncCatalog.open_store(store)
        assert await fresh.version() == 6
        await store.put(LATEST_HINT, b"2")
        assert await fresh.version() == 6
        await store.put(LATEST_HINT, b"garbage")
        assert await fresh.version() == 6
        await store.put(LATEST_HINT, b"99")  # ahead of reality: probe back from zero
        assert await fresh.version() == 6
        assert await store.exists(manifest_key(6))
        await fresh.close()

    asyncio.run(main())


def test_a_manifest_whose_directory_flush_fails_after_it_is_visible_is_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name is linked (readers see the version) when the directory fsync fails:
    # reported as a plain failure, the caller was told "not committed" of a
    # commit that stands, and a retry of an append would then be refused.
    from catalog_store import Catalog
    from catalog_store.storage import local

    flush = local.fsync_dir
    failures = {"left": 3}  # every try of one create

    def failing_once_per_manifest(directory: Path) -> None:
        if directory.name == MANIFEST_DIR and failures["left"] > 0:
            failures["left"] -= 1
            raise OSError(errno.EIO, "Input/output error")
        flush(directory)

    root = str(tmp_path / "store")
    cat = Catalog.open(root, create=True)
    cat.create(id="A", frequency="annual")
    monkeypatch.setattr(local, "fsync_dir", failing_once_per_manifest)
    written = cat.write("A", ([dt.date(2000, 1, 1)], [1.0]))
    assert failures["left"] == 0, "the flush never failed"
    assert written.version == 2
    assert Catalog.open(root).read("A")["value"].to_pylist() == [1.0]
    failures["left"] = 1  # one failure, then a flush that works: the create stands
    assert cat.write("A", ([dt.date(2001, 1, 1)], [2.0])).version == 3
    cat.close()


class _SlowHintStore(LocalStore):
    """Every other write of the "latest" hint takes a while."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.hint_writes = 0

    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        if key == LATEST_HINT:
            self.hint_writes += 1
            if self.hint_writes % 2:
                await asyncio.sleep(0.05)
        await super().put(key, data, durable=durable)


def test_the_hint_names_the_newest_version_when_commits_land_during_a_hint_write(
    tmp_path: Path,
) -> None:
    # Each commit's hint was its own background write: a slow one finished after
    # the next one and left the older version as the hint.
    async def main() -> None:
        store = _SlowHintStore(tmp_path / "c")
        cat = await AsyncCatalog.open_store(store, create=True)
        try:
            for i in range(6):
                await cat.create({"id": f"S{i}", "frequency": "annual"})
            await cat.committer.drain()
            hint = decode_hint((tmp_path / "c" / LATEST_HINT).read_bytes())
            assert hint == LatestHint(await cat.version(), attested=True)
            assert store.hint_writes < 7  # writes coalesced while one was under way
        finally:
            await cat.close()

    asyncio.run(main())


def test_a_write_cancelled_twice_has_settled_when_the_cancellation_arrives(
    tmp_path: Path,
) -> None:
    """A second cancellation used to stop the wait for the manifest's write, and the
    write landed after the caller had been told of the cancellation and had found
    it absent: a caller retrying then applied it twice. Each write here is cancelled
    twice at some point; what is absent when the cancellation arrives stays absent."""

    async def main() -> list[str]:
        catalog = await AsyncCatalog.open(tmp_path / "c", create=True)
        await catalog.create({"id": "A", "frequency": "daily"})
        absent: list[dt.date] = []
        for i in range(80):
            day = dt.date(1990, 1, 1) + dt.timedelta(days=i)
            call = asyncio.ensure_future(catalog.write("A", ([day], [float(i)])))
            await asyncio.sleep((0, 0.0005, 0.001, 0.002, 0.004)[i % 5])
            call.cancel()
            await asyncio.sleep(0)
            call.cancel()
            try:
                await call
            except asyncio.CancelledError:
                if day not in (await catalog.read("A")).column("date").to_pylist():
                    absent.append(day)
                await asyncio.sleep(0.01)  # room for a write left running to land
        held = set((await catalog.read("A")).column("date").to_pylist())
        await catalog.close()
        return [f"{day} landed after its cancellation" for day in absent if day in held]

    assert asyncio.run(main()) == []
