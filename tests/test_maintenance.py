"""gc reclaims only old unreferenced objects; repair restores the newest whole version."""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import time
from dataclasses import replace as dataclass_replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from catalog_store import AsyncCatalog, Catalog, CatalogOptions, snapshot
from catalog_store.cli._app import EXIT_CONFLICT, exit_code
from catalog_store.errors import (
    CatalogMovedOnError,
    IntegrityError,
    StorageUnavailableError,
    ValidationError,
    VersionNotFoundError,
)
from catalog_store.hint import encode_hint
from catalog_store.keys import LATEST_HINT, MANIFEST_DIR, RETENTION_FLOOR, manifest_key
from catalog_store.maintenance import GcRefusedError, GcReport, collect_garbage, expire_versions
from catalog_store.repair import RepairRefusedError, RestoreAtRiskError
from catalog_store.storage import open_store
from catalog_store.testing.faults import FaultKind, FaultPlan, FaultRule, FaultyStore
from catalog_store.verify import verify_version
from tests import workers
from tests.conftest import EAGER, StoreTarget

SPAWN = multiprocessing.get_context("spawn")


def fill(cat: Catalog) -> None:
    cat.create(id="A", frequency="annual")
    cat.write("A", ([dt.date(2000, 1, 1), dt.date(2001, 1, 1)], [1.0, 2.0]))
    cat.create(id="B", frequency="annual")
    cat.write("B", ([dt.date(2000, 1, 1)], [5.0]))


def filled(tmp_path: Path, options: CatalogOptions | None = None) -> tuple[Path, Catalog]:
    """A catalog at ``tmp_path / "store"`` with :func:`fill`'s series, and its root."""
    root = tmp_path / "store"
    cat = Catalog.open(str(root), create=True, options=options)
    fill(cat)
    return root, cat


def age(path: Path, hours: float) -> None:
    old = time.time() - hours * 3600
    os.utime(path, (old, old))


def test_gc_deletes_old_orphans_only(tmp_path: Path) -> None:
    root, cat = filled(tmp_path)
    # Orphans have the shape of the objects a commit writes (gc deletes no other).
    young = root / "data" / f"A~{'0' * 16}" / f"part-{'1' * 32}.parquet"
    old = young.with_name(f"part-{'2' * 32}.parquet")
    young.parent.mkdir(parents=True)
    young.write_bytes(b"in flight")
    old.write_bytes(b"crashed long ago")
    age(old, 2)
    for live in (root / "data").rglob("part-*.parquet"):
        if live not in (young, old):
            age(live, 5)  # referenced files are never deleted, however old

    dry = cat.collect_garbage(dry_run=True)
    assert [Path(k).name for k in dry.candidates] == [old.name]
    assert dry.too_young == 1 and dry.deleted == 0 and old.exists()

    report = cat.collect_garbage()
    assert report.deleted == 1 and report.bytes_freed == len(b"crashed long ago")
    assert not old.exists() and young.exists()
    assert cat.read("A").num_rows == 2
    assert cat.read("A", as_of=2).num_rows == 2
    assert cat.verify().ok
    # a zero grace period takes the young orphan too
    assert cat.collect_garbage(grace=dt.timedelta(0)).deleted == 1
    with pytest.raises(ValidationError):
        cat.collect_garbage(grace=dt.timedelta(seconds=-1))
    cat.close()


def test_gc_and_verify_leave_a_catalog_nested_under_data_alone(tmp_path: Path) -> None:
    root, cat = filled(tmp_path)
    nested = Catalog.open(root / "data" / "inner", create=True)
    nested.create(id="N", frequency="daily")
    nested.write("N", ([dt.date(2024, 1, 1)], [1.0]))
    nested.checkpoint()
    nested.close()
    for path in (root / "data" / "inner").rglob("*"):
        if path.is_file():
            age(path, 5)
    assert cat.verify().orphans == []
    assert cat.collect_garbage(grace=dt.timedelta(0)).deleted == 0
    with Catalog.open(root / "data" / "inner") as inner:
        assert inner.read("N").num_rows == 1
        assert inner.verify().ok
    cat.close()


def test_gc_on_every_backend_keeps_every_version_readable(target: StoreTarget) -> None:
    cat = target.open()
    fill(cat)
    cat.write("A", ([dt.date(2000, 1, 1)], [9.0]), mode="upsert")
    cat.compact("A")
    report = cat.collect_garbage(grace=dt.timedelta(0))
    assert report.deleted == 0
    for version in range(cat.version() + 1):
        for series_id in ("A", "B"):
            try:
                cat.read(series_id, as_of=version)
            except KeyError:
                continue
    assert cat.verify().ok
    cat.close()


def test_repair_restores_the_newest_whole_version(tmp_path: Path) -> None:
    # Eager: every write adds a file of its own, even one of a single row.
    root, cat = filled(tmp_path, EAGER)
    good = cat.version()
    before = set((root / "data").rglob("*.parquet"))
    cat.write("B", ([dt.date(2001, 1, 1)], [6.0]))
    # Damage the newest version: delete the file its last write added (found by
    # name, not by modification time, which ties within the clock's resolution).
    (newest,) = set((root / "data").rglob("*.parquet")) - before
    newest.unlink()
    assert not cat.verify(latest_only=True).ok

    report = cat.repair()
    assert report.healthy_version == good
    assert report.lost_versions == [good + 1]
    assert report.lost_changes == [("append", "B")]
    assert report.new_version == good + 2
    assert cat.verify(latest_only=True).ok
    assert cat.read("B").column("value").to_pylist() == [5.0]
    assert (root / LATEST_HINT).exists()
    again = cat.repair()
    assert again.new_version is None and "nothing to repair" in again.message
    # A full verify passes again: the damage stays in the history the repair
    # superseded, reported apart, so the nightly verify and its alerts clear.
    full = cat.verify()
    assert full.ok and full.problems == []
    assert [(p.kind, p.version) for p in full.superseded] == [("missing_object", good + 1)]
    # Damage in a version no repair superseded still fails it.
    before = set((root / "data").rglob("*.parquet"))
    cat.write("B", ([dt.date(2002, 1, 1)], [7.0]))
    (newest,) = set((root / "data").rglob("*.parquet")) - before
    newest.unlink()
    assert [p.version for p in cat.verify().problems] == [good + 3]
    cat.close()


