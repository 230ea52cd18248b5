"""Reading observations from CSV files: dates in common spellings, wide and long layouts.

Problems are reported as :class:`~catalog_store.errors.ValidationError` naming the
CSV column at fault and the line, so a user can find the bad cell.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import pyarrow as pa

from catalog_store.cli._output import plural
from catalog_store.errors import ValidationError
from catalog_store.normalize import normalize
from catalog_store.observations import (
    PERIOD_MONTHS,
    parse_date_text,
    parse_instant_text,
    utc_instant,
)

DateValue = dt.date | dt.datetime

#: Cells meaning "no value": empty, FRED's ".", and the usual spreadsheet spellings.
MISSING = frozenset({"", ".", "na", "n/a", "#n/a", "nan", "-nan", "+nan", "null", "none"})
#: A float read from text this large may be a rounded integer: 2^53 + 1 reads as 2^53.
_ROUNDED_FROM = 2.0**53
#: The date of a value the engine judges alone (irregular series take any day in range).
_ANY_DAY = dt.date(2000, 1, 1)

ACCEPTED = (
    "ISO dates (2000-01-31), 'Jan 31 2000', 'January 31, 2000', '31 Jan 2000', "
    "'2000/01/31', '2000-01', 'Jan 2000', '2000Q1', '2000', or RFC 3339 instants with an "
    "offset (2024-01-02T14:30:00Z)"
)
_DAY_FORMATS = (
    "%b %d %Y",
    "%B %d %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%d %b %Y",
    "%d %B %Y",
    "%Y/%m/%d",
)
_MONTH_FORMATS = ("%Y-%m", "%Y/%m", "%b %Y", "%B %Y")
_QUARTER = re.compile(r"^(\d{4})\s*[-/ ]?\s*Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^\d{4}$")
#: A time of day (or ISO 8601's basic form, 20240102T1430): the text is an instant, read
#: only as RFC 3339, as the engine reads instants on every surface. No other spelling
#: has a colon or a T between digits.
_TIME = re.compile(r":|\d[Tt]\d")

DATE_NAMES = ("date", "month", "period", "time", "timestamp", "observation_date")
ID_NAMES = ("id", "series_id", "series", "symbol", "ticker", "code")


def parse_date(text: str, instants: bool = True, end: bool = False) -> DateValue:
    """A calendar date, or (with ``instants``) a UTC instant when the text has an offset.

    A month, quarter or year gives the first day of the period, FRED's convention, or
    with ``end`` (the end bound of a range) its last day: ``--end 2000`` is through
    2000-12-31. Raises ValueError saying which spellings are accepted.
    """
    value = " ".join(text.split())
    if not value:
        raise ValueError("empty date")
    try:
        # YYYY-MM-DD only: date.fromisoformat also reads ISO week dates (2000-W05),
        # which are no period the CLI knows, and the basic form (20000131).
        return parse_date_text(value)
    except ValueError:
        pass
    if _TIME.search(value):
        return _instant(text, instants)
    first, months = _period(value, text)
    if end and months:
        last = first.month + months - 1
        return first.replace(month=last, day=calendar.monthrange(first.year, last)[1])
    return first


def _instant(text: str, instants: bool) -> DateValue:
    """Text with a time of day: an instant, or a naive midnight (as pandas writes dates)."""
    try:
        # Not datetime.fromisoformat: it drops digits beyond the microsecond, so two
        # distinct instants would be stored as one.
        stamp = parse_instant_text(text.strip())
    except ValueError:
        raise ValueError(
            f"not an RFC 3339 instant: {text!r}; write one like 2024-01-02T14:30:00.123456Z "
            "(at most six fractional digits: instants are stored to the microsecond)"
        ) from None
    if stamp.tzinfo is not None and instants:
        return to_utc(stamp, text)
    if stamp.tzinfo is None and stamp.time() == dt.time():
        return stamp.date()
    if stamp.tzinfo is None and instants:
        raise ValueError(
            f"{text!r} has a time of day but no UTC offset; give an instant with an "
            f"offset ({stamp.isoformat()}Z) for an intraday series, else a calendar date"
        )
    raise ValueError(f"{text!r} has a time of day; give a calendar date")


def _period(value: str, text: str) -> tuple[dt.date, int]:
    """A date in a spelling other than ISO, as its first day and the months it spans
    (0 for a day)."""
    quarter = _QUARTER.match(value)
    if quarter:
        return dt.date(int(quarter.group(1)), 3 * int(quarter.group(2)) - 2, 1), 3
    if _YEAR.match(value):
        return dt.date(int(value), 1, 1), 12
    for formats, months in ((_DAY_FORMATS, 0), (_MONTH_FORMATS, 1)):
        for fmt in formats:
            try:
                return dt.datetime.strptime(value, fmt).date(), months
            except ValueError:
                continue
    raise ValueError(f"not a date: {text!r}; accepted: {ACCEPTED}")


def to_utc(stamp: dt.datetime, text: str) -> dt.datetime:
    """An aware datetime in UTC; ValueError when that falls outside the years 1-9999."""
    try:
        return utc_instant(stamp, "date")
    except ValidationError:
        raise ValueError(f"{text!r} is out of range in UTC") from None


#: A number as a CSV cell may spell it: ASCII digits, an optional sign, fraction and
#: exponent, or infinity (which the engine refuses, naming the cell).
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?)",
    re.IGNORECASE,
)


def parse_value(text: str) -> float | int | None:
    """A number, or None for a missing cell. Raises ValueError otherwise.

    Decimal text is a float, rounded as any float is. Integer text from 2^53 up stays
    an int: ``float()`` would round it (2^53 + 1 to 2^53) unseen, and the engine
    refuses an integer a float cannot hold exactly.
    """
    value = text.strip()
    if value.casefold() in MISSING:
        return None
    if not _NUMBER.fullmatch(value):
        # float() also reads "1_0" as 10 and other scripts' digits ("٣" as 3).
        raise ValueError(f"not a number: {value!r}")
    number = float(value)
    if abs(number) < _ROUNDED_FROM:
        return number
    try:
        return int(value)  # an integer spelling: a sign and digits
    except ValueError:
        return number


@dataclass
class ParsedSeries:
    """Observations of one series as read, with the CSV line of each for messages."""

    name: str
    dates: list[DateValue] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    date_label: str = "date"
    #: The column of the values, where it is not ``name`` (a long file's value column).
    value_label: str | None = None
    #: Dates of this series' rows whose value is missing: they tell the frequency
    #: too (see :func:`frequency_of`).
    skipped_dates: list[DateValue] = field(default_factory=list)
    _line_of: dict[DateValue, int] = field(default_factory=dict, init=False, repr=False)

    def add(self, date: DateValue, value: float | None, line: int) -> None:
        # Refused here, with both lines, before a frequency is inferred from the dates:
        # a date given twice would otherwise be reported as too few dates to infer from.
        first = self._line_of.setdefault(date, line)
        if first != line:
            raise ValidationError(
                f"line {line}: duplicate date {date.isoformat()}, also on line {first}",
                self.date_label,
            )
        if self.dates and isinstance(date, dt.datetime) != isinstance(self.dates[0], dt.datetime):
            kinds = ("an instant", "a calendar date")
            this, other = kinds if isinstance(date, dt.datetime) else kinds[::-1]
            raise ValidationError(
                f"line {line}: {date.isoformat()} is {this}, and line {self.lines[0]} has "
                f"{other}; a series' dates are all one or all the other",
                self.date_label,
            )
        self.dates.append(date)
        self.values.append(value)
        self.lines.append(line)

    def table(self, frequency: str) -> pa.Table:
        """The observations as a table for a series of ``frequency``, judged here by
        the engine's rules, so that a refusal names the line of the row refused."""
        intraday = frequency == "intraday"
        for date, line in zip(self.dates, self.lines, strict=True):
            if isinstance(date, dt.datetime) != intraday:
                wanted = "an instant with a UTC offset" if intraday else "a calendar date"
                article = "an" if frequency[0] in "aeiou" else "a"
                raise ValidationError(
                    f"line {line}: {date.isoformat()} is not {wanted}, "
                    f"as {article} {frequency} series needs",
                    self.date_label,
                )
        kind = pa.timestamp("us", tz="UTC") if intraday else pa.date32()
        table = pa.table(
            {"date": pa.array(self.dates, kind), "value": pa.array(self.values, pa.float64())}
        )
        try:
            normalize(table, frequency)
        except ValidationError as exc:
            raise self._located(exc, frequency) from None
        return table

    def _located(self, refused: ValidationError, frequency: str) -> ValidationError:
        """``refused``, at the line and column of the first row the rules refuse alone."""
        for date, value, line in zip(self.dates, self.values, self.lines, strict=True):
            try:
                normalize(([date], [value]), frequency)
            except ValidationError as exc:
                column = self.date_label if exc.field == "dates" else self.value_label or self.name
                return ValidationError(
                    f"line {line}: {exc.message}{_hint(date, frequency)}", column
                )
        return refused  # pragma: no cover - what the table breaks, one of its rows breaks


