"""Observations as users give them, turned into one validated table.

The boundary of the engine: a pyarrow Table, a pandas DataFrame or a ``(dates,
values)`` pair becomes a table of :mod:`catalog_store.observations`' shape, or a
ValidationError names what is wrong and where. Nothing is written before this
has passed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog_store.errors import ValidationError
from catalog_store.observations import (
    COLUMNS,
    DATE_TYPE,
    INSTANT_TYPE,
    MAX_DATE,
    MIN_DATE,
    PERIOD_MONTHS,
    date_ints,
    ordinal,
    parse_date_text,
    parse_instant_text,
    schema_for,
    utc_instant,
)


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
        except ValidationError:
            raise
        except _UNREADABLE as exc:
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
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if not frame.columns.is_unique:
        return table  # refused by the column check, naming the column
    # Columns of Python objects are read as a list of them is (see _pair_table).
    objects = _python_objects(frame["date"]) if "date" in frame.columns else None
    if objects is not None:
        _check_one_kind_of_time(objects)
    if "value" in frame.columns and _bool_among_floats(frame["value"], table.column("value")):
        raise ValidationError("values must be numbers or null, not bool", "values")
    return table


def _pair_table(dates: Sequence[Any], values: Sequence[Any]) -> pa.Table:
    for name, given in (("dates", dates), ("values", values)):
        if (
            not hasattr(given, "__len__")
            or isinstance(given, str | bytes | Mapping | AbstractSet)
            or (isinstance(given, np.ndarray) and given.ndim != 1)
        ):
            raise ValidationError(
                f"{name} must be a list or a one-dimensional array, not {type(given).__name__}",
                name,
            )
    if len(dates) != len(values):
        raise ValidationError(f"{len(dates)} dates but {len(values)} values", "values")
    try:
        date_array = _date_array(dates)
    except ValidationError:
        raise
    except _UNREADABLE as exc:
        raise ValidationError(f"cannot read dates: {exc}", "dates") from None
    try:
        # Typed as Arrow infers them, not converted to float64 here: a conversion
        # would turn True into 1.0; :func:`_values` refuses what is not a number.
        value_array = (
            values if isinstance(values, pa.Array | pa.ChunkedArray) else _values_array(values)
        )
    except ValidationError:
        raise
    except _UNREADABLE as exc:
        raise ValidationError(f"values must be numbers or null: {exc}", "values") from None
    if _bool_among_floats(values, value_array):
        raise ValidationError("values must be numbers or null, not bool", "values")
    return pa.table({"date": date_array, "value": value_array})


#: What reading a caller's sequence into Arrow raises for what it cannot take: a
#: type it has no conversion for (numpy's long double, datetime64 in months), an
#: int past 64 bits, pandas' NaT asked for its offset.
_UNREADABLE = (pa.ArrowException, TypeError, ValueError, OverflowError, KeyError, IndexError)


def _date_array(dates: Any) -> pa.Array | pa.ChunkedArray:
    if isinstance(dates, pa.Array | pa.ChunkedArray):
        return dates
    if (
        not isinstance(dates, np.ndarray)
        and isinstance(dates, Sequence)
        and len(dates)
        and isinstance(dates[0], np.datetime64)
    ):
        dates = np.asarray(dates)  # a list of numpy scalars
    if isinstance(dates, np.ndarray) and dates.dtype.kind == "M":
        return pa.array(_datetime64_in_range(dates))
    objects = _python_objects(dates)
    if objects is not None:
        _check_one_kind_of_time(objects)
    return pa.array(dates)


#: numpy's units of a day or more.
_COARSE_UNITS = frozenset(("Y", "M", "W", "D"))
#: numpy's finer units in a day.
_PER_DAY = {
    "h": 24,
    "m": 24 * 60,
    "s": 86_400,
    "ms": 86_400 * 10**3,
    "us": 86_400 * 10**6,
    "ns": 86_400 * 10**9,
    "ps": 86_400 * 10**12,
    "fs": 86_400 * 10**15,
    "as": 86_400 * 10**18,
}


def _datetime64_in_range(days: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """numpy datetimes Arrow can take, checked against the dates a series may hold
    first: Arrow reads ``datetime64[D]`` into 32 bits, so a day count past them
    became another date (2^32 + n days, year 11 million, read as day n). Units
    Arrow has no type for (years, months, weeks, hours, minutes) become days or
    seconds, which hold each such value exactly once it is in range."""
    unit, count = np.datetime_data(days.dtype)
    if unit == "generic":
        if len(days) and not np.isnat(days).all():
            raise ValidationError("dates must carry a unit (datetime64[D], [s], ...)", "dates")
        return days.astype("datetime64[D]")
    present = days[~np.isnat(days)]
    if unit in _COARSE_UNITS:
        # Compared in the array's own unit (to which the bounds' days convert
        # exactly or round down): its values as days could overflow 64 bits. A
        # month or week that starts before 1600 fails the check of the days later.
        low = np.datetime64(MIN_DATE, "D").astype(days.dtype)
        high = np.datetime64(MAX_DATE, "D").astype(days.dtype)
        outside = (present < low) | (present > high)
    else:
        # As integers against the bounds worked out in Python's, clamped to 64 bits:
        # numpy overflows silently both ways, the bounds in nanoseconds (1600 is
        # before what 64 bits of them hold) and the values as days (1677-09-22 in
        # nanoseconds became 2262-04-11).
        per_day = _PER_DAY[unit]
        first = ordinal(MIN_DATE, False) * per_day
        after = (ordinal(MAX_DATE, False) + 1) * per_day  # the first unit past the range
        # Within what the unit without its count holds too ([2ns] becomes ns below).
        held = (2**63 - 1) // count
        low = max(-(-first // count), -held)
        high = min((after - 1) // count, held)
        ints = present.view(np.int64)
        outside = (ints < low) | (ints > high)
    if outside.any():
        raise ValidationError(
            f"date {present[outside][0]} is outside {MIN_DATE} .. {MAX_DATE}", "dates"
        )
    # In units Arrow has, each of them once: Arrow reads datetime64[2D] as days,
    # ignoring the count, so 2020-01-03 in it was stored as 1995-01-02.
    if unit in ("Y", "M", "W") or (unit == "D" and count != 1):
        return days.astype("datetime64[D]")
    if unit in ("h", "m"):
        return days.astype("datetime64[s]")
    if count != 1:
        return days.astype(f"datetime64[{unit}]")
    return days


def _python_objects(given: Any) -> Sequence[Any] | np.ndarray[Any, Any] | None:
    """The items of a sequence of Python objects (a list, a tuple, a numpy or pandas
    column of dtype object), which Arrow reads by the first it finds; else None."""
    if isinstance(given, list | tuple):
        return given
    kind = getattr(given, "dtype", None)
    if kind is not None and getattr(kind, "kind", None) == "O":
        return np.asarray(given, dtype=object)
    return None


def _check_one_kind_of_time(dates: Sequence[Any] | np.ndarray[Any, Any]) -> None:
    """Arrow types a list of dates by its first item and converts the rest to it:
    a datetime after a date lost its time of day (and its time zone), a naive one
    after an aware one was taken as UTC. So every item must be of one kind."""
    if not any(issubclass(kind, dt.datetime) for kind in set(map(type, dates))):
        return  # dates, text, nulls: looked at without a Python loop
    kinds = set()
    for item in dates:
        if isinstance(item, dt.datetime):
            try:
                aware = item.utcoffset() is not None
            except ValueError:  # pandas' NaT: a missing date, refused as null later
                continue
            kinds.add("an aware datetime" if aware else "a naive datetime")
        elif isinstance(item, dt.date):
            kinds.add("a date")
        if len(kinds) > 1:
            first, second = sorted(kinds)
            raise ValidationError(
                f"dates mix {first} and {second}; give them all of one kind", "dates"
            )


def _values_array(values: Sequence[Any]) -> pa.Array:
    """``values`` as Arrow infers them. Arrow reads a Python int as int64 and cannot
    take one past it, nor, among floats, one past 2^53; such an int becomes the float
    equal to it (10^16 and 10^22 are ones); an int no float equals is refused, as
    :func:`_values` refuses one past 2^53."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, OverflowError):
        if not isinstance(values, list | tuple):
            raise
    floats = []
    for value in values:
        if type(value) is int and not -_EXACT_INT <= value <= _EXACT_INT:
            try:
                held = float(value)
            except OverflowError:
                raise _inexact(value) from None
            if held != value:  # Python compares an int and a float exactly
                raise _inexact(value)
            floats.append(held)
        else:
            floats.append(value)
    return pa.array(floats)


