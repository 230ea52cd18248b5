"""Time rules of observations: calendars, partitions, instants and what is refused."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from catalog_store import Catalog
from catalog_store.errors import ValidationError
from catalog_store.normalize import normalize
from catalog_store.observations import schema_for
from catalog_store.records import SeriesRecord
from tests.conftest import StoreTarget

D = dt.date
UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))


def rows(table: pa.Table) -> list[tuple[Any, float | None]]:
    return list(
        zip(table.column("date").to_pylist(), table.column("value").to_pylist(), strict=True)
    )


def record_of(cat: Catalog, series_id: str) -> SeriesRecord:
    async def fetch() -> SeriesRecord | None:
        return await (await cat.inner.snapshot()).record(series_id)

    record = cat._runner.run(fetch())
    assert record is not None
    return record


# -- calendars ---------------------------------------------------------------------


def test_leap_days(catalog: Catalog) -> None:
    catalog.create(id="D", frequency="daily", partitioning="year")
    dates = [D(1900, 2, 28), D(1900, 3, 1), D(2000, 2, 28), D(2000, 2, 29), D(2000, 3, 1)]
    catalog.write("D", (dates, [1.0, 2.0, 3.0, 4.0, 5.0]))
    catalog.write("D", (["2020-02-29", "2020-03-01"], [6.0, 7.0]))
    assert rows(catalog.read("D", start=D(2000, 2, 29), end=D(2000, 2, 29))) == [
        (D(2000, 2, 29), 4.0)
    ]
    assert rows(catalog.read("D", start=D(1900, 2, 28), end=D(1900, 3, 1))) == [
        (D(1900, 2, 28), 1.0),
        (D(1900, 3, 1), 2.0),
    ]
    assert catalog.get("D").last_date == D(2020, 3, 1)
    before = catalog.version()
    for not_a_date in ["1900-02-29", "2100-02-29", "2021-02-29", "2020-02-30"]:
        with pytest.raises(ValidationError, match=not_a_date) as info:
            catalog.write("D", ([not_a_date], [1.0]), mode="upsert")
        assert info.value.field == "dates"
    assert catalog.version() == before

    catalog.create(id="I", frequency="intraday", partitioning="month")
    last_instant = dt.datetime(2020, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)
    catalog.write("I", ([last_instant, dt.datetime(2020, 3, 1, tzinfo=UTC)], [1.0, 2.0]))
    catalog.checkpoint()  # the held rows into files, one per partition
    assert {f.partition for f in record_of(catalog, "I").files} == {
        "year=2020/month=02",
        "year=2020/month=03",
    }
    assert rows(catalog.read("I", start=D(2020, 2, 29), end=D(2020, 2, 29))) == [
        (last_instant, 1.0)
    ]


def test_year_and_decade_boundaries(catalog: Catalog) -> None:
    catalog.create(id="B", frequency="business_daily", partitioning="decade")
    catalog.write("B", ([D(1999, 12, 29), D(1999, 12, 30), D(1999, 12, 31)], [1.0, 2.0, 3.0]))
    s = catalog.write("B", ([D(2000, 1, 3)], [4.0]))  # Friday to Monday across the millennium
    assert (s.first_date, s.last_date, s.observation_count) == (D(1999, 12, 29), D(2000, 1, 3), 4)
    catalog.checkpoint()  # the held rows into files, one per partition
    assert sorted(f.partition for f in record_of(catalog, "B").files) == [
        "decade=1990",
        "decade=2000",
    ]
    assert rows(catalog.read("B", start=D(1999, 12, 31), end=D(2000, 1, 3))) == [
        (D(1999, 12, 31), 3.0),
        (D(2000, 1, 3), 4.0),
    ]
    assert rows(catalog.read("B", start=D(2000, 1, 1))) == [(D(2000, 1, 3), 4.0)]
    assert rows(catalog.read("B", end=D(1999, 12, 31)))[-1] == (D(1999, 12, 31), 3.0)

    # The epoch and the ends of the accepted range land in the right partitions.
    catalog.create(id="Y", frequency="daily", partitioning="year")
    edges = [D(1600, 1, 1), D(1969, 12, 31), D(1970, 1, 1), D(2200, 12, 31)]
    catalog.write("Y", (edges, [1.0, 2.0, 3.0, 4.0]))
    catalog.checkpoint()
    assert sorted((f.partition, f.rows) for f in record_of(catalog, "Y").files) == [
        ("year=1600", 1),
        ("year=1969", 1),
        ("year=1970", 1),
        ("year=2200", 1),
    ]
    assert [d for d, _ in rows(catalog.read("Y"))] == edges

    catalog.create(id="M", frequency="monthly", partitioning="decade")
    months = [D(1959, 12, 1), D(1960, 1, 1), D(2009, 12, 1), D(2010, 1, 1)]
    catalog.write("M", (months, [1.0, 2.0, 3.0, 4.0]))
    catalog.checkpoint()
    assert sorted(f.partition for f in record_of(catalog, "M").files) == [
        "decade=1950",
        "decade=1960",
        "decade=2000",
        "decade=2010",
    ]


def test_a_write_spanning_thirty_years_makes_one_file_per_year(target: StoreTarget) -> None:
    start, end = D(1991, 1, 1), D(2020, 12, 31)
    days = (end - start).days + 1
    dates = pa.array(np.arange(np.datetime64(start), np.datetime64(end) + 1)).cast(pa.date32())
    values = np.arange(days, dtype=np.float64)
    with target.open() as cat:
        cat.create(id="DAILY", frequency="daily", partitioning="year")
        s = cat.write("DAILY", pa.table({"date": dates, "value": values}))
        assert (s.first_date, s.last_date, s.observation_count) == (start, end, days)
        record = record_of(cat, "DAILY")
        assert len(record.files) == 30
        assert sorted(f.partition for f in record.files) == [f"year={y}" for y in range(1991, 2021)]
        for f in record.files:
            year = int(f.partition.removeprefix("year="))
            assert f"/year={year}/" in f.path and f.path.endswith(".parquet")
            assert (f.lo, f.hi) == (
                (D(year, 1, 1) - D(1970, 1, 1)).days,
                (D(year, 12, 31) - D(1970, 1, 1)).days,
            )
            assert f.rows == (D(year + 1, 1, 1) - D(year, 1, 1)).days

        table = cat.read("DAILY")
        assert table.num_rows == days
        assert table.column("date").equals(pa.chunked_array([dates]))
        assert table.column("value").to_numpy().tolist() == values.tolist()
        part = cat.read("DAILY", start=D(2000, 6, 1), end=D(2001, 5, 31))
        assert part.num_rows == 365
        first = (D(2000, 6, 1) - start).days
        assert part.column("value").to_pylist() == values[first : first + 365].tolist()

    if target.backend == "local":
        series_dir = Path(target.url) / Path(record.files[0].path).parent.parent
        years = sorted(p.name for p in series_dir.iterdir())
        assert years == [f"year={y}" for y in range(1991, 2021)]
        files = list((series_dir / "year=2001").iterdir())
        assert len(files) == 1 and files[0].suffix == ".parquet"


@pytest.mark.parametrize("frequency", ["daily", "intraday"])
def test_an_empty_range_reads_as_an_empty_table_with_the_schema(
    catalog: Catalog, frequency: str
) -> None:
    catalog.create(id="S", frequency=frequency)
    schema = schema_for(frequency)
    assert catalog.read("S").schema == schema
    if frequency == "intraday":
        first = dt.datetime(2020, 1, 1, 12, tzinfo=UTC)
        catalog.write("S", ([first, first + dt.timedelta(days=40)], [1.0, 2.0]))
    else:
        catalog.write("S", ([D(2020, 1, 1), D(2020, 2, 10)], [1.0, 2.0]))
    for start, end in [
        (D(2020, 1, 2), D(2020, 2, 9)),
        (D(1990, 1, 1), D(1990, 12, 31)),
        (D(2030, 1, 1), None),
        (None, D(2019, 12, 31)),
    ]:
        table = catalog.read("S", start=start, end=end)
        assert table.num_rows == 0, (start, end)
        assert table.schema == schema


# -- intraday ----------------------------------------------------------------------


def test_intraday_observations_are_utc_instants(catalog: Catalog) -> None:
    catalog.create(id="FX", frequency="intraday", partitioning="month")
    local = [
        dt.datetime(2020, 1, 31, 23, 30, tzinfo=UTC),
        dt.datetime(2020, 2, 1, 1, 15, tzinfo=PLUS2),  # 2020-01-31T23:15Z: sorts first
        dt.datetime(2020, 2, 1, 9, 0, 0, 1, tzinfo=PLUS2),
    ]
    s = catalog.write("FX", (local, [1.0, 2.0, 3.0]))
    in_utc = sorted(t.astimezone(UTC) for t in local)
    assert (s.first_date, s.last_date, s.observation_count) == (in_utc[0], in_utc[-1], 3)
    table = catalog.read("FX")
    assert table.schema.field("date").type == pa.timestamp("us", tz="UTC")
    assert rows(table) == [(in_utc[0], 2.0), (in_utc[1], 1.0), (in_utc[2], 3.0)]
    catalog.checkpoint()  # the held rows into files, one per UTC month
    assert sorted(f.partition for f in record_of(catalog, "FX").files) == [
        "year=2020/month=01",
        "year=2020/month=02",
    ]
    # Date bounds cover whole UTC days; instant bounds are inclusive to the microsecond.
    assert rows(catalog.read("FX", start=D(2020, 2, 1))) == [(in_utc[2], 3.0)]
    assert len(rows(catalog.read("FX", end=D(2020, 1, 31)))) == 2
    assert rows(catalog.read("FX", start=in_utc[1], end=in_utc[1])) == [(in_utc[1], 1.0)]
    just_before = in_utc[2] - dt.timedelta(microseconds=1)
    assert rows(catalog.read("FX", start=just_before.astimezone(PLUS2))) == [(in_utc[2], 3.0)]
    # ISO strings with an offset, and pandas' tz-aware timestamps, are instants too.
    catalog.write("FX", (["2020-02-02T10:00:00+01:00"], [4.0]))
    frame = pd.DataFrame(
        {"date": pd.to_datetime(["2020-02-03 10:00"]).tz_localize("America/New_York"), "value": [5]}
    )
    s = catalog.write("FX", frame)
    assert s.last_date == dt.datetime(2020, 2, 3, 15, tzinfo=UTC)
    assert catalog.read("FX").column("date")[3].as_py() == dt.datetime(2020, 2, 2, 9, tzinfo=UTC)

    before = catalog.version()
    naive = dt.datetime(2020, 3, 1, 12)
    refused: list[Any] = [
        ([naive], [1.0]),
        (["2020-03-01T12:00:00"], [1.0]),
        (pd.DataFrame({"date": [pd.Timestamp(naive)], "value": [1.0]})),
        ([D(2020, 3, 1)], [1.0]),
        (
            pd.DataFrame(
                {
                    "date": pd.to_datetime(["2020-03-01 00:00:00.000000001"], utc=True),
                    "value": [1.0],
                }
            )
        ),
    ]
    for observations in refused:
        with pytest.raises(ValidationError) as info:
            catalog.write("FX", observations, mode="upsert")
        assert info.value.field == "dates"
    with pytest.raises(ValidationError, match="naive") as info:
        catalog.write("FX", ([naive], [1.0]))
    with pytest.raises(ValidationError, match="naive"):
        catalog.write("FX", (["2020-03-01T12:00:00"], [1.0]))
    with pytest.raises(ValidationError) as info:
        catalog.read("FX", start=naive)
    assert info.value.field == "start"
    with pytest.raises(ValidationError) as info:
        catalog.write("FX", mode="delete_range", end=naive)
    assert info.value.field == "end"
    assert catalog.version() == before


# -- what a write refuses ----------------------------------------------------------

NAN = float("nan")
_INSTANT = dt.datetime(2020, 1, 1, 12, tzinfo=UTC)
_TOKYO = dt.timezone(dt.timedelta(hours=9))

#: (id, frequency, observations, field, text the message must contain)
REFUSED: list[tuple[str, str, Any, str, str]] = [
    (
        "duplicate",
        "daily",
        ([D(2020, 1, 2), D(2020, 1, 1), D(2020, 1, 2)], [1, 2, 3]),
        "dates",
        "duplicate date 2020-01-02",
    ),
    (
        "duplicate-instant",
        "intraday",
        ([_INSTANT, _INSTANT.astimezone(PLUS2)], [1, 2]),
        "dates",
        "duplicate date",
    ),
    ("nan", "daily", ([D(2020, 1, 1), D(2020, 1, 2)], [1.0, NAN]), "values", "2020-01-02"),
    ("inf", "daily", ([D(2020, 1, 1), D(2020, 1, 2)], [float("inf"), 1.0]), "values", "2020-01-01"),
    ("minus-inf", "weekly", ([D(2020, 1, 3)], [float("-inf")]), "values", "2020-01-03"),
    (
        "numpy-nan",
        "daily",
        (np.array(["2020-01-05"], dtype="datetime64[D]"), np.array([NAN])),
        "values",
        "2020-01-05",
    ),
    ("nan-intraday", "intraday", ([_INSTANT], [NAN]), "values", "2020-01-01 12:00:00"),
    (
        "saturday",
        "business_daily",
        ([D(2024, 5, 31), D(2024, 6, 1)], [1, 2]),
        "dates",
        "2024-06-01",
    ),
    ("sunday", "business_daily", ([D(2024, 6, 2)], [1]), "dates", "2024-06-02"),
    ("monthly-mid", "monthly", ([D(2020, 1, 1), D(2020, 2, 15)], [1, 2]), "dates", "2020-02-15"),
    ("monthly-end", "monthly", ([D(2020, 1, 31)], [1]), "dates", "2020-01-31"),
    ("quarterly-feb", "quarterly", ([D(2020, 2, 1)], [1]), "dates", "2020-02-01"),
    ("quarterly-day2", "quarterly", ([D(2020, 4, 2)], [1]), "dates", "2020-04-02"),
    ("semiannual-apr", "semiannual", ([D(2020, 4, 1)], [1]), "dates", "2020-04-01"),
    ("annual-jul", "annual", ([D(2020, 7, 1)], [1]), "dates", "2020-07-01"),
    ("annual-dec31", "annual", ([D(2020, 12, 31)], [1]), "dates", "2020-12-31"),
    ("before-1600", "daily", ([D(1599, 12, 31)], [1]), "dates", "1599-12-31"),
    ("after-2200", "daily", ([D(2201, 1, 1)], [1]), "dates", "2201-01-01"),
    ("year-1", "annual", ([D(1, 1, 1)], [1]), "dates", "0001-01-01"),
    (
        "instant-after-2200",
        "intraday",
        ([dt.datetime(2201, 1, 1, tzinfo=UTC)], [1]),
        "dates",
        "2201-01-01",
    ),
    (
        "instant-before-1600",
        "intraday",
        ([dt.datetime(1599, 12, 31, 23, 59, tzinfo=UTC)], [1]),
        "dates",
        "1599-12-31",
    ),
    ("null-date", "daily", ([D(2020, 1, 1), None], [1, 2]), "dates", "null"),
    ("not-iso", "daily", (["2020-13-01"], [1]), "dates", "2020-13-01"),
    ("iso-basic-form", "daily", (["20200101"], [1]), "dates", "20200101"),
    ("instant-week-date", "intraday", (["2024-W01-1T00:00:00Z"], [1]), "dates", "RFC 3339"),
    ("instant-nanoseconds", "intraday", (["2024-01-01T00:00:00.1234567Z"], [1]), "dates", "RFC"),
    (
        "arrow-nanoseconds",
        "intraday",
        pa.table({"date": pa.array([1], pa.timestamp("ns", tz="UTC")), "value": [1.0]}),
        "dates",
        "finer than a microsecond",
    ),
    (
        "seconds-beyond-microseconds",
        "intraday",
        pa.table({"date": pa.array([0, 2**62], pa.timestamp("s", tz="UTC")), "value": [1, 2]}),
        "dates",
        "instant 4611686018427387904 seconds from 1970-01-01 is outside 1600-01-01 .. 2200-12-31",
    ),
    (
        "milliseconds-beyond-microseconds",
        "intraday",
        pa.table({"date": pa.array([-(2**62)], pa.timestamp("ms", tz="UTC")), "value": [1]}),
        "dates",
        "instant -4611686018427387904 milliseconds from 1970-01-01 is outside",
    ),
    (
        "pandas-seconds-beyond-microseconds",
        "intraday",
        pd.DataFrame(
            {"date": pd.Series([2**62], dtype="datetime64[s]").dt.tz_localize(UTC), "value": [1.0]}
        ),
        "dates",
        "instant 4611686018427387904 seconds from 1970-01-01 is outside",
    ),
    ("iso-week-form", "daily", (["2020W011"], [1]), "dates", "2020W011"),
    ("instant-for-a-date", "daily", ([_INSTANT], [1]), "dates", "instants"),
    ("time-of-day", "daily", ([dt.datetime(2020, 1, 1, 12)], [1]), "dates", "time of day"),
    ("number-dates", "daily", ([1, 2], [1, 2]), "dates", "int64"),
    ("text-values", "daily", (pa.array([D(2020, 1, 1)]), pa.array(["1"])), "values", "string"),
    ("bool-values", "daily", ([D(2020, 1, 1), D(2020, 1, 2)], [True, False]), "values", "bool"),
    ("bool-among-floats", "daily", ([D(2020, 1, 1), D(2020, 1, 2)], [1.5, True]), "values", "bool"),
    ("numpy-bools", "daily", ([D(2020, 1, 1)], np.array([True])), "values", "bool"),
    (
        "text-among-floats",
        "daily",
        ([D(2020, 1, 1), D(2020, 1, 2)], [1.5, "2"]),
        "values",
        "numbers",
    ),
    (
        "int-beyond-float",
        "daily",
        pa.table({"date": [D(2020, 1, 1)], "value": pa.array([2**53 + 1], pa.int64())}),
        "values",
        "9007199254740993",
    ),
    (
        "uint64-max",
        "daily",
        pa.table({"date": [D(2020, 1, 1)], "value": pa.array([2**64 - 1], pa.uint64())}),
        "values",
        "64-bit float",
    ),
    (
        "date64-with-time",
        "daily",
        pa.table({"date": pa.array([1577880000123], pa.date64()), "value": [1.0]}),
        "dates",
        "time of day",
    ),
    (
        "date32-beyond-python",
        "daily",
        pa.table({"date": pa.array([2**31 - 1], pa.date32()), "value": [1.0]}),
        "dates",
        "2147483647 days from 1970-01-01",
    ),
    (
        "two-value-columns",
        "daily",
        pa.Table.from_arrays(
            [pa.array([D(2020, 1, 1)]), pa.array([1.0]), pa.array([2.0])],
            names=["date", "value", "value"],
        ),
        "observations",
        "once",
    ),
    ("dates-generator", "daily", ((d for d in [D(2020, 1, 1)]), [1.0]), "dates", "generator"),
    # Arrow types a list by its first item and converts the rest to it: a time of
    # day, a time zone or the want of one was dropped without a word.
    (
        "datetime-after-date",
        "daily",
        ([D(2024, 1, 2), dt.datetime(2024, 1, 3, 23)], [1.0, 2.0]),
        "dates",
        "mix a date and a naive datetime",
    ),
    (
        "aware-after-date",
        "daily",
        ([D(2024, 1, 1), dt.datetime(2024, 1, 3, 1, tzinfo=_TOKYO)], [1.0, 2.0]),
        "dates",
        "mix a date and an aware datetime",
    ),
    (
        "naive-after-aware",
        "intraday",
        ([_INSTANT, dt.datetime(2024, 1, 2, 6)], [1.0, 2.0]),
        "dates",
        "mix a naive datetime and an aware datetime",
    ),
    (
        "object-array-mixing-dates",
        "daily",
        (np.array([D(2024, 1, 2), dt.datetime(2024, 1, 3, 23)], dtype=object), [1.0, 2.0]),
        "dates",
        "mix",
    ),
    (
        "frame-mixing-dates",
        "daily",
        pd.DataFrame({"date": [D(2024, 1, 2), dt.datetime(2024, 1, 3, 23)], "value": [1.0, 2.0]}),
        "dates",
        "mix",
    ),
    # numpy days past 32 bits wrapped into another date (2^32 + n read as day n).
    (
        "numpy-days-past-32-bits",
        "daily",
        (np.array([2**32 + 19724], dtype="datetime64[D]"), [1.0]),
        "dates",
        "outside 1600-01-01 .. 2200-12-31",
    ),
    (
        "numpy-years-far-out",
        "annual",
        (np.array([2**40], dtype="datetime64[Y]"), [1.0]),
        "dates",
        "outside",
    ),
    (
        "numpy-hour-not-midnight",
        "daily",
        (np.array(["2024-01-01T01"], "datetime64[h]"), [1]),
        "dates",
        "time of day",
    ),
    (
        "numpy-generic-datetimes",
        "daily",
        (np.array([np.datetime64(0, "D"), np.datetime64("NaT")]).astype("datetime64"), [1, 2]),
        "dates",
        "",
    ),
    ("numpy-not-a-time", "daily", ([np.datetime64("NaT")], [1.0]), "dates", ""),
    (
        "two-nanoseconds-before-what-nanoseconds-hold",
        "daily",
        (np.array([-5594312836854775808], dtype="datetime64[2ns]"), [1.0]),
        "dates",
        "outside",
    ),
    (
        "first-day-of-nanoseconds",
        "daily",
        (np.array([pd.Timestamp.min.to_datetime64()]), [1.0]),
        "dates",
        "time of day",
    ),
    ("pandas-nat-date", "daily", ([pd.NaT], [1.0]), "dates", ""),
    ("pandas-nat-value", "daily", ([D(2020, 1, 1)], [pd.NaT]), "values", ""),
    (
        "long-double-values",
        "daily",
        ([D(2020, 1, 1)], np.array([1.5], dtype=np.longdouble)),
        "values",
        "",
    ),
    ("dates-as-a-dict", "daily", ({0: D(2020, 1, 1)}, [1.0]), "dates", "dict"),
    (
        "dates-as-a-table-of-rows",
        "daily",
        (np.array([[0]], dtype="datetime64[D]"), [1.0]),
        "dates",
        "one-dimensional",
    ),
    (
        "frame-int-past-64-bits",
        "daily",
        pd.DataFrame({"date": [D(2020, 1, 1)], "value": pd.Series([2**70], dtype=object)}),
        "observations",
        "",
    ),
    # Arrow reads True among floats as 1.0 wherever the items are Python objects.
    (
        "object-array-bool",
        "daily",
        ([D(2020, 1, 1), D(2020, 1, 2)], np.array([1.5, True], dtype=object)),
        "values",
        "bool",
    ),
    (
        "object-series-bool",
        "daily",
        ([D(2020, 1, 1), D(2020, 1, 2)], pd.Series([1.5, True], dtype=object)),
        "values",
        "bool",
    ),
    (
        "frame-object-bool",
        "daily",
        pd.DataFrame(
            {"date": [D(2020, 1, 1), D(2020, 1, 2)], "value": pd.Series([1.5, True], dtype=object)}
        ),
        "values",
        "bool",
    ),
    ("scalar-value", "daily", ([D(2020, 1, 1)], 1.0), "values", "float"),
    (
        "two-level-index",
        "daily",
        pd.DataFrame(
            {"value": [1.0]},
            index=pd.MultiIndex.from_tuples([(D(2020, 1, 1), 1)], names=["date", "n"]),
        ),
        "observations",
        "index",
    ),
]
ACCEPTED: list[tuple[str, str, list[dt.date]]] = [
    ("weekdays", "business_daily", [D(2024, 5, 31), D(2024, 6, 3), D(1960, 1, 4)]),
    ("monthly", "monthly", [D(2020, 1, 1), D(2020, 2, 1), D(1600, 1, 1), D(2200, 12, 1)]),
    ("quarterly", "quarterly", [D(2020, 1, 1), D(2020, 4, 1), D(2020, 7, 1), D(2020, 10, 1)]),
    ("semiannual", "semiannual", [D(2020, 1, 1), D(2020, 7, 1), D(1969, 7, 1)]),
    ("annual", "annual", [D(1600, 1, 1), D(2000, 1, 1), D(2200, 1, 1)]),
    ("weekly", "weekly", [D(2020, 1, 3), D(2020, 1, 10), D(2020, 1, 18)]),
    ("range-ends", "daily", [D(1600, 1, 1), D(2200, 12, 31)]),
    ("irregular", "irregular", [D(2020, 1, 1), D(2020, 1, 2), D(2021, 7, 4)]),
]


def _first_day(text: str) -> str:
    """``2024``, ``2024-01`` or ``2024-01-02T...`` as the first day it names."""
    day = text[:10]
    return {4: f"{day}-01-01", 7: f"{day}-01"}.get(len(day), day)


def test_numpy_datetimes_of_every_unit_are_read_as_their_dates() -> None:
    """Months and years become their first day, hours and minutes at midnight their
    day: units Arrow has no type for are converted, not refused."""
    cases = [
        (np.array(["2024-01", "1600-01", "2200-12"], "datetime64[M]"), "monthly"),
        (np.array(["2024", "2200"], "datetime64[Y]"), "annual"),
        (np.array(["2024-01-01T00", "2024-01-02T00"], "datetime64[h]"), "daily"),
        (np.array(["2024-01-01T00:00"], "datetime64[m]"), "daily"),
        (np.array(["2024-01-01", "1600-01-01", "2200-12-31"], "datetime64[D]"), "daily"),
        # pandas' own unit, whose 64 bits end before 1600 and after 2200: the range
        # is judged on the days, not on the bounds in nanoseconds (which overflow).
        (np.array(["2024-01-02", "1677-09-22", "2200-12-31"], "datetime64[ns]"), "daily"),
        (np.array(["2024-01-02", "1600-01-01"], "datetime64[us]"), "daily"),
        (np.array(["2024-01-02", "1600-01-01"], "datetime64[ms]"), "daily"),
        (np.array(["2024-01-02", "2200-12-31"], "datetime64[s]"), "daily"),
        # A unit with a count: Arrow ignores the count, so 2020-01-03 in [2D] was
        # stored as 1995-01-02.
        (np.array(["2020-01-01", "2020-01-03", "2200-12-31"], "datetime64[2D]"), "daily"),
        (np.array(["2020-01-01", "2020-01-03"], "datetime64[2s]"), "daily"),
        (np.array(["2020-01-01", "2020-01-03"], "datetime64[2ns]"), "daily"),
    ]
    for days, frequency in cases:
        table = normalize((days, [1.0] * len(days)), frequency)
        # Read from the text: numpy's own conversion to days overflows near the
        # ends of what 64 bits of nanoseconds hold.
        expected = sorted(dt.date.fromisoformat(_first_day(str(d))) for d in days)
        assert table.column("date").to_pylist() == expected, days


@pytest.mark.parametrize(
    ("frequency", "observations", "field", "text"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_normalize_refuses(frequency: str, observations: Any, field: str, text: str) -> None:
    """The validation rules themselves, without a store."""
    with pytest.raises(ValidationError) as info:
        normalize(observations, frequency)
    assert info.value.field == field
    assert text in str(info.value)


@pytest.mark.parametrize(
    ("frequency", "dates"), [case[1:] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED]
)
def test_normalize_accepts_and_sorts(frequency: str, dates: list[dt.date]) -> None:
    values = [float(i) if i % 2 else None for i in range(len(dates))]
    table = normalize((list(reversed(dates)), list(reversed(values))), frequency)
    assert rows(table) == sorted(zip(dates, values, strict=True))
    assert table.schema == schema_for(frequency)


def test_a_refused_write_changes_nothing(catalog: Catalog) -> None:
    by_frequency = {case[1] for case in REFUSED}
    for frequency in sorted(by_frequency):
        catalog.create(id=frequency, frequency=frequency)
    before = catalog.version()
    for name, frequency, observations, field, text in REFUSED:
        with pytest.raises(ValidationError) as info:
            catalog.write(frequency, observations, mode="upsert")
        assert (info.value.field, text in str(info.value)) == (field, True), name
    assert catalog.version() == before
    for frequency in by_frequency:
        assert catalog.get(frequency).observation_count == 0
    for name, frequency, dates in ACCEPTED:
        series_id = f"ok-{name}"
        catalog.create(id=series_id, frequency=frequency)
        values = [float(i) if i % 2 else None for i in range(len(dates))]
        s = catalog.write(series_id, (list(reversed(dates)), list(reversed(values))))
        assert s.observation_count == len(dates)
        assert rows(catalog.read(series_id)) == sorted(zip(dates, values, strict=True))


def test_integers_past_2_53_a_float_holds_exactly_are_taken() -> None:
    # Arrow's safe cast refused every integer past 2^53, so 10^16 (a GDP in rupiah)
    # sent as a JSON or CSV integer was refused though no digit would be lost.
    day = dt.date(2000, 1, 1)
    # Past int64 Arrow cannot read a Python int at all; 10^22 and 2^63 are floats exactly.
    for exact in (10**16, 2**60, -(2**63), 10**22, 2**63, -(2**64)):
        assert normalize(([day], [exact]), "daily").column("value")[0].as_py() == float(exact)
    assert normalize(([day], [[1.5, 10**22][1]]), "daily").num_rows == 1
    mixed = normalize(([day, day + dt.timedelta(days=1)], [1.5, 10**22]), "daily")
    assert mixed.column("value").to_pylist() == [1.5, 1e22]
    # Among floats Arrow refuses any int past 2^53, even one a float holds exactly.
    for exact in (10**16, 2**60, -(2**60), 2**53):
        mixed = normalize(([day, day + dt.timedelta(days=1)], [1.5, exact]), "daily")
        assert mixed.column("value").to_pylist() == [1.5, float(exact)]
    for inexact, other in itertools.product((2**53 + 1, 2**63 + 1, 10**400), (1, 1.5)):
        with pytest.raises(ValidationError, match="cannot hold exactly") as refused:
            normalize(([day, day + dt.timedelta(days=1)], [other, inexact]), "daily")
        assert refused.value.field == "values"
        assert refused.value.message.startswith(f"{inexact} is an integer"), "said once"


def test_half_precision_values_are_taken_however_many_and_bools_among_them_refused() -> None:
    # A list of numpy float16 scalars is read by Arrow as halffloat, which the
    # search for bools among floats had no kernel for: a raw Arrow error.
    for count in (1, 64, 65, 200):
        days = [dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(count)]
        table = normalize((days, [np.float16(1.5)] * count), "daily")
        assert table.column("value").to_pylist() == [1.5] * count
        with pytest.raises(ValidationError) as refused:
            normalize((days, [np.float16(1.5)] * (count - 1) + [True]), "daily")
        assert refused.value.field == "values"
