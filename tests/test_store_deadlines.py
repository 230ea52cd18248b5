"""Every storage call has a deadline: a stalled call fails as unavailable, never hangs.

The fault-injecting store's ``hang`` fault never answers (a stalled connection);
``hang-after`` does the work first (a write lands) and then never answers. The
catalog's ``store_timeout`` must turn both into StorageUnavailableError, and the
commit loop must settle a manifest write that stalled exactly like one whose
response was lost: the commit lands once, whatever the stall hid.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path

import pytest

from catalog_store import AsyncCatalog, Catalog, CatalogOptions, RetryPolicy
from catalog_store.errors import CommitStateUnknownError, StorageUnavailableError
from catalog_store.storage import LocalStore, MemoryStore, Store, open_store
from catalog_store.storage.guarded import GuardedStore
from tests.conftest import StoreTarget
from tests.faults import FaultKind, FaultPlan, FaultRule, FaultyStore

FAST = RetryPolicy(max_attempts=10, max_seconds=30, base_delay=0.001, max_delay=0.01)
#: Past the first call, which opens the S3 client's session (see open_faulty).
DEADLINE = {"memory": 0.5, "local": 0.5, "s3": 5.0}

pytestmark = pytest.mark.timeout(120)


async def open_faulty(target: StoreTarget, rule: FaultRule) -> tuple[AsyncCatalog, FaultyStore]:
    setup = await AsyncCatalog.open(target.url, target.options or None, create=True)
    await setup.create({"id": "S", "frequency": "annual", "title": "before"})
    await setup.checkpoint()  # S's record into its metadata shard, to be read from there
    await setup.close()
    plan = FaultPlan([rule])
    store = FaultyStore(open_store(target.url, target.options or None), plan)
    with plan.paused():
        # The S3 client's session opens on its first call, with no deadline here: on
        # a loaded machine that took over the deadline the catalog's first call has.
        await store.exists("fincat.json")
    catalog = await AsyncCatalog.open_store(
        store, options=CatalogOptions(retry=FAST, store_timeout=DEADLINE[target.backend])
    )
    return catalog, store


def test_a_stalled_read_fails_as_unavailable_and_the_next_one_works(
    target: StoreTarget,
) -> None:
    async def main() -> None:
        rule = FaultRule(
            FaultKind.HANG, calls=frozenset({1}), operations=frozenset({"get"}), keys="^meta/"
        )
        catalog, store = await open_faulty(target, rule)
        try:
            with pytest.raises(StorageUnavailableError, match="no answer within"):
                await catalog.get("S")
            assert [i.kind for i in store.injected] == [FaultKind.HANG]
            assert (await catalog.get("S")).title == "before"
        finally:
            await catalog.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", [FaultKind.HANG, FaultKind.HANG_AFTER])
def test_a_stalled_manifest_write_commits_exactly_once(
    target: StoreTarget, kind: FaultKind
) -> None:
    async def main() -> None:
        rule = FaultRule(
            kind,
            calls=frozenset({1}),
            operations=frozenset({"put_if_absent"}),
            keys="^_manifests/",
        )
        catalog, store = await open_faulty(target, rule)
        try:
            before = await catalog.version()
            updated = await catalog.update("S", {"title": "after"})
            assert [i.kind for i in store.injected] == [kind]
            assert updated.title == "after"
            history = await catalog.history()
            assert await catalog.version() == before + 1, "the commit landed twice or not at all"
            assert [v.message for v in history].count("update S") == 1
        finally:
            await catalog.close()
        check = await AsyncCatalog.open(target.url, target.options or None)
        try:
            assert (await check.get("S")).title == "after"
            assert (await check.verify()).ok
        finally:
            await check.close()

    asyncio.run(main())


def test_a_stalled_listing_fails_gc_cleanly(target: StoreTarget) -> None:
    async def main() -> None:
        rule = FaultRule(FaultKind.HANG, calls=frozenset({1}), operations=frozenset({"list"}))
        catalog, _store = await open_faulty(target, rule)
        try:
            with pytest.raises(StorageUnavailableError, match="no answer within"):
                await catalog.collect_garbage(grace=dt.timedelta(0))
            report = await catalog.collect_garbage(grace=dt.timedelta(0), dry_run=True)
            assert report.referenced > 0
        finally:
            await catalog.close()

    asyncio.run(main())


def test_the_end_of_a_listing_is_reported_as_an_answer_not_a_failure(
    target: StoreTarget,
) -> None:
    # The gateway's storage-error metric counts the calls reported as failed: a
    # listing's end (StopAsyncIteration from the inner store) is no error.
    calls: list[tuple[str, bool]] = []

    async def main() -> None:
        options = CatalogOptions(store_listener=lambda op, _s, ok: calls.append((op, ok)))
        catalog = await AsyncCatalog.open(target.url, target.options or None, create=True)
        await catalog.create({"id": "S", "frequency": "annual"})
        await catalog.checkpoint()  # an object for gc's listing to find
        await catalog.close()
        catalog = await AsyncCatalog.open(target.url, target.options or None, options=options)
        try:
            calls.clear()
            report = await catalog.collect_garbage(grace=dt.timedelta(0), dry_run=True)
            assert report.referenced > 0
            listed = [info async for info in catalog.store.list("")]
            assert listed
        finally:
            await catalog.close()

    asyncio.run(main())
    assert ("list", True) in calls
    assert [call for call in calls if not call[1]] == []


def test_a_failed_listing_is_reported_as_failed(tmp_path: Path) -> None:
    calls: list[tuple[str, bool]] = []

    async def main() -> None:
        rule = FaultRule(
            FaultKind.UNAVAILABLE, calls=frozenset({1}), operations=frozenset({"list"})
        )
        store = GuardedStore(
            FaultyStore(LocalStore(tmp_path), FaultPlan([rule])),
            5.0,
            lambda op, _s, ok: calls.append((op, ok)),
        )
        await store.put("a/b", b"x")
        with pytest.raises(StorageUnavailableError):
            _ = [info async for info in store.list("a/")]
        assert [info.key async for info in store.list("a/")] == ["a/b"]

    asyncio.run(main())
    assert calls == [("put", True), ("list", False), ("list", True), ("list", True)]


@pytest.mark.parametrize("backend", ["memory", "local"])
def test_a_manifest_write_is_timed_from_when_its_objects_are_written(
    backend: str, tmp_path: Path
) -> None:
    """The objects a manifest names are written first, each under its own deadline;
    the manifest's deadline and the time reported for it start after them."""

    async def main() -> None:
        reported: list[tuple[str, float, bool]] = []
        deadline = 0.5

        def inner() -> Store:
            return LocalStore(tmp_path) if backend == "local" else MemoryStore(str(tmp_path))

        store = GuardedStore(
            inner(),
            deadline,
            lambda op, seconds, ok: reported.append((op, seconds, ok)),
        )
        try:

            async def slow_objects() -> None:
                await asyncio.sleep(deadline * 0.7)
                await store.put_new("meta/00000/a.msgpack", b"shard")
                await asyncio.sleep(deadline * 0.7)

            await store.put_if_absent_after("_manifests/1.json", b"m", slow_objects())
            assert await store.get("_manifests/1.json") == b"m"
            ((_op, seconds, ok),) = [r for r in reported if r[0] == "put_if_absent"]
            assert ok and seconds < deadline * 0.7
            assert [r[0] for r in reported].count("put") == 1  # put_new, reported as a put

            # A manifest write that stalls after its objects fails by its own deadline.
            stalled = GuardedStore(
                FaultyStore(
                    inner(),
                    FaultPlan(
                        [
                            FaultRule(
                                FaultKind.HANG,
                                operations=frozenset({"put_if_absent"}),
                                calls=frozenset({1}),
                            )
                        ]
                    ),
                ),
                deadline,
            )
            with pytest.raises(StorageUnavailableError, match="no answer within"):
                await stalled.put_if_absent_after("_manifests/2.json", b"m", asyncio.sleep(0))
            await stalled.close()
        finally:
            await store.close()

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_a_fifo_in_an_objects_place_is_refused_not_waited_on(tmp_path: Path) -> None:
    # open() of a FIFO blocks until a writer comes; on the event loop's thread no
    # deadline could end it, and the whole process (a gateway) froze.
    from catalog_store.errors import StorageError

    root = tmp_path / "store"
    cat = Catalog.open(str(root), create=True, options=CatalogOptions(inline_rows=0))
    cat.create(id="A", frequency="annual")
    cat.write("A", ([dt.date(2000, 1, 1)], [1.0]))
    cat.close()
    (data,) = (root / "data").rglob("*.parquet")
    data.unlink()
    os.mkfifo(data)
    fresh = Catalog.open(str(root))
    with pytest.raises(StorageError, match="not a regular file"):
        fresh.read("A")
    fresh.close()


