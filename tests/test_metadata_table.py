"""The metadata table: Arrow parts by source that every commit keeps equal to the
records, read whole or by source, at any version."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pytest

from catalog_store import AsyncCatalog, Catalog, Series, SeriesFilter, changes, table
from catalog_store.errors import IntegrityError
from catalog_store.keys import checksum, manifest_key, table_part_key
from catalog_store.records import Manifest, PendingRow, encode_manifest
from catalog_store.verify_report import VerifyReport
from tests.conftest import EAGER, StoreTarget

SOURCES = ("", "bls", "ecb", "fred")


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    # The production sizes (2,048 rows a part, 32 pending rows) would need thousands
    # of series to split and dozens of commits to write pending rows into parts.
    monkeypatch.setattr(table, "TABLE_PART_ROWS", 4)
    monkeypatch.setattr(table, "TABLE_PENDING_MAX", 2)


@pytest.fixture
def no_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every commit writes its rows into the parts."""
    monkeypatch.setattr(table, "TABLE_PENDING_MAX", 0)


def expected_rows(series: list[Series]) -> list[dict[str, Any]]:
    """What the table must hold for ``series``, derived from the public models."""
    return [
        {
            "id": s.id,
            "title": s.title,
            "description": s.description,
            "source": s.source,
            "frequency": s.frequency,
            "units": s.units,
            "seasonal_adjustment": s.seasonal_adjustment,
            "tags": list(s.tags),
            "external_ids": sorted(s.external_ids.items()),
            "attributes": s.attributes,
            "partitioning": s.partitioning,
            "created_at": s.created_at,
        }
        for s in sorted(series, key=lambda s: s.id)
    ]


def rows_of(found: pa.Table) -> list[dict[str, Any]]:
    rows = found.to_pylist()
    for row in rows:
        row["external_ids"] = sorted(row["external_ids"])
        row["attributes"] = json.loads(row["attributes"])
    return rows


def latest(cat: Catalog) -> Manifest:
    return cat._runner.run(cat.inner.snapshot()).manifest


def random_spec(rng: random.Random, series_id: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": series_id,
        "frequency": rng.choice(["daily", "monthly"]),
        "source": rng.choice(SOURCES),
        "title": f"Series {series_id} ünïcode",
        "tags": rng.sample(["gdp", "cpi", "rates", "fx"], rng.randrange(3)),
    }
    if rng.random() < 0.3:
        spec["external_ids"] = {"fred": f"F{series_id}"}
    if rng.random() < 0.3:
        spec["attributes"] = {"n": rng.randrange(100), "ok": True, "none": None}
    return spec


def check_table(cat: Catalog) -> None:
    everything = list(cat.iter_series())
    assert rows_of(cat.metadata_table()) == expected_rows(everything)
    for source in SOURCES:
        wanted = [s for s in everything if s.source == source]
        assert rows_of(cat.metadata_table(source=source)) == expected_rows(wanted)
    parts = latest(cat).table
    assert parts is not None
    starts = [(p.source, p.low) for p in parts]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(0 < p.count <= table.TABLE_PART_ROWS for p in parts)
    pending = latest(cat).table_pending
    assert len(pending) <= table.TABLE_PENDING_MAX
    held = sum(p.count for p in parts) - sum(e.placed is not None for e in pending)
    assert held + sum(e.row is not None for e in pending) == len(everything)


@pytest.mark.parametrize("pending_max", [0, 2, 5])
def test_the_table_follows_creates_updates_deletes_and_moves_between_sources(
    tmp_path: Path, small_parts: None, monkeypatch: pytest.MonkeyPatch, pending_max: int
) -> None:
    monkeypatch.setattr(table, "TABLE_PENDING_MAX", pending_max)
    rng = random.Random(11)
    cat = Catalog.open(str(tmp_path / "c"), create=True)
    live: set[str] = set()
    for step in range(12):
        with cat.batch(f"step {step}") as batch:
            for _ in range(rng.randrange(1, 9)):
                roll = rng.random()
                if roll < 0.5 or not live:
                    series_id = f"S{rng.randrange(1000):03d}"
                    if series_id in live:
                        continue
                    batch.create(random_spec(rng, series_id))
                    live.add(series_id)
                elif roll < 0.8:
                    series_id = rng.choice(sorted(live))
                    batch.update(series_id, {"source": rng.choice(SOURCES), "units": "USD"})
                else:
                    series_id = rng.choice(sorted(live))
                    batch.delete(series_id)
                    live.discard(series_id)
        check_table(cat)
    assert cat.verify().ok
    cat.close()


