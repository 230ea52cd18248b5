"""``fincat import`` of wide and long CSV files, and the CSV parsing helpers behind it."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from catalog_store import Catalog
from catalog_store.cli.csvfiles import frequency_of, infer_frequency, parse_date, read_long
from catalog_store.errors import ValidationError
from tests.cli.helpers import WIDE, as_json, cli, fails, latest_version, ok, roots, write_file
from tests.conftest import StoreTarget

DATA = Path(__file__).resolve().parents[2] / "catalog_store" / "demo"

LONG = """symbol,date,price
AAA,Jan 1 2000,10.5
AAA,Feb 1 2000,11
BBB,Jan 1 2000,20
BBB,Feb 1 2000,.
BBB,Mar 1 2000,22.25
"""


# -- import --------------------------------------------------------------------------------


def import_wide(root: list[str], path: str, prefix: str, source: str) -> Any:
    """The JSON summary of a wide import of ``path`` that must succeed."""
    options = ["--format", "wide", "--prefix", prefix, "--source", source, "--json"]
    return as_json(cli(*root, "import", path, *options))


def test_import_wide_creates_series_in_one_commit(tmp_path: Path, local: list[str]) -> None:
    ok(cli(*local, "init"))
    path = write_file(tmp_path / "wide.csv", WIDE)
    summary = import_wide(local, path, "T.", "test")
    assert summary == {
        "series": 2,
        "created": 2,
        "observations": 5,
        "committed": True,
        "version": 1,
        "ids": ["T.gdp", "T.cpi"],
    }
    gdp = as_json(cli(*local, "show", "T.gdp", "--json"))
    assert (gdp["frequency"], gdp["source"], gdp["title"]) == ("monthly", "test", "gdp")
    assert as_json(cli(*local, "read", "T.cpi", "--format", "json")) == [
        {"date": "2000-01-01", "value": 170.0},
        {"date": "2000-03-01", "value": 171.5},
    ]
    history = as_json(cli(*local, "log", "--json"))
    assert [h["version"] for h in history] == [1, 0]
    assert (history[0]["message"], history[0]["changes"]) == ("import wide.csv", 4)

    # Upsert again with one revised value: no series created, one more version.
    write_file(tmp_path / "wide.csv", WIDE.replace("101.25", "101.75"))
    again = as_json(cli(*local, "import", path, "--format", "wide", "--prefix", "T.", "--json"))
    assert (again["created"], again["version"]) == (0, 2)
    read = ok(cli(*local, "read", "T.gdp")).stdout
    assert read == "date,value\n2000-01-01,100.5\n2000-02-01,101.75\n2000-03-01,102.0\n"
    write_file(tmp_path / "wide.csv", WIDE.replace("101.25", "102.25"))
    text = ok(cli(*local, "import", path, "--format", "wide", "--prefix", "T.")).stdout
    assert "Imported 5 observations into 2 series (0 created) as version 3." in text
    # The same file again changes no value: nothing is committed.
    text = ok(cli(*local, "import", path, "--format", "wide", "--prefix", "T.")).stdout
    assert "change nothing: nothing committed; the catalog stays at version 3." in text


def test_import_long_with_month_names(tmp_path: Path, shared_target: StoreTarget) -> None:
    args = roots(shared_target)
    ok(cli(*args, "init"))
    path = write_file(tmp_path / "long.csv", LONG)
    summary = as_json(
        cli(*args, "import", path, "--format", "long", "--frequency", "monthly", "--json")
    )
    assert (summary["ids"], summary["observations"]) == (["AAA", "BBB"], 4)
    assert as_json(cli(*args, "read", "BBB", "--format", "json")) == [
        {"date": "2000-01-01", "value": 20.0},
        {"date": "2000-03-01", "value": 22.25},
    ]
    with shared_target.open(create=False) as catalog:
        assert catalog.get("AAA").frequency == "monthly"
        assert catalog.read("AAA").column("value").to_pylist() == [10.5, 11.0]


def test_import_long_from_stdin_with_named_columns(local: list[str]) -> None:
    ok(cli(*local, "init"))
    text = "when,name,v\n2001-01-01,X,1\n2002-01-01,X,2\n2003-01-01,X,3\n"
    summary = as_json(
        cli(
            *local,
            "import",
            "-",
            "--format",
            "long",
            "--id-column",
            "name",
            "--date-column",
            "when",
            "--value-column",
            "v",
            "--json",
            input=text,
        )
    )
    assert summary["ids"] == ["X"]
    assert as_json(cli(*local, "show", "X", "--json"))["frequency"] == "annual"


def test_import_macro_file_with_year_and_quarter(local: list[str]) -> None:
    ok(cli(*local, "init"))
    path = str(DATA / "us_macro_quarterly.csv")
    summary = import_wide(local, path, "M.", "FRED")
    assert (summary["series"], summary["observations"]) == (12, 12 * 203)
    gdp = as_json(cli(*local, "show", "M.realgdp", "--json"))
    assert (gdp["frequency"], gdp["first_date"], gdp["last_date"]) == (
        "quarterly",
        "1959-01-01",
        "2009-07-01",
    )
    first = as_json(cli(*local, "read", "M.realgdp", "--end", "1959-01-01", "--format", "json"))
    assert first == [{"date": "1959-01-01", "value": 2710.349}]


def test_import_with_explicit_year_and_quarter_columns(tmp_path: Path, local: list[str]) -> None:
    ok(cli(*local, "init"))
    path = write_file(tmp_path / "q.csv", "yr,q,level\n2020,1,5\n2020,Q2,6\n2020,3,7\n")
    args = ["--year-column", "yr", "--quarter-column", "q", "--prefix", "Q.", "--json"]
    summary = as_json(cli(*local, "import", path, "--format", "wide", *args))
    assert summary["ids"] == ["Q.level"]
    assert as_json(cli(*local, "read", "Q.level", "--format", "json"))[-1] == {
        "date": "2020-07-01",
        "value": 7.0,
    }


def test_import_errors_commit_nothing(tmp_path: Path, local: list[str]) -> None:
    ok(cli(*local, "init"))
    bad_date = write_file(tmp_path / "bad.csv", "date,a\n2000-01-01,1\n2000-02-30,2\n")
    fails(
        cli(*local, "import", bad_date, "--format", "wide"), 1, "error: date: line 3", "2000-02-30"
    )
    bad_value = write_file(tmp_path / "value.csv", "date,a\n2000-01-01,1\n2000-02-01,lots\n")
    fails(cli(*local, "import", bad_value, "--format", "wide"), 1, "a: line 3", "'lots'")
    bad_id = write_file(tmp_path / "id.csv", "date,bad id\n2000-01-01,1\n2000-02-01,2\n")
    fails(cli(*local, "import", bad_id, "--format", "wide"), 1, "id:", "'bad id'")
    off = write_file(tmp_path / "off.csv", "date,a,b\n2000-01-01,1,1\n2000-02-15,2,2\n")
    fails(
        cli(*local, "import", off, "--format", "wide", "--frequency", "monthly"),
        1,
        "error: date: line 3: date 2000-02-15 is not the first day of a month",
    )
    single = write_file(tmp_path / "single.csv", "date,a\n2000-01-01,1\n")
    fails(cli(*local, "import", single, "--format", "wide"), 1, "frequency", "pass --frequency")
    fails(cli(*local, "import", single, "--format", "wide", "--frequency", "hourly"), 2)
    fails(cli(*local, "import", single, "--format", "sideways"), 2)
    fails(cli(*local, "import", str(tmp_path / "absent.csv"), "--format", "wide"), 2)
    assert as_json(cli(*local, "log", "--json"))[0]["version"] == 0


def test_what_the_series_refuses_is_named_by_line_and_column(
    tmp_path: Path, local: list[str]
) -> None:
    """The rules a series applies are judged row by row before the commit, so that an
    error names the cell, for series the import creates and for those that exist."""
    ok(cli(*local, "init"))
    first = write_file(tmp_path / "first.csv", "date,gdp,cpi\n2000-01-01,1,2\n2000-02-01,1,2\n")
    ok(cli(*local, "import", first, "--format", "wide", "--prefix", "US."))
    before = latest_version(local)
    wide = ["--format", "wide", "--prefix", "US."]
    infinite = write_file(
        tmp_path / "inf.csv", "date,gdp,cpi\n2000-06-01,1,2\n2000-07-01,1,\n2000-08-01,1,inf\n"
    )
    fails(
        cli(*local, "import", infinite, *wide),
        1,
        "error: cpi: line 4: value inf at date 2000-08-01 is not a finite number",
    )
    month_end = write_file(tmp_path / "end.csv", "date,gdp\n2000-05-01,1\n2000-06-30,1\n")
    fails(
        cli(*local, "import", month_end, *wide),
        1,
        "error: date: line 3: date 2000-06-30 is not the first day of a month",
        "write each period itself (2020-01, 2020Q1, 2020) or its first day",
    )
    long = "id,date,value\nUS.cpi,2000-09-01,1\nUS.new,2000-01-01,1\nUS.new,2000-01-15,-inf\n"
    fails(
        cli(*local, "import", "-", "--format", "long", "--frequency", "monthly", input=long),
        1,
        "error: date: line 4: date 2000-01-15 is not the first day of a month",
    )
    assert latest_version(local) == before
    # Appending before a series' last date is judged as the batch commits; it names
    # the series.
    early = write_file(tmp_path / "early.csv", "date,gdp\n1999-12-01,1\n")
    fails(cli(*local, "import", early, *wide, "--mode", "append"), 1, "'US.gdp'", "2000-02-01")
    assert latest_version(local) == before


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_a_series_mixing_instants_and_dates_is_refused_by_line(
    local: list[str], layout: str
) -> None:
    ok(cli(*local, "init"))
    rows = [("2000-01-01T10:00:00Z", 1), ("2000-01-02", 2)]
    if layout == "wide":
        text = "date,x\n" + "".join(f"{d},{v}\n" for d, v in rows)
    else:
        text = "id,date,value\n" + "".join(f"x,{d},{v}\n" for d, v in rows)
    for frequency in ([], ["--frequency", "intraday"]):
        fails(
            cli(*local, "import", "-", "--format", layout, *frequency, input=text),
            1,
            "error: date: line 3: 2000-01-02 is a calendar date, and line 2 has an instant",
        )
    assert latest_version(local) == 0


def test_a_value_column_without_a_name_is_refused(local: list[str]) -> None:
    """As pandas writes its index: the column is not imported as a series named ''."""
    ok(cli(*local, "init"))
    text = ",date,gdp\n0,2000-01-01,100.5\n1,2000-02-01,101\n"
    fails(
        cli(*local, "import", "-", "--format", "wide", "--prefix", "P.", input=text),
        1,
        "error: file: column 1 has no name in the header",
        "to_csv(index=False)",
    )
    assert latest_version(local) == 0
    # Unnamed dates (a DataFrame's unnamed date index) are the first column, as before.
    dated = ",gdp\n2000-01-01,100.5\n2000-02-01,101\n"
    ok(cli(*local, "import", "-", "--format", "wide", "--prefix", "P.", input=dated))
    read = as_json(cli(*local, "read", "P.gdp", "--format", "json"))
    assert [row["value"] for row in read] == [100.5, 101.0]


def test_every_series_of_a_long_file_is_imported_though_all_its_values_are_missing(
    local: list[str],
) -> None:
    ok(cli(*local, "init"))
    text = "id,date,value\nA,2000-01-01,1\nA,2000-02-01,2\nZ,2000-01-01,\nZ,2000-02-01,-nan\n"
    done = as_json(
        cli(
            *local,
            "import",
            "-",
            "--format",
            "long",
            "--frequency",
            "monthly",
            "--json",
            input=text,
        )
    )
    assert (done["series"], done["created"], done["ids"]) == (2, 2, ["A", "Z"])
    assert as_json(cli(*local, "read", "Z", "--format", "json")) == []
    # Without --frequency, a new series with no value takes the one its rows' dates
    # tell, as one with values does.
    text = "id,date,value\nB,2000-01-01,1\nB,2000-04-01,2\nY,2000-01-01,\nY,2000-04-01,NA\n"
    done = as_json(cli(*local, "import", "-", "--format", "long", "--json", input=text))
    assert (done["series"], done["created"]) == (2, 2)
    shown = as_json(cli(*local, "show", "Y", "--json"))
    assert (shown["frequency"], shown["observation_count"]) == ("quarterly", 0)
    # One row tells no frequency: the error asks for it, and nothing is written.
    before = cli(*local, "log", "--limit", "1").output
    alone = cli(*local, "import", "-", "--format", "long", input="id,date,value\nX,2000-01-01,\n")
    assert alone.exit_code == 1
    assert "pass --frequency" in alone.output
    assert cli(*local, "log", "--limit", "1").output == before


def test_an_integer_past_int64_that_a_float_holds_is_imported_exactly(local: list[str]) -> None:
    ok(cli(*local, "init"))
    text = "date,x\n2000-01-01,10000000000000000000000\n2000-02-01,9223372036854775808\n"
    ok(cli(*local, "import", "-", "--format", "wide", input=text))
    read = as_json(cli(*local, "read", "x", "--format", "json"))
    assert [row["value"] for row in read] == [1e22, 2.0**63]
    inexact = "date,y\n2000-01-01,9223372036854775809\n2000-02-01,1\n"
    fails(
        cli(*local, "import", "-", "--format", "wide", input=inexact),
        1,
        "y: line 2: 9223372036854775809 is an integer a 64-bit float cannot hold exactly",
    )


def test_import_refuses_a_frequency_mismatch(tmp_path: Path, local: list[str]) -> None:
    ok(cli(*local, "demo"))
    path = write_file(tmp_path / "m.csv", "date,REALGDP\n2010-01-01,1\n2010-04-01,2\n")
    fails(
        cli(
            *local, "import", path, "--format", "wide", "--prefix", "US.", "--frequency", "monthly"
        ),
        1,
        "frequency",
        "is quarterly, not monthly",
    )


@pytest.mark.parametrize(
    ("command", "text", "line", "cells", "width"),
    [
        (["write", "US.GDP", "-"], "date,value\n2000-04-01,1,5\n", 2, "3 cells", 2),
        (["write", "US.GDP", "-"], "date,value\n2000-04-01,1\n2000-05-01\n", 3, "1 cell", 2),
        (["import", "-", "--format", "wide"], "date,a,b\n2000-01-01,1,5,7\n", 2, "4 cells", 3),
        (["import", "-", "--format", "wide"], "date,a,b\n2000-01-01,1\n", 2, "2 cells", 3),
        (["import", "-", "--format", "long"], "id,date,value\nA,2000-01-01,1,5\n", 2, "4 cells", 3),
        (["import", "-", "--format", "long"], "id,date,value\n\nA,2000-01-01\n", 3, "2 cells", 3),
    ],
)
def test_a_row_must_have_as_many_cells_as_the_header(
    local: list[str], command: list[str], text: str, line: int, cells: str, width: int
) -> None:
    """A decimal comma ('1,5') must not be stored as 1.0, nor a short row padded."""
    ok(cli(*local, "init"))
    with Catalog.open(local[1]) as catalog:
        catalog.create(id="US.GDP", frequency="monthly")
    before = latest_version(local)
    fails(
        cli(*local, *command, input=text),
        1,
        f"error: file: line {line}: {cells}, the header has {width}",
    )
    assert latest_version(local) == before


@pytest.mark.parametrize("cell", ["1_0", "\u0663", "\uff15", "0x10", "1e"])
def test_a_number_is_ascii_digits_not_whatever_float_reads(local: list[str], cell: str) -> None:
    """Python's float() reads "1_0" as 10 and other scripts' digits ("٣") as numbers;
    a cell is a number only as written in ASCII, else refused naming its line."""
    ok(cli(*local, "init"))
    with Catalog.open(local[1]) as catalog:
        catalog.create(id="US.GDP", frequency="monthly")
    before = latest_version(local)
    text = f"date,value\n2000-04-01,1\n2000-05-01,{cell}\n"
    fails(cli(*local, "write", "US.GDP", "-", input=text), 1, "line 3: not a number")
    wide = f"date,a\n2000-04-01,1\n2000-05-01,{cell}\n"
    fails(cli(*local, "import", "-", "--format", "wide", input=wide), 1, "line 3: not a number")
    assert latest_version(local) == before


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_import_refuses_a_column_named_twice(local: list[str], layout: str) -> None:
    ok(cli(*local, "init"))
    text = (
        "date,a,a\n2000-01-01,1,2\n2000-02-01,3,4\n"
        if layout == "wide"
        else "id,date,value,date\nA,2000-01-01,1,2000-01-01\n"
    )
    name = "a" if layout == "wide" else "date"
    fails(
        cli(*local, "import", "-", "--format", layout, input=text),
        1,
        f"error: file: the header names column {name!r} twice",
    )
    assert latest_version(local) == 0


@pytest.mark.parametrize(
    "content",
    [
        b"date,caf\xe9\n2000-01-01,1\n2000-02-01,2\n",  # Latin-1
        "date,a\n2000-01-01,1\n2000-02-01,2\n".encode("utf-16"),  # a spreadsheet's export
    ],
    ids=["latin-1", "utf-16"],
)
def test_a_file_that_is_not_utf8_is_refused_in_one_line(
    tmp_path: Path, local: list[str], content: bytes
) -> None:
    ok(cli(*local, "init"))
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    for command in (["import", str(path), "--format", "wide"], ["write", "a", str(path)]):
        fails(cli(*local, *command), 1, "error: file: the file is not UTF-8 text")
    assert latest_version(local) == 0


# -- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2000-01-31", dt.date(2000, 1, 31)),
        ("Jan 1 2000", dt.date(2000, 1, 1)),
        ("January 31, 2000", dt.date(2000, 1, 31)),
        ("31 Jan 2000", dt.date(2000, 1, 31)),
        ("2000/01/31", dt.date(2000, 1, 31)),
        ("2000-02", dt.date(2000, 2, 1)),
        ("Feb 2000", dt.date(2000, 2, 1)),
        ("2000Q3", dt.date(2000, 7, 1)),
        ("2000-Q4", dt.date(2000, 10, 1)),
        ("1999", dt.date(1999, 1, 1)),
        ("2000-01-31T00:00:00", dt.date(2000, 1, 31)),
        (" 2000-01-31 ", dt.date(2000, 1, 31)),
        ("2000-01-31T12:30:00Z", dt.datetime(2000, 1, 31, 12, 30, tzinfo=dt.UTC)),
        ("2000-01-31T12:30:00+02:00", dt.datetime(2000, 1, 31, 10, 30, tzinfo=dt.UTC)),
    ],
)
def test_parse_date(text: str, expected: dt.date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["", "2000-02-30", "soon", "2000Q5", "2000-01-31T12:30:00"])
def test_parse_date_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"date|time of day"):
        parse_date(text)


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (["2000-01-01", "2000-02-01", "2000-04-01"], "monthly"),
        (["2000-01-01", "2000-04-01", "2000-10-01"], "quarterly"),
        (["2000-01-01", "2000-07-01"], "semiannual"),
        (["2000-01-01", "2001-01-01"], "annual"),
        (["2024-01-01", "2024-01-08", "2024-01-22"], "weekly"),
        (["2024-01-05", "2024-01-08", "2024-01-09"], "business_daily"),
        (["2024-01-06", "2024-01-07"], "daily"),
        (["2024-01-02", "2024-01-05", "2024-01-15"], "irregular"),
        (["2024-01-01"], None),
    ],
)
def test_infer_frequency(dates: list[str], expected: str | None) -> None:
    assert infer_frequency([dt.date.fromisoformat(d) for d in dates]) == expected


@pytest.mark.parametrize(
    ("valued", "missing", "expected"),
    [
        # A missing quarter, half-year or month made the gaps, and so the guess, wider.
        (["2023-01-01", "2023-07-01"], ["2023-04-01"], "quarterly"),
        (["2023-01-01", "2024-01-01"], ["2023-04-01", "2023-07-01"], "quarterly"),
        (["2023-01-01", "2023-07-01"], ["2023-02-01"], "monthly"),
        (
            ["2024-01-01", "2024-01-03", "2024-01-05"],
            ["2024-01-02", "2024-01-04"],
            "business_daily",
        ),
        # Rows off the valued dates' calendar do not make them finer.
        (["2023-01-01", "2023-02-01", "2023-03-01"], ["2023-02-15"], "monthly"),
        (["2023-01-01", "2023-02-01"], ["2023-01-02", "2023-01-03"], "monthly"),
        # No two valued dates: every row tells.
        (["2023-01-01"], ["2023-04-01", "2023-07-01"], "quarterly"),
        ([], ["2023-04-01"], None),
    ],
)
def test_rows_missing_their_value_fill_the_gaps_that_tell_a_frequency(
    valued: list[str], missing: list[str], expected: str | None
) -> None:
    day = dt.date.fromisoformat
    assert frequency_of([day(d) for d in valued], [day(d) for d in missing]) == expected


def test_a_missing_quarter_does_not_make_a_new_series_semiannual(local: list[str]) -> None:
    ok(cli(*local, "init"))
    long = "id,date,value\nGDPX,2023-01-01,100\nGDPX,2023-04-01,.\nGDPX,2023-07-01,102\n"
    ok(cli(*local, "import", "-", "--format", "long", input=long))
    wide = "date,GDPW\n2023Q1,100\n2023Q2,\n2023Q3,102\n"
    ok(cli(*local, "import", "-", "--format", "wide", input=wide))
    for series_id in ("GDPX", "GDPW"):
        shown = as_json(cli(*local, "show", series_id, "--json"))
        assert shown["frequency"] == "quarterly", series_id
    ok(cli(*local, "import", "-", "--format", "long", input="id,date,value\nGDPX,2023-04-01,101\n"))


def test_long_files_need_an_id_column() -> None:
    with pytest.raises(ValidationError, match="pass --id-column") as caught:
        read_long(io.StringIO("date,value\n2000-01-01,1\n"))
    assert caught.value.field == "id-column"
