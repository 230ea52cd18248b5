"""``verify`` finds every kind of damage and passes a healthy store."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from catalog_store import Catalog
from catalog_store.errors import IntegrityError
from catalog_store.hint import LatestHint, decode_hint, encode_hint
from catalog_store.keys import LATEST_HINT, RETENTION_FLOOR, manifest_key
from catalog_store.repair import RepairRefusedError
from catalog_store.storage import open_store
from tests.conftest import StoreTarget


def seeded(cat: Catalog) -> None:
    with cat.batch() as batch:
        for i in range(5):
            batch.create({"id": f"S{i}", "frequency": "annual", "external_ids": {"x": f"id{i}"}})
    for i in range(5):
        cat.write(
            f"S{i}", ([dt.date(2000 + k, 1, 1) for k in range(10)], [float(k) for k in range(10)])
        )
    cat.write("S0", ([dt.date(2003, 1, 1)], [99.0]), mode="upsert")
    cat.write("S1", None, mode="delete_range", start=dt.date(2002, 1, 1), end=dt.date(2004, 1, 1))
    # Earlier versions hold rows and records in their manifests; the latest writes
    # them all into data files and shards, for the tests to damage.
    assert cat.checkpoint() is not None


def test_a_healthy_store_verifies(target: StoreTarget) -> None:
    cat = target.open()
    seeded(cat)
    report = cat.verify()
    assert report.ok, report.problems
    assert report.versions_checked == cat.version() + 1
    assert report.series_checked >= 5
    assert report.objects_checked > 10
    assert cat.verify(latest_only=True).versions_checked == 1
    assert report.to_dict()["ok"] is True
    cat.close()


@pytest.fixture
def local(tmp_path: Path) -> tuple[Catalog, Path]:
    root = tmp_path / "store"
    cat = Catalog.open(str(root), create=True)
    seeded(cat)
    return cat, root


def test_a_corrupted_data_file_is_found(local: tuple[Catalog, Path]) -> None:
    cat, root = local
    victim = sorted((root / "data").rglob("*.parquet"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    report = cat.verify()
    assert not report.ok
    assert report.counts().get("corrupt_object", 0) >= 1
    assert any(p.key.endswith(victim.name) for p in report.problems)
    cat.close()


def test_a_missing_shard_and_a_damaged_manifest_are_found(local: tuple[Catalog, Path]) -> None:
    cat, root = local
    latest = json.loads((root / manifest_key(cat.version())).read_bytes())
    (root / latest["shards"][0]["path"]).unlink()
    manifest = root / manifest_key(2)
    manifest.write_bytes(b"{not json")
    fresh = Catalog.open(str(root))
    report = fresh.verify()
    kinds = report.counts()
    assert kinds.get("missing_object", 0) >= 1
    assert kinds.get("bad_manifest", 0) == 1
    fresh.close()
    cat.close()


def test_orphans_are_listed_but_are_not_problems(local: tuple[Catalog, Path]) -> None:
    cat, root = local
    orphan = root / "data" / "S0~0000000000000000" / f"part-{'0' * 32}.parquet"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a crashed writer")
    (orphan.parent / "notes.txt").write_text("not an object a commit writes")
    report = cat.verify()
    assert report.ok
    assert [o for o in report.orphans if o.startswith("data/S0~")] == [
        f"data/S0~0000000000000000/part-{'0' * 32}.parquet"
    ]
    cat.close()


def test_a_manifest_holding_bytes_that_are_not_utf8_is_damage(tmp_path: Path) -> None:
    # One flipped byte inside a JSON string made msgspec raise UnicodeDecodeError,
    # which no caller took for damage: reads failed untyped, verify and gc stopped.
    root = tmp_path / "store"
    cat = Catalog.open(str(root), create=True)
    cat.create(id="A", frequency="annual")
    cat.create(id="B", frequency="annual")
    path = root / manifest_key(1)
    data = path.read_bytes()
    at = data.index(b'"commit_id":"') + len(b'"commit_id":"')
    path.write_bytes(data[:at] + b"\xff" + data[at + 1 :])
    fresh = Catalog.open(str(root))
    with pytest.raises(IntegrityError, match="cannot be parsed"):
        fresh.get("A", as_of=1)
    report = fresh.verify()
    assert [p.kind for p in report.problems] == ["bad_manifest"], report.problems
    for opened in (cat, fresh):
        opened.close()


def test_an_object_the_store_will_not_read_is_reported_not_fatal(tmp_path: Path) -> None:
    # A directory where a data file should be (as an I/O or permission error would)
    # stopped verify with an error, and repair with it.
    from catalog_store import CatalogOptions

    root = tmp_path / "store"
    cat = Catalog.open(str(root), create=True, options=CatalogOptions(inline_rows=0))
    cat.create(id="A", frequency="annual")
    cat.write("A", ([dt.date(2000, 1, 1)], [1.0]))
    (data,) = (root / "data").rglob("*.parquet")
    data.unlink()
    data.mkdir()
    report = Catalog.open(str(root)).verify()
    kinds = [(p.kind, p.key) for p in report.problems]
    assert ("unreadable_object", data.relative_to(root).as_posix()) in kinds, kinds
    # Unreadable is no proof of damage (not permitted reads so too): repair refuses
    # until the object is readable again, or removed as lost.
    with pytest.raises(RepairRefusedError, match="cannot be read"):
        cat.repair()
    data.rmdir()
    assert cat.repair().healthy_version == 1
    assert Catalog.open(str(root)).verify().ok
    cat.close()


def test_deleted_newest_manifests_are_found_and_repair_reports_them(
    target: StoreTarget, caplog: pytest.LogCaptureFixture
) -> None:
    # The newest commits' manifests deleted (by hand, by a partial restore): reads
    # show the version before them, and nothing but the hint, which a commit writes
    # after its manifest has landed, remembers that they were committed.
    cat = target.open()
    seeded(cat)
    kept = cat.version()
    cat.write("S2", ([dt.date(2010, 1, 1)], [1.5]))
    cat.write("S3", ([dt.date(2010, 1, 1)], [2.5]))
    newest = cat.version()
    cat.close()  # its hint names the newest version

    async def delete_newest() -> None:
        store = open_store(target.url, target.options or None)
        for version in (kept + 1, newest):
            await store.delete(manifest_key(version))
        await store.close()

    asyncio.run(delete_newest())

    fresh = target.open(create=False)
    with caplog.at_level(logging.WARNING, logger="catalog_store.snapshot"):
        assert fresh.version() == kept
    assert f"names version {newest}, but the newest manifest is version {kept}" in caplog.text
    report = fresh.verify()
    assert [(p.kind, p.key, p.version) for p in report.problems] == [
        ("missing_manifest", manifest_key(newest), newest)
    ]
    assert f"versions {kept + 1}..{newest} are missing" in report.problems[0].detail
    assert not fresh.verify(latest_only=True).ok

    repaired = fresh.repair()
    assert (repaired.new_version, repaired.lost_versions) == (None, [kept + 1, newest])
    assert "backup" in repaired.message
    # Reported once: repair rewrites the hint, and verify passes from then on.
    assert fresh.verify().ok
    assert fresh.repair().lost_versions == []
    fresh.close()


@pytest.mark.parametrize(
    "hint",
    [
        encode_hint(99)[:-1] + (b" " if encode_hint(99).endswith(b"\t") else b"\t"),  # torn
        b"99",  # the bare number stores held before the checksum
        encode_hint(99)[:-2],  # cut short
    ],
    ids=["torn", "bare", "short"],
)
def test_a_hint_that_proves_nothing_is_no_damage(local: tuple[Catalog, Path], hint: bytes) -> None:
    cat, root = local
    (root / LATEST_HINT).write_bytes(hint)
    fresh = Catalog.open(str(root))
    assert fresh.version() == cat.version()
    assert fresh.verify().ok
    fresh.close()
    cat.close()


@pytest.mark.parametrize("version", [0, 7, 10, 99, 123_456_789, 10**19])
def test_a_release_before_the_checksum_reads_the_version_from_the_hint(version: int) -> None:
    # Every earlier fincat reads the hint as int(text.strip()); where that failed it
    # probed every version from 0, one request each: a rolling upgrade (old and new
    # gateways on one bucket) or a rollback must not cost that.
    hint = encode_hint(version)
    assert int(hint.decode().strip()) == version
    assert decode_hint(hint) == LatestHint(version, attested=True)


def test_the_hint_keeps_its_width(tmp_path: Path) -> None:
    # Rewritten in place without a flush, a shorter hint over a longer one was "90"
    # read while the file was being cut to length.
    hint = tmp_path / "c" / LATEST_HINT
    cat = Catalog.open(str(tmp_path / "c"), create=True)
    sizes = set()
    for i in range(11):
        cat.create(id=f"S{i}", frequency="annual")
        if hint.exists():
            sizes.add(len(hint.read_bytes()))
    cat.close()
    assert decode_hint(hint.read_bytes()) == LatestHint(11, attested=True)
    assert sizes == {len(hint.read_bytes())}


@pytest.mark.parametrize("floor", [b"\x00garbage", b"-2", b"+3", b"1_0"])
def test_a_retention_floor_that_is_not_a_number_is_reported(
    local: tuple[Catalog, Path], floor: bytes
) -> None:
    # It stopped verify with an error (status 1), not a report of the damage (4);
    # a negative one was taken as a floor, and verify made up missing manifests.
    cat, root = local
    (root / RETENTION_FLOOR).write_bytes(floor)
    fresh = Catalog.open(str(root))
    report = fresh.verify()
    assert [(p.kind, p.key) for p in report.problems] == [("bad_manifest", RETENTION_FLOOR)]
    assert "write the oldest version kept into it" in report.problems[0].detail
    (root / RETENTION_FLOOR).write_text("0")
    assert fresh.verify().ok
    fresh.close()
    cat.close()