def test_ids_in_order_fill_parts_and_a_source_outlives_its_first_part(
    tmp_path: Path, small_parts: None, no_pending: None
) -> None:
    cat = Catalog.open(str(tmp_path / "c"), create=True)
    for n in range(9):
        cat.create(id=f"S{n}", frequency="daily", source="fred")
    parts = latest(cat).table or []
    assert [(p.low, p.count) for p in parts] == [("", 4), ("S4", 4), ("S8", 1)]
    with cat.batch() as batch:
        for n in range(4):
            batch.delete(f"S{n}")
    assert [p.low for p in latest(cat).table or []] == ["S4", "S8"]
    cat.create(id="A", frequency="daily", source="fred")  # below every part of fred
    cat.create(id="S45", frequency="daily", source="fred")  # among S4..S7: equal pieces
    assert [(p.low, p.count) for p in latest(cat).table or []] == [
        ("", 1),
        ("S4", 3),
        ("S6", 2),
        ("S8", 1),
    ]
    check_table(cat)
    assert cat.verify().ok
    cat.close()


@pytest.mark.parametrize("pending_max", [0, 32])
def test_writing_observations_or_changing_nothing_leaves_the_table_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pending_max: int
) -> None:
    monkeypatch.setattr(table, "TABLE_PENDING_MAX", pending_max)
    cat = Catalog.open(str(tmp_path / "c"), create=True)
    cat.create(id="A", frequency="daily", source="fred", title="A")

    def state() -> tuple[Any, ...]:
        manifest = latest(cat)
        return manifest.table, manifest.table_pending

    before = state()
    cat.write("A", ([dt.date(2024, 1, 2)], [1.0]))
    cat.update("A", {"title": "A"})
    assert state() == before
    cat.update("A", {"title": "B"})
    assert state() != before
    assert cat.metadata_table()["title"].to_pylist() == ["B"]
    cat.close()


def test_pending_rows_reach_the_parts_once_there_are_more_than_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(table, "TABLE_PENDING_MAX", 3)
    cat = Catalog.open(str(tmp_path / "c"), create=True)
    for series_id in "ABC":
        cat.create(id=series_id, frequency="daily", source="fred")
    assert latest(cat).table == [] and len(latest(cat).table_pending) == 3
    check_table(cat)
    cat.create(id="D", frequency="daily", source="fred")  # the fourth: written into a part
    assert [p.count for p in latest(cat).table or []] == [4]
    assert latest(cat).table_pending == []
    cat.update("A", {"source": "ecb"})
    cat.delete("B")
    cat.create(id="E", frequency="daily", source="bls")
    cat.delete("E")  # created and deleted while pending: nothing left to write
    assert [(e.id, e.placed, e.row is None) for e in latest(cat).table_pending] == [
        ("A", "fred", False),
        ("B", "fred", True),
    ]
    check_table(cat)
    assert cat.metadata_table(source="fred")["id"].to_pylist() == ["C", "D"]
    assert [s.id for s in cat.iter_series(SeriesFilter(source="ecb"))] == ["A"]
    assert cat.verify().ok
    cat.close()


def test_as_of_reads_the_table_of_that_version(tmp_path: Path) -> None:
    cat = Catalog.open(str(tmp_path / "c"), create=True)
    cat.create(id="A", frequency="daily", source="fred")
    first = cat.version()
    cat.update("A", {"source": "ecb"})
    cat.create(id="B", frequency="daily", source="fred")
    assert cat.metadata_table(source="fred", as_of=first)["id"].to_pylist() == ["A"]
    assert cat.metadata_table(source="fred")["id"].to_pylist() == ["B"]
    assert cat.metadata_table(as_of=0).num_rows == 0
    cat.close()


@pytest.mark.parametrize(
    "flt",
    [
        SeriesFilter(),
        SeriesFilter(source="fred"),
        SeriesFilter(frequency="monthly"),
        SeriesFilter(tags=("gdp",)),
        SeriesFilter(tags=("gdp", "cpi")),
        SeriesFilter(text="S01"),
        SeriesFilter(text="ÜNÏCODE"),
        SeriesFilter(text="s0", source="fred"),
        SeriesFilter(text="s0", tags=("gdp",), external_provider="fred"),
        SeriesFilter(source="ecb", frequency="daily", tags=("rates",)),
        SeriesFilter(source="nobody"),
        SeriesFilter(external_provider="fred"),
        SeriesFilter(source="fred", external_provider="fred", tags=("cpi",)),
        SeriesFilter(external_provider="ecb"),
    ],
)
def test_a_table_selects_exactly_what_a_listing_selects(
    tmp_path: Path, small_parts: None, flt: SeriesFilter
) -> None:
    rng = random.Random(3)
    cat = Catalog.open(str(tmp_path / "c"), create=True)
    with cat.batch() as batch:
        for n in range(40):
            batch.create(random_spec(rng, f"S{n:03d}"))
    listed = [s.id for s in cat.iter_series(flt)]
    found = cat.metadata_table(
        source=flt.source,
        frequency=flt.frequency,
        tags=flt.tags,
        text=flt.text,
        external_provider=flt.external_provider,
    )
    assert found["id"].to_pylist() == listed
    cat.close()


