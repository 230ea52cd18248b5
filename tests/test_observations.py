"""Observations: write modes, input forms, derived fields, as-of reads and compaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from catalog_store import Catalog, CatalogOptions
from catalog_store.errors import (
    AppendOrderError,
    SeriesNotFoundError,
    ValidationError,
    VersionMismatchError,
    VersionNotFoundError,
)
from catalog_store.observations import schema_for
from catalog_store.records import SeriesRecord
from tests.conftest import StoreTarget

D = dt.date
Rows = list[tuple[Any, float | None]]


def rows(table: pa.Table) -> Rows:
    return list(
        zip(table.column("date").to_pylist(), table.column("value").to_pylist(), strict=True)
    )


def model_rows(model: dict[Any, float | None]) -> Rows:
    return sorted(model.items())


def record_of(cat: Catalog, series_id: str, as_of: int | None = None) -> SeriesRecord:
    async def fetch() -> SeriesRecord | None:
        snapshot = await cat.inner.snapshot(as_of)
        return await snapshot.record(series_id)

    record = cat._runner.run(fetch())
    assert record is not None
    return record


def files_per_partition(record: SeriesRecord) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in record.files:
        counts[f.partition] = counts.get(f.partition, 0) + 1
    return counts


# -- write modes -------------------------------------------------------------------


def test_append_sets_derived_fields(catalog: Catalog) -> None:
    created = catalog.create(id="DGS10", frequency="daily")
    assert (created.first_date, created.last_date, created.observation_count) == (None, None, 0)
    assert catalog.read("DGS10").equals(schema_for("daily").empty_table())

    s = catalog.write("DGS10", ([D(2020, 1, 2), D(2020, 1, 3)], [1.5, 1.6]))
    assert (s.first_date, s.last_date, s.observation_count) == (D(2020, 1, 2), D(2020, 1, 3), 2)
    assert s.version == catalog.version()

    s = catalog.write("DGS10", ([D(2020, 1, 6), D(2020, 1, 7)], [None, 1.8]))
    assert (s.first_date, s.last_date, s.observation_count) == (D(2020, 1, 2), D(2020, 1, 7), 4)
    assert catalog.get("DGS10") == s
    table = catalog.read("DGS10")
    assert table.schema == schema_for("daily")
    assert rows(table) == [
        (D(2020, 1, 2), 1.5),
        (D(2020, 1, 3), 1.6),
        (D(2020, 1, 6), None),
        (D(2020, 1, 7), 1.8),
    ]
    assert rows(catalog.read("DGS10", start=D(2020, 1, 3), end=D(2020, 1, 6))) == [
        (D(2020, 1, 3), 1.6),
        (D(2020, 1, 6), None),
    ]
    assert catalog.read("DGS10", columns=["value"]).column_names == ["value"]
    for columns in ([], ["value", "value"], "value"):
        with pytest.raises(ValidationError) as info:
            catalog.read("DGS10", columns=columns)  # type: ignore[arg-type]
        assert info.value.field == "columns"
    with pytest.raises(ValidationError) as info:
        catalog.revisions("DGS10", first_release_only="no")  # type: ignore[arg-type]
    assert info.value.field == "first_release_only"
    with pytest.raises(ValidationError) as info:
        catalog.read("DGS10", columns=["date", "vintage"])
    assert info.value.field == "columns"


@pytest.mark.parametrize("first", [D(2020, 1, 7), D(2020, 1, 6), D(2019, 1, 1)])
def test_append_not_after_the_last_date_is_refused(catalog: Catalog, first: dt.date) -> None:
    catalog.create(id="S", frequency="daily")
    catalog.write("S", ([D(2020, 1, 6), D(2020, 1, 7)], [1.0, 2.0]))
    before = catalog.version()
    with pytest.raises(AppendOrderError) as info:
        catalog.write("S", ([first, D(2020, 1, 9)], [5.0, 6.0]))
    assert str(first) in str(info.value)
    assert "2020-01-07" in str(info.value)
    assert info.value.field == "dates"
    assert catalog.version() == before
    assert rows(catalog.read("S")) == [(D(2020, 1, 6), 1.0), (D(2020, 1, 7), 2.0)]
    assert catalog.get("S").observation_count == 2


def test_append_to_a_series_emptied_by_delete_range_accepts_any_date(catalog: Catalog) -> None:
    catalog.create(id="S", frequency="daily")
    catalog.write("S", ([D(2020, 1, 6)], [1.0]))
    s = catalog.write("S", mode="delete_range", start=D(2020, 1, 6))
    assert (s.first_date, s.last_date, s.observation_count) == (None, None, 0)
    s = catalog.write("S", ([D(1999, 1, 1)], [3.0]))
    assert (s.first_date, s.last_date, s.observation_count) == (D(1999, 1, 1), D(1999, 1, 1), 1)


def test_upsert_newest_value_wins_and_counts_each_date_once(catalog: Catalog) -> None:
    catalog.create(id="S", frequency="daily", partitioning="year")
    catalog.write("S", ([D(2019, 12, 30), D(2019, 12, 31), D(2020, 1, 1)], [1.0, 2.0, 3.0]))
    s = catalog.write(
        "S", ([D(2019, 12, 31), D(2020, 1, 1), D(2020, 1, 2)], [20.0, None, 4.0]), mode="upsert"
    )
    assert (s.first_date, s.last_date, s.observation_count) == (D(2019, 12, 30), D(2020, 1, 2), 4)
    s = catalog.write("S", ([D(2020, 1, 1), D(2018, 6, 1)], [30.0, 0.5]), mode="upsert")
    assert (s.first_date, s.last_date, s.observation_count) == (D(2018, 6, 1), D(2020, 1, 2), 5)
    assert rows(catalog.read("S")) == [
        (D(2018, 6, 1), 0.5),
        (D(2019, 12, 30), 1.0),
        (D(2019, 12, 31), 20.0),
        (D(2020, 1, 1), 30.0),
        (D(2020, 1, 2), 4.0),
    ]
    # Re-writing the same rows changes no count.
    s = catalog.write("S", ([D(2020, 1, 1)], [30.0]), mode="upsert")
    assert s.observation_count == 5


def test_replace_range_deletes_then_inserts_inside_the_range(catalog: Catalog) -> None:
    catalog.create(id="S", frequency="daily", partitioning="year")
    dates = [D(2019, 12, 30), D(2019, 12, 31), D(2020, 1, 1), D(2020, 1, 2), D(2020, 1, 3)]
    catalog.write("S", (dates, [1.0, 2.0, 3.0, 4.0, 5.0]))
    s = catalog.write(
        "S",
        ([D(2020, 1, 2), D(2019, 12, 31)], [40.0, 20.0]),
        mode="replace_range",
        start=D(2019, 12, 31),
        end=D(2020, 1, 2),
    )
    assert (s.first_date, s.last_date, s.observation_count) == (D(2019, 12, 30), D(2020, 1, 3), 4)
    assert rows(catalog.read("S")) == [
        (D(2019, 12, 30), 1.0),
        (D(2019, 12, 31), 20.0),
        (D(2020, 1, 2), 40.0),
        (D(2020, 1, 3), 5.0),
    ]
    # Replacing the tail with an empty table deletes it and moves last_date back.
    s = catalog.write("S", ([], []), mode="replace_range", start=D(2020, 1, 2))
    assert (s.last_date, s.observation_count) == (D(2019, 12, 31), 2)


@pytest.mark.parametrize("outside", [D(2019, 12, 31), D(2020, 1, 3)])
def test_replace_range_refuses_rows_outside_the_range(catalog: Catalog, outside: dt.date) -> None:
    catalog.create(id="S", frequency="daily")
    catalog.write("S", ([D(2020, 1, 1), D(2020, 1, 2)], [1.0, 2.0]))
    before = catalog.version()
    with pytest.raises(ValidationError) as info:
        catalog.write(
            "S",
            ([D(2020, 1, 1), outside], [5.0, 6.0]),
            mode="replace_range",
            start=D(2020, 1, 1),
            end=D(2020, 1, 2),
        )
    assert info.value.field == "dates"
    assert catalog.version() == before
    assert rows(catalog.read("S")) == [(D(2020, 1, 1), 1.0), (D(2020, 1, 2), 2.0)]


def test_delete_range_updates_derived_fields(catalog: Catalog) -> None:
    catalog.create(id="S", frequency="monthly")
    months = [D(2020, m, 1) for m in range(1, 13)]
    catalog.write("S", (months, [float(m) for m in range(1, 13)]))
    s = catalog.write("S", mode="delete_range", start=D(2020, 4, 1), end=D(2020, 6, 30))
    assert (s.first_date, s.last_date, s.observation_count) == (D(2020, 1, 1), D(2020, 12, 1), 9)
    s = catalog.write("S", mode="delete_range", end=D(2020, 2, 1))
    assert (s.first_date, s.last_date, s.observation_count) == (D(2020, 3, 1), D(2020, 12, 1), 7)
    s = catalog.write("S", mode="delete_range", start=D(2020, 11, 15))
    assert (s.first_date, s.last_date, s.observation_count) == (D(2020, 3, 1), D(2020, 11, 1), 6)
    assert rows(catalog.read("S")) == [(D(2020, m, 1), float(m)) for m in (3, 7, 8, 9, 10, 11)]
    s = catalog.write("S", mode="delete_range", start=s.first_date, end=s.last_date)
    assert (s.first_date, s.last_date, s.observation_count) == (None, None, 0)
    assert catalog.read("S").equals(schema_for("monthly").empty_table())


def test_bad_write_arguments_are_refused_without_a_commit(catalog: Catalog) -> None:
    catalog.create(id="S", frequency="daily")
    catalog.write("S", ([D(2020, 1, 1)], [1.0]))
    before = catalog.version()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"observations": ([D(2020, 1, 2)], [1.0]), "mode": "merge"}, "mode"),
        ({"observations": ([D(2020, 1, 2)], [1.0]), "start": D(2020, 1, 1)}, "start"),
        ({"mode": "upsert"}, "observations"),
        ({"observations": ([D(2020, 1, 2)], [1.0]), "mode": "delete_range"}, "observations"),
        ({"mode": "delete_range", "start": D(2020, 2, 1), "end": D(2020, 1, 1)}, "start"),
        ({"mode": "delete_range", "start": dt.datetime(2020, 1, 1)}, "start"),
        ({"observations": ([D(2020, 1, 2)], [1.0, 2.0])}, "values"),
        ({"observations": ([D(2020, 1, 2)], ["1.0"])}, "values"),
        ({"observations": {"date": [D(2020, 1, 2)]}}, "observations"),
        # (date, value) rows, two of them read as a pair before, "values" at fault.
        ({"observations": [(D(2020, 1, 2), 1.0), (D(2020, 1, 3), 2.0)]}, "observations"),
        ({"observations": [(D(2020, 1, 2), 1.0)]}, "observations"),
        ({"observations": pa.table({"date": [D(2020, 1, 2)]})}, "value"),
        ({"observations": pa.table({"date": [D(2020, 1, 2)], "value": [1.0], "x": [1]})}, "x"),
        # Not a version number: bad input, not a conflict (which means a lost race).
        ({"observations": ([D(2020, 1, 2)], [1.0]), "expected_version": "2"}, "expected_version"),
        ({"observations": ([D(2020, 1, 2)], [1.0]), "expected_version": True}, "expected_version"),
        ({"observations": ([D(2020, 1, 2)], [1.0]), "expected_version": -1}, "expected_version"),
        (
            {"observations": ([D(2020, 1, 2)], [1.0]), "expected_version": 10**18 + 1},
            "expected_version",
        ),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as info:
            catalog.write("S", **kwargs)
        assert info.value.field == field, kwargs
        if "rows" in str(info.value):
            assert "zip" in str(info.value), "the message says how to make the pair"
    with pytest.raises(SeriesNotFoundError):
        catalog.write("NOPE", ([D(2020, 1, 2)], [1.0]))
    refusals: list[tuple[Callable[[], object], str]] = [
        (lambda: catalog.update("S", {"title": "t"}, expected_version=1.5), "expected_version"),
        (lambda: catalog.delete("S", expected_version="1"), "expected_version"),
        (lambda: catalog.compact("S", min_files="2"), "min_files"),  # type: ignore[arg-type]
        (lambda: catalog.compact("S", min_files=0), "min_files"),
        (lambda: catalog.history(before="3"), "before"),  # type: ignore[arg-type]
        (lambda: catalog.collect_garbage(grace=3600), "grace"),  # type: ignore[arg-type]
        (lambda: catalog.collect_garbage(progress=True), "progress"),  # type: ignore[arg-type]
        (lambda: catalog.verify(progress="bar"), "progress"),  # type: ignore[arg-type]
        (lambda: catalog.collect_garbage(retain=30), "retain"),  # type: ignore[arg-type]
    ]
    for call, field in refusals:
        with pytest.raises(ValidationError) as info:
            call()
        assert info.value.field == field
    assert catalog.version() == before
    assert catalog.get("S").version <= before


def test_bad_read_arguments_are_refused(catalog: Catalog) -> None:
    catalog.create(id="T", frequency="intraday")
    catalog.write("T", ([dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)], [1.0]))
    before = catalog.version()
    # UTC+14 at the first instant Python has, and UTC-14 at its last, fall outside it.
    earliest = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=14)))
    latest = dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=-14)))
    calls: list[tuple[Callable[[], Any], str]] = [
        (lambda: catalog.read("T", start=D(2020, 2, 1), end=D(2020, 1, 1)), "start"),
        (lambda: catalog.revisions("T", start=D(2020, 2, 1), end=D(2020, 1, 1)), "start"),
        (lambda: catalog.read("T", start=earliest), "start"),
        (lambda: catalog.read("T", end=latest), "end"),
        (lambda: catalog.read("T", as_of=earliest), "as_of"),
        (lambda: catalog.write("T", (["0001-01-01T00:00:00+14:00"], [1.0])), "dates"),
    ]
    for call, field in calls:
        with pytest.raises(ValidationError) as info:
            call()
        assert info.value.field == field
    assert catalog.version() == before


# -- input forms -------------------------------------------------------------------

DATES = [D(2020, 2, 28), D(2020, 2, 29), D(2020, 3, 2)]
VALUES = [1.0, None, 3.0]
FORMS: dict[str, Callable[[], Any]] = {
    "arrow": lambda: pa.table({"date": pa.array(DATES), "value": pa.array(VALUES)}),
    "arrow-date64-int-values": lambda: pa.table(
        {"date": pa.array(DATES, pa.date64()), "value": pa.array([1, None, 3], pa.int32())}
    ),
    "arrow-midnight-timestamps": lambda: pa.table(
        {"date": pa.array(DATES).cast(pa.timestamp("s")), "value": pa.array(VALUES)}
    ),
    "pandas-column": lambda: pd.DataFrame(
        {"date": DATES, "value": pd.array(VALUES, dtype="Float64")}
    ),
    "pandas-datetime-index": lambda: pd.DataFrame(
        {"value": pd.array(VALUES, dtype="Float64")},
        index=pd.DatetimeIndex([str(d) for d in DATES], name="date"),
    ),
    "pandas-iso-strings": lambda: pd.DataFrame(
        {"date": [str(d) for d in DATES], "value": [1.0, np.nan, 3.0]}
    ),
    "pandas-series": lambda: pd.Series(
        pd.array(VALUES, dtype="Float64"),
        index=pd.DatetimeIndex([str(d) for d in DATES], name="date"),
    ),
    "pandas-series-index-named-as-in-a-fred-file": lambda: pd.Series(
        VALUES, index=pd.DatetimeIndex([str(d) for d in DATES], name="DATE")
    ),
    "pandas-value-column-index-named-otherwise": lambda: pd.DataFrame(
        {"value": VALUES}, index=pd.Index(DATES, name="Date")
    ),
    "arrow-string-view-dates": lambda: pa.table(
        {
            "date": pa.array([str(d) for d in DATES], pa.string_view()),
            "value": pa.array(VALUES, pa.float64()),
        }
    ),
    "pair-of-lists": lambda: (DATES, VALUES),
    "pair-unsorted": lambda: (list(reversed(DATES)), list(reversed(VALUES))),
    "pair-of-numpy": lambda: (
        np.array([str(d) for d in DATES], dtype="datetime64[D]"),
        pa.array(VALUES, pa.float64()),
    ),
    "pair-of-iso-strings": lambda: ([str(d) for d in DATES], VALUES),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_input_form_gives_the_same_rows(catalog: Catalog, form: str) -> None:
    catalog.create(id="S", frequency="daily")
    s = catalog.write("S", FORMS[form]())
    assert (s.first_date, s.last_date, s.observation_count) == (DATES[0], DATES[-1], 3)
    table = catalog.read("S")
    assert table.schema == schema_for("daily")
    assert rows(table) == list(zip(DATES, VALUES, strict=True))


def test_pandas_nan_is_a_missing_value_but_infinity_is_refused(catalog: Catalog) -> None:
    """pandas marks a missing float with NaN, so a DataFrame's NaN is stored as null;
    NaN given any other way is refused (see test_observation_rules)."""
    catalog.create(id="S", frequency="daily")
    catalog.write("S", pd.DataFrame({"date": [D(2020, 1, 1)], "value": [np.nan]}))
    assert rows(catalog.read("S")) == [(D(2020, 1, 1), None)]
    before = catalog.version()
    with pytest.raises(ValidationError, match="2020-01-02"):
        catalog.write("S", pd.DataFrame({"date": [D(2020, 1, 2)], "value": [np.inf]}))
    assert catalog.version() == before


# -- as-of reads -------------------------------------------------------------------


def test_read_as_of_every_version_equals_the_state_then(catalog: Catalog) -> None:
    catalog.create(id="S", frequency="daily", partitioning="year")
    created = catalog.version()
    model: dict[dt.date, float | None] = {}
    states: dict[int, Rows] = {created: []}

    def step(observations: Any = None, mode: str = "append", **bounds: Any) -> None:
        catalog.write("S", observations, mode, **bounds)
        states[catalog.version()] = model_rows(model)

    model.update({D(2019, 12, 30): 1.0, D(2019, 12, 31): 2.0})
    step(([D(2019, 12, 30), D(2019, 12, 31)], [1.0, 2.0]))
    model.update({D(2020, 1, 2): 3.0})
    step(([D(2020, 1, 2)], [3.0]))
    model.update({D(2019, 12, 31): 2.5, D(2020, 1, 1): None})
    step(([D(2019, 12, 31), D(2020, 1, 1)], [2.5, None]), "upsert")
    del model[D(2019, 12, 30)]
    step(mode="delete_range", end=D(2019, 12, 30))
    catalog.update("S", {"title": "renamed"})  # a metadata change keeps the data
    states[catalog.version()] = model_rows(model)
    for d in [D(2020, 1, 1), D(2020, 1, 2)]:
        del model[d]
    model[D(2020, 1, 3)] = 9.0
    step(([D(2020, 1, 3)], [9.0]), "replace_range", start=D(2020, 1, 1), end=D(2020, 1, 31))

    latest = catalog.version()
    assert sorted(states) == list(range(created, latest + 1))
    for version, expected in states.items():
        assert rows(catalog.read("S", as_of=version)) == expected, version
        assert catalog.get("S", as_of=version).observation_count == len(expected)
    assert rows(catalog.read("S")) == states[latest]
    with pytest.raises(SeriesNotFoundError):
        catalog.read("S", as_of=created - 1)
    with pytest.raises(VersionNotFoundError):
        catalog.read("S", as_of=latest + 1)

    # By UTC instant: the commit time of each version, in UTC and at another offset.
    plus5 = dt.timezone(dt.timedelta(hours=5))
    for info in catalog.history(limit=len(states)):
        at = info.committed_at
        assert rows(catalog.read("S", as_of=at)) == states[info.version]
        assert rows(catalog.read("S", as_of=at.astimezone(plus5))) == states[info.version]
    with pytest.raises(ValidationError) as err:
        catalog.read("S", as_of=dt.datetime(2030, 1, 1))
    assert err.value.field == "as_of"
    with pytest.raises(VersionNotFoundError):
        catalog.read("S", as_of=dt.datetime(1990, 1, 1, tzinfo=dt.UTC))


# -- compaction ----------------------------------------------------------------------


def test_compact_merges_small_files_and_changes_no_value(
    target: StoreTarget, catalog: Catalog
) -> None:
    catalog.create(id="S", frequency="daily", partitioning="year")
    catalog.write("S", ([D(2018, 5, 1), D(2019, 5, 1)], [0.5, 0.75]))
    versions = [catalog.version()]
    for i in range(4):
        catalog.write(
            "S",
            ([D(2019, 5, 1), D(2020, 1, 1 + i), D(2021, 3, 1)], [float(i), i + 0.5, i * 2.0]),
            mode="upsert",
        )
        versions.append(catalog.version())
    before = {v: rows(catalog.read("S", as_of=v)) for v in versions}
    series_before = catalog.get("S")
    record = record_of(catalog, "S")
    assert files_per_partition(record) == {
        "year=2018": 1,
        "year=2019": 5,
        "year=2020": 4,
        "year=2021": 4,
    }
    lone = next(f for f in record.files if f.partition == "year=2018")

    compacted = catalog.compact("S")
    assert compacted == catalog.version() == versions[-1] + 1
    assert catalog.history(limit=1)[0].changes == [("compact", "S")]
    record = record_of(catalog, "S")
    assert files_per_partition(record) == {f"year={y}": 1 for y in (2018, 2019, 2020, 2021)}
    assert lone in record.files  # a partition with one file is left alone
    assert catalog.get("S") == series_before  # no value changed, so neither did the series
    assert rows(catalog.read("S")) == before[versions[-1]]
    assert catalog.compact("S") is None  # nothing left to do
    assert catalog.compact("S", min_files=1) is None  # nor in a partition of one file
    with pytest.raises(SeriesNotFoundError):
        catalog.compact("NOPE")

    # A fresh process sees the same: the new files are in the store, the old ones too.
    with target.open(create=False) as fresh:
        assert rows(fresh.read("S")) == before[versions[-1]]
        for version, expected in before.items():
            assert rows(fresh.read("S", as_of=version)) == expected
        assert fresh.get("S") == series_before


def test_writes_compact_a_partition_that_passes_the_threshold(target: StoreTarget) -> None:
    with target.open(options=CatalogOptions(compact_threshold=3)) as cat:
        cat.create(id="S", frequency="daily", partitioning="year")
        model: dict[dt.date, float | None] = {}
        for i in range(3):
            cat.write("S", ([D(2020, 1, 1 + i), D(2020, 1, 10)], [float(i), -float(i)]), "upsert")
            model.update({D(2020, 1, 1 + i): float(i), D(2020, 1, 10): -float(i)})
        assert files_per_partition(record_of(cat, "S")) == {"year=2020": 3}
        before = cat.version()
        cat.write("S", ([D(2020, 1, 10), D(2021, 1, 1)], [7.0, 8.0]), "upsert")
        model.update({D(2020, 1, 10): 7.0, D(2021, 1, 1): 8.0})
        # The write, then a compaction commit of the crowded partition only.
        assert cat.version() == before + 2
        assert [i.changes for i in cat.history(limit=2)] == [
            [("compact", "S")],
            [("upsert", "S")],
        ]
        assert files_per_partition(record_of(cat, "S")) == {"year=2020": 1, "year=2021": 1}
        assert rows(cat.read("S")) == model_rows(model)
        assert cat.get("S").version == before + 1
        assert cat.get("S").observation_count == len(model)
        assert rows(cat.read("S", as_of=before))[-1] == (D(2020, 1, 10), -2.0)


def test_compaction_after_a_partitioning_change_keeps_the_newest_value(catalog: Catalog) -> None:
    catalog.create(id="S", frequency="daily", partitioning="decade")
    catalog.write("S", ([D(2015, 1, 1), D(2015, 6, 1)], [1.0, 1.0]))
    catalog.write("S", ([D(2015, 1, 1)], [1.5]), mode="upsert")
    catalog.update("S", {"partitioning": "year"})
    assert {f.partition for f in record_of(catalog, "S").files} == {"year=2015"}
    catalog.write("S", ([D(2015, 1, 1)], [2.0]), mode="upsert")
    expected = [(D(2015, 1, 1), 2.0), (D(2015, 6, 1), 1.0)]
    assert rows(catalog.read("S")) == expected
    catalog.compact("S")
    assert rows(catalog.read("S")) == expected
    catalog.update("S", {"partitioning": "decade"})
    catalog.write("S", ([D(2015, 6, 1)], [3.0]), "replace_range", start=D(2015, 6, 1))
    assert rows(catalog.read("S")) == [(D(2015, 1, 1), 2.0), (D(2015, 6, 1), 3.0)]
    assert catalog.get("S").observation_count == 2


# -- other engines read the files directly ---------------------------------------------


def test_duckdb_reads_the_parquet_files_directly(tmp_path: Path) -> None:
    root = tmp_path / "store"
    target = StoreTarget("local", str(root))
    with target.open() as cat:
        cat.create(id="APPENDED", frequency="daily", partitioning="year")
        start = D(2018, 12, 25)
        for chunk in range(4):
            dates = [start + dt.timedelta(days=7 * chunk + k) for k in range(7)]
            cat.write("APPENDED", (dates, [chunk * 10.0 + k for k in range(7)]))
        cat.create(id="REVISED", frequency="daily", partitioning="year")
        cat.write("REVISED", ([D(2019, 12, 31), D(2020, 1, 1)], [1.0, 2.0]))
        cat.write("REVISED", ([D(2019, 12, 31), D(2020, 1, 2)], [10.0, 3.0]), mode="upsert")
        cat.compact("REVISED")
        # Every row the manifest holds into files, for engines that read them directly.
        cat.checkpoint()

        # A series written by appends only: every file in its directory is live.
        appended = record_of(cat, "APPENDED")
        series_dir = root / Path(appended.files[0].path).parent.parent
        assert {p.name for p in series_dir.iterdir()} == {"year=2018", "year=2019"}
        table = duckdb.sql(
            f"select date, value, year from read_parquet('{series_dir}/**/*.parquet', "
            "hive_partitioning=true) order by date"
        ).fetchall()
        expected = rows(cat.read("APPENDED"))
        assert [(d, v) for d, v, _ in table] == expected
        assert [y for _, _, y in table] == [d.year for d, _ in expected]

        # After upserts: the files the series' record lists, compacted into one each.
        revised = record_of(cat, "REVISED")
        paths = [str(root / f.path) for f in revised.files]
        got = duckdb.sql(
            f"select date, value from read_parquet({paths!r}, hive_partitioning=true) order by date"
        ).fetchall()
        assert (
            got
            == rows(cat.read("REVISED"))
            == [
                (D(2019, 12, 31), 10.0),
                (D(2020, 1, 1), 2.0),
                (D(2020, 1, 2), 3.0),
            ]
        )


def test_expected_version_guards_a_write_and_compaction_keeps_the_version(
    catalog: Catalog,
) -> None:
    catalog.create(id="S", frequency="daily")
    s = catalog.write("S", ([D(2020, 1, 1)], [1.0]))
    s = catalog.write("S", ([D(2020, 1, 1)], [2.0]), mode="upsert", expected_version=s.version)
    assert catalog.compact("S") == s.version + 1
    # Compaction changed no value, so a writer holding the series' version may go on.
    s2 = catalog.write("S", ([D(2020, 1, 2)], [3.0]), expected_version=s.version)
    assert s2.version == catalog.version()
    before = catalog.version()
    with pytest.raises(VersionMismatchError):
        catalog.write("S", ([D(2020, 1, 3)], [4.0]), expected_version=s.version)
    assert catalog.version() == before
    assert rows(catalog.read("S")) == [(D(2020, 1, 1), 2.0), (D(2020, 1, 2), 3.0)]


def test_a_batch_may_revise_what_it_wrote_earlier(catalog: Catalog) -> None:
    with catalog.batch() as batch:
        batch.create({"id": "S", "frequency": "daily"})
        batch.write("S", ([D(2020, 1, 1), D(2020, 1, 2)], [1.0, 2.0]))
        batch.write("S", ([D(2020, 1, 1), D(2020, 1, 3)], [1.5, 3.0]), mode="upsert")
        batch.write("S", ([D(2020, 1, 2)], [2.5]), "replace_range", start=D(2020, 1, 2))
    assert rows(catalog.read("S")) == [(D(2020, 1, 1), 1.5), (D(2020, 1, 2), 2.5)]
    assert catalog.get("S").observation_count == 2


def test_a_batch_keeps_what_each_write_was_given_though_the_caller_reuses_its_buffers(
    catalog: Catalog,
) -> None:
    # A crawler fills one DataFrame, or one numpy array, again for each series:
    # pyarrow reads both without copying, and the batch commits only at its end.
    for sid in "ABC":
        catalog.create(id=sid, frequency="daily")
    frame = pd.DataFrame({"date": [D(2024, 1, 2)], "value": [0.0]})
    values = np.zeros(1)
    with catalog.batch() as batch:
        for i, sid in enumerate("ABC"):
            frame.loc[0, "value"] = float(i)
            batch.write(sid, frame)
    with catalog.batch() as batch:
        for i, sid in enumerate("ABC"):
            values[0] = 10.0 + i
            batch.write(sid, pa.table({"date": [D(2024, 1, 3)], "value": values}))
    frame.loc[0, "value"] = values[0] = -1.0
    for i, sid in enumerate("ABC"):
        assert rows(catalog.read(sid)) == [(D(2024, 1, 2), float(i)), (D(2024, 1, 3), 10.0 + i)]


def test_a_write_checked_again_at_commit_checks_what_it_was_given(target: StoreTarget) -> None:
    # The commit checks a write to a stored series against the frequency it has
    # then: another writer may have changed it since the write was added.
    catalog, other = target.open(), target.open(create=False)
    catalog.create(id="M", frequency="monthly")
    values = np.array([1.0, 2.0])
    with catalog.batch() as batch:
        batch.write("M", ([D(2020, 1, 1), D(2021, 1, 1)], values))
        other.update("M", {"frequency": "annual"})
        values[:] = -9.0
    assert catalog.get("M").frequency == "annual"
    assert rows(catalog.read("M")) == [(D(2020, 1, 1), 1.0), (D(2021, 1, 1), 2.0)]
    catalog.close()
    other.close()


def test_a_batch_checks_a_write_against_the_frequency_it_gave_the_series(
    catalog: Catalog,
) -> None:
    catalog.create(id="OLD", frequency="monthly")
    with catalog.batch() as batch:
        batch.create({"id": "NEW", "frequency": "monthly"})
        for sid in ("NEW", "OLD"):
            batch.update(sid, {"frequency": "daily"})
            batch.write(sid, ([D(2024, 1, 17)], [1.0]))  # mid-month: daily, not monthly
    for sid in ("NEW", "OLD"):
        assert catalog.get(sid).frequency == "daily"
        assert rows(catalog.read(sid)) == [(D(2024, 1, 17), 1.0)]


def test_a_write_that_changes_nothing_returns_the_series(catalog: Catalog) -> None:
    catalog.create(id="E", frequency="annual")
    catalog.write("E", ([dt.date(2020, 1, 1)], [1.0]))
    version = catalog.get("E").version
    catalog_version = catalog.version()
    series = catalog.write("E", ([], []), "append")
    assert (series.id, series.observation_count, series.version) == ("E", 1, version)
    # Nor does an update to the values the series has, or a batch of such changes:
    # no new version of the catalog, so caches and ETags stay valid.
    assert catalog.update("E", {}).version == version
    assert catalog.update("E", {"frequency": "annual", "tags": []}).version == version
    with catalog.batch() as batch:
        batch.update("E", {"title": ""})
        batch.write("E", ([], []))
    assert batch.version is None  # it committed nothing
    assert catalog.version() == catalog_version
    assert catalog.update("E", {"title": "now"}).version > version
    # "The same" is the same as stored: 1, 1.0 and true are three values.
    flagged = catalog.update("E", {"attributes": {"flag": 1}})
    for value in (1.0, True):
        changed = catalog.update("E", {"attributes": {"flag": value}})
        assert changed.version > flagged.version
        assert type(changed.attributes["flag"]) is type(value)
        flagged = changed
    deleted = catalog.write(
        "E", mode="delete_range", start=dt.date(1990, 1, 1), end=dt.date(1991, 1, 1)
    )
    assert deleted.observation_count == 1


def test_an_empty_frame_of_timestamps_is_a_write_of_no_rows(catalog: Catalog) -> None:
    """A crawler's "new rows today" as a DataFrame, on a day with none: pandas types
    its empty date column as naive timestamps, which must not be refused."""
    catalog.create(id="EMPTY", frequency="daily")
    catalog.write("EMPTY", ([D(2024, 1, 2), D(2024, 1, 3)], [1.0, 2.0]))
    version = catalog.version()
    frame = pd.DataFrame({"date": pd.to_datetime([]), "value": pd.Series([], dtype=float)})
    indexed = pd.Series([], dtype=float, index=pd.DatetimeIndex([], name="date"))
    for empty in (
        frame,
        indexed,
        pa.table({"date": pa.array([], pa.timestamp("ns")), "value": pa.array([], pa.float64())}),
    ):
        for mode in ("append", "upsert"):
            assert catalog.write("EMPTY", empty, mode).observation_count == 2
    assert catalog.version() == version
    # replace_range with no rows deletes the range.
    replaced = catalog.write(
        "EMPTY", frame, "replace_range", start=D(2024, 1, 3), end=D(2024, 1, 31)
    )
    assert replaced.observation_count == 1
    assert catalog.read("EMPTY").column("date").to_pylist() == [D(2024, 1, 2)]


def test_a_write_of_values_the_series_has_makes_no_version(catalog: Catalog) -> None:
    days = [D(2020, 1, 1) + dt.timedelta(days=i) for i in range(800)]  # three years
    values: list[float | None] = [float(i) for i in range(800)]
    values[5] = None
    catalog.create(id="SYNC", frequency="daily", partitioning="year")
    catalog.write("SYNC", (days, values))
    version, files = catalog.version(), record_of(catalog, "SYNC").files
    # A source synced whole again, a range replaced by what it holds, a range
    # deleted where there is nothing, a missing value upserted as missing.
    catalog.write("SYNC", (days, values), "upsert")
    catalog.write(
        "SYNC", (days[400:500], values[400:500]), "replace_range", start=days[400], end=days[499]
    )
    catalog.write("SYNC", None, "delete_range", start=D(2030, 1, 1), end=D(2030, 12, 31))
    catalog.write("SYNC", ([days[5]], [None]), "upsert")
    assert (catalog.version(), record_of(catalog, "SYNC").files) == (version, files)
    # A sync that revises two values writes those two rows, not the history again.
    revised = list(values)
    revised[10], revised[700] = 10.5, -0.0
    series = catalog.write("SYNC", (days, revised), "upsert")
    assert series.version == version + 1 and series.observation_count == 800
    added = [f for f in record_of(catalog, "SYNC").files if f not in files]
    assert sum(f.rows for f in added) == 2
    assert rows(catalog.read("SYNC")) == list(zip(days, revised, strict=True))
    assert [
        (r["date"], r["value"])
        for r in catalog.revisions("SYNC", start=days[10], end=days[10]).to_pylist()
    ] == [
        (days[10], 10.0),
        (days[10], 10.5),
    ]
    # -0.0 is a change from 0.0, and a revision.
    catalog.write("SYNC", ([days[0]], [-0.0]), "upsert")
    assert catalog.version() == version + 2
    assert len(catalog.revisions("SYNC", start=days[0], end=days[0])) == 2
    # A range replaced with one value changed rewrites only the partition holding it.
    before = record_of(catalog, "SYNC").files
    changed = revised[400:500]
    changed[50] = 1.25
    catalog.write("SYNC", (days[400:500], changed), "replace_range", start=days[400], end=days[499])
    after = record_of(catalog, "SYNC").files
    assert {f.partition for f in set(after) ^ set(before)} == {days[450].strftime("year=%Y")}
    assert rows(catalog.read("SYNC", start=days[450], end=days[450])) == [(days[450], 1.25)]


def test_a_large_write_is_validated_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Validating a million rows took seconds on the event loop, where a gateway
    # serves every other request (its liveness probe too).
    import threading

    from catalog_store import operations

    threads: list[str] = []
    real = operations.normalize

    def recording(table: pa.Table, frequency: str) -> pa.Table:
        threads.append(threading.current_thread().name)
        return real(table, frequency)

    monkeypatch.setattr(operations, "normalize", recording)
    with Catalog.open(tmp_path / "c", create=True) as catalog:
        catalog.create(id="S", frequency="intraday")
        start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        rows = operations.PREPARE_INLINE_ROWS + 1
        instants = [(start + dt.timedelta(seconds=i)).isoformat() for i in range(rows)]
        catalog.write("S", (instants, [1.0] * rows))
        catalog.write("S", ([start + dt.timedelta(days=400)], [2.0]))
        assert catalog.get("S").observation_count == rows + 1
    assert threads[0] != threading.current_thread().name  # a worker's
    assert threads[1] == threading.current_thread().name  # small: no trip


def test_rows_at_most_bounds_a_read_from_the_record_alone(catalog: Catalog) -> None:
    catalog.create(id="S", frequency="daily")
    catalog.write("S", ([D(2020, 1, 1), D(2020, 1, 2)], [1.0, 2.0]))
    catalog.write("S", ([D(2020, 1, 2)], [2.5]), mode="upsert")
    catalog.write("S", ([D(2024, 1, 1)], [3.0]))
    for start, end in ((None, None), (D(2020, 1, 2), D(2020, 1, 2)), (D(2021, 1, 1), None)):
        read = catalog.read("S", start, end).num_rows
        assert catalog.rows_at_most("S", start, end) >= read, (start, end)
    assert catalog.rows_at_most("S") == 3  # the whole series: its count
    assert catalog.rows_at_most("S", D(2019, 1, 1), D(2019, 12, 31)) == 0
    assert catalog.rows_at_most("S", as_of=1) == 0
    with pytest.raises(SeriesNotFoundError):
        catalog.rows_at_most("NOPE")
