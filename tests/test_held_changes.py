"""Series held in the manifest: a commit that changes a few series lists them in its
manifest instead of rewriting their shards, and a small append keeps its rows in
the series' record instead of writing a file. Reads, listings, history, verify and
gc must not be able to tell, at any version."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from catalog_store import Catalog, CatalogOptions, changes
from catalog_store.errors import FormatError, ValidationError
from catalog_store.keys import checksum, manifest_key
from catalog_store.records import InlineRows, Manifest, encode_manifest
from tests.conftest import EAGER, StoreTarget

Rows = dict[dt.date, float | None]
START = dt.date(2019, 12, 20)


def day(i: int) -> int:
    """``START + i days`` as the ordinal a record holds."""
    return (START - dt.date(1970, 1, 1)).days + i


def latest(cat: Catalog) -> Manifest:
    return cat._runner.run(cat.inner.snapshot()).manifest


def put_manifest(cat: Catalog, manifest: Manifest) -> None:
    """Commit ``manifest`` as the next version, as a writer (or a bug) would."""
    store = cat.inner.reader.store
    cat._runner.run(store.put_if_absent(manifest_key(manifest.version), encode_manifest(manifest)))


def next_manifest(cat: Catalog, **fields: Any) -> Manifest:
    base = latest(cat)
    return msgspec.structs.replace(
        base, version=base.version + 1, parent=base.version, commit_id="f" * 32, **fields
    )


def stored_format(cat: Catalog) -> str:
    """The format the latest manifest says in its stored bytes."""
    data = cat._runner.run(cat.inner.reader.store.get(manifest_key(cat.version())))
    return str(msgspec.json.decode(data)["format"])


def files_under(root: Path, prefix: str) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file()}


def rows(cat: Catalog, series_id: str, **kwargs: Any) -> Rows:
    table = cat.read(series_id, **kwargs)
    return dict(
        zip(table.column("date").to_pylist(), table.column("value").to_pylist(), strict=True)
    )


# -- what a small commit writes ---------------------------------------------------------


def test_a_small_append_writes_only_its_manifest(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Catalog.open(root, create=True) as cat:
        cat.create(id="A", frequency="daily")
        cat.write("A", ([START + dt.timedelta(days=i) for i in range(100)], [1.0] * 100))
        data, meta = files_under(root, "data"), files_under(root, "meta")
        for i in range(100, 103):
            cat.write("A", ([START + dt.timedelta(days=i)], [float(i)]))
        # No new data file and no new shard: the rows and the record ride in the manifest.
        assert files_under(root, "data") == data
        assert files_under(root, "meta") == meta
        held = latest(cat).records_pending
        assert [entry.id for entry in held] == ["A"]
        assert held[0].record is not None and held[0].record.inline == InlineRows(
            [day(100), day(101), day(102)], [100.0, 101.0, 102.0]
        )
        series = cat.get("A")
        assert series.observation_count == 103
        assert series.last_date == START + dt.timedelta(days=102)
        assert rows(cat, "A", start=START + dt.timedelta(days=99)) == {
            START + dt.timedelta(days=99): 1.0,
            START + dt.timedelta(days=100): 100.0,
            START + dt.timedelta(days=101): 101.0,
            START + dt.timedelta(days=102): 102.0,
        }
        assert rows(cat, "A", end=START + dt.timedelta(days=99)) == {
            START + dt.timedelta(days=i): 1.0 for i in range(100)
        }
        assert cat.verify().ok


def test_the_commit_past_the_limit_writes_every_held_series_out(tmp_path: Path) -> None:
    root = tmp_path / "store"
    options = CatalogOptions(pending_records=3)
    with Catalog.open(root, create=True, options=options) as cat:
        with cat.batch() as batch:
            for i in range(6):
                batch.create({"id": f"S{i}", "frequency": "daily"})
        assert latest(cat).records_pending == []  # six series: written into shards at once
        for i in range(3):
            cat.write(f"S{i}", ([START], [float(i)]))
        assert [e.id for e in latest(cat).records_pending] == ["S0", "S1", "S2"]
        assert files_under(root, "data") == set()
        shards_before = files_under(root, "meta")
        cat.write("S3", ([START], [3.0]))
        manifest = latest(cat)
        assert manifest.records_pending == []
        assert files_under(root, "meta") - shards_before  # the records went into shards
        # ... with their rows, which need no file of their own yet.
        assert files_under(root, "data") == set()
        assert sum(ref.inline for ref in manifest.shards if ref is not None) == 4
        assert stored_format(cat) == "fincat-manifest/4"  # older fincats must not read it
        for i in range(4):
            assert rows(cat, f"S{i}") == {START: float(i)}
            assert cat.get(f"S{i}").version == manifest.version - (3 - i)
        assert [s.observation_count for s in cat.iter_series()] == [1, 1, 1, 1, 0, 0]
        assert cat.verify().ok
        cat.write("S0", ([START + dt.timedelta(days=1)], [9.0]))  # from a shard, held again
        assert rows(cat, "S0") == {START: 0.0, START + dt.timedelta(days=1): 9.0}

        # A checkpoint writes every held row into a file, wherever the record is.
        cat.checkpoint()
        manifest = latest(cat)
        assert len(files_under(root, "data")) == 4  # one file each, made of its held rows
        assert manifest.records_pending == []
        assert all(ref.inline == 0 for ref in manifest.shards if ref is not None)
        assert stored_format(cat) == "fincat-manifest/2"
        assert rows(cat, "S0") == {START: 0.0, START + dt.timedelta(days=1): 9.0}
        for i in range(1, 4):
            assert rows(cat, f"S{i}") == {START: float(i)}
        assert cat.checkpoint() is None  # nothing held any more
        assert cat.verify().ok


def test_a_writer_holding_nothing_keeps_the_rows_other_records_of_a_shard_hold(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    with Catalog.open(root, create=True, options=CatalogOptions(pending_records=0)) as cat:
        cat.create(id="A", frequency="daily")
        cat.write("A", ([START], [1.0]))  # A's record, with its row, in the shard
    with Catalog.open(root, options=EAGER) as eager:
        eager.create(id="B", frequency="daily")
        eager.write("B", ([START], [2.0]))  # B's row in a file; the shard rewritten
        manifest = latest(eager)
        assert [ref.inline for ref in manifest.shards if ref is not None] == [1]
        assert stored_format(eager) == "fincat-manifest/4"
        assert len(files_under(root, "data")) == 1
        assert rows(eager, "A") == {START: 1.0} and rows(eager, "B") == {START: 2.0}
        assert eager.verify().ok
        eager.checkpoint()
        assert len(files_under(root, "data")) == 2
        assert stored_format(eager) == "fincat-manifest/2"
        assert rows(eager, "A") == {START: 1.0} and eager.verify().ok


def test_verify_reports_a_shard_that_hides_the_rows_its_records_hold(tmp_path: Path) -> None:
    # A manifest saying no record of a shard holds rows would be written as format
    # 2, which older readers open without seeing the rows, and a checkpoint would
    # pass the shard by.
    with Catalog.open(
        tmp_path / "store", create=True, options=CatalogOptions(pending_records=0)
    ) as cat:
        cat.create(id="A", frequency="daily")
        cat.write("A", ([START], [1.0]))
        base = latest(cat)
        (ref,) = [r for r in base.shards if r is not None]
        assert ref.inline == 1 and base.records_pending == []
        hidden = msgspec.structs.replace(ref, inline=0)
        put_manifest(cat, next_manifest(cat, shards=[hidden]))
        problems = cat.verify(latest_only=True).problems
        assert [(p.kind, p.key) for p in problems] == [("corrupt_object", ref.path)]
        assert "holding rows" in problems[0].detail


def test_a_series_created_and_deleted_while_held_leaves_no_entry(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "store", create=True) as cat:
        cat.create(id="A", frequency="daily")
        cat.create(id="B", frequency="daily")
        cat.delete("B")
        assert [(e.id, e.record is not None) for e in latest(cat).records_pending] == [("A", True)]
        cat.checkpoint()
        cat.delete("A")  # stored in its shard now: the deletion is held
        assert [(e.id, e.record) for e in latest(cat).records_pending] == [("A", None)]
        assert list(cat.iter_series()) == []
        assert cat.verify().ok


def test_held_records_are_written_out_past_their_byte_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 16 records of the production limit of 64 KB would need large attributes.
    monkeypatch.setattr(changes, "RECORDS_PENDING_BYTES", 2000)
    with Catalog.open(tmp_path / "store", create=True) as cat:
        cat.create(id="A", frequency="daily", attributes={"note": "x" * 600})
        cat.create(id="B", frequency="daily", attributes={"note": "y" * 600})
        assert [e.id for e in latest(cat).records_pending] == ["A", "B"]
        cat.create(id="C", frequency="daily", attributes={"note": "z" * 600})
        assert latest(cat).records_pending == []  # three would pass 2,000 bytes
        assert [s.id for s in cat.iter_series()] == ["A", "B", "C"]
        assert cat.get("C").attributes == {"note": "z" * 600}


def test_a_series_held_rows_move_to_a_file_at_their_limit(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Catalog.open(root, create=True, options=CatalogOptions(inline_rows=3)) as cat:
        cat.create(id="A", frequency="daily")
        for i in range(5):
            cat.write("A", ([START + dt.timedelta(days=i)], [float(i)]))
        record = latest(cat).records_pending[0].record
        assert record is not None
        # Three rows held, then the fourth append wrote them to a file with itself.
        assert [f.rows for f in record.files] == [3, 1]
        assert record.inline == InlineRows([day(4)], [4.0])
        assert rows(cat, "A") == {START + dt.timedelta(days=i): float(i) for i in range(5)}
        assert cat.verify().ok


def test_checkpoint_writes_everything_out_and_changes_no_value(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Catalog.open(root, create=True) as cat:
        cat.create(id="Y", frequency="daily", partitioning="year")
        cat.write("Y", ([START + dt.timedelta(days=i) for i in range(20)], [2.0] * 20))
        before = rows(cat, "Y")
        version = cat.version()
        assert files_under(root, "data") == set()
        assert cat.checkpoint() == version + 1
        assert latest(cat).records_pending == []
        record = cat._runner.run(cat.inner.snapshot()).manifest
        assert record.series_count == 1
        partitions = {Path(p).parent.name for p in files_under(root, "data")}
        assert partitions == {"year=2019", "year=2020"}
        assert rows(cat, "Y") == before
        assert rows(cat, "Y", as_of=version) == before
        assert cat.get("Y").version == version  # the series itself did not change
        assert cat.checkpoint() is None  # nothing held
        assert cat.verify().ok


@pytest.mark.parametrize("options", [CatalogOptions(), EAGER], ids=["held", "eager"])
def test_a_range_rewrite_leaves_no_file_behind(tmp_path: Path, options: CatalogOptions) -> None:
    with Catalog.open(tmp_path / "store", create=True, options=options) as cat:
        cat.create(id="A", frequency="daily")
        cat.write("A", ([START, START + dt.timedelta(days=1)], [1.0, 2.0]))
        cat.write("A", None, mode="delete_range", start=START, end=START)
        with cat.batch() as batch:  # the upsert's file is read back and rewritten
            batch.write("A", ([START + dt.timedelta(days=3)], [4.0]), mode="upsert")
            day = START + dt.timedelta(days=3)
            batch.write("A", ([day], [5.0]), mode="replace_range", start=day, end=day)
        assert rows(cat, "A") == {
            START + dt.timedelta(days=1): 2.0,
            START + dt.timedelta(days=3): 5.0,
        }
        report = cat.verify()
        assert report.ok and report.orphans == [], report


def test_negative_limits_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        CatalogOptions(inline_rows=-1)
    assert info.value.field == "inline_rows"
    with pytest.raises(ValidationError) as info:
        CatalogOptions(pending_records=-1)
    assert info.value.field == "pending_records"


# -- the same answers as a catalog that writes everything at once -----------------------


class Oracle:
    """The catalog as plain dicts: observations and titles by series id."""

    def __init__(self) -> None:
        self.rows: dict[str, Rows] = {}
        self.titles: dict[str, str] = {}

    def copy(self) -> Oracle:
        twin = Oracle()
        twin.rows = {k: dict(v) for k, v in self.rows.items()}
        twin.titles = dict(self.titles)
        return twin


def random_step(rng: random.Random, cat: Catalog, oracle: Oracle, n: int) -> None:
    """One random commit, applied to the catalog and the oracle alike."""
    live = sorted(oracle.rows)
    choice = rng.random()
    if not live or choice < 0.08:
        series_id = f"S{n:03d}"
        partitioning = rng.choice([None, "year"])
        cat.create(id=series_id, frequency="daily", partitioning=partitioning, title="t")
        oracle.rows[series_id], oracle.titles[series_id] = {}, "t"
        return
    series_id = rng.choice(live)
    held = oracle.rows[series_id]
    last = max(held) if held else START
    if choice < 0.55:  # append: mostly a day, now and then a long stretch
        count = rng.choice([1, 1, 1, 2, 5, 90])
        days = [last + dt.timedelta(days=1 + i) for i in range(count)]
        values = [rng.choice([None, round(rng.uniform(-5, 5), 3)]) for _ in days]
        cat.write(series_id, (days, values))
        held.update(zip(days, values, strict=True))
    elif choice < 0.65:
        days = sorted({START + dt.timedelta(days=rng.randrange(0, 400)) for _ in range(3)})
        values = [float(n)] * len(days)
        cat.write(series_id, (days, values), mode="upsert")
        held.update(zip(days, values, strict=True))
    elif choice < 0.7:
        low = START + dt.timedelta(days=rng.randrange(0, 300))
        high = low + dt.timedelta(days=rng.randrange(0, 60))
        cat.write(series_id, None, mode="delete_range", start=low, end=high)
        for day in [d for d in held if low <= d <= high]:
            del held[day]
    elif choice < 0.78:
        cat.update(series_id, {"title": f"title {n}"})
        oracle.titles[series_id] = f"title {n}"
    elif choice < 0.82:
        cat.delete(series_id)
        del oracle.rows[series_id], oracle.titles[series_id]
    elif choice < 0.86:
        cat.compact(series_id, min_files=2)
    elif choice < 0.89:
        cat.checkpoint()
    else:  # a batch over a few series
        with cat.batch() as batch:
            for other in rng.sample(live, min(len(live), rng.randrange(2, 6))):
                rows_of = oracle.rows[other]
                day = (max(rows_of) if rows_of else START) + dt.timedelta(days=1)
                batch.write(other, ([day], [float(n)]))
                rows_of[day] = float(n)


def check(cat: Catalog, oracle: Oracle, version: int | None = None) -> None:
    assert [s.id for s in cat.iter_series(page_size=7, as_of=version)] == sorted(oracle.rows)
    for series_id, expected in oracle.rows.items():
        assert rows(cat, series_id, as_of=version) == expected, series_id
        series = cat.get(series_id, as_of=version)
        assert series.title == oracle.titles[series_id]
        assert series.observation_count == len(expected)
        assert series.last_date == (max(expected) if expected else None)
    table = cat.metadata_table(as_of=version)
    assert table.column("id").to_pylist() == sorted(oracle.rows)


@pytest.mark.parametrize(
    ("inline_rows", "pending_records", "seed"),
    [(64, 16, 1), (3, 2, 2), (0, 3, 3), (5, 0, 4), (1, 1, 5)],
)
def test_random_commits_read_as_an_oracle_says(
    target: StoreTarget, inline_rows: int, pending_records: int, seed: int
) -> None:
    rng = random.Random(seed)
    options = CatalogOptions(inline_rows=inline_rows, pending_records=pending_records)
    oracle = Oracle()
    history: dict[int, Oracle] = {}
    with target.open(options=options) as cat:
        steps = 40 if target.backend == "s3" else 80
        for n in range(steps):
            random_step(rng, cat, oracle, n)
            history[cat.version()] = oracle.copy()
            check(cat, oracle)
        for version in rng.sample(sorted(history), 5):
            check(cat, history[version], version)
        report = cat.verify()
        assert report.ok, report.problems
        assert report.orphans == []  # every commit landed: none may leave a file behind
        cat.collect_garbage(grace=dt.timedelta(0))
        for version in rng.sample(sorted(history), 3):
            check(cat, history[version], version)
    with target.open(create=False) as fresh:  # nothing lives only in a process's memory
        check(fresh, oracle)


# -- verify, gc and formats --------------------------------------------------------------


def test_gc_keeps_files_only_a_held_record_lists(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "store", create=True) as cat:
        cat.create(id="A", frequency="daily")
        cat.write("A", ([START + dt.timedelta(days=i) for i in range(100)], [3.0] * 100))
        assert [e.id for e in latest(cat).records_pending] == ["A"]
        report = cat.collect_garbage(grace=dt.timedelta(0))
        assert report.deleted == 0 and report.referenced == 1
        fresh = Catalog.open(tmp_path / "store")
        assert fresh.read("A").num_rows == 100
        fresh.close()


def test_verify_reports_held_rows_out_of_order_and_held_records_out_of_order(
    tmp_path: Path,
) -> None:
    with Catalog.open(tmp_path / "store", create=True) as cat:
        for series_id in ("A", "B"):
            cat.create(id=series_id, frequency="daily")
            cat.write(series_id, ([START, START + dt.timedelta(days=1)], [1.0, 2.0]))
        assert cat.verify().ok
        held = latest(cat).records_pending
        record = held[0].record
        assert record is not None and record.inline is not None
        swapped = InlineRows(list(reversed(record.inline.dates)), record.inline.values)
        bad = msgspec.structs.replace(record, inline=swapped)
        damaged = [msgspec.structs.replace(held[0], record=bad), held[1]]
        put_manifest(cat, next_manifest(cat, records_pending=damaged))
        report = cat.verify(latest_only=True)
        assert [(p.kind, p.series_id) for p in report.problems] == [("derived_mismatch", "A")]
        # Entries out of id order: a lookup's binary search would miss one.
        put_manifest(cat, next_manifest(cat, records_pending=list(reversed(held))))
        problems = cat.verify(latest_only=True).problems
        assert [(p.kind, p.detail) for p in problems] == [
            ("bad_manifest", "pending records are not in id order")
        ]
        # An entry naming another series than its record does.
        renamed = msgspec.structs.replace(held[1], record=held[0].record)
        put_manifest(cat, next_manifest(cat, records_pending=[held[0], renamed]))
        problems = cat.verify(latest_only=True).problems
        assert ("bad_manifest", "pending record 'B' names 'A'") in [
            (p.kind, p.detail) for p in problems
        ]
        # One entry gone: the series count no longer adds up, nor does the table.
        put_manifest(cat, next_manifest(cat, records_pending=held[:1]))
        kinds = {p.kind for p in cat.verify(latest_only=True).problems}
        assert kinds == {"bad_manifest", "table_mismatch"}


def test_a_manifest_holding_no_series_keeps_the_previous_format(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "store", create=True) as cat:
        cat.create(id="A", frequency="daily")
        assert stored_format(cat) == "fincat-manifest/3"  # A is held
        cat.checkpoint()
        # Nothing held: a fincat from before held series reads it as it always did.
        store = cat.inner.reader.store
        data = cat._runner.run(store.get(manifest_key(cat.version())))
        assert b'"format":"fincat-manifest/2"' in data
        fresh = Catalog.open(tmp_path / "store")
        assert fresh.get("A").id == "A" and fresh.verify().ok
        fresh.close()
        # A format this fincat does not know is refused, not half read.
        body = msgspec.json.encode(next_manifest(cat, format="fincat-manifest/9"))
        body = body[: body.rindex(b'"checksum":"')] + b'"checksum":""}'
        sealed = body[:-2] + checksum(body).encode() + b'"}'
        cat._runner.run(store.put_if_absent(manifest_key(cat.version() + 1), sealed))
        fresh = Catalog.open(tmp_path / "store")
        with pytest.raises(FormatError, match="'fincat-manifest/9', which this fincat does not"):
            fresh.get("A")
        fresh.close()


def test_cli_checkpoint(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from catalog_store.cli import app

    root = tmp_path / "store"
    with Catalog.open(root, create=True) as cat:
        cat.create(id="A", frequency="daily")
        cat.write("A", ([START], [1.0]))
        version = cat.version()
    runner = CliRunner()
    done = runner.invoke(app, ["--root", str(root), "checkpoint"])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == f"written out as version {version + 1}."
    again = runner.invoke(app, ["--root", str(root), "checkpoint", "--json"])
    assert json.loads(again.stdout) == {"checkpointed": False, "version": None}
    text = runner.invoke(app, ["--root", str(root), "checkpoint"])
    assert text.stdout.strip() == "nothing held in the manifest: every row is in a file."
    assert len(files_under(root, "data")) == 1


def test_verify_with_a_held_record_over_a_missing_shard(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Catalog.open(root, create=True) as cat:
        with cat.batch() as batch:  # into a shard
            batch.create({"id": "A", "frequency": "daily"})
        cat.checkpoint()
        cat.write("A", ([START], [1.0]))  # held over that shard
        (shard,) = files_under(root, "meta")
        (root / shard).unlink()
        report = cat.verify(latest_only=True)
        assert [(p.kind, p.key) for p in report.problems] == [("missing_object", shard)]
