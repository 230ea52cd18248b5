"""How the CLI reads dates: instants as RFC 3339 only, and a period as an end bound."""

from __future__ import annotations

import datetime as dt

import pytest

from catalog_store.cli.csvfiles import parse_date
from tests.cli.helpers import as_json, cli, fails, latest_version, ok

#: Every day of 2000, a leap year: 366 rows, 0.0 to 365.0.
YEAR_2000 = "date,D\n" + "".join(
    f"{dt.date(2000, 1, 1) + dt.timedelta(days=i)},{i}\n" for i in range(366)
)

INTRADAY = ["import", "-", "--format", "wide", "--frequency", "intraday"]


def daily(local: list[str]) -> list[str]:
    """A catalog with series D holding every day of 2000; its ``--root`` arguments."""
    ok(cli(*local, "init"))
    ok(cli(*local, "import", "-", "--format", "wide", "--frequency", "daily", input=YEAR_2000))
    return local


def dates(local: list[str], *options: str) -> list[str]:
    return [row["date"] for row in as_json(cli(*local, "read", *options, "--json"))]


# -- instants ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-02T14:30:00.1234569Z",  # beyond the microsecond: never truncated
        "2024-01-02T14:30:00+0100",  # an offset without a colon
        "20240102T143000Z",  # ISO 8601's basic form
        "2024-W01-2T14:30:00Z",  # an ISO week date
    ],
)
def test_instants_are_read_as_rfc_3339_only(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|not a date"):
        parse_date(text)


def test_an_instant_may_have_a_space_and_an_offset() -> None:
    stamp = parse_date("2024-01-02 09:30:00.123456-05:00")
    assert stamp == dt.datetime(2024, 1, 2, 14, 30, 0, 123456, tzinfo=dt.UTC)


@pytest.mark.parametrize("text", ["2000-W05", "2000-W05-1", "20000131"])
def test_iso_week_and_basic_dates_are_refused(text: str) -> None:
    # No period the CLI knows (an end bound would take the week's Monday), and no
    # other surface reads them.
    with pytest.raises(ValueError, match="not a date"):
        parse_date(text)
    with pytest.raises(ValueError, match="not a date"):
        parse_date(text, end=True)


def test_write_refuses_digits_beyond_the_microsecond(local: list[str]) -> None:
    ok(cli(*local, "init"))
    ok(cli(*local, *INTRADAY, input="date,T\n2024-01-02T14:00:00Z,0\n"))
    before = latest_version(local)
    text = "date,value\n2024-01-02T14:30:00.1234569Z,1.0\n"
    stderr = fails(cli(*local, "write", "T", "-", input=text), 1, "error: date: line 2: ")
    assert "RFC 3339" in stderr and "2024-01-02T14:30:00.1234569Z" in stderr, stderr
    assert len(stderr.splitlines()) == 1, stderr
    # Two instants a truncation would merge are refused as such, not as one date twice.
    twins = "date,value\n2024-01-02T14:30:01.0000001Z,1\n2024-01-02T14:30:01.0000009Z,2\n"
    stderr = fails(cli(*local, "write", "T", "-", input=twins), 1, "line 2", "RFC 3339")
    assert "duplicate" not in stderr, stderr
    assert latest_version(local) == before
    assert dates(local, "T") == ["2024-01-02T14:00:00Z"]


def test_import_refuses_digits_beyond_the_microsecond(local: list[str]) -> None:
    ok(cli(*local, "init"))
    text = "time,T\n2024-01-02T14:30:00Z,1\n2024-01-02T14:30:00.000000001Z,2\n"
    fails(cli(*local, *INTRADAY, input=text), 1, "error: time: line 3: not an RFC 3339 instant")
    assert latest_version(local) == 0


@pytest.mark.parametrize("option", ["--start", "--end"])
@pytest.mark.parametrize("text", ["2024-01-02T14:30:00.1234569Z", "2024-01-02T14:30+0100"])
def test_an_instant_option_is_read_as_rfc_3339(local: list[str], option: str, text: str) -> None:
    ok(cli(*local, "init"))
    ok(cli(*local, *INTRADAY, input="date,T\n2024-01-02T14:30:00Z,1\n"))
    for command in ("read", "revisions"):
        fails(cli(*local, command, "T", option, text), 2, option, "RFC 3339")


def test_instants_at_the_microsecond_are_kept(local: list[str]) -> None:
    ok(cli(*local, "init"))
    text = "date,T\n2024-01-02T14:30:00.000001Z,1\n2024-01-02 09:30:00.000002-05:00,2\n"
    ok(cli(*local, *INTRADAY, input=text))
    assert dates(local, "T") == ["2024-01-02T14:30:00.000001Z", "2024-01-02T14:30:00.000002Z"]


# -- a period as a range bound -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2000", dt.date(2000, 1, 1), dt.date(2000, 12, 31)),
        ("2000Q1", dt.date(2000, 1, 1), dt.date(2000, 3, 31)),
        ("2000-Q4", dt.date(2000, 10, 1), dt.date(2000, 12, 31)),
        ("2000-02", dt.date(2000, 2, 1), dt.date(2000, 2, 29)),
        ("1900/02", dt.date(1900, 2, 1), dt.date(1900, 2, 28)),
        ("Jun 2000", dt.date(2000, 6, 1), dt.date(2000, 6, 30)),
        ("September 2000", dt.date(2000, 9, 1), dt.date(2000, 9, 30)),
        ("9999", dt.date(9999, 1, 1), dt.date(9999, 12, 31)),
        ("2000-06-15", dt.date(2000, 6, 15), dt.date(2000, 6, 15)),
        ("Jun 15 2000", dt.date(2000, 6, 15), dt.date(2000, 6, 15)),
        ("2000/06/15", dt.date(2000, 6, 15), dt.date(2000, 6, 15)),
    ],
)
def test_a_period_starts_on_its_first_day_and_ends_on_its_last(
    text: str, first: dt.date, last: dt.date
) -> None:
    assert parse_date(text) == first
    assert parse_date(text, end=True) == last


