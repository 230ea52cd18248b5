"""``fincat`` write, read, revisions and show: ranges, as-of, gc retention, compact."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import Result

from catalog_store import Catalog
from tests.cli.helpers import as_json, cli, fails, latest_version, ok, write_file
from tests.conftest import StoreTarget

# -- write, read, revisions ----------------------------------------------------------------


def upsert(root: list[str], text: str, *options: str) -> Result:
    """``fincat write EX.SALES - --mode upsert`` of ``text``."""
    return cli(*root, "write", "EX.SALES", "-", "--mode", "upsert", *options, input=text)


def test_write_read_and_revisions(tmp_path: Path, series_root: list[str]) -> None:
    path = write_file(
        tmp_path / "obs.csv", "date,value\n2020-01-01,1.5\n2020-02-01,\n2020-03-01,3\n"
    )
    written = as_json(cli(*series_root, "write", "EX.SALES", path, "--json"))
    assert written == {
        "series_id": "EX.SALES",
        "mode": "append",
        "rows": 3,
        "committed": True,
        "version": 2,
        "observation_count": 3,
        "first_date": "2020-01-01",
        "last_date": "2020-03-01",
    }
    revised = as_json(upsert(series_root, "date,value\nMar 1 2020,3.25\n2020-04-01,4\n", "--json"))
    assert (revised["version"], revised["observation_count"]) == (3, 4)
    assert ok(cli(*series_root, "read", "EX.SALES")).stdout == (
        "date,value\n2020-01-01,1.5\n2020-02-01,\n2020-03-01,3.25\n2020-04-01,4.0\n"
    )
    before = as_json(cli(*series_root, "read", "EX.SALES", "--as-of", "2", "--format", "json"))
    assert before[-1] == {"date": "2020-03-01", "value": 3.0}
    ranged = ok(cli(*series_root, "read", "EX.SALES", "--start", "2020-02", "--end", "2020-03"))
    assert ranged.stdout == "date,value\n2020-02-01,\n2020-03-01,3.25\n"

    times = {h["version"]: h["committed_at"] for h in as_json(cli(*series_root, "log", "--json"))}
    march = as_json(
        cli(
            *series_root,
            "revisions",
            "EX.SALES",
            "--start",
            "2020-03-01",
            "--end",
            "2020-03-01",
            "--format",
            "json",
        )
    )
    assert march == [
        {"date": "2020-03-01", "value": 3.0, "realtime_start": times[2], "realtime_end": times[3]},
        {"date": "2020-03-01", "value": 3.25, "realtime_start": times[3], "realtime_end": None},
    ]
    first = as_json(
        cli(*series_root, "revisions", "EX.SALES", "--first-release", "--format", "json")
    )
    assert [(r["date"], r["value"]) for r in first] == [
        ("2020-01-01", 1.5),
        ("2020-02-01", None),
        ("2020-03-01", 3.0),
        ("2020-04-01", 4.0),
    ]
    table = ok(cli(*series_root, "revisions", "EX.SALES", "--start", "2020-04-01")).stdout
    assert table == f"date,value,realtime_start,realtime_end\n2020-04-01,4.0,{times[3]},\n"


def test_write_ranges(tmp_path: Path, series_root: list[str]) -> None:
    path = write_file(
        tmp_path / "obs.csv",
        "date,value\n2020-01-01,1\n2020-02-01,2\n2020-03-01,3\n2020-04-01,4\n",
    )
    ok(cli(*series_root, "write", "EX.SALES", path))
    replace = write_file(tmp_path / "r.csv", "date,value\n2020-02-01,20\n")
    args = ["--mode", "replace_range", "--start", "2020-02-01", "--end", "2020-03-01"]
    ok(cli(*series_root, "write", "EX.SALES", replace, *args))
    values = as_json(cli(*series_root, "read", "EX.SALES", "--format", "json"))
    assert [v["value"] for v in values] == [1.0, 20.0, 4.0]
    deleted = as_json(
        cli(
            *series_root,
            "write",
            "EX.SALES",
            "--mode",
            "delete_range",
            "--start",
            "2020-04-01",
            "--json",
        )
    )
    assert (deleted["rows"], deleted["observation_count"], deleted["last_date"]) == (
        0,
        2,
        "2020-02-01",
    )
    text = ok(upsert(series_root, "date,value\n2020-01-01,9\n"))
    assert "EX.SALES: upsert of 1 row committed as version 5" in text.stdout


def test_write_errors(tmp_path: Path, series_root: list[str], shared_target: StoreTarget) -> None:
    path = write_file(tmp_path / "obs.csv", "date,value\n2020-02-01,1\n")
    ok(cli(*series_root, "write", "EX.SALES", path))
    early = write_file(tmp_path / "early.csv", "date,value\n2020-01-01,1\n")
    # Retrying never helps an append that does not follow the last date: bad input, not a race.
    fails(cli(*series_root, "write", "EX.SALES", early), 1, "error: dates: append to 'EX.SALES'")
    fails(cli(*series_root, "write", "NO.SUCH", path), 1, "series not found: 'NO.SUCH'")
    bad = write_file(tmp_path / "bad.csv", "date,value\n2020-03-01,1\nsoon,2\n")
    fails(cli(*series_root, "write", "EX.SALES", bad), 1, "error: date: line 3: not a date: 'soon'")
    mid = write_file(tmp_path / "mid.csv", "date,value\n2020-03-15,1\n")
    fails(cli(*series_root, "write", "EX.SALES", mid), 1, "error: date: line 2: date 2020-03-15")
    three = write_file(tmp_path / "three.csv", "date,value,extra\n2020-03-01,1,2\n")
    fails(cli(*series_root, "write", "EX.SALES", three), 1, "expected two columns")
    fails(cli(*series_root, "write", "EX.SALES"), 2, "append needs a file")
    fails(cli(*series_root, "write", "EX.SALES", path, "--mode", "delete_range"), 2)
    fails(cli(*series_root, "write", "EX.SALES", path, "--mode", "sideways"), 2)
    fails(cli(*series_root, "write", "EX.SALES", path, "--start", "2020-01-01"), 1, "start")
    with shared_target.open(create=False) as catalog:
        assert catalog.get("EX.SALES").observation_count == 1


def test_a_write_that_changes_nothing_says_so(local: list[str]) -> None:
    ok(cli(*local, "init"))
    ok(cli(*local, "import", "-", "--format", "wide", input="date,a\n2000-01-01,1\n2000-02-01,2\n"))
    with Catalog.open(local[1]) as catalog:
        catalog.create(id="OTHER", frequency="annual")
    assert latest_version(local) == 2
    idle = as_json(cli(*local, "write", "a", "-", "--json", input="date,value\n"))
    # The series' version is that of its last change, not the catalog's newest.
    assert (idle["rows"], idle["committed"], idle["version"]) == (0, False, 1)
    assert idle["observation_count"] == 2
    text = ok(cli(*local, "write", "a", "-", "--mode", "upsert", input="date,value\n")).stdout
    assert "a: upsert of 0 rows: nothing committed; the series is unchanged since version 1" in text
    assert "committed as" not in text
    assert latest_version(local) == 2
    landed = as_json(cli(*local, "write", "a", "-", "--json", input="date,value\n2000-03-01,3\n"))
    assert (landed["committed"], landed["version"]) == (True, 3)


def test_an_empty_delta_is_accepted_by_write_and_import_alike(local: list[str]) -> None:
    """A header and no rows: nothing to do, nothing committed, exit 0. No header at all
    (an empty file, as a failed download leaves) is refused by both."""
    ok(cli(*local, "init"))
    ok(cli(*local, "import", "-", "--format", "wide", input="date,a\n2000-01-01,1\n2000-02-01,2\n"))
    wide = as_json(cli(*local, "import", "-", "--format", "wide", "--json", input="date,a\n"))
    assert wide == {
        "series": 1,
        "created": 0,
        "observations": 0,
        "committed": False,
        "version": 1,
        "ids": ["a"],
    }
    long = as_json(
        cli(*local, "import", "-", "--format", "long", "--json", input="id,date,value\n")
    )
    assert (long["series"], long["committed"], long["version"]) == (0, False, 1)
    text = ok(cli(*local, "import", "-", "--format", "wide", input="date,a\n")).stdout
    assert "nothing committed; the catalog stays at version 1" in text
    assert (
        as_json(cli(*local, "write", "a", "-", "--json", input="date,value\n"))["committed"]
        is False
    )
    assert latest_version(local) == 1
    fails(cli(*local, "import", "-", "--format", "wide", input=""), 1, "the file is empty")
    fails(cli(*local, "write", "a", "-", input=""), 1, "the file is empty")


def test_a_file_without_a_header_row_is_refused(local: list[str]) -> None:
    """Read as a header, its first row would be lost unseen (a write of "0 rows")
    or become a series named after a value; its date where the date column's name
    should be gives it away."""
    ok(cli(*local, "init"))
    ok(cli(*local, "import", "-", "--format", "wide", input="date,a\n2000-01-01,1\n2000-02-01,2\n"))
    headerless = "2000-03-01,3\n2000-04-01,4\n"
    for args in (["write", "a", "-"], ["import", "-", "--format", "wide"]):
        fails(cli(*local, *args, input=headerless), 1, "has no header row")
    assert latest_version(local) == 1
    assert as_json(cli(*local, "show", "a", "--json"))["observation_count"] == 2


@pytest.mark.parametrize("mode", ["replace_range", "delete_range"])
def test_range_modes_need_a_bound(tmp_path: Path, local: list[str], mode: str) -> None:
    ok(cli(*local, "init"))
    ok(cli(*local, "import", "-", "--format", "wide", input="date,a\n2000-01-01,1\n2000-02-01,2\n"))
    file = [write_file(tmp_path / "r.csv", "date,value\n2000-01-01,9\n")]
    args = ["write", "a", *(file if mode == "replace_range" else []), "--mode", mode]
    fails(cli(*local, *args), 2, "needs --start or --end", "give --start with its first date")
    assert as_json(cli(*local, "show", "a", "--json"))["observation_count"] == 2
    everything = as_json(cli(*local, *args, "--start", "2000-01-01", "--json"))
    assert everything["observation_count"] == (1 if mode == "replace_range" else 0)


# -- as-of, dates and read errors ----------------------------------------------------------


def test_as_of_and_date_options_out_of_range_are_usage_errors(series_root: list[str]) -> None:
    fails(cli(*series_root, "read", "EX.SALES", "--as-of", "\u00b2"), 2, "--as-of")
    fails(cli(*series_root, "read", "EX.SALES", "--as-of", "\u0663"), 2, "--as-of")  # Arabic 3
    # RFC 3339 only: not an ISO week date, an offset without a colon, nanoseconds.
    for odd in ("2026-W49-7T00:00:00Z", "2026-12-06T15:03+0100", "2026-12-06T15:03:00.1234567Z"):
        fails(cli(*series_root, "read", "EX.SALES", "--as-of", odd), 2, "--as-of", "RFC 3339")
    # Lower-case t and z are RFC 3339 too.
    as_json(cli(*series_root, "show", "EX.SALES", "--as-of", "2100-01-01t00:00:00z", "--json"))
    late = "9999-12-31T23:59:59-05:00"
    fails(cli(*series_root, "show", "EX.SALES", "--as-of", late), 2, "--as-of", "out of range")
    fails(cli(*series_root, "read", "EX.SALES", "--as-of", late), 2, "out of range in UTC")
    fails(cli(*series_root, "read", "EX.SALES", "--start", late), 2, "--start", "out of range")
    fails(cli(*series_root, "revisions", "EX.SALES", "--end", late), 2, "--end", "out of range")
    early = "0001-01-01T00:00:00+01:00"
    fails(cli(*series_root, "read", "EX.SALES", "--end", early), 2, "out of range in UTC")


def test_read_and_show_errors(series_root: list[str]) -> None:
    fails(cli(*series_root, "show", "NOPE"), 1, "error: series not found: 'NOPE'")
    fails(cli(*series_root, "read", "NOPE"), 1, "series not found")
    fails(cli(*series_root, "revisions", "NOPE"), 1, "series not found")
    fails(cli(*series_root, "compact", "NOPE"), 1, "series not found")
    fails(cli(*series_root, "show", "bad id!"), 1, "error: id: must be")
    fails(cli(*series_root, "read", "EX.SALES", "--start", "2020-13-01"), 2, "--start")
    fails(cli(*series_root, "read", "EX.SALES", "--end", "yesterday"), 2, "--end")
    fails(cli(*series_root, "read", "EX.SALES", "--as-of", "2020-01-01"), 2, "--as-of")
    fails(cli(*series_root, "show", "EX.SALES", "--as-of", "99"), 1, "no catalog version 99")
    fails(
        cli(*series_root, "read", "EX.SALES", "--start", "2021-01-01", "--end", "2020-01-01"),
        1,
        "start",
    )


def test_show_as_of_version_and_instant(tmp_path: Path, series_root: list[str]) -> None:
    path = write_file(tmp_path / "obs.csv", "date,value\n2020-01-01,1\n")
    ok(cli(*series_root, "write", "EX.SALES", path))
    history = as_json(cli(*series_root, "log", "--json"))
    assert (
        as_json(cli(*series_root, "show", "EX.SALES", "--as-of", "1", "--json"))[
            "observation_count"
        ]
        == 0
    )
    at = history[0]["committed_at"]
    assert (
        as_json(cli(*series_root, "show", "EX.SALES", "--as-of", at, "--json"))["observation_count"]
        == 1
    )
    past = "2000-01-01T00:00:00+00:00"
    fails(cli(*series_root, "show", "EX.SALES", "--as-of", past), 1, "did not exist")


@pytest.mark.timeout(60)
def test_revisions_of_a_series_created_by_a_batch(tmp_path: Path, local: list[str]) -> None:
    """demo and import create and write a series in one commit; its history must still walk."""
    ok(cli(*local, "demo"))
    ok(
        cli(
            *local,
            "write",
            "US.CPI",
            "-",
            "--mode",
            "upsert",
            input="date,value\n2009-07-01,216.5\n",
        )
    )
    rows = as_json(cli(*local, "revisions", "US.CPI", "--start", "2009-07-01", "--format", "json"))
    assert [(r["value"], r["realtime_end"] is None) for r in rows] == [
        (216.385, False),
        (216.5, True),
    ]


# -- gc periods and retention --------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--grace-hours", "inf"],
        ["--grace-hours", "nan"],
        ["--grace-hours", "1e12"],
        ["--grace-hours", "1e8"],
        ["--retain-days", "inf"],
        ["--retain-days", "nan"],
        ["--retain-days", "1e12"],
        ["--retain-days", "1000000"],
    ],
)
def test_gc_bounds_its_periods(local: list[str], option: list[str]) -> None:
    ok(cli(*local, "init"))
    # The bounds, not "less than or equal to" the upper one, which nan is not above.
    fails(cli(*local, "gc", "--dry-run", *option), 2, option[0], "number from 0 to")


def test_gc_takes_a_century(local: list[str]) -> None:
    ok(cli(*local, "init"))
    done = as_json(cli(*local, "gc", "--retain-days", "36525", "--grace-hours", "876600", "--json"))
    assert (done["deleted"], done["expired_versions"]) == (0, 0)


def _expire_history(args: list[str]) -> None:
    """Versions 1-3 change series S; then gc keeps only the newest."""
    ok(cli(*args, "init"))
    for value in (1, 2, 3):
        text = f"id,date,value\nS,2000-01-01,{value}\n"
        ok(cli(*args, "import", "-", "--format", "long", "--frequency", "annual", input=text))
    ok(cli(*args, "gc", "--retain-days", "0", "--grace-hours", "0"))


def test_reads_before_the_retention_floor_say_history_has_expired(local: list[str]) -> None:
    _expire_history(local)
    at = "2000-01-01T00:00:00Z"
    fails(cli(*local, "read", "S", "--as-of", at), 1, "history before", "has expired")
    assert as_json(cli(*local, "read", "S", "--as-of", "3", "--json"))[0]["value"] == 3.0


def test_a_version_below_the_retention_floor_has_expired(local: list[str]) -> None:
    _expire_history(local)
    fails(cli(*local, "read", "S", "--as-of", "1"), 1, "has expired")


# -- compact -------------------------------------------------------------------------------


def test_compact(series_root: list[str]) -> None:
    for month in range(1, 6):
        ok(
            cli(
                *series_root,
                "write",
                "EX.SALES",
                "-",
                input=f"date,value\n2020-{month:02d}-01,{month}\n",
            )
        )
    before = ok(cli(*series_root, "read", "EX.SALES")).stdout
    done = as_json(cli(*series_root, "compact", "EX.SALES", "--json"))
    assert done == {"series_id": "EX.SALES", "compacted": True, "version": 7}
    assert ok(cli(*series_root, "read", "EX.SALES")).stdout == before
    assert as_json(cli(*series_root, "compact", "EX.SALES", "--json"))["compacted"] is False
    assert "nothing to compact" in ok(cli(*series_root, "compact", "EX.SALES")).stdout
