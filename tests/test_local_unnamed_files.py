"""A local store's creates through unnamed files made ahead (Linux ``O_TMPFILE``).

Every test here runs real files: the pool's descriptors, ``linkat`` through
``/proc/self/fd``, a forked child, a second filesystem. The store contract suite
covers the same creates end to end; these pin what only the pool can get wrong.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from catalog_store.errors import AlreadyExistsError
from catalog_store.storage import LocalStore, unnamed
from catalog_store.storage.unnamed import UnnamedFiles

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(os, "O_TMPFILE"),
    reason="unnamed files are a Linux feature; elsewhere the store writes temp files",
)


def ready(files: UnnamedFiles) -> int:
    """Take a descriptor, waiting for the refill thread to make one."""
    deadline = time.monotonic() + 10
    while (fd := files.take()) is None:
        assert time.monotonic() < deadline, "the refill thread made no file"
        time.sleep(0.005)
    return fd


def full(files: UnnamedFiles) -> UnnamedFiles:
    """Wait until the refill thread has made every spare file."""
    deadline = time.monotonic() + 10
    while len(files._fds) < unnamed.SPARE_FILES:
        assert time.monotonic() < deadline, "the refill thread did not fill the pool"
        if not files._refilling:
            os.close(ready(files))
        time.sleep(0.005)
    return files


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_taken_file_is_empty_unnamed_and_on_the_directory_s_filesystem(tmp_path: Path) -> None:
    files = UnnamedFiles(tmp_path)
    fd = ready(files)
    try:
        info = os.fstat(fd)
        assert stat.S_ISREG(info.st_mode)
        assert (info.st_nlink, info.st_size) == (0, 0)
        assert info.st_dev == tmp_path.stat().st_dev
        assert os.listdir(tmp_path) == []  # nothing to clean up after a crash
    finally:
        os.close(fd)
        files.close()


def test_a_named_unnamed_file_holds_its_bytes_and_cannot_take_a_taken_name(
    tmp_path: Path,
) -> None:
    files = UnnamedFiles(tmp_path)
    first, second = ready(files), ready(files)
    try:
        os.write(first, b"manifest 7")
        unnamed.name_unnamed(first, tmp_path / "7.json")
        assert (tmp_path / "7.json").read_bytes() == b"manifest 7"
        os.write(second, b"another writer's 7")
        with pytest.raises(FileExistsError):
            unnamed.name_unnamed(second, tmp_path / "7.json")
        assert (tmp_path / "7.json").read_bytes() == b"manifest 7"
    finally:
        os.close(first)
        os.close(second)
        files.close()


def test_creates_go_through_unnamed_files_and_leave_no_temp_file(tmp_path: Path) -> None:
    async def main() -> None:
        store = LocalStore(tmp_path)
        ready_fd = ready(store._spares)  # the pool is filled: the creates below use it
        os.close(ready_fd)
        for version in range(1, 6):
            await store.put_if_absent(f"_manifests/{version}.json", b"v%d" % version)
        await store.put_new("data/S/year=2000/a.parquet", b"rows")
        with pytest.raises(AlreadyExistsError):
            await store.put_if_absent("_manifests/3.json", b"lost the race")
        assert await store.get("_manifests/3.json") == b"v3"
        assert await store.get("data/S/year=2000/a.parquet") == b"rows"
        await store.close()

    asyncio.run(main())
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == [
        "_manifests/1.json",
        "_manifests/2.json",
        "_manifests/3.json",
        "_manifests/4.json",
        "_manifests/5.json",
        "data/S/year=2000/a.parquet",
    ]


def test_a_lost_create_gives_its_file_back(tmp_path: Path) -> None:
    async def main() -> tuple[int, int]:
        store = LocalStore(tmp_path)
        await store.put_if_absent("_manifests/1.json", b"first")
        before = open_descriptors() if full(store._spares) else 0
        for _ in range(50):
            with pytest.raises(AlreadyExistsError):
                await store.put_if_absent("_manifests/1.json", b"second")
        after = open_descriptors() if full(store._spares) else 0
        await store.close()
        return before, after

    before, after = asyncio.run(main())
    assert after <= before, f"{after - before} descriptors leaked by 50 lost creates"


@pytest.mark.parametrize("unnamed_files", [True, False])
def test_an_object_an_earlier_try_left_is_replaced_whole_or_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed_files: bool
) -> None:
    # Its key is unique: a file there is this object's, from an earlier try. A whole
    # one (that try landed, a manifest may name it) is left alone; a partial one is
    # replaced by a rename, never cut short in place where a reader could see it.
    if not unnamed_files:
        monkeypatch.setattr(unnamed, "_O_TMPFILE", 0)
    whole, partial = (
        tmp_path / "data" / "S" / "whole.parquet",
        tmp_path / "data" / "S" / "part.parquet",
    )
    whole.parent.mkdir(parents=True)
    whole.write_bytes(b"the whole file")
    partial.write_bytes(b"half a fi")
    inodes = whole.stat().st_ino, partial.stat().st_ino
    flushed: list[str] = []
    fdatasync = os.fdatasync

    def recording(fd: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", recording)

    async def main() -> None:
        store = LocalStore(tmp_path)
        if unnamed_files:
            os.close(ready(store._spares))
        await store.put_new("data/S/whole.parquet", b"the whole file")
        await store.put_new("data/S/part.parquet", b"the whole file")
        await store.close()

    asyncio.run(main())
    assert whole.read_bytes() == partial.read_bytes() == b"the whole file"
    assert whole.stat().st_ino == inodes[0], "a whole object was written again"
    assert str(whole) in flushed, "a whole object left alone may be unflushed yet"
    assert partial.stat().st_ino != inodes[1], "a partial object was rewritten in place"
    assert list(tmp_path.rglob("*.tmp")) == []


def test_close_gives_the_descriptors_back(tmp_path: Path) -> None:
    files = full(UnnamedFiles(tmp_path))
    holding = open_descriptors()
    files.close()
    assert files.take() is None  # closed: nothing handed out, nothing refilled
    time.sleep(0.05)
    assert open_descriptors() == holding - unnamed.SPARE_FILES


def _take_in_child(
    files: UnnamedFiles, inherited: int, answer: multiprocessing.Queue[bool]
) -> None:
    fd = files.take()
    answer.put(fd is not None and os.path.samestat(os.fstat(fd), os.fstat(inherited)))


def test_a_forked_child_never_writes_into_its_parent_s_files(tmp_path: Path) -> None:
    files = full(UnnamedFiles(tmp_path))
    parents_next = files._fds[0]
    context = multiprocessing.get_context("fork")
    answer: multiprocessing.Queue[bool] = context.Queue()
    child = context.Process(target=_take_in_child, args=(files, parents_next, answer))
    child.start()
    shared = answer.get(timeout=30)
    child.join(30)
    assert shared is False, "the child was handed a file its parent will also use"
    mine = ready(files)
    assert os.path.samestat(os.fstat(mine), os.fstat(parents_next))
    os.close(mine)
    files.close()


def test_a_directory_on_another_filesystem_falls_back_to_temp_files(tmp_path: Path) -> None:
    elsewhere = Path("/dev/shm")
    if not elsewhere.is_dir() or elsewhere.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem at /dev/shm")

    async def main() -> bytes:
        store = LocalStore(tmp_path)
        store._spares.close()
        store._spares = UnnamedFiles(elsewhere)  # files the store's directories cannot link
        os.close(ready(store._spares))
        await store.put_if_absent("_manifests/1.json", b"still created")
        assert store._spares.take() is None, "the pool kept offering files it cannot name"
        await store.put_if_absent("_manifests/2.json", b"and again")
        data = await store.get("_manifests/1.json") + await store.get("_manifests/2.json")
        await store.close()
        return data

    assert asyncio.run(main()) == b"still createdand again"
    assert sorted(p.name for p in (tmp_path / "_manifests").iterdir()) == ["1.json", "2.json"]


def test_without_unnamed_files_the_store_writes_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A kernel or filesystem without O_TMPFILE: the named temp-file path, same result.
    monkeypatch.setattr(unnamed, "_O_TMPFILE", 0)

    async def main() -> bytes:
        store = LocalStore(tmp_path)
        assert store._spares.take() is None
        await store.put_if_absent("_manifests/1.json", b"created")
        with pytest.raises(AlreadyExistsError):
            await store.put_if_absent("_manifests/1.json", b"again")
        await store.put_new("data/S/p.parquet", b"rows")
        data = await store.get("_manifests/1.json") + await store.get("data/S/p.parquet")
        await store.close()
        return data

    assert asyncio.run(main()) == b"createdrows"
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


BIG = os.urandom(8 * 2**20)  # long enough to write that the create is abandoned meanwhile


def test_an_abandoned_create_gives_its_file_back(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    holding = open_descriptors() if full(store._spares) else 0

    async def objects_fail() -> None:
        raise RuntimeError("the objects the manifest names could not be written")

    async def main() -> None:
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await store.put_if_absent_after("_manifests/1.json", BIG, objects_fail())
        for _ in range(3):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(
                    store.put_if_absent_after("_manifests/2.json", BIG, asyncio.sleep(0)), 0.001
                )
        # Abandoned, and the loop shuts down before the worker has finished.
        with pytest.raises(RuntimeError):
            await store.put_if_absent_after("_manifests/3.json", BIG, objects_fail())

    asyncio.run(main())
    assert not (tmp_path / "_manifests" / "1.json").exists()
    deadline = time.monotonic() + 10
    while open_descriptors() > holding and time.monotonic() < deadline:
        full(store._spares)
        time.sleep(0.01)
    assert open_descriptors() == holding, "an abandoned create kept its file open"
    assert [p.name for p in (tmp_path / "_manifests").iterdir() if p.name != "2.json"] == []


def test_a_refill_thread_that_cannot_start_costs_no_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = full(UnnamedFiles(tmp_path))

    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(unnamed, "_refill_queue", None)
    monkeypatch.setattr(threading.Thread, "start", no_thread)
    fd = files.take()
    assert fd is not None
    os.close(fd)
    assert not files._refilling, "a refill that never started blocks every later one"
    monkeypatch.undo()
    os.close(ready(files))
    files.close()


def test_cancelled_writes_leave_no_open_file_and_land_before_the_cancel_goes_on(
    tmp_path: Path,
) -> None:
    """Writes cancelled at every point (a timeout around each): when the cancellation
    reaches the caller, the commit has landed or never will, and once the catalog is
    closed no unnamed file is left open."""
    from catalog_store import AsyncCatalog, CatalogOptions

    async def main() -> tuple[int, int, list[str]]:
        before = open_descriptors()
        # Every write in files and shards, so that each commit waits on objects.
        options = CatalogOptions(inline_rows=0, pending_records=0)
        catalog = await AsyncCatalog.open(tmp_path / "c", create=True, options=options)
        await catalog.create({"id": "S", "frequency": "daily"})
        late: list[str] = []
        for i in range(150):
            rows = ([dt.date(2000, 1, 1) + dt.timedelta(days=i)], [float(i)])
            version = await catalog.version()
            try:
                await asyncio.wait_for(catalog.write("S", rows, "upsert"), timeout=(i % 10) / 2000)
            except TimeoutError:
                settled = await catalog.version(refresh=True)
                await asyncio.sleep(0.002)
                if await catalog.version(refresh=True) != settled:
                    late.append(f"write {i} landed after its cancellation ({version})")
        await catalog.close()
        await asyncio.sleep(0.05)  # the refill thread's last file
        return before, open_descriptors(), late

    before, after, late = asyncio.run(main())
    assert late == []
    assert after <= before, f"{after - before} descriptors left open"