def test_repair_over_older_damage_commits_nothing_while_newer_manifests_are_gone(
    tmp_path: Path,
) -> None:
    """The newest manifest deleted, and an older version damaged too: repair restored
    the newest whole version as a new commit that took the number of the lost one
    (whose backup could then never be put back), and did not name it as lost."""
    root, cat = filled(tmp_path, EAGER)
    good = cat.version()
    before = set((root / "data").rglob("*.parquet"))
    cat.write("B", ([dt.date(2001, 1, 1)], [6.0]))
    (damaged,) = set((root / "data").rglob("*.parquet")) - before
    damaged.unlink()  # the version after ``good`` no longer verifies
    cat.write("A", ([dt.date(2009, 1, 1)], [9.0]))
    gone = cat.version()
    cat.close()  # its hint names the newest version
    (root / manifest_key(gone)).unlink()

    fresh = Catalog.open(str(root))
    report = fresh.repair()
    assert (report.new_version, report.lost_versions) == (None, [gone])
    assert report.healthy_version == good
    assert "backup" in report.message and "run repair again" in report.message
    assert fresh.version() == gone - 1  # nothing committed: the number stays free
    # Told once: the next repair restores the newest version that verifies.
    again = fresh.repair()
    assert (again.healthy_version, again.new_version) == (good, gone)
    assert fresh.verify(latest_only=True).ok
    fresh.close()


def test_repair_commits_over_a_newest_manifest_that_cannot_be_read(tmp_path: Path) -> None:
    root, cat = filled(tmp_path)
    good = cat.version()
    cat.write("B", ([dt.date(2001, 1, 1)], [6.0]))
    cat.close()
    newest = max((root / "_manifests").glob("0*.json"))
    damaged = bytearray(newest.read_bytes())
    damaged[damaged.find(b'"message"') + 12] ^= 1  # one letter of the commit message
    newest.write_bytes(bytes(damaged))

    fresh = Catalog.open(str(root))
    report = fresh.repair()
    assert (report.healthy_version, report.lost_versions) == (good, [good + 1])
    assert report.new_version == good + 2
    assert fresh.verify(latest_only=True).ok
    assert fresh.read("B").column("value").to_pylist() == [5.0]
    fresh.write("B", ([dt.date(2002, 1, 1)], [7.0]))  # writers can commit again
    # History and as-of reads by instant go round the damaged version.
    log = fresh.history()
    assert [v.version for v in log] == [good + 3, good + 2, *range(good, -1, -1)]
    assert f"versions {good + 1}..{good + 1} are no longer current" in log[1].message
    assert fresh.read("B", as_of=log[0].committed_at).num_rows == 2
    assert fresh.read("B", as_of=log[1].committed_at).num_rows == 1
    # From version ``good``'s commit on, the damaged version may have been current.
    with pytest.raises(IntegrityError, match=f"version {good + 1} is damaged"):
        fresh.read("B", as_of=log[2].committed_at)
    assert fresh.read("B", as_of=good).num_rows == 1
    fresh.close()
    with Catalog.open(str(root)) as reopened:
        assert reopened.read("B").column("value").to_pylist() == [5.0, 7.0]


def test_repair_never_restores_over_a_commit_made_while_it_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import catalog_store.repair as repair_module

    root, cat = filled(tmp_path, EAGER)
    before = set((root / "data").rglob("*.parquet"))
    cat.write("B", ([dt.date(2001, 1, 1)], [6.0]))
    (newest,) = set((root / "data").rglob("*.parquet")) - before
    newest.unlink()  # the newest version no longer verifies
    writer = Catalog.open(str(root))
    verify = repair_module.verify_version

    async def verify_while_a_writer_commits(reader: Any, version: int) -> Any:
        if writer.version() == version:  # first call: the newest version
            writer.write("A", ([dt.date(2002, 1, 1)], [3.0]))  # told it landed
        return await verify(reader, version)

    monkeypatch.setattr(repair_module, "verify_version", verify_while_a_writer_commits)
    with pytest.raises(CatalogMovedOnError, match="run repair again") as raised:
        cat.repair()
    # A lost race, which a rerun may win: the status scripts rerun on.
    assert exit_code(raised.value) == EXIT_CONFLICT == 3
    assert cat.read("A").column("value").to_pylist() == [1.0, 2.0, 3.0]
    writer.close()
    cat.close()


def test_repair_of_a_healthy_store_it_cannot_write_says_so_and_succeeds(tmp_path: Path) -> None:
    # It rewrote the hint always, and on a read-only store failed with status 1
    # where verify of the same store passed.
    root, cat = filled(tmp_path)
    cat.close()

    async def repair_read_only(hint: bytes | None) -> Any:
        store = open_store(str(root))
        if hint is not None:
            await store.put(LATEST_HINT, hint, durable=False)
        denied = FaultRule(FaultKind.PERMISSION, probability=1.0, operations=frozenset({"put"}))
        catalog = await AsyncCatalog.open_store(FaultyStore(store, FaultPlan([denied])))
        try:
            return await catalog.repair()
        finally:
            await catalog.close()

    version = Catalog.open(str(root)).version()
    fine = asyncio.run(repair_read_only(encode_hint(version)))
    assert (fine.new_version, fine.message) == (
        None,
        f"version {version} verifies; nothing to repair",
    )
    stale = asyncio.run(repair_read_only(b"1"))
    assert stale.new_version is None and stale.message.startswith(
        f"version {version} verifies; nothing to repair; the latest hint could not be rewritten"
    )


@pytest.mark.parametrize("damage", ["cut short", "deleted"])
def test_history_pages_past_a_damaged_manifest(tmp_path: Path, damage: str) -> None:
    """A manifest deleted by hand is damage, as verify reports it (missing_manifest):
    history went round one cut short, but failed as a whole on a deleted one."""
    root, cat = filled(tmp_path)
    for year in range(2002, 2006):
        cat.write("A", ([dt.date(year, 1, 1)], [float(year)]))
    damaged = root / "_manifests" / f"{5:020d}.json"
    if damage == "deleted":
        damaged.unlink()
    else:
        damaged.write_bytes(damaged.read_bytes()[:-10])
    seen, before = [], None
    while True:
        page = cat.history(limit=2, before=before)
        seen += [v.version for v in page]
        if len(page) < 2:
            break
        before = page[-1].version
    assert seen == [v for v in range(cat.version(), -1, -1) if v != 5]
    cat.close()


