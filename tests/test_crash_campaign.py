"""Crash campaigns: writer processes killed with SIGKILL at random moments.

Several writer processes commit random batches to one store (local disk, or the
moto S3 server) while the test kills one of them at a random moment, starts a
replacement at once, and checks the store while the others keep going:

- the catalog opens and its newest version verifies (every version, every so often
  and at the end);
- every commit a writer logged as successful is in the history, as the version it
  reported, with the content it wrote;
- nothing else is: every version is a logged commit, or the one commit a killed
  writer had in flight when it died (the log line of a commit that landed may be
  missing; only the killed writer's last commit may be in that state, and its
  content must match what it set out to commit), or a commit whose outcome the
  writer logged as unknown.

At the end, with every writer stopped, gc with no grace period must leave a store
that verifies and still reads every logged version as of that version.

Writers start from a fork server that has imported the engine once, so a restart
costs a fork rather than an interpreter start and imports (the fork server is
itself a fresh interpreter, like a spawned process; no threads of the test
process are forked). ``pytest --long`` runs ten times as many kills.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import multiprocessing.context
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from catalog_store import AsyncCatalog, CatalogOptions
from catalog_store.storage import directories, local
from tests.conftest import StoreTarget
from tests.workers_crash import (
    MESSAGE,
    MONTHS,
    SHARED,
    check_commit,
    log_path,
    read_log,
    run_writer,
)

WRITERS = 3
KILLS = {"local": 200, "s3": 50}
#: A full verify every this many kills (and at the end); the newest version after each.
FULL_VERIFY_EVERY = {"local": 100, "s3": 25}
#: Longest random pause of a writer after each commit, seconds.
PAUSE = {"local": 0.05, "s3": 1.0}
#: Random wait before each kill, seconds.
DELAY = {"local": (0.02, 0.25), "s3": (0.05, 0.25)}


@dataclass
class Incarnation:
    """One writer process from start to death: what its log says so far."""

    number: int
    writer: int
    process: multiprocessing.process.BaseProcess
    offset: int = 0
    killed: bool = False
    ended: bool = False
    intents: dict[int, dict[str, Any]] = field(default_factory=dict)
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    in_flight_landed: int | None = None


@dataclass
class Tally:
    kills: int = 0
    killed_mid_commit: int = 0
    in_flight_landed: int = 0
    commits: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    unknown: int = 0
    full_verifies: int = 0
    seconds_checking: float = 0.0
    seconds_verifying: float = 0.0


class Campaign:
    def __init__(self, target: StoreTarget, workdir: Path, seed: int, pause: float) -> None:
        self.target = target
        self.pause = pause
        self.log_dir = workdir / "logs"
        self.log_dir.mkdir()
        self.stop_path = workdir / "stop"
        self.rng = random.Random(seed)
        self.seed = seed
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(["tests.workers_crash"])
        self.incarnations: dict[int, Incarnation] = {}
        self.slots: list[Incarnation] = []
        self.claimed: dict[tuple[int, int], int] = {}  # (incarnation, seq) -> version
        self.resolved: dict[int, tuple[str, list[dict[str, Any]], str]] = {}
        self.pending: list[int] = []
        self.checked_upto = 0
        self.tally = Tally()
        self.checker: AsyncCatalog

    # -- processes -------------------------------------------------------------------------

    def start(self, writer: int) -> Incarnation:
        number = len(self.incarnations) + 1
        process = self.ctx.Process(
            target=run_writer,
            args=(
                self.target.url,
                self.target.options,
                writer,
                number,
                self.seed * 100_000 + number,
                str(self.log_dir),
                str(self.stop_path),
                self.pause,
            ),
            daemon=True,
        )
        process.start()
        incarnation = Incarnation(number, writer, process)
        self.incarnations[number] = incarnation
        return incarnation

    def kill(self, slot: int) -> None:
        victim = self.slots[slot]
        assert victim.process.pid is not None
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.join()
        victim.killed = victim.ended = True
        self.tally.kills += 1
        # Restart at once: the others keep going while the store is checked.
        self.slots[slot] = self.start(victim.writer)

    def stop_all(self) -> None:
        self.stop_path.touch()
        for incarnation in self.slots:
            incarnation.process.join(timeout=120)
            assert incarnation.process.exitcode == 0, f"writer {incarnation.number} failed"
            incarnation.ended = True

    # -- logs --------------------------------------------------------------------------------

    def read_logs(self) -> None:
        for incarnation in self.incarnations.values():
            entries, incarnation.offset = read_log(
                log_path(self.log_dir, incarnation.number), incarnation.offset
            )
            for entry in entries:
                if "ops" in entry:
                    incarnation.intents[entry["seq"]] = entry
                elif "seq" in entry:
                    incarnation.results[entry["seq"]] = entry

    def successes(self) -> dict[int, tuple[Incarnation, int]]:
        """Logged successes by version."""
        out: dict[int, tuple[Incarnation, int]] = {}
        for incarnation in self.incarnations.values():
            for seq, result in incarnation.results.items():
                version = result.get("version")
                if version is not None:
                    assert version not in out, f"two commits report version {version}"
                    out[version] = (incarnation, seq)
        return out

    # -- checks ------------------------------------------------------------------------------

    async def check(self, full: bool) -> None:
        started = time.monotonic()
        self.read_logs()
        # The catalog opens; a long-lived one (with its cache) checks the content.
        opened = await AsyncCatalog.open(self.target.url, self.target.options or None)
        try:
            latest = await opened.version()
            verifying = time.monotonic()
            report = await opened.verify(latest_only=not full)
            self.tally.seconds_verifying += time.monotonic() - verifying
            assert report.ok, f"verify after {self.tally.kills} kills: {report.problems[:5]}"
            self.tally.full_verifies += full
        finally:
            await opened.close()
        catalog = self.checker
        self.pending.extend(range(self.checked_upto + 1, latest + 1))
        self.checked_upto = max(self.checked_upto, latest)
        successes = self.successes()
        for version, (incarnation, seq) in successes.items():
            assert version <= latest, (
                f"writer {incarnation.number} logged seq {seq} as version {version}, "
                f"but the newest version is {latest}"
            )
        self.pending = [v for v in self.pending if not await self.resolve(catalog, v, successes)]
        self.tally.seconds_checking += time.monotonic() - started

    async def resolve(
        self, catalog: AsyncCatalog, version: int, successes: dict[int, tuple[Incarnation, int]]
    ) -> bool:
        """Account for one version; False while it may still be logged by a live writer."""
        if version in successes:
            incarnation, seq = successes[version]
            return await self.accept(catalog, version, incarnation, seq)
        manifest = await catalog.reader.manifest(version)
        match = MESSAGE.match(manifest.message)
        if match is not None:
            number, seq = int(match[2]), int(match[3])
            incarnation = self.incarnations[number]
            result = incarnation.results.get(seq)
            assert result is None or "unknown" in result, (
                f"version {version} is writer {number}'s seq {seq}, logged as {result}"
            )
            if result is not None:
                self.tally.unknown += 1
                return await self.accept(catalog, version, incarnation, seq)
            if not incarnation.ended:
                return False
            return await self.in_flight(catalog, version, incarnation, seq)
        # A compaction carries no message of ours: find the killed writer that had it
        # in flight.
        assert len(manifest.changes) == 1 and manifest.changes[0][0] == "compact", (
            f"version {version} is nobody's commit: {manifest.message!r} {manifest.changes}"
        )
        # A live writer may have logged nothing about it yet when the logs were read.
        waiting = any(not incarnation.ended for incarnation in self.incarnations.values())
        for incarnation in self.incarnations.values():
            last = max(incarnation.intents, default=0)
            intent = incarnation.intents.get(last)
            if (
                intent is None
                or last in incarnation.results
                or intent["how"] != "compact"
                or intent["ops"][0]["id"] != manifest.changes[0][1]
                or (incarnation.number, last) in self.claimed
            ):
                continue
            if incarnation.ended:
                return await self.in_flight(catalog, version, incarnation, last)
        assert waiting, f"compaction at version {version} is nobody's: {manifest.changes}"
        return False

    async def in_flight(
        self, catalog: AsyncCatalog, version: int, incarnation: Incarnation, seq: int
    ) -> bool:
        """A landed commit without a result line: only a killed writer's last commit."""
        assert incarnation.killed, (
            f"writer {incarnation.number} stopped cleanly but did not log seq {seq} "
            f"(version {version})"
        )
        assert seq == max(incarnation.intents, default=0), (
            f"version {version} is writer {incarnation.number}'s seq {seq}, not its last commit"
        )
        assert incarnation.in_flight_landed is None, (
            f"writer {incarnation.number} has two unlogged commits: "
            f"{incarnation.in_flight_landed} and {version}"
        )
        incarnation.in_flight_landed = version
        self.tally.in_flight_landed += 1
        return await self.accept(catalog, version, incarnation, seq)

    async def accept(
        self, catalog: AsyncCatalog, version: int, incarnation: Incarnation, seq: int
    ) -> bool:
        key = (incarnation.number, seq)
        assert key not in self.claimed, (
            f"writer {incarnation.number}'s seq {seq} landed twice: "
            f"versions {self.claimed[key]} and {version}"
        )
        intent = incarnation.intents[seq]
        await check_commit(catalog, version, intent["how"], intent["ops"], intent["msg"])
        self.claimed[key] = version
        self.resolved[version] = (intent["how"], intent["ops"], intent["msg"])
        self.tally.commits += 1
        return True

    def count_outcomes(self) -> None:
        for incarnation in self.incarnations.values():
            if incarnation.killed and max(incarnation.intents, default=0) not in (
                incarnation.results
            ):
                self.tally.killed_mid_commit += 1
            for result in incarnation.results.values():
                if "error" in result:
                    name = result["error"]
                    self.tally.failures[name] = self.tally.failures.get(name, 0) + 1

    # -- the campaign ------------------------------------------------------------------------

    async def setup(self) -> None:
        options = CatalogOptions(shard_count=4)
        catalog = await AsyncCatalog.open(
            self.target.url, self.target.options or None, create=True, options=options
        )
        async with catalog.batch("seed") as batch:
            for sid in SHARED:
                batch.create({"id": sid, "frequency": "monthly"})
                await batch.write(sid, (MONTHS[:12], [float(i) for i in range(12)]), "upsert")
        self.checked_upto = await catalog.version()
        await catalog.close()
        self.checker = await AsyncCatalog.open(self.target.url, self.target.options or None)

    async def run(self, kills: int, full_every: int, delay: tuple[float, float]) -> None:
        await self.setup()
        self.slots = [self.start(writer) for writer in range(WRITERS)]
        for done in range(1, kills + 1):
            await asyncio.sleep(self.rng.uniform(*delay))
            self.kill(self.rng.randrange(WRITERS))
            # The last kill needs no full walk: collect_and_reread verifies everything.
            await self.check(full=done % full_every == 0 and done < kills)
        self.stop_all()
        await self.check(full=False)
        await self.checker.close()
        assert not self.pending, f"versions nobody accounts for: {self.pending}"
        self.count_outcomes()
        assert set(self.successes()) <= set(self.resolved)

    async def collect_and_reread(self) -> tuple[dict[str, Any], int]:
        """gc with no grace while nothing runs; every logged version still reads right."""
        catalog = await AsyncCatalog.open(self.target.url, self.target.options or None)
        try:
            gc = await catalog.collect_garbage(grace=dt.timedelta(0))
            report = await catalog.verify()
            assert report.ok, report.problems[:5]
            assert report.orphans == []
            fresh = await AsyncCatalog.open(self.target.url, self.target.options or None)
            try:
                for version, (how, ops, message) in sorted(self.resolved.items()):
                    await check_commit(fresh, version, how, ops, message)
            finally:
                await fresh.close()
            return gc.to_dict(), report.versions_checked
        finally:
            await catalog.close()


