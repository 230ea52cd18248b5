"""Observation tables: their shape, bounds, partitions, Parquet and merging.

Pure functions on pyarrow tables; no storage I/O. A table has two columns:
``date`` (``date32``, or ``timestamp[us, UTC]`` for intraday series) and ``value``
(``float64``, null for a missing observation), sorted by date, one row per date.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import itertools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from catalog_store.errors import IntegrityError, ValidationError

DATE_TYPE = pa.date32()
INSTANT_TYPE = pa.timestamp("us", tz="UTC")
MIN_DATE = dt.date(1600, 1, 1)
MAX_DATE = dt.date(2200, 12, 31)
COLUMNS = ("date", "value")

#: Default time partitioning by frequency, chosen by bench/partitions.py
#: (docs/observations.md has the figures): one file per series reads fastest for
#: everything up to decades of daily data; intraday series grow by month.
DEFAULT_PARTITIONING = {
    "intraday": "month",
    "daily": "none",
    "business_daily": "none",
    "weekly": "none",
    "monthly": "none",
    "quarterly": "none",
    "semiannual": "none",
    "annual": "none",
    "irregular": "none",
}

#: Months in one period of the frequencies that date each period by its first day.
PERIOD_MONTHS = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}

_WRITE_MODES = ("append", "upsert", "replace_range", "delete_range")
WriteMode = str


@functools.cache  # schemas and tables are immutable; building one costs ~10 us
def schema_for(frequency: str) -> pa.Schema:
    """The schema of a series' observation tables."""
    date_type = INSTANT_TYPE if frequency == "intraday" else DATE_TYPE
    return pa.schema([pa.field("date", date_type, nullable=False), pa.field("value", pa.float64())])


@functools.cache
def empty_table(frequency: str) -> pa.Table:
    return schema_for(frequency).empty_table()


def table_of_rows(dates: Sequence[int], values: Sequence[float | None], frequency: str) -> pa.Table:
    """A table of rows given as ordinals (see :func:`date_ints`) and values, in order."""
    schema = schema_for(frequency)
    return pa.table(
        [pa.array(dates, schema.field("date").type), pa.array(values, pa.float64())],
        schema=schema,
    )


def check_mode(mode: str) -> str:
    if mode not in _WRITE_MODES:
        raise ValidationError(
            f"unknown write mode {mode!r}; one of {', '.join(_WRITE_MODES)}", "mode"
        )
    return mode


def check_column_selection(columns: Any) -> None:
    """A read's ``columns``: a list of distinct names of :data:`COLUMNS`."""
    names = list(columns) if isinstance(columns, list | tuple) else []
    if not names or len(set(names)) != len(names):
        raise ValidationError("must be a list of distinct column names", "columns")
    unknown = [c for c in names if c not in COLUMNS]
    if unknown:
        raise ValidationError(f"unknown column {unknown[0]!r}", "columns")