def test_the_table_on_every_backend(target: StoreTarget) -> None:
    cat = target.open()
    cat.create(id="A", frequency="daily", source="fred", tags=["x"])
    cat.create(id="B", frequency="daily", source="ecb")
    cat.create(id="C", frequency="monthly", source="fred")
    cat.delete("A")
    assert cat.metadata_table(source="fred")["id"].to_pylist() == ["C"]
    assert cat.metadata_table()["id"].to_pylist() == ["B", "C"]
    cat.close()
    again = target.open(create=False)
    assert again.metadata_table(frequency="daily")["id"].to_pylist() == ["B"]
    assert again.verify().ok
    again.close()


def _commit_manifest(root: Path, manifest: Manifest) -> None:
    path = root / manifest_key(manifest.version)
    path.write_bytes(encode_manifest(manifest))


def _next(manifest: Manifest, **fields: Any) -> Manifest:
    return msgspec.structs.replace(
        manifest, version=manifest.version + 1, parent=manifest.version, **fields
    )


def test_a_version_without_the_table_is_read_by_scanning_the_records(tmp_path: Path) -> None:
    # What a manifest written by an older fincat looks like: no table at all.
    root = tmp_path / "c"
    cat = Catalog.open(str(root), create=True)
    cat.create(id="A", frequency="daily", source="fred", title="a")
    cat.create(id="B", frequency="daily", source="ecb")
    old = latest(cat)
    cat.close()
    _commit_manifest(root, _next(old, table=None))
    cat = Catalog.open(str(root))
    assert cat.metadata_table(source="fred")["title"].to_pylist() == ["a"]
    cat.create(id="C", frequency="daily", source="fred")
    assert latest(cat).table is None  # not half-built from the series this commit touched
    assert cat.metadata_table(source="fred")["id"].to_pylist() == ["A", "C"]
    assert [s.id for s in cat.iter_series(SeriesFilter(source="fred"))] == ["A", "C"]
    assert cat.verify().ok
    cat.close()


def test_a_damaged_part_raises_integrity_error_and_verify_reports_it(
    tmp_path: Path, no_pending: None
) -> None:
    root = tmp_path / "c"
    cat = Catalog.open(str(root), create=True)
    cat.create(id="A", frequency="daily", source="fred")
    (part,) = latest(cat).table or []
    cat.close()
    path = root / part.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    cat = Catalog.open(str(root))
    with pytest.raises(IntegrityError):
        cat.metadata_table(source="fred")
    assert cat.get("A").source == "fred"  # the records are not the table
    report = cat.verify()
    assert [(p.kind, p.key) for p in report.problems] == [("corrupt_object", part.path)]
    cat.close()


def catalog_of_two(root: Path, second_source: str) -> Manifest:
    """A catalog of series A (source fred) and B; its latest manifest."""
    cat = Catalog.open(str(root), create=True)
    cat.create(id="A", frequency="daily", source="fred")
    cat.create(id="B", frequency="daily", source=second_source)
    manifest = latest(cat)
    cat.close()
    return manifest


def verify_after(root: Path, manifest: Manifest) -> VerifyReport:
    """Commit ``manifest`` behind the catalog's back, then verify."""
    _commit_manifest(root, manifest)
    cat = Catalog.open(str(root))
    report = cat.verify()
    cat.close()
    return report


def verify_with_rows(root: Path, edit: Callable[[pa.Table], pa.Table]) -> VerifyReport:
    """Verify after the only part of a catalog of A and B (both fred) is replaced by a
    well-formed, checksummed part of ``edit(rows)``: only a comparison can tell."""
    manifest = catalog_of_two(root, "fred")
    (part,) = manifest.table or []
    rows = edit(table.open_part((root / part.path).read_bytes(), part))
    data = table.encode_part(rows)
    edited = msgspec.structs.replace(
        part, path=table_part_key(), size=len(data), sha256=checksum(data), count=rows.num_rows
    )
    (root / edited.path).write_bytes(data)
    return verify_after(root, _next(manifest, table=[edited]))