#: Every int up to this is a float exactly; Arrow takes no larger one among floats.
_EXACT_INT = 2**53


def _inexact(given: int) -> ValidationError:
    return ValidationError(
        f"{given} is an integer a 64-bit float cannot hold exactly; it is refused rather "
        "than rounded",
        "values",
    )


_BOOL_TYPES = frozenset((bool, np.bool_))
_BOOL_SCAN_AT_ONCE = 64


def _bool_among_floats(values: Any, array: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a sequence of Python objects Arrow read as floats holds a bool (it
    reads ``[1.5, True]`` as 1.5 and 1.0). Looked for item by item only where a 0.0
    or 1.0 was read."""
    objects = _python_objects(values)
    if objects is None or not pa.types.is_floating(array.type):
        return False
    values = objects
    # A few items are looked at at once: the search for 0.0 and 1.0 costs more.
    if len(values) > _BOOL_SCAN_AT_ONCE:
        if pa.types.is_float16(array.type):  # numpy float16 scalars; is_in takes none
            array = array.cast(pa.float64())
        # Built here, not at import: pyarrow imports pandas (when installed) on its
        # first array from Python objects, ~50 MB in a process that only reads.
        bool_as_float = pa.array(np.array([0.0, 1.0]))
        if not pc.any(pc.is_in(array, value_set=bool_as_float)).as_py():
            return False
    return not _BOOL_TYPES.isdisjoint(map(type, values))


def normalize(observations: Any, frequency: str) -> pa.Table:
    """Validate observations for a series of ``frequency``; return them sorted.

    Raises ValidationError naming the field (and the offending date) for: missing
    columns, naive or non-UTC-convertible instants, dates out of 1600-01-01 ..
    2200-12-31, dates that do not fit the frequency, duplicate dates, NaN or ±inf.
    """
    table = as_table(observations)
    _check_columns(table.column_names)
    dates = _dates(table.column("date"), frequency)
    values = _values(table.column("value"))
    table = pa.Table.from_arrays([dates, values], schema=schema_for(frequency))
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


def _check_columns(names: list[str]) -> None:
    if len(names) == len(COLUMNS) and set(names) == set(COLUMNS):
        return
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ValidationError(f"missing column {missing[0]!r}", missing[0])
    extra = [c for c in names if c not in COLUMNS]
    if extra:
        # A column without a name is named by the whole it is in.
        raise ValidationError(f"unexpected column {extra[0]!r}", extra[0] or "observations")
    raise ValidationError("each column must appear once", "observations")


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
                return column if kind == INSTANT_TYPE else column.cast(INSTANT_TYPE)
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
            return column if kind == DATE_TYPE else column.cast(DATE_TYPE)
        except pa.ArrowInvalid:  # a date64 with milliseconds past midnight
            raise ValidationError("dates must not carry a time of day", "dates") from None
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            raise ValidationError(
                "dates of a non-intraday series are calendar dates, not instants", "dates"
            )
        as_dates = column.cast(pa.date32(), safe=False)
        try:
            back = as_dates.cast(kind)
        except pa.ArrowInvalid:
            # Its midnight is before the unit's first instant (1677-09-21T00:12:43
            # in nanoseconds): what the unit holds of that day has a time of day.
            raise ValidationError("dates must not carry a time of day", "dates") from None
        if not pc.all(pc.equal(back, column), min_count=0).as_py():  # empty: all hold
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
        return column if kind == pa.float64() else column.cast(pa.float64())
    except pa.ArrowInvalid:
        # Arrow's safe cast refuses every integer past ±2^53; the ones a float
        # holds exactly (10^16, 2^60) are the same number and pass.
        floats = column.cast(pa.float64(), safe=False)
        for given, held in zip(column.to_pylist(), floats.to_pylist(), strict=True):
            if given is not None and int(held) != given:
                raise _inexact(given) from None
        return floats


def _show(table: pa.Table, index: int) -> str:
    try:
        return str(table.column("date")[index].as_py())
    except (OverflowError, ValueError):  # beyond what Python's dates can hold
        unit = "microseconds" if pa.types.is_timestamp(table.column("date").type) else "days"
        return f"{int(date_ints(table.slice(index, 1))[0])} {unit} from 1970-01-01"


#: The first and last day or microsecond a series may hold, without and with instants.
_LIMITS = {
    False: (ordinal(MIN_DATE, False), ordinal(MAX_DATE, False)),
    True: (ordinal(MIN_DATE, True), ordinal(MAX_DATE, True) + 86_400_000_000 - 1),
}


def _check_range(table: pa.Table, ints: np.ndarray[Any, Any], frequency: str) -> None:
    if not len(ints):
        return
    low, high = _LIMITS[frequency == "intraday"]
    if ints[0] >= low and ints[-1] <= high:  # in order: see normalize
        return
    first = int(np.flatnonzero((ints < low) | (ints > high))[0])
    raise ValidationError(
        f"date {_show(table, first)} is outside {MIN_DATE} .. {MAX_DATE}", "dates"
    )


def _check_fits(table: pa.Table, ints: np.ndarray[Any, Any], frequency: str) -> None:
    if frequency in ("intraday", "daily", "weekly", "irregular") or not len(ints):
        return
    if frequency == "business_daily":
        weekday = (ints + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        bad = np.flatnonzero(weekday >= 5)
        reason = "falls on a weekend, which a business-daily series has no observation for"
    else:
        days = ints.astype("datetime64[D]")
        months = days.astype("datetime64[M]")
        first_of_month = months.astype("datetime64[D]") == days
        month_index = months.astype(np.int64) % 12  # January is 0
        step = PERIOD_MONTHS[frequency]
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
    if not values.null_count and np.isfinite(values.to_numpy()).all():
        return  # the common case, without Arrow's kernels' cost per call
    finite = pc.is_finite(values)
    bad = pc.and_(pc.invert(finite), pc.is_valid(values))
    if pc.any(bad).as_py():
        index = int(pc.index(bad, True).as_py())
        raise ValidationError(
            f"value {values[index].as_py()} at date {_show(table, index)} is not a finite number",
            "values",
        )