def date_ints(table: pa.Table) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The date column as int64: days since 1970-01-01, or microseconds for instants."""
    column = table.column("date")
    kind = column.type
    storage = pa.int64() if pa.types.is_timestamp(kind) else pa.int32()
    # One chunk of dates (the usual table here) is read as its integers in place: a
    # cast costs several times more, which a one-row append pays more than once.
    in_place = column.num_chunks == 1 and (pa.types.is_timestamp(kind) or kind == pa.date32())
    whole = column.chunk(0).view(storage) if in_place else column.cast(storage)
    ints: np.ndarray[Any, np.dtype[np.int64]] = whole.to_numpy(zero_copy_only=False).astype(
        np.int64
    )
    return ints


_EPOCH = dt.date(1970, 1, 1)


def ordinal(value: dt.date, intraday: bool) -> int:
    """A calendar date as days since the epoch, or as microseconds at its midnight UTC."""
    days = (value - _EPOCH).days
    return days * 86_400_000_000 if intraday else days


#: A calendar date as every surface writes one: RFC 3339's full-date, YYYY-MM-DD.
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
#: RFC 3339's date-time (seconds optional, at most microseconds), its offset optional
#: so that a naive one is reported as naive rather than as malformed.
_INSTANT_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)


def parse_instant_text(text: str) -> dt.datetime:
    """An RFC 3339 date-time, naive if it has no offset. Raises ValueError for any
    other form (``datetime.fromisoformat`` also takes ISO week dates, offsets
    without a colon, and nanoseconds, which it drops)."""
    if _INSTANT_TEXT.fullmatch(text) is None:
        raise ValueError(f"not an RFC 3339 instant: {text!r}")
    return dt.datetime.fromisoformat(text.upper())


def parse_date_text(text: str) -> dt.date:
    """A calendar date written YYYY-MM-DD. Raises ValueError for any other form
    (``date.fromisoformat`` also takes 20240131 and 2024W053)."""
    if _DATE_TEXT.fullmatch(text) is None:
        raise ValueError(f"not a date like 2024-01-31: {text!r}")
    return dt.date.fromisoformat(text)  # ValueError for a month or day out of range


def utc_instant(value: dt.datetime, name: str) -> dt.datetime:
    """An aware datetime as UTC; ValidationError naming ``name`` for a naive one or
    one whose UTC time falls outside the years 1-9999."""
    if value.tzinfo is None:
        raise ValidationError("naive datetime; give a UTC instant", name)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValidationError(f"{value.isoformat()} is out of range in UTC", name) from None


def range_bounds(
    start: dt.date | dt.datetime | None, end: dt.date | dt.datetime | None, frequency: str
) -> tuple[int | None, int | None]:
    """``[start, end]`` as ordinals in a series' units (see :func:`bound`)."""
    low, high = bound(start, frequency, upper=False), bound(end, frequency, upper=True)
    if low is not None and high is not None and low > high:
        raise ValidationError("start is after end", "start")
    return low, high


def bound(value: dt.date | dt.datetime | None, frequency: str, upper: bool) -> int | None:
    """A user's range bound as an ordinal in the series' units; None stays None."""
    if value is None:
        return None
    intraday = frequency == "intraday"
    name = "end" if upper else "start"
    if isinstance(value, dt.datetime):
        value = utc_instant(value, name)
        if intraday:
            return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
        value = value.date()
    if not isinstance(value, dt.date):
        raise ValidationError("must be a date", name)
    base = ordinal(value, intraday)
    if intraday and upper:
        return base + 86_400_000_000 - 1
    return base


def _partition_keys(
    ints: np.ndarray[Any, Any], scheme: str, intraday: bool
) -> np.ndarray[Any, Any]:
    """A number per date that orders and identifies its partition (months since year 0
    for ``month``, the year or decade's first year otherwise)."""
    unit = "datetime64[us]" if intraday else "datetime64[D]"
    stamps = ints.astype(unit)
    if scheme == "month":
        return stamps.astype("datetime64[M]").astype(np.int64) + 1970 * 12
    years = stamps.astype("datetime64[Y]").astype(np.int64) + 1970
    return years - years % 10 if scheme == "decade" else years


def _partition_label(key: int, scheme: str) -> str:
    if scheme == "decade":
        return f"decade={key}"
    if scheme == "year":
        return f"year={key}"
    return f"year={key // 12}/month={key % 12 + 1:02d}"


def split_by_partition(table: pa.Table, scheme: str, intraday: bool) -> dict[str, pa.Table]:
    """Split a sorted table into its Hive-style partitions (``decade=2010``, ``year=2013``,
    ``year=2013/month=04``; ``""`` for none), each slice still sorted."""
    if scheme == "none" or table.num_rows == 0:
        return {"": table} if table.num_rows else {}
    keys = _partition_keys(date_ints(table), scheme, intraday)
    # Sorted dates: each partition is one run of equal keys, found without a row loop.
    starts = [0, *(np.flatnonzero(np.diff(keys)) + 1).tolist(), len(keys)]
    return {
        _partition_label(int(keys[a]), scheme): table.slice(a, b - a)
        for a, b in itertools.pairwise(starts)
    }