def test_verify_reports_a_table_that_disagrees_with_the_records(
    tmp_path: Path, no_pending: None
) -> None:
    report = verify_with_rows(tmp_path / "c", lambda rows: rows.slice(0, 1))  # B lost
    assert [(p.kind, p.series_id) for p in report.problems] == [("table_mismatch", "B")]


def test_verify_reports_a_table_row_no_series_has(tmp_path: Path, no_pending: None) -> None:
    def add_ghost(rows: pa.Table) -> pa.Table:
        ghost = rows.slice(1, 1).set_column(0, table.TABLE_SCHEMA.field("id"), pa.array(["C"]))
        return pa.concat_tables([rows, ghost])

    report = verify_with_rows(tmp_path / "c", add_ghost)
    assert [(p.kind, p.series_id) for p in report.problems] == [("table_mismatch", "C")]


def test_verify_reports_parts_out_of_order(tmp_path: Path, no_pending: None) -> None:
    root = tmp_path / "c"
    manifest = catalog_of_two(root, "ecb")
    report = verify_after(root, _next(manifest, table=list(reversed(manifest.table or []))))
    assert [p.kind for p in report.problems] == ["bad_manifest"]


def test_verify_reports_a_pending_row_that_misplaces_its_stale_row(
    tmp_path: Path, no_pending: None
) -> None:
    root = tmp_path / "c"
    manifest = catalog_of_two(root, "ecb")
    # A is held under fred: a rewrite told "ecb" would leave its stale row behind.
    wrong = PendingRow(id="A", placed="ecb", row=None)
    report = verify_after(root, _next(manifest, table_pending=[wrong]))
    assert {(p.kind, p.series_id) for p in report.problems} == {("table_mismatch", "A")}
    assert any("pending row of 'A'" in p.detail for p in report.problems)


def test_gc_keeps_every_part_a_version_references(tmp_path: Path, small_parts: None) -> None:
    cat = Catalog.open(str(tmp_path / "c"), create=True)
    for n in range(10):
        cat.create(id=f"S{n}", frequency="daily", source="fred")
    cat.delete("S3")
    report = cat.collect_garbage(grace=dt.timedelta(0))
    assert report.deleted == 0
    cat.close()
    again = Catalog.open(str(tmp_path / "c"))
    assert again.metadata_table(source="fred").num_rows == 9
    assert again.metadata_table(source="fred", as_of=5).num_rows == 5
    assert again.verify().ok
    again.close()


def test_a_listing_of_a_rare_source_opens_only_the_shards_holding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changes, "SHARD_MIN_SPLIT", 8)
    monkeypatch.setattr(changes, "SHARD_MAX_RECORDS", 8)
    cat = Catalog.open(str(tmp_path / "c"), create=True)
    with cat.batch() as batch:
        for n in range(300):
            source = "rare" if n in (17, 150, 151) else "common"
            batch.create({"id": f"S{n:03d}", "frequency": "daily", "source": source})
    shards = len(latest(cat).shards)
    cat.close()

    async def listing() -> tuple[list[str], int]:
        fresh = await AsyncCatalog.open(tmp_path / "c")
        misses = fresh.reader.cache.misses
        ids = [s.id async for s in fresh.iter_series(SeriesFilter(source="rare"))]
        opened = fresh.reader.cache.misses - misses
        await fresh.close()
        return ids, opened

    ids, opened = asyncio.run(listing())
    assert ids == ["S017", "S150", "S151"]
    assert shards >= 30
    assert opened <= 1 + 2  # the source's one table part, and the two shards holding it


def catalog_of_many_shards(root: Path, monkeypatch: pytest.MonkeyPatch) -> Manifest:
    """60 series of three sources in ~8 shards and ~15 parts; the last 2 changed
    rows still pending in the manifest."""
    monkeypatch.setattr(changes, "SHARD_MIN_SPLIT", 8)
    monkeypatch.setattr(changes, "SHARD_MAX_RECORDS", 8)
    monkeypatch.setattr(table, "TABLE_PART_ROWS", 4)
    monkeypatch.setattr(table, "TABLE_PENDING_MAX", 2)
    cat = Catalog.open(str(root), create=True, options=EAGER)
    with cat.batch() as batch:
        for n in range(60):
            source = ("bls", "ecb", "fred")[n % 3]
            batch.create({"id": f"S{n:03d}", "frequency": "daily", "source": source})
    cat.update("S007", {"title": "moved to a pending row"})
    cat.update("S052", {"title": "and another"})
    manifest = latest(cat)
    cat.close()
    assert len(manifest.shards) >= 6 and len(manifest.table or ()) >= 12
    assert {entry.id for entry in manifest.table_pending} == {"S007", "S052"}
    return manifest


