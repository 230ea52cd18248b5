"""Observations as callers hand them over, read into one Arrow table.

A pyarrow Table, a pandas DataFrame or Series, or a ``(dates, values)`` pair of
lists, tuples or arrays becomes a table of two columns, ``date`` and ``value``, as
Arrow reads them; what Arrow would read wrongly (bools among floats, dates of
mixed kinds, integers a float cannot hold, numpy dates past Arrow's range) is
refused here with a ValidationError. :mod:`catalog_store.normalize` then checks
the table against the series' frequency.
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
from catalog_store.observations import MAX_DATE, MIN_DATE, ordinal


def as_table(observations: Any) -> pa.Table:
    """Accept a pyarrow Table, a pandas DataFrame or a ``(dates, values)`` pair."""
    if isinstance(observations, pa.Table):
        return observations
    if _rows(observations):
        raise ValidationError(
            "observations must be a (dates, values) pair, not (date, value) rows; "
            "tuple(zip(*rows)) turns rows into the pair",
            "observations",
        )
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


def _rows(observations: Any) -> bool:
    """Whether ``observations`` is a list of ``(date, value)`` rows: each a pair of a
    number (or None) after something that is not one. A ``(dates, values)`` pair's
    first item is a list of dates, whose second is no number."""
    if not isinstance(observations, tuple | list) or not observations:
        return False
    return all(
        isinstance(row, tuple | list)
        and len(row) == 2
        and _number_or_none(row[1])
        and not _number_or_none(row[0])
        for row in observations
    )


def _number_or_none(item: Any) -> bool:
    return item is None or (
        isinstance(item, int | float | np.number) and not isinstance(item, bool)
    )


def _frame_table(frame: Any) -> pa.Table:
    """A DataFrame with ``date`` and ``value`` columns (or dates as its index), or a
    Series of values indexed by date. The index is the dates whatever its name:
    ``DATE`` from a FRED file read with ``index_col``, ``Date`` from others."""
    if not hasattr(frame, "columns"):  # a Series
        frame = frame.to_frame(name="value")
    if "date" not in frame.columns and "value" in frame:
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
                raise inexact_integer(value) from None
            if held != value:  # Python compares an int and a float exactly
                raise inexact_integer(value)
            floats.append(held)
        else:
            floats.append(value)
    return pa.array(floats)


#: Every int up to this is a float exactly; Arrow takes no larger one among floats.
_EXACT_INT = 2**53


def inexact_integer(given: int) -> ValidationError:
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
