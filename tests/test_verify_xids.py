"""``verify`` compares the external-id index with the ids the series carry, held
series applied as readers apply them, and names each disagreement."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from catalog_store import Catalog, verify_index
from catalog_store.errors import SeriesNotFoundError
from catalog_store.keys import XID_DIR, checksum, manifest_key, shard_file_key, shard_of
from catalog_store.records import (
    Manifest,
    PendingRecord,
    ShardRef,
    encode_manifest,
    encode_xid_shard,
    xid_key,
)
from catalog_store.verify_report import VerifyReport
from tests.conftest import EAGER

Pairs = list[tuple[str, str]]


def latest(cat: Catalog) -> Manifest:
    return cat._runner.run(cat.inner.snapshot()).manifest


def commit(cat: Catalog, **fields: Any) -> None:
    """Commit the next version with ``fields`` changed, as a faulty writer would."""
    base = latest(cat)
    manifest = msgspec.structs.replace(
        base, version=base.version + 1, parent=base.version, commit_id="f" * 32, **fields
    )
    store = cat.inner.reader.store
    cat._runner.run(store.put_if_absent(manifest_key(manifest.version), encode_manifest(manifest)))


def entries(cat: Catalog) -> dict[int, Pairs]:
    """The latest index, shard by shard, as stored."""
    manifest = latest(cat)
    found = {}
    for position, ref in enumerate(manifest.xid_shards):
        if ref is not None:
            found[position] = cat._runner.run(verify_index.read_index_shard(cat.inner.store, ref))
    return found


def home(cat: Catalog, provider: str, external_id: str) -> int:
    """The index shard a lookup of the id reads."""
    return shard_of(xid_key(provider, external_id), latest(cat).shard_count)


def commit_index(
    cat: Catalog, shards: dict[int, Pairs], counts: dict[int, int] | None = None
) -> None:
    """Commit the next version with the index shards at these positions replaced by
    well-formed, checksummed shards of exactly ``pairs``: only a comparison can tell.
    ``counts`` records, for some positions, a count other than the entries'."""
    xid_shards: list[ShardRef | None] = list(latest(cat).xid_shards)
    for position, pairs in shards.items():
        data = encode_xid_shard(pairs)
        path = shard_file_key(XID_DIR, position)
        cat._runner.run(cat.inner.store.put_new(path, data))
        count = (counts or {}).get(position, len(pairs))
        xid_shards[position] = ShardRef(
            path=path, size=len(data), sha256=checksum(data), count=count
        )
    commit(cat, xid_shards=xid_shards)


def index_problems(report: VerifyReport) -> set[tuple[str, str | None]]:
    return {(p.kind, p.series_id) for p in report.problems if p.kind.startswith("index_")}


def detail_of(report: VerifyReport, kind: str) -> str:
    (detail,) = [p.detail for p in report.problems if p.kind == kind]
    return detail


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[Catalog]:
    """S0..S5 carrying fred:F0..F5 (S0 an ecb id too) and NOID none, all in shards."""
    with Catalog.open(tmp_path / "store", create=True, options=EAGER) as cat:
        with cat.batch() as batch:
            for i in range(6):
                ids = {"fred": f"F{i}", **({"ecb": "E0"} if i == 0 else {})}
                batch.create({"id": f"S{i}", "frequency": "monthly", "external_ids": ids})
            batch.create({"id": "NOID", "frequency": "monthly"})
        assert cat.verify().ok
        yield cat