def verify_with_part(
    root: Path, manifest: Manifest, source: str, edit: Callable[[pa.Table], pa.Table]
) -> VerifyReport:
    """Verify after the second part of ``source`` is replaced by ``edit(rows)``, a
    well-formed and checksummed part."""
    parts = list(manifest.table or ())
    index = [i for i, part in enumerate(parts) if part.source == source][1]
    rows = edit(table.open_part((root / parts[index].path).read_bytes(), parts[index]))
    data = table.encode_part(rows)
    parts[index] = msgspec.structs.replace(
        parts[index],
        path=table_part_key(),
        size=len(data),
        sha256=checksum(data),
        count=rows.num_rows,
    )
    (root / parts[index].path).write_bytes(data)
    return verify_after(root, _next(manifest, table=parts))


def test_verify_compares_a_table_of_many_parts_with_many_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "c"
    manifest = catalog_of_many_shards(root, monkeypatch)
    report = verify_after(root, _next(manifest))
    assert report.ok, report.problems


@pytest.mark.parametrize(
    ("edit", "wrong"),
    [
        (lambda rows: pa.concat_tables([rows.slice(0, 1), rows.slice(2)]), 1),  # lost
        (
            lambda rows: rows.set_column(
                1, table.TABLE_SCHEMA.field("title"), [["x"] * rows.num_rows]
            ),
            0,
        ),
    ],
    ids=["row lost", "row changed"],
)
def test_verify_names_the_first_wrong_row_among_many_shards(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    edit: Callable[[pa.Table], pa.Table],
    wrong: int,
) -> None:
    root = tmp_path / "c"
    manifest = catalog_of_many_shards(root, monkeypatch)
    part = [p for p in manifest.table or () if p.source == "bls"][1]
    ids = table.open_part((root / part.path).read_bytes(), part)["id"].to_pylist()
    report = verify_with_part(root, manifest, "bls", edit)
    assert [(p.kind, p.series_id) for p in report.problems] == [("table_mismatch", ids[wrong])]


def test_verify_names_a_row_no_series_has_among_many_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "c"
    manifest = catalog_of_many_shards(root, monkeypatch)

    def add_ghost(rows: pa.Table) -> pa.Table:
        ghost_id = rows["id"][0].as_py() + "x"  # sorts between two real ids
        ghost = rows.slice(0, 1).set_column(0, table.TABLE_SCHEMA.field("id"), [[ghost_id]])
        return pa.concat_tables([rows.slice(0, 1), ghost, rows.slice(1)])

    report = verify_with_part(root, manifest, "ecb", add_ghost)
    (problem,) = report.problems
    assert problem.kind == "table_mismatch"
    assert problem.series_id is not None and problem.series_id.endswith("x")


def test_verify_reports_a_part_whose_rows_are_out_of_id_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "c"
    manifest = catalog_of_many_shards(root, monkeypatch)
    report = verify_with_part(root, manifest, "fred", lambda rows: rows.take([1, 0, 2, 3]))
    assert [p.kind for p in report.problems] == ["bad_manifest"]
    assert "out of id order" in report.problems[0].detail


def test_rows_held_in_the_manifest_are_bounded_in_bytes(tmp_path: Path) -> None:
    """Counted alone, 16 rows of long descriptions (FRED's notes run to 10,000
    characters) put some 160 KB in every manifest: a one-value append wrote 182 KB."""
    notes = "Seasonally adjusted. " * 476  # 9,996 characters
    with Catalog.open(tmp_path / "c", create=True) as cat:
        cat.create(id="D", frequency="daily", source="fred")
        for i in range(16):
            cat.create(id=f"S{i:02d}", frequency="monthly", source="fred", description=notes)
        cat.write("D", ([dt.date(2024, 1, 2)], [1.0]))
        manifest = latest(cat)
        held = sum(len(msgspec.json.encode(row)) for row in manifest.table_pending)
        assert held <= table.TABLE_PENDING_BYTES, held
        assert len(encode_manifest(manifest)) < 40_000
        rows = rows_of(cat.metadata_table(source="fred"))
        assert [r["description"] for r in rows] == [""] + [notes] * 16
        assert cat.verify().ok
