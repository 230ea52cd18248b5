"""One contract, every backend: memory, local disk and S3 on a moto server."""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from catalog_store.errors import (
    AlreadyExistsError,
    ObjectNotFoundError,
    StorageFullError,
    UnsupportedOperationError,
    ValidationError,
)
from catalog_store.storage import LocalStore, MemoryStore, Store, open_store
from tests.conftest import StoreTarget
from tests.workers import race_put_if_absent

T = TypeVar("T")


def run(target: StoreTarget, body: Callable[[Store], Awaitable[T]]) -> T:
    async def main() -> T:
        store = open_store(target.url, target.options or None)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def test_get_of_a_missing_key_raises_not_found(target: StoreTarget) -> None:
    async def body(store: Store) -> None:
        with pytest.raises(ObjectNotFoundError) as info:
            await store.get("nothing/here.json")
        assert isinstance(info.value, FileNotFoundError)
        with pytest.raises(ObjectNotFoundError):
            await store.head("nothing/here.json")
        assert not await store.exists("nothing/here.json")

    run(target, body)


def test_put_get_head_and_overwrite(target: StoreTarget) -> None:
    async def body(store: Store) -> None:
        await store.put("a/b.bin", b"first")
        assert await store.get("a/b.bin") == b"first"
        assert (await store.head("a/b.bin")).size == 5
        await store.put("a/b.bin", b"second!")
        assert await store.get("a/b.bin") == b"second!"
        assert (await store.head("a/b.bin")).size == 7
        assert await store.exists("a/b.bin")

    run(target, body)


def test_put_if_absent_refuses_an_existing_key_and_keeps_it(target: StoreTarget) -> None:
    async def body(store: Store) -> None:
        await store.put_if_absent("_manifests/1.json", b"winner")
        with pytest.raises(AlreadyExistsError) as info:
            await store.put_if_absent("_manifests/1.json", b"loser")
        assert isinstance(info.value, FileExistsError)
        assert await store.get("_manifests/1.json") == b"winner"

    run(target, body)


def test_an_advisory_put_replaces_the_object_whatever_its_length(target: StoreTarget) -> None:
    async def body(store: Store) -> None:
        await store.put("_manifests/_latest", b"99", durable=False)  # created
        await store.put("_manifests/_latest", b"1000", durable=False)  # longer
        assert await store.get("_manifests/_latest") == b"1000"
        await store.put("_manifests/_latest", b"7", durable=False)  # shorter
        assert await store.get("_manifests/_latest") == b"7"
        assert [i.key async for i in store.list("_manifests/")] == ["_manifests/_latest"]

    run(target, body)


def test_put_new_writes_an_immutable_object_and_a_retry_rewrites_it(
    target: StoreTarget,
) -> None:
    async def body(store: Store) -> None:
        key = "data/S~00/year=2024/part-1.parquet"
        await store.put_new(key, b"parquet bytes")
        assert await store.get(key) == b"parquet bytes"
        # A retry after a failed try writes the same bytes over whatever it left.
        await store.put_new(key, b"parquet bytes")
        assert (await store.head(key)).size == len(b"parquet bytes")
        assert [i.key async for i in store.list("data/")] == [key]

    run(target, body)


def test_put_if_absent_after_creates_only_once_ready_is_done(target: StoreTarget) -> None:
    async def body(store: Store) -> None:
        seen_before_ready: list[bool] = []

        async def objects() -> None:
            await asyncio.sleep(0.05)
            seen_before_ready.append(await store.exists("_manifests/2.json"))
            await store.put_new("meta/00001/a.msgpack", b"shard")

        await store.put_if_absent_after("_manifests/2.json", b"manifest", objects())
        assert seen_before_ready == [False]
        assert await store.get("_manifests/2.json") == b"manifest"

        async def nothing() -> None:
            return None

        with pytest.raises(AlreadyExistsError):
            await store.put_if_absent_after("_manifests/2.json", b"loser", nothing())
        assert await store.get("_manifests/2.json") == b"manifest"

    run(target, body)


def test_put_if_absent_after_creates_nothing_when_ready_fails(target: StoreTarget) -> None:
    async def body(store: Store) -> None:
        async def objects() -> None:
            await asyncio.sleep(0.01)
            raise StorageFullError("no space left writing data/x (a test)")

        with pytest.raises(StorageFullError):
            await store.put_if_absent_after("_manifests/3.json", b"manifest", objects())
        assert not await store.exists("_manifests/3.json")
        # Nor a temp file: the staged bytes are dropped once their write ends.
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        deadline = time.monotonic() + 5
        while await store.sweep_partial_writes(later, dry_run=True):
            assert time.monotonic() < deadline, "the staged manifest was left behind"
            await asyncio.sleep(0.01)
        await store.put_if_absent_after("_manifests/3.json", b"second try", asyncio.sleep(0))
        assert await store.get("_manifests/3.json") == b"second try"

    run(target, body)