def test_repair_refuses_when_nothing_verifies(tmp_path: Path) -> None:
    root, cat = filled(tmp_path)
    for manifest in (root / "_manifests").glob("*.json"):
        manifest.write_bytes(b"garbage")
    fresh = Catalog.open(str(root))
    with pytest.raises(RepairRefusedError):
        fresh.repair()
    fresh.close()
    cat.close()


def test_cli_verify_gc_and_repair(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from catalog_store.cli import app

    root, cat = filled(tmp_path)
    cat.checkpoint()  # the observations into data files, to damage one
    cat.close()
    runner = CliRunner()
    ok = runner.invoke(app, ["--root", str(root), "verify", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["ok"] is True
    assert runner.invoke(app, ["--root", str(root), "verify", "--latest"]).exit_code == 0

    victim = sorted((root / "data").rglob("*.parquet"))[-1]
    victim.write_bytes(b"damaged")
    bad = runner.invoke(app, ["--root", str(root), "verify", "--json"])
    assert bad.exit_code == 4
    assert json.loads(bad.stdout)["problem_counts"]["corrupt_object"] >= 1

    fixed = runner.invoke(app, ["--root", str(root), "repair", "--json"])
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.stdout)["new_version"] is not None
    assert runner.invoke(app, ["--root", str(root), "verify", "--latest"]).exit_code == 0
    # The whole history passes too; the damage the repair left behind is named apart.
    full = runner.invoke(app, ["--root", str(root), "verify"])
    assert full.exit_code == 0, full.output
    assert "in versions a repair superseded" in full.stdout and "OK" in full.stdout

    dry = runner.invoke(
        app, ["--root", str(root), "gc", "--dry-run", "--grace-hours", "0", "--json"]
    )
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["deleted"] == 0
    done = runner.invoke(app, ["--root", str(root), "gc", "--grace-hours", "0"])
    assert done.exit_code == 0, done.output
    assert "deleted" in done.stdout


def test_gc_with_retention_expires_only_versions_superseded_before_the_cutoff(
    target: StoreTarget,
) -> None:
    # Eager: each write below adds a file of its own, referenced from its version on.
    cat = Catalog.open(target.url, target.options or None, create=True, options=EAGER)
    cat.create(id="A", frequency="annual")  # v1
    cat.write("A", ([dt.date(2000, 1, 1)], [1.0]))  # v2
    cat.write("A", ([dt.date(2000, 1, 1)], [2.0]), "upsert")  # v3: the state at the cutoff
    time.sleep(0.05)
    cutoff = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    cat.write("A", ([dt.date(2000, 1, 1)], [3.0]), "upsert")  # v4
    cat.update("A", {"title": "now"})  # v5
    assert cat.version() == 5
    everything = cat.collect_garbage(grace=dt.timedelta(0), dry_run=True)

    def retain() -> dt.timedelta:
        return dt.datetime.now(dt.UTC) - cutoff

    dry = cat.collect_garbage(grace=dt.timedelta(0), dry_run=True, retain=retain())
    assert (dry.expired_versions, dry.oldest_version) == (3, 3)
    assert cat.read("A", as_of=1).num_rows == 0, "a dry run expired a version"

    report = cat.collect_garbage(grace=dt.timedelta(0), retain=retain())
    assert (report.expired_versions, report.oldest_version) == (3, 3)
    # The file holding the first value is referenced only by the expired v2.
    assert report.deleted >= 1 and report.referenced < everything.referenced
    with pytest.raises(VersionNotFoundError):
        cat.get("A", as_of=2)
    with pytest.raises(VersionNotFoundError, match="expired"):
        cat.get("A", as_of=cutoff - dt.timedelta(seconds=1))
    assert cat.read("A", as_of=cutoff)["value"].to_pylist() == [2.0]
    assert cat.read("A", as_of=3)["value"].to_pylist() == [2.0]
    assert cat.read("A")["value"].to_pylist() == [3.0]
    assert [v.version for v in cat.history()] == [5, 4, 3]
    verified = cat.verify()
    assert verified.ok and verified.versions_checked == 3, verified.problems
    # Nothing more expires on a second run; the default keeps every version left.
    assert cat.collect_garbage(grace=dt.timedelta(0), retain=retain()).expired_versions == 0
    assert cat.collect_garbage(grace=dt.timedelta(0)).oldest_version == 3
    cat.close()

    # Without the hint, a new process finds the newest version from the floor up.
    store = open_store(target.url, target.options or None)
    asyncio.run(store.delete(LATEST_HINT))
    asyncio.run(store.close())
    fresh = Catalog.open(target.url, target.options or None)
    assert fresh.version() == 5
    assert fresh.get("A").title == "now"
    fresh.close()


def test_a_version_expired_by_another_process_reads_as_expired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long-lived reader holds old manifests in its cache, and a gc that stopped
    # part way may leave some below the floor: either would name deleted files.
    monkeypatch.setattr(snapshot, "FLOOR_STALENESS", 0.0)
    root = str(tmp_path / "store")
    cat = Catalog.open(root, create=True, options=EAGER)
    cat.create(id="A", frequency="annual")  # v1
    cat.write("A", ([dt.date(2000, 1, 1)], [1.0]))  # v2: its file only v2 references
    cat.write("A", ([dt.date(2000, 1, 1)], [2.0]), "upsert")  # v3
    cat.write("A", ([dt.date(2000, 1, 1)], [3.0]), "upsert")  # v4
    reader = Catalog.open(root)
    assert reader.read("A", as_of=2)["value"].to_pylist() == [1.0]  # cached from here on
    v2 = tmp_path / "store" / manifest_key(2)
    left_over = v2.read_bytes()

    report = cat.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))
    assert (report.expired_versions, report.oldest_version) == (4, 4)
    with pytest.raises(VersionNotFoundError, match="expired"):
        reader.read("A", as_of=2)
    v2.write_bytes(left_over)  # as a gc stopped before deleting it leaves it
    fresh = Catalog.open(root)
    with pytest.raises(VersionNotFoundError, match="expired"):
        fresh.read("A", as_of=2)
    assert fresh.read("A")["value"].to_pylist() == [3.0]
    for opened in (cat, reader, fresh):
        opened.close()


