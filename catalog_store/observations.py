"""Observation tables: validation at the boundary, partitions, Parquet, merging.

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
import pyarrow.compute as pc
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


def as_table(observations: Any) -> pa.Table:
    """Accept a pyarrow Table, a pandas DataFrame or a ``(dates, values)`` pair."""
    if isinstance(observations, pa.Table):
        return observations
    if isinstance(observations, tuple | list) and len(observations) == 2:
        dates, values = observations
        return _pair_table(dates, values)
    module = type(observations).__module__
    if module.startswith("pandas"):
        try:
            return _frame_table(observations)
        except (pa.ArrowException, TypeError, ValueError, IndexError, KeyError) as exc:
            raise ValidationError(f"cannot read the DataFrame: {exc}", "observations") from None
    raise ValidationError(
        "observations must be a pyarrow Table, a pandas DataFrame or Series, or a "
        "(dates, values) pair",
        "observations",
    )


def _frame_table(frame: Any) -> pa.Table:
    """A DataFrame with ``date`` and ``value`` columns (or dates as its index), or a
    Series of values indexed by date."""
    if not hasattr(frame, "columns"):  # a Series
        frame = frame.to_frame(name="value")
    if "date" not in frame.columns and frame.index.name in ("date", None) and "value" in frame:
        if frame.index.nlevels != 1:
            raise ValueError("the index must be the dates alone")
        frame = frame.reset_index(names="date")
    return pa.Table.from_pandas(frame, preserve_index=False)


def _pair_table(dates: Sequence[Any], values: Sequence[Any]) -> pa.Table:
    for name, given in (("dates", dates), ("values", values)):
        if not hasattr(given, "__len__") or isinstance(given, str | bytes):
            raise ValidationError(
                f"{name} must be a list or an array, not {type(given).__name__}", name
            )
    if len(dates) != len(values):
        raise ValidationError(f"{len(dates)} dates but {len(values)} values", "values")
    try:
        if isinstance(dates, pa.Array | pa.ChunkedArray):
            date_array = dates
        elif len(dates) and isinstance(dates[0], np.datetime64):
            date_array = pa.array(np.asarray(dates))  # a list of numpy scalars
        else:
            date_array = pa.array(dates)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise ValidationError(f"cannot read dates: {exc}", "dates") from None
    try:
        # Typed as Arrow infers them, not converted to float64 here: a conversion
        # would turn True into 1.0; :func:`_values` refuses what is not a number.
        value_array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
        raise ValidationError(f"values must be numbers or null: {exc}", "values") from None
    if _bool_among_floats(values, value_array):
        raise ValidationError("values must be numbers or null, not bool", "values")
    return pa.table({"date": date_array, "value": value_array})


_BOOL_AS_FLOAT = pa.array([0.0, 1.0])
_BOOL_TYPES = frozenset((bool, np.bool_))


def _bool_among_floats(values: Sequence[Any], array: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a sequence Arrow read as floats holds a bool (it reads ``[1.5, True]``
    as 1.5 and 1.0). Looked for item by item only where a 0.0 or 1.0 was read."""
    if not isinstance(values, list | tuple) or not pa.types.is_floating(array.type):
        return False
    if not pc.any(pc.is_in(array, value_set=_BOOL_AS_FLOAT)).as_py():
        return False
    return not _BOOL_TYPES.isdisjoint(map(type, values))


def normalize(observations: Any, frequency: str) -> pa.Table:
    """Validate observations for a series of ``frequency``; return them sorted.

    Raises ValidationError naming the field (and the offending date) for: missing
    columns, naive or non-UTC-convertible instants, dates out of 1600-01-01 ..
    2200-12-31, dates that do not fit the frequency, duplicate dates, NaN or ±inf.
    """
    table = as_table(observations)
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise ValidationError(f"missing column {missing[0]!r}", missing[0])
    extra = [c for c in table.column_names if c not in COLUMNS]
    if extra:
        raise ValidationError(f"unexpected column {extra[0]!r}", extra[0])
    if len(table.column_names) != len(COLUMNS):
        raise ValidationError("each column must appear once", "observations")
    dates = _dates(table.column("date"), frequency)
    values = _values(table.column("value"))
    table = pa.table({"date": dates, "value": values}, schema=schema_for(frequency))
    if dates.null_count:
        raise ValidationError("dates must not be null", "dates")
    ints = date_ints(table)
    if len(ints) > 1 and not (ints[1:] > ints[:-1]).all():  # not already in order
        table = table.take(pc.sort_indices(table, [("date", "ascending")]))
        ints = date_ints(table)
        dup = np.flatnonzero(ints[1:] == ints[:-1])
        if len(dup):
            raise ValidationError(f"duplicate date {_show(table, int(dup[0]))}", "dates")
    _check_range(table, ints, frequency)
    _check_fits(table, ints, frequency)
    _check_finite(table)
    return table.combine_chunks()