_LIMITED_WRITER = """
import datetime as dt, os, resource, sys
from catalog_store import Catalog, CatalogOptions, RetryPolicy
limit, root = sys.argv[1], sys.argv[2]
# One attempt: a failed create closes the file a local store made ahead for it,
# and a retry could then commit with the descriptors that freed.
once = RetryPolicy(max_attempts=1, max_seconds=5, base_delay=0.001, max_delay=0.01)
cat = Catalog.open(root, create=True, options=CatalogOptions(inline_rows=0, retry=once))
cat.create(id="A", frequency="daily")
days = [dt.date(1900, 1, 1) + dt.timedelta(days=i) for i in range(20000)]
# pyarrow imports pandas (when installed) on its first array built from Python
# values; built here, before the limit, as in any process that has written before.
# Out of descriptors that import fails, before the store is reached.
import pyarrow
pyarrow.array([0.0])
if limit == "fsize":
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
else:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
try:
    cat.write("A", (days, [float(i) for i in range(len(days))]))
except Exception as exc:
    print(type(exc).__name__)
else:
    print("committed")
"""


@pytest.mark.parametrize(
    ("limit", "error"), [("fsize", "StorageFullError"), ("nofile", "StorageUnavailableError")]
)
def test_a_process_limit_is_reported_by_what_cures_it(
    limit: str, error: str, tmp_path: Path
) -> None:
    # Past the file-size limit (EFBIG) a write is as good as out of space, and out
    # of descriptors (EMFILE) passes once some close: both were a plain StorageError,
    # "no rerun can cure" (CLI status 1).
    import subprocess
    import sys

    root = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-c", _LIMITED_WRITER, limit, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip() == error, done.stdout + done.stderr
    cat = Catalog.open(str(root))
    assert cat.version() == 1 and cat.verify().ok
    cat.close()


