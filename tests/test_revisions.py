"""Revision history (the ALFRED view): every value a date has had, and when.

The engine returns one row per distinct consecutive value of a date: the first
release plus one row per revision, each with ``realtime_start`` (the commit time of
the version that published it, inclusive) and ``realtime_end`` (the commit time of
the version that replaced or deleted it, exclusive; null while current).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
import struct
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from catalog_store import Catalog
from catalog_store.changes import ChangeSet
from catalog_store.cli import app
from catalog_store.errors import SeriesNotFoundError, ValidationError
from catalog_store.records import SeriesRecord
from catalog_store.revision_table import RevisionsTooLargeError, revision_table, revisions_schema

D = dt.date
UTC = dt.UTC
Row = tuple[Any, float | None, dt.datetime, dt.datetime | None]


def revision_rows(table: pa.Table) -> list[Row]:
    return list(
        zip(
            table.column("date").to_pylist(),
            table.column("value").to_pylist(),
            table.column("realtime_start").to_pylist(),
            table.column("realtime_end").to_pylist(),
            strict=True,
        )
    )


def committed_at(cat: Catalog, version: int) -> dt.datetime:
    return cat.history(limit=1, before=version + 1)[0].committed_at


def assert_tiles(rows: list[Row]) -> None:
    """Per date: sorted by start, each end is the next start; only the last may be open."""
    by_date: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        by_date[row[0]].append(row)
    for date, intervals in by_date.items():
        for earlier, later in itertools.pairwise(intervals):
            assert earlier[3] is not None, date
            assert earlier[2] < earlier[3] <= later[2], date
        assert intervals[-1][3] is None or intervals[-1][2] < intervals[-1][3], date


def test_a_date_revised_three_times_has_four_rows_that_tile_time(catalog: Catalog) -> None:
    catalog.create(id="GDP", frequency="quarterly")
    q1, q2 = D(2020, 1, 1), D(2020, 4, 1)
    catalog.write("GDP", ([q1], [100.0]))
    versions = [catalog.version()]
    catalog.write("GDP", ([q2], [200.0]))
    for value in (101.0, 102.0, 103.0):
        catalog.write("GDP", ([q1], [value]), mode="upsert")
        versions.append(catalog.version())
    times = [committed_at(catalog, v) for v in versions]

    table = catalog.revisions("GDP", start=q1, end=q1)
    assert table.schema == revisions_schema("quarterly")
    assert revision_rows(table) == [
        (q1, 100.0, times[0], times[1]),
        (q1, 101.0, times[1], times[2]),
        (q1, 102.0, times[2], times[3]),
        (q1, 103.0, times[3], None),
    ]
    everything = revision_rows(catalog.revisions("GDP"))
    assert_tiles(everything)
    assert [r for r in everything if r[0] == q2] == [
        (q2, 200.0, committed_at(catalog, versions[0] + 1), None)
    ]
    # Each row is what an as-of read at its start returns, and stops at its end.
    for date, value, start, end in everything:
        seen = catalog.read("GDP", start=date, end=date, as_of=start)
        assert seen.column("value").to_pylist() == [value]
        if end is not None:
            after = catalog.read("GDP", start=date, end=date, as_of=end)
            assert after.column("value").to_pylist() != [value]

    first = revision_rows(catalog.revisions("GDP", first_release_only=True))
    assert first == [(q1, 100.0, times[0], times[1]), everything[-1]]


def test_rewrites_that_change_no_value_add_no_row(catalog: Catalog) -> None:
    catalog.create(id="S", frequency="daily", partitioning="year")
    catalog.write("S", ([D(2020, 1, 1), D(2020, 1, 2)], [1.0, None]))
    start = committed_at(catalog, catalog.version())
    catalog.write("S", ([D(2020, 1, 1), D(2020, 1, 2)], [1.0, None]), mode="upsert")
    catalog.write(
        "S", ([D(2020, 1, 1)], [1.0]), "replace_range", start=D(2020, 1, 1), end=D(2020, 1, 1)
    )
    catalog.update("S", {"title": "a metadata change"})
    catalog.write("S", ([D(2020, 1, 3)], [3.0]))
    for i in range(3):
        catalog.write("S", ([D(2020, 1, 3)], [3.0 + i]), mode="upsert")
    catalog.compact("S")
    rows = revision_rows(catalog.revisions("S", end=D(2020, 1, 2)))
    assert rows == [(D(2020, 1, 1), 1.0, start, None), (D(2020, 1, 2), None, start, None)]
    assert [r[1] for r in revision_rows(catalog.revisions("S", start=D(2020, 1, 3)))] == [
        3.0,
        4.0,
        5.0,
    ]


def test_null_counts_as_a_value(catalog: Catalog) -> None:
    catalog.create(id="S", frequency="monthly")
    catalog.write("S", ([D(2020, 1, 1)], [None]))
    catalog.write("S", ([D(2020, 1, 1)], [2.0]), mode="upsert")
    catalog.write("S", ([D(2020, 1, 1)], [None]), mode="upsert")
    rows = revision_rows(catalog.revisions("S"))
    assert [r[1] for r in rows] == [None, 2.0, None]
    assert_tiles(rows)


def test_a_deleted_date_closes_its_interval(catalog: Catalog) -> None:
    catalog.create(id="S", frequency="daily")
    dates = [D(2020, 1, 1), D(2020, 1, 2), D(2020, 1, 3)]
    catalog.write("S", (dates, [1.0, 2.0, 3.0]))
    published = committed_at(catalog, catalog.version())
    catalog.write("S", mode="delete_range", start=D(2020, 1, 2), end=D(2020, 1, 2))
    deleted = committed_at(catalog, catalog.version())
    catalog.write("S", ([D(2020, 1, 3)], [30.0]), "replace_range", start=D(2020, 1, 3))
    replaced = committed_at(catalog, catalog.version())
    catalog.write("S", ([D(2020, 1, 2)], [2.5]), mode="upsert")  # published again, later
    again = committed_at(catalog, catalog.version())
    catalog.write("S", mode="delete_range", start=D(2020, 1, 3))
    gone = committed_at(catalog, catalog.version())

    rows = revision_rows(catalog.revisions("S"))
    assert rows == [
        (D(2020, 1, 1), 1.0, published, None),
        (D(2020, 1, 2), 2.0, published, deleted),
        (D(2020, 1, 2), 2.5, again, None),
        (D(2020, 1, 3), 3.0, published, replaced),
        (D(2020, 1, 3), 30.0, replaced, gone),
    ]
    assert_tiles(rows)
    assert catalog.read("S", start=D(2020, 1, 2), end=D(2020, 1, 2), as_of=deleted).num_rows == 0
    first = revision_rows(catalog.revisions("S", first_release_only=True))
    assert first == [rows[0], rows[1], rows[3]]


def test_intraday_revisions_and_unknown_series(catalog: Catalog) -> None:
    catalog.create(id="FX", frequency="intraday")
    at = dt.datetime(2020, 2, 29, 23, 59, tzinfo=UTC)
    catalog.write("FX", ([at], [1.0]))
    catalog.write("FX", ([at], [1.5]), mode="upsert")
    table = catalog.revisions("FX", start=D(2020, 2, 29), end=D(2020, 2, 29))
    assert table.schema == revisions_schema("intraday")
    assert table.schema.field("date").type == pa.timestamp("us", tz="UTC")
    rows = revision_rows(table)
    assert [(r[0], r[1]) for r in rows] == [(at, 1.0), (at, 1.5)]
    assert_tiles(rows)
    assert catalog.revisions("FX", start=D(2020, 3, 1)).num_rows == 0
    with pytest.raises(SeriesNotFoundError):
        catalog.revisions("NOPE")


def test_revisions_as_of_a_version_are_those_known_then(catalog: Catalog) -> None:
    """Of the series at that version, not of the id's latest: an id deleted and
    created again is another series, whose revisions GraphQL showed on a node read
    as of the first one's version."""
    catalog.create(id="A", frequency="daily")
    catalog.write("A", ([D(2024, 1, 1)], [1.0]))
    first = committed_at(catalog, catalog.version())
    catalog.write("A", ([D(2024, 1, 1)], [1.5]), mode="upsert")
    revised = catalog.version()
    catalog.write("A", ([D(2024, 1, 2)], [2.0]))
    catalog.delete("A")
    gone = catalog.version()
    catalog.create(id="A", frequency="monthly")
    catalog.write("A", ([D(2024, 3, 1)], [99.0]))
    then = revision_rows(catalog.revisions("A", as_of=revised))
    assert then == [
        (D(2024, 1, 1), 1.0, first, committed_at(catalog, revised)),
        (D(2024, 1, 1), 1.5, committed_at(catalog, revised), None),
    ]
    assert [r[:2] for r in revision_rows(catalog.revisions("A"))] == [(D(2024, 3, 1), 99.0)]
    with pytest.raises(SeriesNotFoundError):
        catalog.revisions("A", as_of=gone)