def owned(table: pa.Table) -> pa.Table:
    """``table`` in one chunk per column, in memory of its own.

    The caller's arrays may be views of buffers it fills again for the next series
    (a DataFrame or a numpy array reused in a loop), and a write keeps its table
    until it commits, which for a batch is at its end, and may validate it again
    there (for the series' frequency then); ``concat_arrays`` copies where
    ``combine_chunks`` may not.
    """
    columns = [
        pa.concat_arrays(column.chunks) if column.num_chunks else column.combine_chunks()
        for column in table.columns
    ]
    return pa.Table.from_arrays(columns, schema=table.schema)


def _dates(column: pa.ChunkedArray, frequency: str) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_null(kind):  # e.g. an empty list; nulls among rows are refused later
        return column.cast(INSTANT_TYPE if frequency == "intraday" else DATE_TYPE)
    if frequency == "intraday":
        if pa.types.is_timestamp(kind):
            if kind.tz is None:
                raise ValidationError(
                    "naive timestamps are not allowed; give UTC instants", "dates"
                )
            try:
                return column.cast(INSTANT_TYPE)
            except pa.ArrowInvalid:
                # The unit says why: from nanoseconds the cast can only lose digits;
                # from seconds or milliseconds it can only overflow 64 bits of
                # microseconds, some 292,000 years from 1970.
                if kind.unit == "ns":
                    raise ValidationError(
                        "instants finer than a microsecond are not supported", "dates"
                    ) from None
                raise ValidationError(
                    f"instant {_beyond_microseconds(column, kind.unit)} from 1970-01-01 is "
                    f"outside {MIN_DATE} .. {MAX_DATE}",
                    "dates",
                ) from None
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return _parse_strings(column, frequency)
        raise ValidationError(f"intraday dates must be UTC timestamps, not {kind}", "dates")
    if pa.types.is_date(kind):
        try:
            return column.cast(DATE_TYPE)
        except pa.ArrowInvalid:  # a date64 with milliseconds past midnight
            raise ValidationError("dates must not carry a time of day", "dates") from None
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            raise ValidationError(
                "dates of a non-intraday series are calendar dates, not instants", "dates"
            )
        as_dates = column.cast(pa.date32(), safe=False)
        back = as_dates.cast(kind)
        if not pc.all(pc.equal(back, column)).as_py():
            raise ValidationError("dates must not carry a time of day", "dates")
        return as_dates
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _parse_strings(column, frequency)
    raise ValidationError(f"dates must be dates, not {kind}", "dates")


_UNITS = {"s": ("seconds", 1_000_000), "ms": ("milliseconds", 1_000)}


def _beyond_microseconds(column: pa.ChunkedArray, unit: str) -> str:
    """The first instant of a column in seconds or milliseconds that 64 bits of
    microseconds cannot hold, as a count of its units (no datetime holds it)."""
    name, per_unit = _UNITS[unit]
    limit = (2**63 - 1) // per_unit  # and -limit: 2^63 is no multiple of per_unit
    counts = column.cast(pa.int64())
    beyond = pc.or_(pc.greater(counts, limit), pc.less(counts, -limit))
    return f"{counts.filter(beyond)[0].as_py()} {name}"


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


def _parse_strings(column: pa.ChunkedArray, frequency: str) -> pa.ChunkedArray:
    if frequency != "intraday":
        # Arrow's cast reads exactly YYYY-MM-DD too, all at once; the text at fault is
        # then found one by one.
        try:
            return column.cast(DATE_TYPE)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for text in column.to_pylist():
                try:
                    if text is not None:
                        parse_date_text(text)
                except (TypeError, ValueError):
                    raise ValidationError(
                        f"not a date like 2024-01-31: {text!r}", "dates"
                    ) from None
            raise ValidationError("dates must be written like 2024-01-31", "dates") from None
    out: list[Any] = []
    for text in column.to_pylist():
        try:
            value = parse_instant_text(text)
        except (TypeError, ValueError):
            raise ValidationError(f"not an RFC 3339 instant: {text!r}", "dates") from None
        if value.tzinfo is None:
            raise ValidationError(f"naive timestamp {text!r}; give a UTC offset", "dates")
        out.append(utc_instant(value, "dates"))
    return pa.chunked_array([pa.array(out, INSTANT_TYPE)])