def _hint(date: DateValue, frequency: str) -> str:
    """How to write the periods of a file that dates them by their last day."""
    months = PERIOD_MONTHS.get(frequency)
    if months is None or isinstance(date, dt.datetime):
        return ""
    following = date + dt.timedelta(days=1)
    if following.day != 1 or following.month % months != 1 % months:
        return ""
    return (
        "; this file dates periods by their last day: write each period itself "
        "(2020-01, 2020Q1, 2020) or its first day"
    )


def _open(source: TextIO) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header, and the rows after it with their line numbers; blank rows are skipped.

    Every row must have as many cells as the header: a decimal comma or a stray
    delimiter shifts the cells, and dropping or padding them would store wrong values.
    """
    reader = csv.reader(source)
    rows = (
        (line, row) for line, row in _decoded(reader) if row and any(cell.strip() for cell in row)
    )
    try:
        _line, first = next(rows)
    except StopIteration:
        raise ValidationError("the file is empty; expected a header row", "file") from None
    header = [name.strip().lstrip("\ufeff") for name in first]
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise ValidationError(f"the header names column {name!r} twice", "file")
        seen.add(name)
    return header, _shaped(rows, len(header))


def _decoded(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """The rows of a csv reader with their line numbers; a file that is not UTF-8
    (Latin-1, UTF-16 from a spreadsheet) is refused in one line. (Text is decoded
    ahead of the rows, so no line number is given: it would mislead.)"""
    try:
        for row in reader:
            yield reader.line_num, row
    except UnicodeDecodeError:
        raise ValidationError("the file is not UTF-8 text; save it as UTF-8", "file") from None


def _shaped(rows: Iterator[tuple[int, list[str]]], width: int) -> Iterator[tuple[int, list[str]]]:
    for line, row in rows:
        if len(row) != width:
            cells = plural(len(row), "cell")
            raise ValidationError(f"line {line}: {cells}, the header has {width}", "file")
        yield line, row


def _column(header: Sequence[str], name: str, option: str) -> int:
    folded = [h.casefold() for h in header]
    if name.casefold() not in folded:
        raise ValidationError(
            f"no column {name!r} in the file; its columns are {', '.join(header)}", option
        )
    return folded.index(name.casefold())


def _guess(header: Sequence[str], names: Sequence[str]) -> int | None:
    folded = [h.casefold() for h in header]
    return next((folded.index(n) for n in names if n in folded), None)


class _Dates:
    """Reads the date of a row from one date column or from year and quarter columns."""

    def __init__(
        self,
        header: Sequence[str],
        date_column: str | None,
        year_column: str | None,
        quarter_column: str | None,
    ) -> None:
        if year_column is None and quarter_column is None and date_column is None:
            year, quarter = _guess(header, ("year",)), _guess(header, ("quarter",))
            if year is not None and quarter is not None:
                year_column, quarter_column = header[year], header[quarter]
        if year_column is not None or quarter_column is not None:
            if year_column is None or quarter_column is None:
                raise ValidationError("give both --year-column and --quarter-column", "year-column")
            self.columns: tuple[int, ...] = (
                _column(header, year_column, "year-column"),
                _column(header, quarter_column, "quarter-column"),
            )
        elif date_column is not None:
            self.columns = (_column(header, date_column, "date-column"),)
        else:
            guessed = _guess(header, DATE_NAMES)
            self.columns = (0 if guessed is None else guessed,)
        self.label = "/".join(header[i] for i in self.columns)
        if len(self.columns) == 1 and _is_date(self.label):
            # Read as a header, a file without one loses its first row unseen.
            raise ValidationError(
                f"the first row names the date column {self.label!r}, a date: the file "
                "has no header row; add one (date,value)",
                "file",
            )

    def read(self, row: Sequence[str], line: int) -> DateValue:
        cells = [row[i] for i in self.columns]
        try:
            if len(cells) == 2:
                year, quarter = int(cells[0]), int(cells[1].strip().lstrip("Qq"))
                if not 1 <= quarter <= 4:
                    raise ValueError(f"quarter {cells[1]!r} is not 1-4")
                return dt.date(year, 3 * quarter - 2, 1)
            return parse_date(cells[0])
        except ValueError as exc:
            message = str(exc)
            if len(cells) == 2 and "invalid literal" in message:
                message = f"not a year and quarter: {cells[0]!r}, {cells[1]!r}"
            raise ValidationError(f"line {line}: {message}", self.label) from None


def _is_date(text: str) -> bool:
    try:
        parse_date(text)
    except ValueError:
        return False
    return True


def _number(text: str, line: int, column: str) -> float | None:
    try:
        value = parse_value(text)
    except ValueError:
        raise ValidationError(f"line {line}: not a number: {text.strip()!r}", column) from None
    if not isinstance(value, int):
        return value
    # Judged alone by the engine's own rule, so that the error can name the cell.
    try:
        judged = normalize(([_ANY_DAY], [value]), "irregular")
    except ValidationError:
        raise ValidationError(
            f"line {line}: {text.strip()} is an integer a 64-bit float cannot hold "
            "exactly; it is refused rather than rounded",
            column,
        ) from None
    exact: float = judged.column("value")[0].as_py()
    return exact


def read_wide(
    source: TextIO,
    date_column: str | None = None,
    year_column: str | None = None,
    quarter_column: str | None = None,
) -> list[ParsedSeries]:
    """One series per column other than the date column(s); missing cells are skipped."""
    header, rows = _open(source)
    dates = _Dates(header, date_column, year_column, quarter_column)
    out = {
        i: ParsedSeries(name, date_label=dates.label)
        for i, name in enumerate(header)
        if i not in dates.columns
    }
    if not out:
        raise ValidationError("no value columns besides the date", "file")
    for i, series in out.items():
        if not series.name:
            raise ValidationError(
                f"column {i + 1} has no name in the header, so no series to import it "
                "into: name it, or leave it out (pandas writes its index so unless "
                "told to_csv(index=False))",
                "file",
            )
    for line, row in rows:
        date = dates.read(row, line)
        for i, series in out.items():
            value = _number(row[i], line, series.name)
            if value is not None:
                series.add(date, value, line)
            else:
                series.skipped_dates.append(date)
    return list(out.values())


def read_long(
    source: TextIO,
    id_column: str | None = None,
    date_column: str | None = None,
    value_column: str | None = None,
    year_column: str | None = None,
    quarter_column: str | None = None,
) -> list[ParsedSeries]:
    """Rows of (series id, date, value); rows with a missing value are skipped."""
    header, rows = _open(source)
    dates = _Dates(header, date_column, year_column, quarter_column)
    if id_column is not None:
        id_at = _column(header, id_column, "id-column")
    else:
        guessed = _guess(header, ID_NAMES)
        if guessed is None:
            raise ValidationError(
                f"cannot tell which column holds series ids among {', '.join(header)}; "
                "pass --id-column",
                "id-column",
            )
        id_at = guessed
    if value_column is not None:
        value_at = _column(header, value_column, "value-column")
    else:
        rest = [i for i in range(len(header)) if i != id_at and i not in dates.columns]
        guessed = _guess(header, ("value",))
        if guessed is None and len(rest) != 1:
            raise ValidationError(
                "cannot tell which column holds the values; pass --value-column",
                "value-column",
            )
        value_at = guessed if guessed is not None else rest[0]
    out: dict[str, ParsedSeries] = {}
    for line, row in rows:
        name = row[id_at].strip()
        if not name:
            raise ValidationError(f"line {line}: no series id", header[id_at])
        date = dates.read(row, line)
        value = _number(row[value_at], line, header[value_at])
        # A series whose every value is missing is in the file all the same, as a
        # column of them is in a wide one.
        series = out.setdefault(
            name, ParsedSeries(name, date_label=dates.label, value_label=header[value_at])
        )
        if value is not None:
            series.add(date, value, line)
        else:
            series.skipped_dates.append(date)
    return list(out.values())


def read_pairs(source: TextIO, name: str) -> ParsedSeries:
    """A ``date,value`` file of one series; a missing value is kept as null."""
    header, rows = _open(source)
    if len(header) != 2:
        raise ValidationError(
            f"expected two columns, date and value; found {', '.join(header)}", "file"
        )
    value_at = _guess(header, ("value",))
    value_at = 1 if value_at is None else value_at
    dates = _Dates(header, header[1 - value_at], None, None)
    series = ParsedSeries(name, date_label=dates.label)
    for line, row in rows:
        value = _number(row[value_at], line, header[value_at])
        series.add(dates.read(row, line), value, line)
    return series


#: Frequencies whose dates are first days of months, and those of days.
_MONTH_FREQUENCIES = frozenset(("monthly", "quarterly", "semiannual", "annual"))
_DAY_FREQUENCIES = frozenset(("weekly", "daily", "business_daily"))


def frequency_of(valued: Sequence[DateValue], missing: Sequence[DateValue]) -> str | None:
    """The frequency of rows, some of them missing their value. The coarsest the
    valued dates fit widens with their gaps (a quarterly file missing Q2 fits
    semiannual): rows without a value fill them where they fall on the same kind
    of calendar. Where they do not (a missing row dated mid-month in a monthly
    file), the valued dates alone tell; with no two of those, every row does."""
    by_values = infer_frequency(valued)
    by_rows = infer_frequency([*valued, *missing])
    if by_values is None or by_values == "irregular":
        return by_rows if by_rows is not None else by_values
    for family in (_MONTH_FREQUENCIES, _DAY_FREQUENCIES):
        if by_values in family and by_rows in family:
            return by_rows
    return by_values


def infer_frequency(dates: Sequence[DateValue]) -> str | None:
    """The coarsest frequency the dates fit, or None for fewer than two dates."""
    if any(isinstance(d, dt.datetime) for d in dates):
        return "intraday"  # (a date among them is refused with its line, as intraday)
    unique = sorted(set(dates))
    if len(unique) < 2:
        return None
    if all(d.day == 1 for d in unique):
        months = [d.year * 12 + d.month - 1 for d in unique]
        gap = min(b - a for a, b in itertools.pairwise(months))
        for step, name in ((12, "annual"), (6, "semiannual"), (3, "quarterly")):
            if gap >= step and all(m % step == 0 for m in months):
                return name
        return "monthly"
    days = [(b - a).days for a, b in itertools.pairwise(unique)]
    if all(d % 7 == 0 for d in days):
        return "weekly"
    if min(days) == 1:
        return "daily" if any(d.weekday() >= 5 for d in unique) else "business_daily"
    return "irregular"
