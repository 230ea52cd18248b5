"""Observations as users give them, turned into one validated table.

The boundary of the engine: a pyarrow Table, a pandas DataFrame or a ``(dates,
values)`` pair, read by :mod:`catalog_store.intake`, becomes a table of
:mod:`catalog_store.observations`' shape for a series' frequency, or a
ValidationError names what is wrong and where. Nothing is written before this
has passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog_store.errors import ValidationError
from catalog_store.intake import as_table, inexact_integer
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
        if _is_text(kind):
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
    if _is_text(kind):
        return _parse_strings(column, frequency)
    raise ValidationError(f"dates must be dates, not {kind}", "dates")


def _is_text(kind: pa.DataType) -> bool:
    # string_view: what polars writes a String column as, in Arrow IPC.
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or kind == pa.string_view()
    )


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
    if column.type == pa.string_view():  # Arrow's casts to dates take no views
        column = column.cast(pa.string())
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
                raise inexact_integer(given) from None
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