def _values(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if not (pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind)):
        raise ValidationError(f"values must be numbers or null, not {kind}", "values")
    try:
        return column.cast(pa.float64())
    except pa.ArrowInvalid:
        # Arrow's safe cast refuses every integer past ±2^53; the ones a float
        # holds exactly (10^16, 2^60) are the same number and pass.
        floats = column.cast(pa.float64(), safe=False)
        for given, held in zip(column.to_pylist(), floats.to_pylist(), strict=True):
            if given is not None and int(held) != given:
                raise ValidationError(
                    f"{given} is an integer a 64-bit float cannot hold exactly; it is "
                    "refused rather than rounded",
                    "values",
                ) from None
        return floats


def date_ints(table: pa.Table) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The date column as int64: days since 1970-01-01, or microseconds for instants."""
    column = table.column("date")
    storage = pa.int64() if pa.types.is_timestamp(column.type) else pa.int32()
    ints: np.ndarray[Any, np.dtype[np.int64]] = column.cast(storage).to_numpy().astype(np.int64)
    return ints


def _show(table: pa.Table, index: int) -> str:
    try:
        return str(table.column("date")[index].as_py())
    except (OverflowError, ValueError):  # beyond what Python's dates can hold
        unit = "microseconds" if pa.types.is_timestamp(table.column("date").type) else "days"
        return f"{int(date_ints(table.slice(index, 1))[0])} {unit} from 1970-01-01"


def _check_range(table: pa.Table, ints: np.ndarray[Any, Any], frequency: str) -> None:
    if not len(ints):
        return
    intraday = frequency == "intraday"
    low = ordinal(MIN_DATE, intraday)
    high = ordinal(MAX_DATE, intraday) + (86_400_000_000 - 1 if intraday else 0)
    bad = np.flatnonzero((ints < low) | (ints > high))
    if len(bad):
        raise ValidationError(
            f"date {_show(table, int(bad[0]))} is outside {MIN_DATE} .. {MAX_DATE}", "dates"
        )


def _check_fits(table: pa.Table, ints: np.ndarray[Any, Any], frequency: str) -> None:
    if frequency in ("intraday", "daily", "weekly", "irregular") or not len(ints):
        return
    days = ints.astype("datetime64[D]")
    if frequency == "business_daily":
        weekday = (ints + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        bad = np.flatnonzero(weekday >= 5)
        reason = "falls on a weekend, which a business-daily series has no observation for"
    else:
        months = days.astype("datetime64[M]")
        first_of_month = months.astype("datetime64[D]") == days
        month_index = months.astype(np.int64) % 12  # January is 0
        step = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}[frequency]
        bad = np.flatnonzero(~first_of_month | (month_index % step != 0))
        period = {"monthly": "month", "quarterly": "quarter", "semiannual": "half-year"}
        reason = (
            f"is not the first day of a {period.get(frequency)} (FRED's convention)"
            if frequency != "annual"
            else "is not January 1st, the first day of the year (FRED's convention)"
        )
    if len(bad):
        raise ValidationError(f"date {_show(table, int(bad[0]))} {reason}", "dates")


def _check_finite(table: pa.Table) -> None:
    values = table.column("value")
    finite = pc.is_finite(values)
    bad = pc.and_(pc.invert(finite), pc.is_valid(values))
    if pc.any(bad).as_py():
        index = int(pc.index(bad, True).as_py())
        raise ValidationError(
            f"value {values[index].as_py()} at date {_show(table, index)} is not a finite number",
            "values",
        )


_EPOCH = dt.date(1970, 1, 1)


def ordinal(value: dt.date, intraday: bool) -> int:
    """A calendar date as days since the epoch, or as microseconds at its midnight UTC."""
    days = (value - _EPOCH).days
    return days * 86_400_000_000 if intraday else days


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