def test_gc_rejects_a_negative_retention(tmp_path: Path) -> None:
    cat = Catalog.open(str(tmp_path / "store"), create=True)
    with pytest.raises(ValidationError) as raised:
        cat.collect_garbage(retain=dt.timedelta(seconds=-1))
    assert raised.value.field == "retain"
    cat.close()


def test_cli_gc_retain_days_expires_old_versions(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from catalog_store.cli import app

    root = str(tmp_path / "store")
    cat = Catalog.open(root, create=True)
    fill(cat)
    cat.close()
    runner = CliRunner()
    kept = runner.invoke(app, ["--root", root, "gc", "--grace-hours", "0", "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["expired_versions"] == 0
    # Zero days: everything superseded before now expires; the newest version stays.
    result = runner.invoke(
        app, ["--root", root, "gc", "--grace-hours", "0", "--retain-days", "0", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["expired_versions"], report["oldest_version"]) == (4, 4)
    cat = Catalog.open(root)
    assert cat.read("A")["value"].to_pylist() == [1.0, 2.0]
    assert cat.verify().ok
    cat.close()


# -- gc when a version cannot be read ------------------------------------------------------

GC_NO_HELD = CatalogOptions(inline_rows=0, pending_records=0)


async def gc_through(root: Path, *rules: FaultRule, **gc: Any) -> GcReport:
    """gc on ``root`` through a store that fails as ``rules`` say."""
    faulty = FaultyStore(open_store(str(root)), FaultPlan(rules))
    cat = await AsyncCatalog.open_store(faulty)
    try:
        return await cat.collect_garbage(grace=dt.timedelta(0), **gc)
    finally:
        await cat.close()


def three_versions_of_gdp(root: Path) -> list[str]:
    """v1 creates GDP, v2 writes a row, v3 rewrites it: v2's file only v2 references.
    Returns the files on disk under data/."""
    cat = Catalog.open(str(root), create=True, options=GC_NO_HELD)
    cat.create(id="GDP", frequency="quarterly")
    cat.write("GDP", ([dt.date(2000, 1, 1)], [1.0]))
    cat.write("GDP", ([dt.date(2000, 1, 1)], [1.5]), "replace_range", start=dt.date(2000, 1, 1))
    cat.close()
    return data_files(root)


def data_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / "data").rglob("*.parquet"))


def assert_whole(root: Path, files: list[str]) -> None:
    assert data_files(root) == files
    cat = Catalog.open(str(root))
    assert cat.read("GDP")["value"].to_pylist() == [1.5]
    assert cat.read("GDP", as_of=2)["value"].to_pylist() == [1.0]
    assert cat.verify().ok
    cat.close()


def test_gc_with_retention_on_a_full_disk_deletes_what_it_can_before_the_floor(
    tmp_path: Path,
) -> None:
    """Writing the retention floor takes space, deleting does not: on a full disk gc
    --retain-days failed at the floor and freed nothing. It now deletes what it may
    without the floor first, and writes the floor again; where that frees too
    little, it says to free space."""
    from catalog_store.errors import StorageFullError
    from catalog_store.keys import data_file_key

    root = tmp_path / "store"
    files = three_versions_of_gdp(root)
    stray = data_file_key("GDP", "")
    (root / stray).write_bytes(b"left by a writer that died")
    old = time.time() - 7200
    os.utime(root / stray, (old, old))
    full = FaultRule(FaultKind.FULL, operations=frozenset({"put"}), keys="_floor$")
    always = dataclass_replace(full, probability=1.0)
    with pytest.raises(StorageFullError, match=r"deleted 1 unreferenced objects.*free space"):
        asyncio.run(gc_through(root, always, retain=dt.timedelta(0)))
    assert not (root / stray).exists() and data_files(root) == files  # the floor: not raised
    (root / stray).write_bytes(b"left by a writer that died")
    once = dataclass_replace(full, calls=frozenset({1}))
    report = asyncio.run(gc_through(root, once, retain=dt.timedelta(0)))
    assert report.oldest_version == 3
    assert report.deleted == 1 + len(report.candidates)  # the stray, then what v2 named
    assert not (root / stray).exists() and len(data_files(root)) == len(files) - 1
    cat = Catalog.open(str(root))
    assert cat.read("GDP")["value"].to_pylist() == [1.5]
    assert cat.verify().ok
    cat.close()


def test_gc_stops_when_a_shard_cannot_be_read_and_deletes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    files = three_versions_of_gdp(root)
    # The store failing for a moment, on the newest shard: before, gc took it to
    # reference nothing and deleted the series' live file.
    unavailable = FaultRule(
        FaultKind.UNAVAILABLE, probability=1.0, operations=frozenset({"get"}), keys="^meta/"
    )
    with pytest.raises(StorageUnavailableError):
        asyncio.run(gc_through(root, unavailable))
    assert_whole(root, files)


def test_gc_reads_a_version_again_when_its_body_came_cut_short(tmp_path: Path) -> None:
    root = tmp_path / "store"
    files = three_versions_of_gdp(root)
    once = FaultRule(FaultKind.TRUNCATE, keys=manifest_key(2), calls=frozenset({1}))
    report = asyncio.run(gc_through(root, once))
    assert report.deleted == 0
    assert_whole(root, files)


def test_gc_keeps_what_a_damaged_version_may_hold_and_refuses_on_the_newest(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    files = three_versions_of_gdp(root)
    # An old version that stays unreadable is passed over, not a stop for good
    # (repair only mends the newest): what was written around it is kept, as its
    # own files may be among it.
    old = FaultRule(FaultKind.CORRUPT, keys=manifest_key(2), probability=1.0)
    report = asyncio.run(gc_through(root, old))
    # Its shard and the file of its row, which no other version references.
    assert (report.damaged_versions, report.deleted, report.kept_near_damage) == ([2], 0, 2)
    assert_whole(root, files)
    newest = FaultRule(FaultKind.CORRUPT, keys=manifest_key(3), probability=1.0)
    with pytest.raises(GcRefusedError, match="version 3 cannot be read"):
        asyncio.run(gc_through(root, newest))
    assert_whole(root, files)

    # Damage that repair has taken out of the catalog does not hold gc back.
    newest = root / manifest_key(3)
    newest.write_bytes(newest.read_bytes()[:-10])
    cat = Catalog.open(str(root))
    assert cat.repair().healthy_version == 2
    cat.close()
    report = asyncio.run(gc_through(root))
    # What only the damaged version 3 named: its shard and the file of its row.
    assert sorted(key.split("/")[0] for key in report.candidates) == ["data", "meta"]
    cat = Catalog.open(str(root))
    assert cat.read("GDP")["value"].to_pylist() == [1.0]
    cat.close()


@pytest.mark.parametrize("denied", ["^data/", "^meta/"])
def test_repair_refuses_what_it_may_not_read_rather_than_roll_back_over_it(
    tmp_path: Path, denied: str
) -> None:
    """Not permitted to read the newest version's files (a loader's umask, a bucket
    policy): repair took that for damage and restored an older version, rolling
    every later change back over a whole catalog."""
    root = tmp_path / "store"
    files = three_versions_of_gdp(root)
    refused = FaultRule(
        FaultKind.PERMISSION, probability=1.0, operations=frozenset({"get"}), keys=denied
    )

    async def main() -> None:
        faulty = FaultyStore(open_store(str(root)), FaultPlan([refused]))
        cat = await AsyncCatalog.open_store(faulty)
        try:
            report = await cat.verify()
            assert {p.kind for p in report.problems} == {"unreadable_object"}, report.problems
            with pytest.raises(RepairRefusedError, match="cannot be read"):
                await cat.repair()
        finally:
            await cat.close()

    asyncio.run(main())
    assert_whole(root, files)  # version 3 is still the newest, and nothing was committed


def test_a_manifest_verify_may_not_read_is_unreadable_not_bad(tmp_path: Path) -> None:
    root = tmp_path / "store"
    three_versions_of_gdp(root)
    refused = FaultRule(
        FaultKind.PERMISSION, probability=1.0, operations=frozenset({"get"}), keys=manifest_key(2)
    )

    async def main() -> None:
        cat = await AsyncCatalog.open_store(
            FaultyStore(open_store(str(root)), FaultPlan([refused]))
        )
        try:
            report = await cat.verify()
            assert [(p.kind, p.key) for p in report.problems] == [
                ("unreadable_object", manifest_key(2))
            ]
        finally:
            await cat.close()

    asyncio.run(main())


def test_a_retention_floor_after_the_newest_version_is_reported_and_stops_gc(
    tmp_path: Path,
) -> None:
    # Before, verify checked no version and passed, and gc took every version for
    # expired and deleted the newest version's shard and files.
    root = tmp_path / "store"
    files = three_versions_of_gdp(root)
    (root / RETENTION_FLOOR).write_text("9")
    with pytest.raises(GcRefusedError, match="after the newest version 3"):
        asyncio.run(gc_through(root))
    cat = Catalog.open(str(root))
    report = cat.verify()
    assert not report.ok
    assert any(p.key == RETENTION_FLOOR for p in report.problems), report.problems
    # Repair said that no version verifies, as if the versions were damaged.
    with pytest.raises(RepairRefusedError, match=f"{RETENTION_FLOOR} names version 9"):
        cat.repair()
    assert cat.version() == 3
    cat.close()
    (root / RETENTION_FLOOR).unlink()
    assert_whole(root, files)


def test_a_floor_a_late_write_lowered_is_read_as_the_oldest_manifest_kept(
    tmp_path: Path,
) -> None:
    """A gc's floor write that outlived its deadline may land after a later gc raised
    the floor and deleted the manifests up to it: the store holds a floor whose
    manifest is gone. Readers take the oldest manifest kept, and gc writes it back."""
    root = tmp_path / "store"
    with Catalog.open(str(root), create=True) as cat:
        cat.create(id="A", frequency="annual")
        for value in range(6):
            cat.write("A", ([dt.date(2000, 1, 1)], [float(value)]), "upsert")
        newest = cat.version()
        report = cat.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))
    assert report.oldest_version == newest
    (root / RETENTION_FLOOR).write_text("3")  # the late write of an earlier gc's floor
    (root / LATEST_HINT).unlink()  # and no hint: the search starts at the floor
    with Catalog.open(str(root)) as fresh:
        assert fresh.version() == newest
        assert fresh.read("A")["value"].to_pylist() == [5.0]
        with pytest.raises(VersionNotFoundError, match="expired"):
            fresh.read("A", as_of=newest - 1)
        assert fresh.verify().ok
        again = fresh.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))
    assert (again.oldest_version, again.expired_versions) == (newest, 0)
    assert (root / RETENTION_FLOOR).read_text() == str(newest)


