"""What a process that caches "the latest version" may and may not miss.

A catalog opened with ``max_staleness`` serves the newest version it knows for
that long without asking the store; these tests hold it to the rest of the
contract: an as-of read is never stale, and a version the store no longer holds
is never built on (nor judged on: a refusal or "no change" on it is judged again on
the newest), nor served for longer than a second after gc expired it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import time
from pathlib import Path

import pytest

from catalog_store import AsyncCatalog, Catalog, CatalogOptions, snapshot
from catalog_store.errors import (
    CatalogStoreError,
    CommitStateUnknownError,
    FormatError,
    IntegrityError,
)
from catalog_store.keys import LATEST_HINT, manifest_key
from catalog_store.storage import LocalStore, open_store
from tests.conftest import StoreTarget

LAZY = CatalogOptions(max_staleness=3600.0)


def test_an_as_of_instant_after_the_known_latest_asks_the_store(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    writer = Catalog.open(root, create=True)
    writer.create(id="A", frequency="annual", title="first")
    reader = Catalog.open(root, options=LAZY)
    assert reader.get("A").title == "first"  # the reader now knows version 1
    writer.update("A", {"title": "second"})  # version 2, another process's
    at = writer.get("A").updated_at
    assert reader.get("A").title == "first", "the reader was expected to be stale here"
    assert reader.get("A", as_of=at).title == "second"
    assert reader.get("A", as_of=at - dt.timedelta(microseconds=1)).title == "first"
    for opened in (writer, reader):
        opened.close()


def test_a_process_behind_a_retention_gc_catches_up_and_writes_after_the_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reader checks that its latest version is still there at most once a
    # second; here every refresh does.
    monkeypatch.setattr(snapshot, "FLOOR_STALENESS", 0.0)
    root = str(tmp_path / "store")
    writer = Catalog.open(root, create=True)
    writer.create(id="A", frequency="annual", title="t1")
    behind = Catalog.open(root)
    assert behind.get("A").title == "t1"  # knows version 1, and no later
    for title in ("t2", "t3", "t4"):
        writer.update("A", {"title": title})
    gc = writer.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))
    assert gc.oldest_version == 4
    # Versions 1 to 3 are gone: probing only forward from 1 found "nothing new",
    # so this process served version 1 for good and committed over the floor.
    assert behind.get("A").title == "t4"
    assert behind.update("A", {"title": "t5"}).version == 5
    assert writer.get("A").title == "t5"
    assert [v.version for v in writer.history()] == [5, 4]
    assert writer.verify().ok
    for opened in (writer, behind):
        opened.close()


def test_a_refusal_judged_on_a_base_gc_expired_is_judged_again_on_the_newest(
    tmp_path: Path,
) -> None:
    # No monkeypatching: the check that the known latest version is still held runs
    # at most once a second, and here gc expires it within that second.
    root = str(tmp_path / "store")
    gc_side = Catalog.open(root, create=True)
    writer = Catalog.open(root)
    day = dt.date(2024, 1, 1)
    gc_side.create(id="A", frequency="daily")
    writer.write("A", ([day], [1.0]))  # version 2: the writer's latest
    assert writer.version() == 2
    gc_side.write("A", ([day], [2.0]), mode="upsert")  # 3
    gc_side.create(id="NEW", frequency="daily")  # 4
    report = gc_side.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))
    assert report.oldest_version == 4  # versions 0-3 are gone
    # On version 2 the upsert changes nothing and NEW does not exist; on 4 both land.
    assert writer.write("A", ([day], [1.0]), mode="upsert").version == 5
    assert writer.update("NEW", {"title": "found"}).version == 6
    assert gc_side.read("A").column("value").to_pylist() == [1.0]
    assert gc_side.get("NEW").title == "found"
    assert gc_side.verify().ok
    for opened in (gc_side, writer):
        opened.close()


def test_a_commit_into_a_store_that_went_away_fails_and_writes_nothing(tmp_path: Path) -> None:
    store, away = tmp_path / "store", tmp_path / "away"
    cat = Catalog.open(str(store), create=True)
    cat.create(id="A", frequency="annual")
    store.rename(away)
    with pytest.raises(CatalogStoreError):
        cat.create(id="B", frequency="annual")
    assert not store.exists() or not any(store.rglob("*.json")), "wrote into the void"
    if store.exists():
        shutil.rmtree(store)
    away.rename(store)
    assert cat.create(id="C", frequency="annual").version == 2
    assert sorted(s.id for s in cat.list().items) == ["A", "C"]
    assert cat.verify().ok
    cat.close()


def test_a_store_that_went_away_is_an_unusable_store_to_reads_and_writes(
    tmp_path: Path,
) -> None:
    # Reads said IntegrityError ("damaged"), writes a bare StorageError: nothing was
    # damaged, the store is gone, as an open would say (FormatError).
    store, away = tmp_path / "store", tmp_path / "away"
    cat = Catalog.open(str(store), create=True, options=CatalogOptions(max_staleness=0))
    cat.create(id="A", frequency="annual")
    store.rename(away)
    time.sleep(1.1)  # past the once-a-second check that the newest version is still held
    with pytest.raises(FormatError, match="no longer holds a fincat store"):
        cat.get("A")
    with pytest.raises(FormatError, match="the store's directory, is gone"):
        cat.create(id="B", frequency="annual")
    with pytest.raises(FormatError):
        Catalog.open(str(store))
    away.rename(store)
    assert cat.get("A").id == "A"
    cat.close()


def test_a_commit_into_a_store_replaced_under_it_is_withdrawn(
    shared_target: StoreTarget,
) -> None:
    # The store emptied and made anew (a re-init, a restore) while A had it open:
    # A's next commit took a number past the new store's newest, was refused, and
    # its manifest stayed; when the new store's own commits reached that number,
    # it joined their history and silently undid four of them.
    a = shared_target.open()
    for i in range(3):
        a.create(id=f"OLD{i}", frequency="daily")

    async def empty() -> None:
        store = open_store(shared_target.url, shared_target.options or None)
        for info in [i async for i in store.list("")]:
            await store.delete(info.key)
        await store.close()

    asyncio.run(empty())
    b = shared_target.open()  # creates the new store
    b.create(id="NEW0", frequency="daily")
    with pytest.raises(CatalogStoreError) as refused:
        a.create(id="OLD3", frequency="daily")
    a.close()
    for i in range(1, 5):
        b.create(id=f"NEW{i}", frequency="daily")
    assert [s.id for s in b.list().items] == [f"NEW{i}" for i in range(5)]
    assert b.version() == 5 and b.verify().ok
    b.close()
    assert isinstance(refused.value, FormatError)
    assert "emptied or replaced since this catalog opened it" in str(refused.value)
    assert "was withdrawn" in str(refused.value)


def test_a_commit_on_a_base_deleted_from_the_same_store_is_withdrawn(tmp_path: Path) -> None:
    # The newest manifests deleted (by hand, a partial restore) while P knew them:
    # P's commit was refused but its manifest stayed, and once other commits
    # reached its number it became the newest version, undoing them.
    root = tmp_path / "c"
    p = Catalog.open(str(root), create=True)
    for i in range(4):
        p.create(id=f"S{i}", frequency="annual")
    top = p.version()
    for version in (top - 1, top):
        (root / manifest_key(version)).unlink()
    with pytest.raises(IntegrityError, match="was withdrawn"):
        p.create(id="FROM_P", frequency="annual")
    p.close()
    assert not (root / manifest_key(top + 1)).exists()
    q = Catalog.open(str(root))
    for name in ("Q1", "Q2", "Q3"):
        q.create(id=name, frequency="annual")
    assert [s.id for s in q.list().items] == ["Q1", "Q2", "Q3", "S0", "S1"]
    q.close()


def test_a_commit_whose_store_moved_after_it_landed_is_of_unknown_outcome(tmp_path: Path) -> None:
    # Its store directory moved right after the manifest landed: the delete found
    # nothing, and the commit was called withdrawn though it stands in the moved
    # store, where a retry would apply it twice.
    root, moved = tmp_path / "c", tmp_path / "moved"

    class MovedAfterTheWrite(LocalStore):
        async def put_if_absent(self, key: str, data: bytes) -> None:
            await super().put_if_absent(key, data)
            if key.startswith("_manifests/0") and not moved.exists():
                root.rename(moved)

    async def main() -> None:
        first = await AsyncCatalog.open(root, create=True)
        await first.create({"id": "S", "frequency": "annual"})
        await first.close()
        cat = await AsyncCatalog.open_store(MovedAfterTheWrite(root))
        with pytest.raises(CommitStateUnknownError, match="may stand there") as unknown:
            await cat.create({"id": "T", "frequency": "annual"})
        assert unknown.value.versions == [2]
        with contextlib.suppress(CatalogStoreError):
            await cat.close()
        there = await AsyncCatalog.open(moved)
        assert [s.id for s in (await there.list()).items] == ["S", "T"]
        await there.close()

    asyncio.run(main())


def test_an_unreadable_latest_hint_is_no_hint(tmp_path: Path) -> None:
    # The hint is advisory: a directory (or a file not permitted) in its place
    # made every command fail.
    root = tmp_path / "store"
    cat = Catalog.open(str(root), create=True)
    cat.create(id="A", frequency="annual")
    cat.close()
    hint = root / LATEST_HINT
    hint.unlink()
    hint.mkdir()
    fresh = Catalog.open(str(root))
    assert fresh.version() == 1
    assert fresh.get("A").id == "A"
    fresh.close()