def leftover_temp_files(target: StoreTarget) -> int:
    if target.backend != "local":
        return 0
    return sum(1 for _ in Path(target.url).rglob("*.tmp"))


@pytest.mark.timeout(2400)  # --long runs ten times as many kills
def test_writers_killed_at_random_moments(
    shared_target: StoreTarget, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    backend = shared_target.backend
    scale = 10 if request.config.getoption("--long") else 1
    kills = KILLS[backend] * scale
    campaign = Campaign(shared_target, tmp_path, seed=4242, pause=PAUSE[backend])
    started = time.monotonic()
    try:
        asyncio.run(campaign.run(kills, FULL_VERIFY_EVERY[backend] * scale, DELAY[backend]))
    finally:
        campaign.stop_path.touch()
        for incarnation in campaign.incarnations.values():
            if incarnation.process.is_alive():
                incarnation.process.kill()
                incarnation.process.join()
    ran = time.monotonic() - started
    gc, versions = asyncio.run(campaign.collect_and_reread())
    tally = campaign.tally
    print(
        f"\n{backend}: {tally.kills} kills in {ran:.1f}s ({tally.seconds_checking:.1f}s checking), "
        f"{len(campaign.incarnations)} writer processes, {versions} versions; {tally}; "
        f"gc {gc}; temp files left {leftover_temp_files(shared_target)}; "
        f"whole test {time.monotonic() - started:.1f}s"
    )
    assert tally.kills == kills
    # Kills fell among commits. How many commits a writer makes before its kill
    # depends on how fast a process starts on this machine: on a loaded one, fewer.
    assert tally.commits >= kills // 4
    assert tally.killed_mid_commit > 0
    assert leftover_temp_files(shared_target) == 0, "gc left temp files of killed writers"


# -- regressions: each once a bug ------------------------------------------------------------------


def test_gc_reclaims_temp_files_of_killed_writers(tmp_path: Path) -> None:
    async def main() -> list[Path]:
        url = str(tmp_path / "store")
        catalog = await AsyncCatalog.open(url, create=True)
        await catalog.create({"id": "S", "frequency": "annual"})
        await catalog.write("S", ([dt.date(2020, 1, 1)], [1.0]))
        await catalog.checkpoint()  # the row into a data file: S's data directory
        # What a writer killed after writing its temp file leaves behind.
        (data_dir,) = (Path(url) / "data").iterdir()
        leftovers = [data_dir / ".0123abcd.tmp", Path(url) / "_manifests" / ".4567cdef.tmp"]
        hour_ago = time.time() - 3600
        for leftover in leftovers:
            leftover.write_bytes(b"partial object")
            os.utime(leftover, (hour_ago, hour_ago))
        await catalog.collect_garbage(grace=dt.timedelta(0))
        await catalog.close()
        return [p for p in leftovers if p.exists()]

    remaining = asyncio.run(main())
    assert remaining == [], f"gc left {remaining}"


def test_a_durable_put_persists_the_directory_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(local.os, "fsync", recording_fsync)
    store = local.LocalStore(tmp_path / "store")
    asyncio.run(store.put("data/S/part-1.parquet", b"bytes", durable=True))
    directory = str(tmp_path / "store" / "data" / "S")
    assert directory in synced, f"fsynced only {synced}"


def _record_directory_flushes(
    monkeypatch: pytest.MonkeyPatch, fail: set[str], ordered: bool = False
) -> list[str]:
    """The directories fsynced, in order; a flush of one in ``fail`` raises EIO once.
    Stores opened after it take their filesystem to order new directories' entries
    (ext4, XFS, btrfs) if ``ordered``, else not (as on NFS)."""
    monkeypatch.setattr(local, "ordered_by_journal", lambda _path: ordered)
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name in fail:
            fail.discard(name)
            raise OSError(5, "Input/output error")
        synced.append(name)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return synced


def test_a_commit_into_new_directories_persists_their_entries_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A series' first data file goes into a directory made for it: flushing the
    file's name in that directory is not enough while the directory's own entry in
    data/ may be lost with a power cut. Every directory the store made has its
    parent flushed, up to the parent of the store's root."""
    synced = _record_directory_flushes(monkeypatch, set())
    root = tmp_path / "store"

    async def main() -> None:
        catalog = await AsyncCatalog.open(str(root), create=True)
        await catalog.create({"id": "S", "frequency": "annual"})
        await catalog.write("S", ([dt.date(2020, 1, 1)], [1.0]))
        await catalog.checkpoint()  # the row into a data file, in S's own directory
        await catalog.close()

    asyncio.run(main())
    made = [root, *(p for p in root.rglob("*") if p.is_dir())]
    assert any(p.parent.name == "data" for p in made)
    unflushed = [str(p) for p in made if str(p.parent) not in synced]
    assert unflushed == [], f"entries never flushed: {unflushed}; fsynced {synced}"


def test_where_the_filesystem_orders_new_directories_their_parents_are_not_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ext4, XFS and btrfs make a new directory's entry durable with its own fsync:
    the parent's would cost a device flush for nothing on every first write of a
    series."""
    synced = _record_directory_flushes(monkeypatch, set(), ordered=True)
    root = tmp_path / "store"
    store = local.LocalStore(root)
    asyncio.run(store.put_new("data/S/part-1.parquet", b"bytes"))
    assert synced == [str(root / "data" / "S")]


def test_the_filesystem_of_a_path_is_its_deepest_mount(tmp_path: Path) -> None:
    mountinfo = "\n".join(
        (
            "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw",
            "23 22 0:5 / /mnt/nfs\\040share rw - nfs4 server:/export rw",
            "24 23 0:6 / /mnt/nfs\\040share/tmp rw - tmpfs tmpfs rw",
            "25 22 8:2 / /data rw shared:1 - xfs /dev/sdb rw",
            # Stacked on one point: the last mounted is the one seen.
            "26 22 8:3 / /stacked rw - ext4 /dev/sdc rw",
            "27 26 0:7 / /stacked rw - nfs4 server:/other rw",
        )
    )
    cases = {
        "/home/u/store": "ext4",
        "/mnt/nfs share/store": "nfs4",
        "/mnt/nfs share/tmp/store": "tmpfs",
        "/mnt/nfs sharex": "ext4",
        "/data": "xfs",
        "/stacked/store": "nfs4",
    }
    for path, kind in cases.items():
        assert directories.filesystem_of(Path(path), mountinfo) == kind, path
    # A mount point whose name is not UTF-8 (the kernel writes its raw bytes).
    odd = Path(str(tmp_path)) / "mountinfo"
    odd.write_bytes(
        b"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 22 0:9 / /mnt/lat\xe9 rw - tmpfs t rw\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(directories, "_MOUNTINFO", odd)
        assert directories.ordered_by_journal(Path("/home")) is True
    here = directories.filesystem_of(Path.cwd(), Path("/proc/self/mountinfo").read_text())
    assert directories.ordered_by_journal(Path.cwd() / "not" / "yet") == (
        here in directories.ORDERING_FILESYSTEMS
    )


def test_a_directory_entry_left_unflushed_by_a_failed_write_is_flushed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog_store.errors import StorageError

    root = tmp_path / "store"
    root.mkdir()
    data = root / "data"
    synced = _record_directory_flushes(monkeypatch, {str(data)})
    store = local.LocalStore(root)
    with pytest.raises(StorageError):
        asyncio.run(store.put_new("data/S/part-1.parquet", b"bytes"))
    assert str(data) not in synced
    asyncio.run(store.put_new("data/S/part-2.parquet", b"bytes"))
    # data/S was there by then; what the first write made is still flushed: data/S's
    # entry (in data) and data's (in the root).
    assert synced[-3:] == [str(data / "S"), str(data), str(root)], synced
    asyncio.run(store.put_new("data/S/part-3.parquet", b"bytes"))
    assert synced[-1] == str(data / "S"), "a flushed entry is not flushed again"