class BeforeManifest(FaultyStore):
    """Runs ``during`` once, just before the first ``operation`` (``get`` or
    ``put_if_absent``) on a manifest (or on a key under ``prefix``) goes to the store."""

    def __init__(
        self, inner: Any, operation: str, during: Any = None, prefix: str = "_manifests/0"
    ) -> None:
        super().__init__(inner, FaultPlan([]))
        self.operation = operation
        self.during = during
        self.prefix = prefix

    async def _first(self, operation: str, key: str) -> None:
        wanted = operation == self.operation and key.startswith(self.prefix)
        if wanted and self.during is not None:
            during, self.during = self.during, None
            await during()

    async def get(self, key: str) -> bytes:
        await self._first("get", key)
        return await super().get(key)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        await self._first("put_if_absent", key)
        await super().put_if_absent(key, data)


def test_a_commit_whose_base_gc_expires_meanwhile_lands_above_the_floor(tmp_path: Path) -> None:
    """gc under retention expires the writer's base and the version after it while the
    writer writes: the freed name takes its manifest, below the floor, where no
    reader looks. That commit reported success and was lost, and later commits
    reused its version number; now it builds again on the newest version."""
    root = tmp_path / "store"

    async def main() -> None:
        other = await AsyncCatalog.open(root, create=True)
        await other.create({"id": "S", "frequency": "daily"})
        base = await other.version()

        async def others_commit_then_gc() -> None:
            for i in range(5):
                await other.write("S", ([dt.date(2024, 1, 1 + i)], [float(i)]), "upsert")
            # As gc expires them once they are older than its grace period, which
            # the writer's view of the newest version may be (an idle process).
            latest = await other.version()
            report = GcReport(dry_run=False)
            floor = await expire_versions(other.reader, dt.datetime.now(dt.UTC), latest, 0, report)
            assert floor == base + 5 > base + 1

        # After the writer chose the version to build on, before its write.
        store = BeforeManifest(open_store(str(root)), "put_if_absent", others_commit_then_gc)
        writer = await AsyncCatalog.open_store(store)
        assert await writer.version() == base  # the version it will build on
        written = await writer.write("S", ([dt.date(2024, 2, 1)], [99.0]), "upsert")
        assert written.version == base + 6, "the commit landed below the floor"
        fresh = await AsyncCatalog.open(root)
        assert await fresh.version() == base + 6
        table = await fresh.read("S")
        assert table.column("value").to_pylist() == [0.0, 1.0, 2.0, 3.0, 4.0, 99.0]
        assert (await fresh.verify()).ok
        # The manifest the writer left below the floor was never a version: the
        # next gc deletes it, and counts only the one version that expires.
        zero = dt.timedelta(0)
        report = await fresh.collect_garbage(grace=zero, retain=zero)
        assert (report.oldest_version, report.expired_versions) == (base + 6, 1)
        listed = [i.key async for i in fresh.store.list(f"{MANIFEST_DIR}/")]
        assert sorted(k for k in listed if k.endswith(".json")) == [manifest_key(base + 6)]
        for catalog in (other, writer, fresh):
            await catalog.close()

    asyncio.run(main())