def test_a_healthy_catalog_with_external_ids_verifies_with_held_series(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "store", create=True) as cat:
        with cat.batch() as batch:
            for name in "ABCD":
                batch.create(
                    {"id": name, "frequency": "daily", "external_ids": {"fred": name.lower()}}
                )
        assert {entry.id for entry in latest(cat).records_pending} == set("ABCD")
        assert cat.checkpoint() is not None
        assert cat.verify().external_ids_checked == 4
        # Held from here on: the shards still carry the ids as they were.
        with cat.batch() as batch:  # a swap, in one commit
            batch.update("A", {"external_ids": {"fred": "b"}})
            batch.update("B", {"external_ids": {"fred": "a", "ecb": "B1"}})
        cat.delete("C")  # its id is free
        cat.update("D", {"external_ids": {"fred": "c"}})  # and taken
        cat.create(id="E", frequency="daily", external_ids={"fred": "d"})  # D's old one
        held = {entry.id: entry.record for entry in latest(cat).records_pending}
        assert set(held) == set("ABCDE") and held["C"] is None
        assert cat.find_by_external_id("fred", "a").id == "B"
        assert cat.find_by_external_id("fred", "d").id == "E"
        report = cat.verify()
        assert report.ok, report.problems
        assert report.external_ids_checked == 5
        assert cat.checkpoint() is not None
        report = cat.verify(latest_only=True)
        assert report.ok, report.problems
        assert report.external_ids_checked == 5


def test_an_entry_whose_series_is_gone_or_no_longer_carries_the_id(cat: Catalog) -> None:
    shards = entries(cat)
    for series_id, external_id in (("GONE", "GHOST"), ("S2", "OLD")):
        position = home(cat, "fred", external_id)
        pairs = shards.get(position, [])
        shards[position] = sorted([*pairs, (xid_key("fred", external_id), series_id)])
    commit_index(cat, shards)
    report = cat.verify()
    assert index_problems(report) == {("index_stale", "GONE"), ("index_stale", "S2")}
    assert {p.kind for p in report.problems} == {"index_stale"}
    details = {p.series_id: p.detail for p in report.problems}
    assert details == {
        "GONE": "fred:GHOST is indexed to 'GONE', which is gone",
        "S2": "fred:OLD is indexed to 'S2', which does not carry it",
    }
    assert report.external_ids_checked == 7
    assert all(p.version == cat.version() for p in report.problems)


def test_an_id_a_series_carries_missing_from_the_index(cat: Catalog) -> None:
    position = home(cat, "ecb", "E0")
    shards = entries(cat)
    commit_index(cat, {position: [p for p in shards[position] if p[1] != "S0"]})
    report = cat.verify(latest_only=True)
    assert index_problems(report) == {("index_missing", "S0")}
    assert (
        detail_of(report, "index_missing")
        == "ecb:E0 is carried by 'S0'; the index does not hold it"
    )
    with pytest.raises(SeriesNotFoundError):
        cat.find_by_external_id("ecb", "E0")  # what the problem means for a user


def test_entries_swapped_between_two_series(cat: Catalog) -> None:
    shards = entries(cat)
    swap = {xid_key("fred", "F1"): "S2", xid_key("fred", "F2"): "S1"}
    for position in {home(cat, "fred", "F1"), home(cat, "fred", "F2")}:
        shards[position] = [(key, swap.get(key, series)) for key, series in shards[position]]
    commit_index(cat, shards)
    report = cat.verify(latest_only=True)
    assert index_problems(report) == {("index_stale", "S1"), ("index_stale", "S2")}
    assert sorted(p.detail for p in report.problems) == [
        "fred:F1 is indexed to 'S2', which does not carry it; carried by 'S1'",
        "fred:F2 is indexed to 'S1', which does not carry it; carried by 'S2'",
    ]


def test_an_id_indexed_twice_to_two_series(cat: Catalog) -> None:
    position = home(cat, "fred", "F3")
    key = xid_key("fred", "F3")
    pairs = entries(cat)[position]
    at = pairs.index((key, "S3"))
    commit_index(cat, {position: [*pairs[: at + 1], (key, "S9"), *pairs[at + 1 :]]})
    report = cat.verify(latest_only=True)
    # Lookups take the last entry: S9, which does not exist.
    assert index_problems(report) == {("index_duplicate", "S3"), ("index_stale", "S9")}
    assert detail_of(report, "index_duplicate") == (
        "fred:F3 is indexed 2 times, to 'S3', 'S9'; lookups find 'S9'"
    )
    assert detail_of(report, "index_stale") == (
        "fred:F3 is indexed to 'S9', which is gone; carried by 'S3'"
    )