def encode_parquet(table: pa.Table) -> bytes:
    """One immutable observation file. Statistics on, so engines can prune row groups."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", compression_level=1, use_dictionary=False)
    return sink.getvalue()


def decode_parquet(data: bytes, path: str, frequency: str) -> pa.Table:
    try:
        # ParquetFile reads one file directly; read_table sets up a dataset scan,
        # which costs more than the decode for files of a few thousand rows. No
        # threads: they cost more than they save on such a file (~25 %), and a
        # process that started Arrow's thread pool may abort as it exits
        # ("terminate called without an active exception", apache/arrow#34314).
        table = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)
    except (pa.ArrowException, OSError) as exc:
        raise IntegrityError(f"{path}: not a readable Parquet file: {exc}") from None
    if table.schema != schema_for(frequency):
        raise IntegrityError(f"{path}: unexpected schema {table.schema}")
    return table


def merge(tables: Sequence[pa.Table], disjoint: bool) -> pa.Table:
    """Combine a series' files, given in order of writing; the newest row per date wins.

    ``disjoint`` promises that the tables' date ranges do not overlap and that
    they are given in date order, which skips the de-duplication.
    """
    if len(tables) == 1:
        return tables[0]
    if disjoint:
        return pa.concat_tables(tables).combine_chunks()
    newest_first = pa.concat_tables(list(reversed(tables))).combine_chunks()
    _unique, first_seen = np.unique(date_ints(newest_first), return_index=True)
    return newest_first.take(pa.array(first_seen))


def unchanged_rows(table: pa.Table, existing: pa.Table) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which rows of ``table`` ``existing`` already holds, date and value alike.

    Both are sorted with one row per date. Values are compared bit for bit, so
    -0.0 is a change from 0.0; a null matches only a null.
    """
    ints, held = date_ints(table), date_ints(existing)
    if not len(held):
        return np.zeros(len(ints), dtype=np.bool_)
    at = np.minimum(np.searchsorted(held, ints), len(held) - 1)
    found = held[at] == ints
    new, old = _value_bits(table), _value_bits(existing)
    same: np.ndarray[Any, np.dtype[np.bool_]] = found & (new == old[at])
    return same


def _value_bits(table: pa.Table) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """The value column as the bits of each float; a null as a pattern no finite
    float has (stored values are never NaN)."""
    column = table.column("value").combine_chunks()
    values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
    bits: np.ndarray[Any, np.dtype[np.uint64]] = values.view(np.uint64)
    if column.null_count:
        bits[column.is_null().to_numpy(zero_copy_only=False)] = _NULL_BITS
    return bits


_NULL_BITS = np.uint64(0x7FF8_DEAD_BEEF_0001)


def same_rows(a: pa.Table, b: pa.Table) -> bool:
    """Whether two sorted tables hold the same dates with the same values."""
    return a.num_rows == b.num_rows and bool(unchanged_rows(a, b).all())


def clip(table: pa.Table, low: int | None, high: int | None) -> pa.Table:
    """Rows of a sorted table with ``low <= date <= high`` (inclusive; None is open)."""
    if low is None and high is None:
        return table
    ints = date_ints(table)
    start = 0 if low is None else int(np.searchsorted(ints, low, side="left"))
    stop = len(ints) if high is None else int(np.searchsorted(ints, high, side="right"))
    return table.slice(start, max(stop - start, 0))


def drop_range(table: pa.Table, low: int | None, high: int | None) -> pa.Table:
    """Rows of a sorted table outside ``[low, high]``."""
    ints = date_ints(table)
    start = 0 if low is None else int(np.searchsorted(ints, low, side="left"))
    stop = len(ints) if high is None else int(np.searchsorted(ints, high, side="right"))
    return pa.concat_tables([table.slice(0, start), table.slice(stop)])