class AfterManifest(BeforeManifest):
    """Runs ``during`` once, just after the first manifest ``put_if_absent`` landed
    and before its caller hears of it (a slow response)."""

    async def put_if_absent(self, key: str, data: bytes) -> None:
        await super(BeforeManifest, self).put_if_absent(key, data)
        await self._first("put_if_absent", key)


def test_a_commit_gc_expires_right_after_it_landed_is_reported_landed(tmp_path: Path) -> None:
    """Another writer commits on top of the new version and a ``gc --retain-days 0``
    expires it before its writer has checked it stands above the floor: the
    writer took it for a version written below the floor, and reported a landed
    append as failed (AppendOrderError on the retry). gc now keeps the versions
    superseded within its grace period."""
    root = tmp_path / "store"

    async def main() -> None:
        other = await AsyncCatalog.open(root, create=True)
        for sid in ("A", "B"):
            await other.create({"id": sid, "frequency": "daily"})
        base = await other.version()
        reports: list[GcReport] = []

        async def commit_on_it_then_gc() -> None:
            for day in (1, 2):
                await other.write("B", ([dt.date(2024, 1, day)], [float(day)]))
            reports.append(await other.collect_garbage(retain=dt.timedelta(0)))

        store = AfterManifest(open_store(str(root)), "put_if_absent", commit_on_it_then_gc)
        writer = await AsyncCatalog.open_store(store)
        written = await writer.write("A", ([dt.date(2024, 1, 1)], [42.0]))
        assert written.version == base + 1
        assert (await writer.read("A")).column("value").to_pylist() == [42.0]
        assert await writer.version() == base + 3
        assert [(r.oldest_version, r.expired_versions) for r in reports] == [(0, 0)]
        for catalog in (other, writer):
            await catalog.close()

    asyncio.run(main())


def test_a_read_of_the_newest_version_survives_a_gc_that_expires_it_meanwhile(
    tmp_path: Path,
) -> None:
    """While a read fetches the files of the newest version, the series is compacted
    and ``gc --retain-days 0`` runs, on a store whose files are older than the
    grace period: gc expired the version just superseded and deleted its files
    under the read, which failed with ObjectNotFoundError, the error of damage."""
    root = tmp_path / "store"

    async def main() -> None:
        writer = await AsyncCatalog.open(root, create=True, options=EAGER)
        await writer.create({"id": "S", "frequency": "daily"})
        for day in (1, 2, 3):
            await writer.write("S", ([dt.date(2024, 1, day)], [float(day)]))
        hours_ago = time.time() - 2 * 3600
        for path in root.rglob("*"):
            os.utime(path, (hours_ago, hours_ago))

        async def compact_then_gc() -> None:
            await writer.compact("S")
            await writer.collect_garbage(retain=dt.timedelta(0))

        store = BeforeManifest(open_store(str(root)), "get", compact_then_gc, prefix="data/")
        reader = await AsyncCatalog.open_store(store)
        assert (await reader.read("S")).column("value").to_pylist() == [1.0, 2.0, 3.0]
        assert store.during is None  # it ran during the read
        for catalog in (writer, reader):
            await catalog.close()

    asyncio.run(main())


def test_verify_and_repair_pass_over_versions_gc_expires_while_they_run(tmp_path: Path) -> None:
    root = tmp_path / "store"

    async def main() -> None:
        other = await AsyncCatalog.open(root, create=True)
        await other.create({"id": "S", "frequency": "daily"})
        for i in range(4):
            await other.write("S", ([dt.date(2024, 1, 1 + i)], [float(i)]), "upsert")
        newest = await other.version()

        async def gc() -> None:
            await other.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))

        store = BeforeManifest(open_store(str(root)), "get")
        checking = await AsyncCatalog.open_store(store)
        store.during = gc
        report = await checking.verify()
        assert report.ok, report.problems  # no "missing manifest" for what gc expired
        assert report.expired and max(report.expired) < newest
        assert report.to_dict()["expired_meanwhile"] == report.expired

        async def commit_then_gc() -> None:
            # The version repair is checking is superseded and expired meanwhile.
            for i in range(2):
                await other.write("S", ([dt.date(2024, 2, 1 + i)], [float(i)]), "upsert")
            await gc()

        store = BeforeManifest(open_store(str(root)), "get")
        repairing = await AsyncCatalog.open_store(store)
        store.during = commit_then_gc
        repaired = await repairing.repair()
        assert repaired.healthy_version == newest + 2
        for catalog in (other, checking, repairing):
            await catalog.close()

    asyncio.run(main())