def test_an_instant_as_end_bound_is_itself() -> None:
    stamp = dt.datetime(2000, 6, 1, 12, tzinfo=dt.UTC)
    assert parse_date("2000-06-01T12:00:00Z", end=True) == stamp


def test_read_through_the_end_of_a_period(local: list[str]) -> None:
    daily(local)
    year = dates(local, "D", "--start", "2000", "--end", "2000")
    assert len(year) == 366 and year[-1] == "2000-12-31"
    quarter = dates(local, "D", "--start", "2000Q1", "--end", "2000Q1")
    assert (len(quarter), quarter[0], quarter[-1]) == (91, "2000-01-01", "2000-03-31")
    assert dates(local, "D", "--start", "2000-02-28", "--end", "2000-02") == [
        "2000-02-28",
        "2000-02-29",
    ]
    assert len(dates(local, "D", "--start", "Jun 2000", "--end", "June 2000")) == 30
    assert dates(local, "D", "--start", "2000-06-15", "--end", "2000-06-15") == ["2000-06-15"]
    # Only the end bound moves: a period as --start is still its first day.
    assert dates(local, "D", "--start", "2000-12", "--end", "2000-12-01") == ["2000-12-01"]
    fails(cli(*local, "read", "D", "--start", "2000Q2", "--end", "2000Q1"), 1, "start")


def test_revisions_through_the_end_of_a_period(local: list[str]) -> None:
    daily(local)
    rows = as_json(cli(*local, "revisions", "D", "--start", "2000Q4", "--end", "2000Q4", "--json"))
    assert (len(rows), rows[-1]["date"]) == (92, "2000-12-31")


def test_delete_range_through_the_end_of_a_month(local: list[str]) -> None:
    daily(local)
    args = ["--start", "2000-06", "--end", "2000-06", "--json"]
    written = as_json(cli(*local, "write", "D", "--mode", "delete_range", *args))
    assert written["observation_count"] == 366 - 30
    assert dates(local, "D", "--start", "2000-05-31", "--end", "2000-07-01") == [
        "2000-05-31",
        "2000-07-01",
    ]


def test_replace_range_through_the_end_of_a_year(local: list[str]) -> None:
    daily(local)
    text = "date,value\n2000-12-31,-1\n"
    args = ["--mode", "replace_range", "--start", "2000", "--end", "2000", "--json"]
    written = as_json(cli(*local, "write", "D", "-", *args, input=text))
    assert (written["observation_count"], written["first_date"]) == (1, "2000-12-31")


def test_an_end_period_of_an_intraday_series_takes_its_last_day_whole(local: list[str]) -> None:
    ok(cli(*local, "init"))
    text = "date,T\n2024-01-01T00:00:00Z,1\n2024-01-31T23:59:59.999999Z,2\n2024-02-01T00:00:00Z,3\n"
    ok(cli(*local, *INTRADAY, input=text))
    assert dates(local, "T", "--start", "2024-01", "--end", "2024-01") == [
        "2024-01-01T00:00:00Z",
        "2024-01-31T23:59:59.999999Z",
    ]
    assert len(dates(local, "T", "--end", "2024")) == 3


def test_periods_in_a_file_stay_their_first_day(local: list[str]) -> None:
    ok(cli(*local, "init"))
    text = "date,Q\n2000Q1,1\n2000-04,2\nJul 2000,3\n"
    imported = as_json(cli(*local, "import", "-", "--format", "wide", "--json", input=text))
    assert imported["observations"] == 3
    assert dates(local, "Q") == ["2000-01-01", "2000-04-01", "2000-07-01"]
    shown = as_json(cli(*local, "show", "Q", "--json"))
    assert shown["frequency"] == "quarterly"
    # The whole file read back through the end of its last period.
    assert len(dates(local, "Q", "--start", "2000Q1", "--end", "2000Q3")) == 3