@pytest.mark.timeout(30, method="thread")
def test_a_series_created_and_written_twice_in_one_batch(catalog: Catalog) -> None:
    with catalog.batch() as batch:
        batch.create({"id": "S", "frequency": "daily"})
        batch.write("S", ([D(2020, 1, 1), D(2020, 1, 2)], [1.0, 2.0]))
        batch.write("S", ([D(2020, 1, 3)], [3.0]))
    created = committed_at(catalog, catalog.version())
    with catalog.batch() as batch:
        batch.write("S", ([D(2020, 1, 2)], [2.5]), mode="upsert")
        batch.write("S", ([D(2020, 1, 4)], [4.0]))
    later = committed_at(catalog, catalog.version())
    catalog.write("S", ([D(2020, 1, 3)], [3.5]), mode="upsert")
    latest = committed_at(catalog, catalog.version())
    assert revision_rows(catalog.revisions("S")) == [
        (D(2020, 1, 1), 1.0, created, None),
        (D(2020, 1, 2), 2.0, created, later),
        (D(2020, 1, 2), 2.5, later, None),
        (D(2020, 1, 3), 3.0, created, latest),
        (D(2020, 1, 3), 3.5, latest, None),
        (D(2020, 1, 4), 4.0, later, None),
    ]


@pytest.mark.timeout(30, method="thread")
def test_revisions_follow_records_that_link_to_their_own_version(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a store written before a series changed twice in one commit kept its link
    to the state before that commit, such a record links to its own version."""

    def self_linking_stamp(self: ChangeSet, record: SeriesRecord, **fields: Any) -> SeriesRecord:
        return msgspec.structs.replace(
            record,
            **fields,
            version=self.version,
            updated_at=self.committed_at,
            previous_version=record.version,
        )

    catalog.create(id="S", frequency="daily")
    catalog.write("S", ([D(2020, 1, 1)], [1.0]))
    first = committed_at(catalog, catalog.version())
    with monkeypatch.context() as patch:
        patch.setattr(ChangeSet, "stamp", self_linking_stamp)
        with catalog.batch() as batch:
            batch.write("S", ([D(2020, 1, 1)], [2.0]), mode="upsert")
            batch.write("S", ([D(2020, 1, 2)], [3.0]))
        with catalog.batch() as batch:
            batch.create({"id": "T", "frequency": "daily"})
            batch.write("T", ([D(2020, 1, 1)], [4.0]))
    second = committed_at(catalog, catalog.version() - 1)
    assert revision_rows(catalog.revisions("S")) == [
        (D(2020, 1, 1), 1.0, first, second),
        (D(2020, 1, 1), 2.0, second, None),
        (D(2020, 1, 2), 3.0, second, None),
    ]
    third = committed_at(catalog, catalog.version())
    assert revision_rows(catalog.revisions("T")) == [(D(2020, 1, 1), 4.0, third, None)]


def test_after_retention_history_starts_at_the_oldest_kept_version(catalog: Catalog) -> None:
    d1, d2, d3 = D(2020, 1, 1), D(2020, 1, 2), D(2020, 1, 3)
    catalog.create(id="S", frequency="daily")
    catalog.write("S", ([d1, d2, d3], [1.0, 2.0, 3.0]))
    catalog.write("S", ([d1], [1.5]), mode="upsert")
    catalog.write("S", mode="delete_range", start=d3, end=d3)
    catalog.create(id="T", frequency="daily")  # the floor: S last changed before it
    floor = catalog.version()
    time.sleep(0.05)
    cutoff = dt.datetime.now(UTC)
    time.sleep(0.05)
    catalog.write("S", ([d2], [2.5]), mode="upsert")
    revised = committed_at(catalog, catalog.version())
    catalog.write("T", ([d1], [7.0]))
    written = committed_at(catalog, catalog.version())
    kept = committed_at(catalog, floor)

    report = catalog.collect_garbage(grace=dt.timedelta(0), retain=dt.datetime.now(UTC) - cutoff)
    assert report.oldest_version == floor
    # Values already current at the floor start at its commit time, though published
    # earlier; what was replaced or deleted before it (1.0, and 3.0) has expired.
    rows = revision_rows(catalog.revisions("S"))
    assert rows == [(d1, 1.5, kept, None), (d2, 2.0, kept, revised), (d2, 2.5, revised, None)]
    assert_tiles(rows)
    for date, value, start, _end in rows:
        seen = catalog.read("S", start=date, end=date, as_of=start)
        assert seen.column("value").to_pylist() == [value]
    assert revision_rows(catalog.revisions("S", start=d2, first_release_only=True)) == [rows[1]]
    assert revision_rows(catalog.revisions("T")) == [(d1, 7.0, written, None)]


def test_cli_revisions_after_retention(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    with Catalog.open(root, create=True) as cat:
        cat.create(id="S", frequency="daily")
        cat.write("S", ([D(2020, 1, 1)], [1.0]))
        cat.write("S", ([D(2020, 1, 1)], [1.5]), mode="upsert")
        cat.create(id="T", frequency="daily")
        kept = committed_at(cat, cat.version())
    runner = CliRunner()
    gc = runner.invoke(app, ["--root", root, "gc", "--grace-hours", "0", "--retain-days", "0"])
    assert gc.exit_code == 0, gc.output
    result = runner.invoke(app, ["--root", root, "revisions", "S", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert dt.datetime.fromisoformat(row.pop("realtime_start")) == kept
    assert row == {"date": "2020-01-01", "value": 1.5, "realtime_end": None}


def instant(day: dt.date, hour: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_states_of_another_frequency_keep_their_own_dates(catalog: Catalog) -> None:
    d2, d5 = D(2024, 1, 2), D(2024, 1, 5)
    catalog.create(id="F", frequency="daily")
    catalog.write("F", ([d2, d5], [1.0, 5.0]))
    published = committed_at(catalog, catalog.version())
    catalog.write("F", None, mode="delete_range", start=D(2024, 1, 1), end=D(2024, 12, 31))
    deleted = committed_at(catalog, catalog.version())
    catalog.update("F", {"frequency": "intraday"})
    catalog.write("F", ([instant(d2, 15)], [3.0]))
    later = committed_at(catalog, catalog.version())

    table = catalog.revisions("F")
    assert table.schema == revisions_schema("intraday")
    # Beside instants, a date is its midnight UTC, as a read as of then shows it.
    rows = revision_rows(table)
    assert rows == [
        (instant(d2), 1.0, published, deleted),
        (instant(d2, 15), 3.0, later, None),
        (instant(d5), 5.0, published, deleted),
    ]
    old = catalog.read("F", as_of=published)
    assert old.column("date").to_pylist() == [d2, d5]
    # Bounds apply in each state's units: a day counts when any of it is in range.
    assert revision_rows(catalog.revisions("F", start=D(2024, 1, 3))) == [rows[2]]
    noon = catalog.revisions("F", start=instant(d2, 12), end=instant(d2, 16))
    assert revision_rows(noon) == rows[:2]
    late = revision_rows(catalog.revisions("F", start=instant(d2, 16)))
    assert late == [rows[0], rows[2]]

    # The other way round the table keeps the intraday state's instants.
    catalog.create(id="G", frequency="intraday")
    catalog.write("G", ([instant(d2, 10), instant(d2, 15)], [1.0, 2.0]))
    catalog.write("G", None, mode="delete_range", start=d2, end=d2)
    catalog.update("G", {"frequency": "daily"})
    catalog.write("G", ([d2], [4.0]))
    table = catalog.revisions("G", start=d2, end=d2)
    assert table.schema == revisions_schema("intraday")
    assert [(r[0], r[1]) for r in revision_rows(table)] == [
        (instant(d2), 4.0),
        (instant(d2, 10), 1.0),
        (instant(d2, 15), 2.0),
    ]
    # An intraday state that held no observation leaves the dates as they are.
    catalog.create(id="H", frequency="intraday")
    catalog.update("H", {"frequency": "daily"})
    catalog.write("H", ([d2], [4.0]))
    assert catalog.revisions("H").schema == revisions_schema("daily")


def _reference_revisions(
    tables: list[pa.Table], times: list[dt.datetime], first_release_only: bool
) -> list[tuple[int, float | None, dt.datetime, dt.datetime | None]]:
    """The revision rows, one stored value at a time (the plain statement of the rule)."""

    def same(a: float | None, b: float | None) -> bool:
        if a is None or b is None:
            return a is None and b is None
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)

    open_rows: dict[int, tuple[float | None, dt.datetime]] = {}
    rows = []
    for table, start in zip(tables, times, strict=True):
        present = dict(
            zip(
                table.column("date").cast(pa.int32()).to_pylist(),
                table.column("value").to_pylist(),
                strict=True,
            )
        )
        for date in list(open_rows):
            if date not in present:
                value, since = open_rows.pop(date)
                rows.append((date, value, since, start))
        for date, value in present.items():
            current = open_rows.get(date)
            if current is not None and same(current[0], value):
                continue
            if current is not None:
                rows.append((date, current[0], current[1], start))
            open_rows[date] = (value, start)
    rows += [(date, value, since, None) for date, (value, since) in open_rows.items()]
    rows.sort(key=lambda r: (r[0], r[2]))
    if first_release_only:
        seen: set[int] = set()
        rows = [r for r in rows if r[0] not in seen and not seen.add(r[0])]  # type: ignore[func-returns-value]
    return rows


@pytest.mark.parametrize("seed", range(40))
def test_the_revision_table_follows_the_rule_value_by_value(seed: int) -> None:
    # Random histories of a few dates: values that come, change (0.0 to -0.0 too),
    # turn null, go and come back; the table must match the plain rule exactly.
    rng = random.Random(seed)
    epoch = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    states = rng.randint(0, 8)
    times = [
        epoch + dt.timedelta(seconds=i, microseconds=rng.randint(0, 999)) for i in range(states)
    ]
    tables = []
    for _ in range(states):
        days = sorted(rng.sample(range(12), rng.randint(0, 12)))
        values = [rng.choice([None, 0.0, -0.0, 1.5, 2.5, 5e-324]) for _ in days]
        tables.append(
            pa.table(
                {
                    "date": pa.array(days, pa.int32()).cast(pa.date32()),
                    "value": pa.array(values, pa.float64()),
                }
            )
        )
    for first_only in (False, True):
        table = revision_table(tables, times, "daily", first_only)
        got = list(
            zip(
                table.column("date").cast(pa.int32()).to_pylist(),
                table.column("value").to_pylist(),
                table.column("realtime_start").to_pylist(),
                table.column("realtime_end").to_pylist(),
                strict=True,
            )
        )
        expected = _reference_revisions(tables, times, first_only)
        assert [(d, s, e) for d, _v, s, e in got] == [(d, s, e) for d, _v, s, e in expected]
        assert [struct.pack("<d", v) if v is not None else None for _d, v, _s, _e in got] == [
            struct.pack("<d", v) if v is not None else None for _d, v, _s, _e in expected
        ]


def test_a_revisions_read_past_its_limit_of_values_is_refused_early(tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path / "c", create=True)
    catalog.create(id="S", frequency="annual")
    years = [D(2000 + i, 1, 1) for i in range(10)]
    for round_ in range(5):  # five states of ten values each
        catalog.write("S", (years, [float(round_)] * 10), mode="upsert")
    whole = catalog.revisions("S")
    assert whole.num_rows == 50
    assert catalog.revisions("S", max_values=50).equals(whole)
    with pytest.raises(RevisionsTooLargeError) as refused:
        catalog.revisions("S", max_values=25)
    # Stopped at the state that passed the limit, not after reading all five.
    assert (refused.value.field, refused.value.values, refused.value.limit) == ("start", 30, 25)
    narrow = catalog.revisions("S", start=D(2008, 1, 1), max_values=25)
    assert narrow.num_rows == 10
    with pytest.raises(ValidationError, match="at least 1"):
        catalog.revisions("S", max_values=0)
    catalog.close()