async def three_writes_of_a(root: Path) -> tuple[AsyncCatalog, list[str]]:
    """A catalog at ``root``: A created (version 1), then a day written at versions 2
    and 3, each into a file of its own; the catalog, and the files in order."""
    cat = await AsyncCatalog.open(root, create=True, options=EAGER)
    await cat.create({"id": "A", "frequency": "daily"})
    files: list[str] = []
    for day in (1, 2):
        before = {info.key async for info in cat.store.list("data/")}
        await cat.write("A", ([dt.date(2024, 1, day)], [float(day)]))
        files += {info.key async for info in cat.store.list("data/")} - before
    return cat, files


def test_verify_takes_what_gc_deletes_under_it_for_expired_not_missing(tmp_path: Path) -> None:
    """verify read version 1's manifest; then ``gc --retain-days 0`` expired it and
    deleted the shard only it names. verify reported that shard missing (ok false,
    status 4), where a verify a moment later passed."""

    async def main() -> None:
        other, _ = await three_writes_of_a(tmp_path / "store")
        zero = dt.timedelta(0)
        store = BeforeManifest(open_store(str(tmp_path / "store")), "get", prefix="meta/")
        checking = await AsyncCatalog.open_store(store)
        store.during = partial(other.collect_garbage, grace=zero, retain=zero)
        report = await checking.verify()
        assert store.during is None  # gc ran as version 1's objects were read
        assert report.ok, report.problems
        assert report.expired == [1, 2]
        assert report.versions_checked == 2  # versions 0 and 3
        for catalog in (other, checking):
            await catalog.close()

    asyncio.run(main())


def test_damage_shared_with_a_version_gc_expires_under_verify_is_reported_where_kept(
    tmp_path: Path,
) -> None:
    """The file version 2 wrote is lost, and versions 2 and 3 name it; gc expires
    version 2 as verify reads the file for it. Only version 3's report of it counts:
    the file is damage there, while version 2 is no longer in the catalog."""

    async def main() -> None:
        other, (lost, _) = await three_writes_of_a(tmp_path / "store")
        await other.store.delete(lost)
        zero = dt.timedelta(0)
        store = BeforeManifest(open_store(str(tmp_path / "store")), "get", prefix="data/")
        checking = await AsyncCatalog.open_store(store)
        store.during = partial(other.collect_garbage, grace=zero, retain=zero)
        report = await checking.verify()
        assert store.during is None
        assert [(p.kind, p.key, p.version) for p in report.problems] == [
            ("missing_object", lost, 3)
        ]
        assert report.expired == [2]
        for catalog in (other, checking):
            await catalog.close()

    asyncio.run(main())


def test_repair_checks_a_version_gc_expires_under_it_as_expired(tmp_path: Path) -> None:
    """What repair checks a version with, as verify: objects gc deletes under it make
    the version expired (repair looks again from the floor), not damaged."""

    async def main() -> None:
        other, _ = await three_writes_of_a(tmp_path / "store")
        zero = dt.timedelta(0)
        store = BeforeManifest(open_store(str(tmp_path / "store")), "get", prefix="meta/")
        checking = await AsyncCatalog.open_store(store)
        store.during = partial(other.collect_garbage, grace=zero, retain=zero)
        report = await verify_version(checking.reader, 2)  # its shard: only it names it
        assert store.during is None
        assert (report.ok, report.expired) == (True, [2])
        for catalog in (other, checking):
            await catalog.close()

    asyncio.run(main())


async def damaged_after_compaction(target: StoreTarget) -> int:
    """Series B written twice, then compacted, and the compacted file, which only the
    newest version names, deleted: the newest version does not verify. Returns the
    version before the compaction, which verifies, and which (with older versions)
    alone names B's first two files."""
    cat = await AsyncCatalog.open(
        target.url, target.options or None, create=True, options=CatalogOptions(inline_rows=0)
    )
    await cat.create({"id": "B", "frequency": "daily"})
    for day in (1, 2):
        await cat.write("B", ([dt.date(2020, 1, day)], [10.0 + day]))
    good = await cat.version()
    before = {info.key async for info in cat.store.list("data/")}
    await cat.compact("B", min_files=2)
    (compacted,) = {info.key async for info in cat.store.list("data/")} - before
    await cat.store.delete(compacted)
    await cat.close()
    return good


def gc_elsewhere(target: StoreTarget, reports: list[dict[str, Any]]) -> Any:
    """Runs ``gc --retain-days 0 --grace-hours 0`` in a process of its own, once."""

    async def run() -> None:
        with SPAWN.Pool(1) as pool:
            reports.append(
                pool.apply(workers.gc_keeping_only_the_newest, (target.url, target.options))
            )

    return run