def test_an_entry_in_a_shard_its_id_does_not_hash_to(cat: Catalog) -> None:
    shards = entries(cat)
    right = home(cat, "fred", "F4")
    wrong = (right + 1) % latest(cat).shard_count
    moved = (xid_key("fred", "F4"), "S4")
    shards[right] = [p for p in shards[right] if p != moved]
    shards[wrong] = sorted([*shards.get(wrong, []), moved])
    commit_index(cat, shards)
    report = cat.verify(latest_only=True)
    # A lookup reads only the shard the id hashes to, and finds nothing there.
    assert index_problems(report) == {("index_misplaced", "S4"), ("index_missing", "S4")}
    assert detail_of(report, "index_misplaced") == (
        f"fred:F4 (series 'S4') belongs in index shard {right}, not {wrong}: no lookup reads it"
    )


def test_an_index_shard_that_is_not_what_its_reference_says(cat: Catalog) -> None:
    # A series whose id shares F1's index shard, so that the shard holds two entries.
    position = home(cat, "fred", "F1")
    near = next(f"Y{n}" for n in range(10_000) if home(cat, "fred", f"Y{n}") == position)
    cat.create(id="S6", frequency="monthly", external_ids={"fred": near})
    pairs = entries(cat)[position]
    assert len(pairs) == 2
    commit_index(cat, {position: list(reversed(pairs))}, counts={position: 3})
    report = cat.verify(latest_only=True)
    assert sorted((p.kind, p.detail) for p in report.problems) == [
        ("corrupt_object", "count of index entries differs"),
        ("corrupt_object", "index entries are not in key order"),
    ]


def test_a_series_held_in_the_manifest_is_compared_as_readers_see_it(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "store", create=True) as cat:
        for i in range(3):
            cat.create(id=f"S{i}", frequency="daily", external_ids={"fred": f"F{i}"})
        cat.update("S2", {"title": "held"})
        assert cat.checkpoint() is not None
        cat.update("S2", {"title": "held again"})
        (entry,) = latest(cat).records_pending
        assert entry.record is not None
        # The held record of S2 carries S1's id in place of its own; the shard holds
        # S2 as it was, and S0 is held as deleted while its shard still holds it.
        taken = msgspec.structs.replace(entry.record, external_ids={"fred": "F1"})
        held = [PendingRecord(id="S0", record=None), PendingRecord(id="S2", record=taken)]
        commit(cat, records_pending=held)
        report = cat.verify(latest_only=True)
        assert index_problems(report) == {
            ("index_stale", "S0"),
            ("index_stale", "S2"),
            ("index_duplicate", "S2"),
        }
        details = sorted(p.detail for p in report.problems if p.kind.startswith("index_"))
        assert details == [
            "fred:F0 is indexed to 'S0', which is gone",
            "fred:F1 is carried by 'S1', 'S2'; the index names 'S1'",
            "fred:F2 is indexed to 'S2', which does not carry it",
        ]
        assert report.external_ids_checked == 2


def test_shards_compared_one_group_at_a_time_find_everything(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_index, "HELD_INDEX_BYTES", 0)  # one index shard at a time
    # Every fred entry names another series; the ecb one is gone.
    shards = {
        position: [(key, f"X{series}") for key, series in pairs if key.startswith("fred")]
        for position, pairs in entries(cat).items()
    }
    assert len([pairs for pairs in shards.values() if pairs]) > 2
    commit_index(cat, shards)
    report = cat.verify(latest_only=True)
    assert index_problems(report) == {
        *(("index_stale", f"XS{i}") for i in range(6)),
        ("index_missing", "S0"),
    }


def test_a_manifest_without_index_shards_is_reported(cat: Catalog) -> None:
    # No shard for a lookup to read: shard_of would divide by zero.
    commit(cat, shard_count=0, xid_shards=[])
    report = cat.verify(latest_only=True)
    assert [(p.kind, p.detail) for p in report.problems] == [
        ("bad_manifest", "shard_count is not positive: no lookup can place an id")
    ]
    assert report.external_ids_checked == 0