class LateLandingStore(MemoryStore):
    """A memory store whose first manifest write outlives the caller's deadline and
    lands afterwards: a request S3 received, answered after the client gave up."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.armed = False
        self.late: asyncio.Task[None] | None = None

    async def put_if_absent(self, key: str, data: bytes) -> None:
        if not self.armed or self.late is not None or not key.startswith("_manifests/0"):
            await super().put_if_absent(key, data)
            return

        async def land() -> None:
            await asyncio.sleep(self.delay)
            await MemoryStore.put_if_absent(self, key, data)

        self.late = asyncio.ensure_future(land())
        await asyncio.sleep(3600)  # no answer: only the deadline ends the call


def test_a_write_that_lands_after_the_commit_gave_up_is_reported_unknown() -> None:
    async def main() -> None:
        store = LateLandingStore(delay=0.5)
        setup = await AsyncCatalog.open_store(store, create=True)
        await setup.create({"id": "S", "frequency": "annual", "title": "before"})
        before = await setup.version()
        store.armed = True
        once = RetryPolicy(max_attempts=1, max_seconds=30)
        catalog = await AsyncCatalog.open_store(
            store, options=CatalogOptions(retry=once, store_timeout=0.1)
        )
        # The key is still empty when the commit gives up: no proof it will stay so.
        with pytest.raises(CommitStateUnknownError) as unknown:
            await catalog.update("S", {"title": "after"})
        assert unknown.value.versions == [before + 1]
        assert store.late is not None
        await store.late
        # It landed after all, as the error allowed, under the id the error gave.
        landed = await catalog.version_details(before + 1)
        assert landed.commit_id == unknown.value.commit_id
        assert (await catalog.get("S")).title == "after"

    asyncio.run(main())


def test_a_commit_to_a_store_that_stalls_every_write_gives_up_at_its_time_limit(
    target: StoreTarget,
) -> None:
    """What the gateway's FINCAT_COMMIT_TIMEOUT sets: each attempt's write fails by
    its deadline, and the loop stops once its time is up, far short of its attempts
    (the catalog's own limit, two minutes, held a gateway's write that long)."""

    async def main() -> None:
        rule = FaultRule(FaultKind.HANG, probability=1.0, operations=frozenset({"put_if_absent"}))
        setup = await AsyncCatalog.open(target.url, target.options or None, create=True)
        await setup.create({"id": "S", "frequency": "annual", "title": "before"})
        await setup.close()
        store = FaultyStore(open_store(target.url, target.options or None), FaultPlan([rule]))
        brief = RetryPolicy(max_attempts=200, max_seconds=1.0, base_delay=0.001, max_delay=0.01)
        options = CatalogOptions(retry=brief, store_timeout=DEADLINE[target.backend])
        catalog = await AsyncCatalog.open_store(store, options=options)
        try:
            with pytest.raises(CommitStateUnknownError, match=r"after \d+ attempts") as gave_up:
                await catalog.update("S", {"title": "after"})
            attempts = int(str(gave_up.value).split("after ")[1].split()[0])
            assert 1 <= attempts < brief.max_attempts
            assert len(store.injected) == attempts
        finally:
            await catalog.close()

    asyncio.run(main())