def test_list_by_prefix(target: StoreTarget) -> None:
    async def body(store: Store) -> None:
        for key in ["data/x/1", "data/x/2", "data/y/1", "meta/0/a", "datax"]:
            await store.put(key, key.encode())
        listed = sorted([(i.key, i.size) async for i in store.list("data/x/")])
        assert listed == [("data/x/1", 8), ("data/x/2", 8)]
        assert sorted([i.key async for i in store.list("data/")]) == [
            "data/x/1",
            "data/x/2",
            "data/y/1",
        ]
        assert sorted([i.key async for i in store.list("data")]) == [
            "data/x/1",
            "data/x/2",
            "data/y/1",
            "datax",
        ]
        assert [i async for i in store.list("absent/")] == []
        assert len([i async for i in store.list("")]) == 5

    run(target, body)


def test_delete_is_repeat_safe(target: StoreTarget) -> None:
    async def body(store: Store) -> None:
        await store.put("k/v", b"1")
        await store.delete("k/v")
        await store.delete("k/v")
        await store.delete("never/existed")
        assert not await store.exists("k/v")

    run(target, body)


@pytest.mark.parametrize(
    "key", ["", "/abs", "a/../b", "a//b", "a/./b", "trailing/", "sp ace", "nul\0"]
)
def test_unsafe_keys_are_refused(target: StoreTarget, key: str) -> None:
    async def body(store: Store) -> None:
        with pytest.raises(ValidationError):
            await store.put(key, b"x")
        with pytest.raises(ValidationError):
            await store.get(key)

    run(target, body)


def test_sixteen_threads_race_for_one_key_and_one_wins(target: StoreTarget) -> None:
    winners: list[int] = []
    start = threading.Barrier(16)

    def contender(n: int) -> None:
        async def attempt(store: Store) -> None:
            start.wait()
            try:
                await store.put_if_absent("_manifests/race", str(n).encode())
                winners.append(n)
            except AlreadyExistsError:
                pass

        run(target, attempt)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert run(target, lambda s: s.get("_manifests/race")) == str(winners[0]).encode()


def test_four_processes_race_for_one_key_and_one_wins(shared_target: StoreTarget) -> None:
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0  # processes need a moment to import
    with ctx.Pool(4) as pool:
        results = [
            pool.apply_async(
                race_put_if_absent,
                (
                    shared_target.url,
                    shared_target.options,
                    "_manifests/race",
                    f"p{n}".encode(),
                    start_at,
                ),
            )
            for n in range(4)
        ]
        wins = [r.get(timeout=120) for r in results]
    assert wins.count(True) == 1
    winner = wins.index(True)
    assert run(shared_target, lambda s: s.get("_manifests/race")) == f"p{winner}".encode()


def test_open_store_from_urls(tmp_path: object) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    local = open_store(f"file://localhost{tmp_path}")
    assert isinstance(local, LocalStore) and local.root == Path(str(tmp_path)).resolve()
    for hosted in ("file://mystore", "file://data/x", "file://./x"):
        with pytest.raises(ValidationError) as info:
            open_store(hosted)  # a host, not the start of a path: refused, not guessed at
        assert info.value.field == "url"
    assert isinstance(open_store("memory://x"), MemoryStore)
    with pytest.raises(UnsupportedOperationError):
        open_store("ftp://host/path")
    with pytest.raises(ValidationError):
        open_store("")
    with pytest.raises(ValidationError):
        open_store("s3:///no-bucket")
    # A URL would drop a query or fragment and open another root: refused.
    for url in ("s3://bucket/reports?2024", "s3://bucket/reports#eu", f"file://{tmp_path}?x"):
        with pytest.raises(ValidationError) as info:
            open_store(url)
        assert info.value.field == "url"
    # A plain path keeps them as characters of its name.
    assert open_store(f"{tmp_path}/rep?2024#eu").root.name == "rep?2024#eu"  # type: ignore[attr-defined]


def test_memory_stores_with_one_name_share_objects() -> None:
    async def body() -> None:
        a, b, c = MemoryStore("shared-x"), MemoryStore("shared-x"), MemoryStore("other-x")
        await a.put("k", b"v")
        assert await b.get("k") == b"v"
        assert not await c.exists("k")

    asyncio.run(body())