def test_repair_refuses_to_restore_a_version_gc_expired_after_it_verified(
    shared_target: StoreTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """repair verified the version to restore; then gc --retain-days 0, in another
    process, expired it and deleted the files only it and older versions name.
    repair committed the restore naming them and reported success: the newest
    version could not be read."""
    import catalog_store.repair as repair_module

    reports: list[dict[str, Any]] = []
    gc = gc_elsewhere(shared_target, reports)
    changed_back = repair_module.changed_back

    async def gc_then_changed_back(*args: Any) -> Any:
        await gc()  # after the versions were verified, before the restore is built
        return await changed_back(*args)

    async def main() -> None:
        good = await damaged_after_compaction(shared_target)
        monkeypatch.setattr(repair_module, "changed_back", gc_then_changed_back)
        cat = await AsyncCatalog.open(shared_target.url, shared_target.options or None)
        with pytest.raises(CatalogMovedOnError, match=f"expired version {good}.*repair again"):
            await cat.repair()
        assert [r["oldest_version"] for r in reports] == [good + 1]
        assert await cat.version() == good + 1  # nothing committed
        await cat.close()

    asyncio.run(main())


def test_gc_deletes_nothing_while_a_restore_it_expires_is_being_written(
    shared_target: StoreTarget,
) -> None:
    """gc --retain-days 0, in another process, raised the floor past the version repair
    restores, read the newest version and deleted the files only expired versions
    name, all between repair's last check and its manifest's write: the restore
    named deleted files, and the newest version could not be read. gc now finds
    the restore's marker and deletes nothing; the next gc keeps what it names."""
    reports: list[dict[str, Any]] = []

    async def main() -> None:
        good = await damaged_after_compaction(shared_target)
        store = BeforeManifest(
            open_store(shared_target.url, shared_target.options or None),
            "put_if_absent",
            gc_elsewhere(shared_target, reports),
        )
        cat = await AsyncCatalog.open_store(store)
        report = await cat.repair()
        assert (report.healthy_version, report.new_version) == (good, good + 2)
        ((gc_report,),) = [reports]
        assert gc_report["oldest_version"] == good + 1
        assert gc_report["deleted"] == 0 and gc_report["unreferenced_old_enough"] > 0
        assert [key.split("/")[0] for key in gc_report["restores_in_progress"]] == ["_restoring"]
        assert [info.key async for info in store.list("_restoring/")] == []  # removed
        fresh = await AsyncCatalog.open(shared_target.url, shared_target.options or None)
        assert (await fresh.read("B")).column("value").to_pylist() == [11.0, 12.0]
        assert (await fresh.verify()).ok
        await gc_elsewhere(shared_target, reports)()
        # Nothing left to delete: the files gc held back are the restore's now.
        assert reports[1]["restores_in_progress"] == []
        assert reports[1]["unreferenced_old_enough"] == 0
        assert (await fresh.read("B")).column("value").to_pylist() == [11.0, 12.0]
        assert (await fresh.verify()).ok
        for catalog in (cat, fresh):
            await catalog.close()

    asyncio.run(main())


def test_a_marker_a_dead_repair_left_stops_gc_for_its_lifetime_only(tmp_path: Path) -> None:
    """A repair that died left its marker: gc deletes nothing while it may still be
    restoring, and says so; once the marker is older than its lifetime, gc passes
    over it, removes it, and deletes."""
    from catalog_store.restore_marker import MARKER_LIFETIME, RestoreMarker

    root = tmp_path / "store"
    zero = dt.timedelta(0)

    async def main() -> None:
        cat = await AsyncCatalog.open(root, create=True, options=CatalogOptions(inline_rows=0))
        await cat.create({"id": "S", "frequency": "daily"})
        for day in (1, 2):
            await cat.write("S", ([dt.date(2024, 1, day)], [float(day)]))
        await cat.compact("S", min_files=2)
        await RestoreMarker(cat.store, 1).write()
        held = await collect_garbage(cat.reader, grace=zero, retain=zero)
        assert held.deleted == 0 and len(held.candidates) == 2
        assert held.stale_restore_markers == 0
        assert held.restores_in_progress == [i.key async for i in cat.store.list("_restoring/")]
        later = dt.datetime.now(dt.UTC) + MARKER_LIFETIME + dt.timedelta(minutes=1)
        report = await collect_garbage(cat.reader, grace=zero, retain=zero, now=later)
        assert report.restores_in_progress == [] and report.stale_restore_markers == 1
        assert report.deleted == 2
        assert [info.key async for info in cat.store.list("_restoring/")] == []
        assert (await cat.read("S")).column("value").to_pylist() == [1.0, 2.0]
        assert (await cat.verify()).ok
        await RestoreMarker(cat.store, 1).write()
        await cat.close()

    asyncio.run(main())
    from typer.testing import CliRunner

    from catalog_store.cli import app

    held = CliRunner().invoke(app, ["--root", str(root), "gc", "--grace-hours", "0"])
    assert held.exit_code == 0, held.output
    said = " ".join(held.stdout.split())  # as the console wraps it
    assert "deleted no object: a repair is restoring an older version (_restoring/" in said


def test_a_restore_that_outlives_its_marker_is_reported_at_risk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restore slower than gc honours its marker may name what a gc deleted: repair
    says so, with the version it committed, rather than claim success."""
    import catalog_store.restore_marker as restore_marker

    target = StoreTarget("local", str(tmp_path / "store"))

    async def main() -> None:
        good = await damaged_after_compaction(target)
        monkeypatch.setattr(restore_marker, "MARKER_LIFETIME", dt.timedelta(0))
        cat = await AsyncCatalog.open(target.url)
        with pytest.raises(RestoreAtRiskError, match="fincat verify") as raised:
            await cat.repair()
        assert (raised.value.report.healthy_version, raised.value.report.new_version) == (
            good,
            good + 2,
        )
        assert [info.key async for info in cat.store.list("_restoring/")] == []
        await cat.close()

    asyncio.run(main())


def test_gc_keeps_what_a_restore_that_lands_while_it_runs_names(
    shared_target: StoreTarget,
) -> None:
    """A repair in another process restores a version after gc --retain-days 0 read
    the newest version, and before gc raised the floor past the restored one: gc
    kept what the newest version it had read names, and deleted the files of B the
    restore names, which repair had reported landed."""
    repaired: list[dict[str, Any]] = []

    async def repair_elsewhere() -> None:
        with SPAWN.Pool(1) as pool:
            repaired.append(pool.apply(workers.repair, (shared_target.url, shared_target.options)))

    async def main() -> None:
        good = await damaged_after_compaction(shared_target)
        store = BeforeManifest(
            open_store(shared_target.url, shared_target.options or None),
            "get",
            prefix=RETENTION_FLOOR,
        )
        cat = await AsyncCatalog.open_store(store)
        store.during = repair_elsewhere  # once gc has read the newest version
        zero = dt.timedelta(0)
        report = await cat.collect_garbage(grace=zero, retain=zero)
        assert [r["new_version"] for r in repaired] == [good + 2]
        assert report.oldest_version == good + 1
        fresh = await AsyncCatalog.open(shared_target.url, shared_target.options or None)
        assert (await fresh.read("B")).column("value").to_pylist() == [11.0, 12.0]
        assert (await fresh.verify()).ok
        for catalog in (cat, fresh):
            await catalog.close()

    asyncio.run(main())
