"""The ``fincat`` command line, run in-process against real stores."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from rich.progress import Progress
from typer.testing import CliRunner, Result

from catalog_store import AsyncCatalog, Catalog
from catalog_store.cli import app
from catalog_store.cli._app import describe, exit_code
from catalog_store.cli._common import parse_storage_options
from catalog_store.cli._output import Meter
from catalog_store.cli.csvfiles import infer_frequency, parse_date, read_long
from catalog_store.demo import load_demo_async
from catalog_store.errors import (
    AppendOrderError,
    CatalogStoreError,
    CommitRetriesExhaustedError,
    CommitStateUnknownError,
    ExternalIdTakenError,
    SeriesExistsError,
    StorageFullError,
    StorageUnavailableError,
    ValidationError,
    VersionMismatchError,
)
from catalog_store.models import parse_spec
from tests.conftest import EAGER, StoreTarget

DATA = Path(__file__).resolve().parents[1] / "catalog_store" / "demo"
RUNNER = CliRunner(env={"COLUMNS": "200"})


def cli(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return RUNNER.invoke(app, list(args), input=input, env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def fails(result: Result, code: int, *fragments: str) -> str:
    """Assert a clean failure: the exit status, a message on stderr, no traceback."""
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result.stderr


def roots(target: StoreTarget) -> list[str]:
    args = ["--root", target.url]
    for key, value in target.options.items():
        args += ["--storage-option", f"{key}={value}"]
    return args


@pytest.fixture
def local(tmp_path: Path) -> list[str]:
    return ["--root", str(tmp_path / "catalog")]


@pytest.fixture
def demo_root(shared_target: StoreTarget) -> list[str]:
    args = roots(shared_target)
    as_json(cli(*args, "demo", "--json"))
    return args


def write_file(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- global options and init ------------------------------------------------------------


def test_help_lists_every_command() -> None:
    out = ok(cli("--help")).stdout
    for name in ("init", "ls", "show", "log", "import", "demo", "write", "read"):
        assert name in out
    assert "revisions" in out
    assert "compact" in out


def test_init_creates_once_with_the_shard_count(tmp_path: Path, local: list[str]) -> None:
    first = as_json(cli(*local, "init", "--shards", "4", "--json"))
    assert first == {"root": local[1], "created": True, "version": 0}
    marker = json.loads((tmp_path / "catalog" / "fincat.json").read_text())
    assert marker["shard_count"] == 4
    again = cli(*local, "init", "--shards", "9", "--json")
    assert as_json(again) == {"root": local[1], "created": False, "version": 0}
    assert "note: --shards 9 is not applied" in again.stderr
    assert json.loads((tmp_path / "catalog" / "fincat.json").read_text())["shard_count"] == 4
    plain = ok(cli(*local, "init"))
    assert "already exists" in plain.stdout
    assert plain.stderr == ""


def test_init_on_shared_store(shared_target: StoreTarget) -> None:
    assert as_json(cli(*roots(shared_target), "init", "--json"))["created"] is True
    with shared_target.open(create=False) as catalog:
        assert catalog.version() == 0


def test_root_comes_from_the_environment(tmp_path: Path) -> None:
    env = {"FINCAT_ROOT": str(tmp_path / "from-env")}
    assert as_json(cli("init", "--json", env=env))["root"] == str(tmp_path / "from-env")
    assert (tmp_path / "from-env" / "fincat.json").exists()


def test_a_missing_catalog_is_a_clear_error(tmp_path: Path) -> None:
    fails(cli("--root", str(tmp_path / "nothing"), "ls"), 1, "error:", "not a fincat store")


def test_malformed_storage_option_is_a_usage_error(local: list[str]) -> None:
    fails(cli(*local, "--storage-option", "novalue", "ls"), 2, "KEY=VALUE")


def test_storage_options_keep_secrets_as_strings() -> None:
    options = parse_storage_options(
        ["key=12345", "anon=false", 'client_kwargs={"region_name": "eu-west-1"}', "a=b=c"]
    )
    assert options == {
        "key": "12345",
        "anon": False,
        "client_kwargs": {"region_name": "eu-west-1"},
        "a": "b=c",
    }


# -- demo, ls, show, log ------------------------------------------------------------------


def test_demo_loads_real_data_once(shared_target: StoreTarget) -> None:
    args = roots(shared_target)
    summary = as_json(cli(*args, "demo", "--json"))
    assert summary["series"] == 40
    assert summary["created"] == 40
    assert summary["committed"] is True
    assert summary["observations"] == 12 * 203 + 23 * 120 + 4 * 123 + 68
    files = {d["file"]: (d["series"], d["observations"]) for d in summary["datasets"]}
    assert files == {
        "us_macro_quarterly.csv": (12, 12 * 203),
        "us_employment_monthly.csv": (23, 23 * 120),
        "stocks_monthly.csv": (5, 560),
    }
    again = as_json(cli(*args, "demo", "--json"))
    assert again["committed"] is False
    assert again["unchanged"] == 40
    assert again["version"] == summary["version"]

    gdp = as_json(cli(*args, "read", "US.REALGDP", "--end", "1959-01-01", "--format", "json"))
    assert gdp == [{"date": "1959-01-01", "value": 2710.349}]
    last = as_json(cli(*args, "read", "US.REALGDP", "--start", "2009Q3", "--format", "json"))
    assert last == [{"date": "2009-07-01", "value": 12990.341}]
    msft = as_json(cli(*args, "read", "MSFT", "--end", "Feb 1 2000", "--format", "json"))
    assert msft == [
        {"date": "2000-01-01", "value": 39.81},
        {"date": "2000-02-01", "value": 36.35},
    ]
    infl = as_json(cli(*args, "read", "US.INFL", "--end", "1959-04-01", "--format", "json"))
    assert infl == [{"date": "1959-01-01", "value": None}, {"date": "1959-04-01", "value": 2.34}]


def test_demo_metadata(demo_root: list[str]) -> None:
    gdp = as_json(cli(*demo_root, "show", "US.REALGDP", "--json"))
    assert gdp["frequency"] == "quarterly"
    assert gdp["source"] == "FRED"
    assert gdp["units"] == "Billions of chained 2005 dollars"
    assert gdp["seasonal_adjustment"] == "seasonally adjusted annual rate"
    assert gdp["first_date"] == "1959-01-01"
    assert gdp["last_date"] == "2009-07-01"
    assert gdp["observation_count"] == 203
    assert gdp["attributes"] == {"dataset": "us_macro_quarterly.csv", "column": "realgdp"}
    unrate = as_json(cli(*demo_root, "show", "US.UNRATE", "--json"))
    assert (unrate["source"], unrate["units"]) == ("BLS", "Percent")
    payems = as_json(cli(*demo_root, "show", "US.PAYEMS.NONFARM", "--json"))
    assert (payems["frequency"], payems["units"]) == ("monthly", "Thousands of persons")
    assert (payems["first_date"], payems["observation_count"]) == ("2006-01-01", 120)
    goog = as_json(cli(*demo_root, "show", "GOOG", "--json"))
    assert (goog["source"], goog["first_date"], goog["observation_count"]) == (
        "market",
        "2004-08-01",
        68,
    )
    fixed = as_json(cli(*demo_root, "show", "US.PAYEMS.TRADE_TRANSPORTATION_UTILITIES", "--json"))
    assert fixed["attributes"]["column"] == "trade_transportation_utilties"


def test_ls_filters(demo_root: list[str]) -> None:
    macro = as_json(cli(*demo_root, "ls", "--tag", "macro", "--json"))
    assert len(macro["items"]) == 12
    assert {s["observation_count"] for s in macro["items"]} == {203}
    assert macro["next_cursor"] is None
    both = as_json(cli(*demo_root, "ls", "--tag", "macro", "--tag", "inflation", "--json"))
    assert sorted(s["id"] for s in both["items"]) == ["US.CPI", "US.INFL"]
    bls = as_json(cli(*demo_root, "ls", "--source", "BLS", "--json"))
    assert len(bls["items"]) == 24
    monthly = as_json(cli(*demo_root, "ls", "--frequency", "monthly", "--json"))
    assert len(monthly["items"]) == 28
    found = as_json(cli(*demo_root, "ls", "--q", "nonfarm payrolls", "--json"))
    assert len(found["items"]) == 23
    fails(cli(*demo_root, "ls", "--frequency", "hourly"), 1, "frequency")


def test_ls_pages_with_cursors(demo_root: list[str]) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        extra = ["--cursor", cursor] if cursor else []
        page = as_json(cli(*demo_root, "ls", "--limit", "15", "--json", *extra))
        seen += [s["id"] for s in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 40
    text = ok(cli(*demo_root, "ls", "--limit", "15")).stdout
    assert "next cursor: " in text
    assert "15 series at version 1" in text
    fails(cli(*demo_root, "ls", "--cursor", "garbage!"), 1, "cursor")


def test_the_ls_example_of_the_docs_is_real(tmp_path: Path, local: list[str]) -> None:
    """docs/cli.md lists what the commands before it leave, in the order ls prints: by id."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    example = docs.split("$ fincat ls --source test\n", 1)[1].split("```", 1)[0]
    path = write_file(tmp_path / "wide.csv", WIDE)
    ok(cli(*local, "init"))
    ok(cli(*local, "import", path, "--format", "wide", "--prefix", "US.", "--source", "test"))
    write_file(tmp_path / "wide.csv", WIDE.replace("101.25", "101.75"))
    ok(cli(*local, "import", path, "--format", "wide", "--prefix", "US."))

    def rows(text: str) -> list[str]:
        return [" ".join(line.split()) for line in text.splitlines() if line.startswith("│")]

    listed = ok(cli(*local, "ls", "--source", "test")).stdout
    assert rows(listed) == rows(example)
    assert "2 series at version 2" in example and "2 series at version 2" in listed


def test_show_prints_derived_fields(demo_root: list[str]) -> None:
    out = ok(cli(*demo_root, "show", "US.CPI")).stdout
    assert "Index 1982-1984=100" in out
    assert "observation_count" in out
    assert "203" in out
    assert "macro, prices, inflation" in out


def test_log_lists_versions(demo_root: list[str]) -> None:
    history = as_json(cli(*demo_root, "log", "--json"))
    assert [h["version"] for h in history] == [1, 0]
    assert history[0]["message"] == "load demo data"
    assert history[0]["changes"] == 80
    assert (history[0]["series_count"], history[0]["observation_count"]) == (40, 5756)
    assert history[1]["message"] == "initialise catalog"
    assert as_json(cli(*demo_root, "log", "--limit", "1", "--json"))[0]["version"] == 1
    assert "load demo data" in ok(cli(*demo_root, "log")).stdout


def test_demo_text_summary(local: list[str]) -> None:
    out = ok(cli(*local, "demo")).stdout
    assert "40 series, 5756 observations: 40 created" in out
    assert "already up to date at version 1" in ok(cli(*local, "demo")).stdout


def test_demo_restores_changed_series(local: list[str]) -> None:
    ok(cli(*local, "demo"))
    with Catalog.open(local[1]) as catalog:
        catalog.update("US.CPI", {"title": "changed"})
        catalog.write("US.CPI", ([dt.date(1959, 1, 1)], [1.0]), "upsert")
        catalog.write("US.CPI", ([dt.date(2009, 10, 1)], [217.0]), "append")
    summary = as_json(cli(*local, "demo", "--json"))
    assert (summary["updated"], summary["unchanged"], summary["committed"]) == (1, 39, True)
    cpi = as_json(cli(*local, "show", "US.CPI", "--json"))
    assert cpi["title"].startswith("Consumer Price Index")
    values = as_json(cli(*local, "read", "US.CPI", "--format", "json"))
    assert values[0] == {"date": "1959-01-01", "value": 28.98}
    assert values[-1] == {"date": "2009-10-01", "value": 217.0}


def test_load_demo_async_in_memory() -> None:
    async def load() -> tuple[dict[str, Any], dict[str, Any]]:
        catalog = await AsyncCatalog.open("memory://cli-demo-async", create=True)
        try:
            first = await load_demo_async(catalog)
            second = await load_demo_async(catalog)
            assert (await catalog.get("US.REALGDP")).observation_count == 203
        finally:
            await catalog.close()
        return first, second

    try:
        first, second = asyncio.run(load())
    finally:
        from catalog_store.storage import drop_memory_store

        drop_memory_store("cli-demo-async")
    assert (first["created"], first["version"]) == (40, 1)
    assert (second["unchanged"], second["committed"], second["version"]) == (40, False, 1)


# -- import --------------------------------------------------------------------------------

WIDE = """date,gdp,cpi
2000-01-01,100.5,170
Feb 1 2000,101.25,
2000-03-01,102,171.5
"""

LONG = """symbol,date,price
AAA,Jan 1 2000,10.5
AAA,Feb 1 2000,11
BBB,Jan 1 2000,20
BBB,Feb 1 2000,.
BBB,Mar 1 2000,22.25
"""


def test_import_wide_creates_series_in_one_commit(tmp_path: Path, local: list[str]) -> None:
    ok(cli(*local, "init"))
    path = write_file(tmp_path / "wide.csv", WIDE)
    summary = as_json(
        cli(
            *local,
            "import",
            path,
            "--format",
            "wide",
            "--prefix",
            "T.",
            "--source",
            "test",
            "--json",
        )
    )
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
    text = ok(cli(*local, "import", path, "--format", "wide", "--prefix", "T.")).stdout
    assert "Imported 5 observations into 2 series (0 created) as version 3." in text


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
    summary = as_json(
        cli(
            *local,
            "import",
            path,
            "--format",
            "wide",
            "--prefix",
            "M.",
            "--source",
            "FRED",
            "--json",
        )
    )
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
        "series 'a'",
        "2000-02-15 is not the first day of a month",
    )
    single = write_file(tmp_path / "single.csv", "date,a\n2000-01-01,1\n")
    fails(cli(*local, "import", single, "--format", "wide"), 1, "frequency", "pass --frequency")
    fails(cli(*local, "import", single, "--format", "wide", "--frequency", "hourly"), 2)
    fails(cli(*local, "import", single, "--format", "sideways"), 2)
    fails(cli(*local, "import", str(tmp_path / "absent.csv"), "--format", "wide"), 2)
    assert as_json(cli(*local, "log", "--json"))[0]["version"] == 0


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


def _latest(args: list[str]) -> int:
    return int(as_json(cli(*args, "log", "--limit", "1", "--json"))[0]["version"])


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
    before = _latest(local)
    fails(
        cli(*local, *command, input=text),
        1,
        f"error: file: line {line}: {cells}, the header has {width}",
    )
    assert _latest(local) == before


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
    assert _latest(local) == 0


# -- write, read, revisions, compact ------------------------------------------------------


@pytest.fixture
def series_root(shared_target: StoreTarget) -> list[str]:
    """A catalog with one empty monthly series, created on its own."""
    with shared_target.open() as catalog:
        catalog.create(id="EX.SALES", frequency="monthly", title="Sales", units="USD")
    return roots(shared_target)


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
    revised = as_json(
        cli(
            *series_root,
            "write",
            "EX.SALES",
            "-",
            "--mode",
            "upsert",
            "--json",
            input="date,value\nMar 1 2020,3.25\n2020-04-01,4\n",
        )
    )
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
    text = ok(
        cli(
            *series_root,
            "write",
            "EX.SALES",
            "-",
            "--mode",
            "upsert",
            input="date,value\n2020-01-01,9\n",
        )
    )
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
    fails(cli(*series_root, "write", "EX.SALES", mid), 1, "dates:", "2020-03-15")
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
    assert _latest(local) == 2
    idle = as_json(cli(*local, "write", "a", "-", "--json", input="date,value\n"))
    # The series' version is that of its last change, not the catalog's newest.
    assert (idle["rows"], idle["committed"], idle["version"]) == (0, False, 1)
    assert idle["observation_count"] == 2
    text = ok(cli(*local, "write", "a", "-", "--mode", "upsert", input="date,value\n")).stdout
    assert "a: upsert of 0 rows: nothing committed; the series is unchanged since version 1" in text
    assert "committed as" not in text
    assert _latest(local) == 2
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
    assert _latest(local) == 1
    fails(cli(*local, "import", "-", "--format", "wide", input=""), 1, "the file is empty")
    fails(cli(*local, "write", "a", "-", input=""), 1, "the file is empty")


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


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AppendOrderError("S", "2000-01-01", "2000-02-01"), 1),
        (VersionMismatchError("S", 3, 4), 1),
        (ExternalIdTakenError("fred", "GDP", "S"), 1),
        (CommitRetriesExhaustedError("lost 10 races"), 3),
        (SeriesExistsError("S"), 3),
        (StorageUnavailableError("timed out"), 5),
        (CommitStateUnknownError("version 7 unknown", "c1", [7]), 5),
        (StorageFullError("no space left"), 1),
    ],
)
def test_exit_3_means_running_again_may_succeed(error: CatalogStoreError, code: int) -> None:
    assert exit_code(error) == code


def test_an_unreachable_store_exits_5() -> None:
    # Nothing listens on the discard port; one attempt, so that it fails quickly.
    options = {
        "endpoint_url": "http://127.0.0.1:9",
        "key": "k",
        "secret": "s",
        "config_kwargs": '{"retries": {"max_attempts": 1}, "connect_timeout": 1}',
    }
    args = [arg for key, value in options.items() for arg in ("--storage-option", f"{key}={value}")]
    fails(cli("--root", "s3://fincat-nowhere/x", *args, "ls"), 5, "Could not connect")


def test_as_of_and_date_options_out_of_range_are_usage_errors(series_root: list[str]) -> None:
    fails(cli(*series_root, "read", "EX.SALES", "--as-of", "\u00b2"), 2, "--as-of")
    fails(cli(*series_root, "read", "EX.SALES", "--as-of", "\u0663"), 2, "--as-of")  # Arabic 3
    late = "9999-12-31T23:59:59-05:00"
    fails(cli(*series_root, "show", "EX.SALES", "--as-of", late), 2, "--as-of", "out of range")
    fails(cli(*series_root, "read", "EX.SALES", "--as-of", late), 2, "out of range in UTC")
    fails(cli(*series_root, "read", "EX.SALES", "--start", late), 2, "--start", "out of range")
    fails(cli(*series_root, "revisions", "EX.SALES", "--end", late), 2, "--end", "out of range")
    early = "0001-01-01T00:00:00+01:00"
    fails(cli(*series_root, "read", "EX.SALES", "--end", early), 2, "out of range in UTC")


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
    fails(cli(*local, "gc", "--dry-run", *option), 2, option[0])


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


def test_a_naive_instant_is_asked_for_an_offset(local: list[str]) -> None:
    ok(cli(*local, "init"))
    intraday = ["import", "-", "--format", "wide", "--frequency", "intraday", "--prefix", "I."]
    naive = fails(cli(*local, *intraday, input="date,a\n2024-05-02T10:00:00,1\n"), 1)
    assert "no UTC offset" in naive and "2024-05-02T10:00:00Z" in naive, naive
    fails(cli(*local, "read", "X", "--start", "2024-05-02T10:00:00"), 2, "no UTC offset")


def test_a_frequency_takes_its_article(local: list[str]) -> None:
    ok(cli(*local, "init"))
    intraday = ["import", "-", "--format", "wide", "--frequency", "intraday", "--prefix", "I."]
    fails(
        cli(*local, *intraday, input="date,a\n2024-05-02,1\n"),
        1,
        "not an instant with a UTC offset, as an intraday series needs",
    )
    annual = ["import", "-", "--format", "wide", "--frequency", "annual", "--prefix", "A."]
    fails(
        cli(*local, *annual, input="date,a\n2024-05-02T10:00:00Z,1\n"),
        1,
        "is not a calendar date, as an annual series needs",
    )


def test_a_duplicate_date_is_named_before_a_frequency_is_inferred(local: list[str]) -> None:
    ok(cli(*local, "init"))
    fails(
        cli(*local, "import", "-", "--format", "wide", input="date,a\n2000-01-01,1\n2000-01,2\n"),
        1,
        "error: date: line 3: duplicate date 2000-01-01, also on line 2",
    )
    long = "id,date,value\nX,2000,1\nY,2000,5\nX,2000,2\n"
    fails(
        cli(*local, "import", "-", "--format", "long", input=long),
        1,
        "line 4: duplicate date 2000-01-01, also on line 2",
    )
    assert _latest(local) == 0


def test_a_bad_source_is_explained_in_words(local: list[str]) -> None:
    ok(cli(*local, "init"))
    text = "date,a\n2000-01-01,1\n2000-02-01,2\n"
    bad = fails(
        cli(*local, "import", "-", "--format", "wide", "--source", "bad source!", input=text),
        2,
        "'bad source!' is not a source name",
        "starting with a letter or digit",
    )
    assert "pattern" not in bad
    assert _latest(local) == 0


def test_engine_reports_name_each_field_once() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_spec({"id": "X", "frequency": "annual", "source": "bad source!"})
    assert describe(caught.value).startswith("source: String should match")
    assert describe(ValidationError("must be positive", "limit")) == "limit: must be positive"


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


def test_long_files_need_an_id_column() -> None:
    with pytest.raises(ValidationError, match="pass --id-column") as caught:
        read_long(io.StringIO("date,value\n2000-01-01,1\n"))
    assert caught.value.field == "id-column"


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


def test_text_output_is_not_markup(local: list[str]) -> None:
    with Catalog.open(local[1], create=True) as catalog:
        catalog.create(id="MARKUP", frequency="annual", title="[bold]GDP[/bold] [b]")
    assert "[bold]GDP[/bold] [b]" in ok(cli(*local, "ls")).stdout
    assert "[bold]GDP[/bold] [b]" in ok(cli(*local, "show", "MARKUP")).stdout


def test_module_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "catalog_store.cli",
            "--root",
            str(tmp_path / "c"),
            "init",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["created"] is True
    missing = subprocess.run(
        [sys.executable, "-m", "catalog_store.cli", "--root", str(tmp_path / "c"), "show", "X"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: series not found: 'X' at version 0"


# -- --json on every reporting command, and progress ---------------------------------------


def test_every_reporting_command_prints_one_json_document(tmp_path: Path) -> None:
    """Each command's --json output parses as JSON, says what happened, and is alone."""
    root = ["--root", str(tmp_path / "catalog")]

    def run(*args: str, input: str | None = None) -> Any:
        result = ok(cli(*root, *args, "--json", input=input))
        assert result.stderr == "", result.stderr
        return json.loads(result.stdout)

    assert run("init") == {"root": root[1], "created": True, "version": 0}
    path = write_file(tmp_path / "wide.csv", WIDE)
    imported = run("import", path, "--format", "wide", "--prefix", "W.", "--source", "test")
    assert (imported["ids"], imported["observations"], imported["version"]) == (
        ["W.gdp", "W.cpi"],
        5,
        1,
    )
    listed = run("ls", "--source", "test")
    assert sorted((s["id"], s["observation_count"]) for s in listed["items"]) == [
        ("W.cpi", 2),
        ("W.gdp", 3),
    ]
    assert (listed["version"], listed["next_cursor"]) == (1, None)
    shown = run("show", "W.gdp")
    assert (shown["first_date"], shown["last_date"], shown["version"]) == (
        "2000-01-01",
        "2000-03-01",
        1,
    )
    written = run("write", "W.gdp", "-", "--mode", "upsert", input="date,value\n2000-02-01,7\n")
    assert (written["version"], written["rows"], written["observation_count"]) == (2, 1, 3)
    assert run("read", "W.gdp", "--start", "2000-02-01", "--end", "2000-02-01") == [
        {"date": "2000-02-01", "value": 7.0}
    ]
    revised = run("revisions", "W.gdp", "--start", "2000-02-01", "--end", "2000-02-01")
    assert [(r["value"], r["realtime_end"] is None) for r in revised] == [
        (101.25, False),
        (7.0, True),
    ]
    assert run("compact", "W.gdp") == {"series_id": "W.gdp", "compacted": True, "version": 3}
    history = run("log", "--limit", "2")
    assert [(h["version"], h["message"]) for h in history] == [
        (3, "compact W.gdp"),
        (2, "upsert W.gdp"),
    ]
    assert [h["changes"] for h in history] == [1, 1]
    verified = run("verify")
    assert (verified["ok"], verified["latest_version"], verified["versions_checked"]) == (
        True,
        3,
        4,
    )
    assert (verified["problems"], verified["problem_counts"]) == ([], {})
    collected = run("gc", "--grace-hours", "0", "--dry-run")
    assert collected["dry_run"] is True
    assert collected["deleted"] == 0
    # Compaction left the two files it merged unreferenced by the newest version only:
    # every version is kept, so nothing is garbage yet.
    assert collected["candidates"] == []
    repaired = run("repair")
    assert (repaired["healthy_version"], repaired["new_version"]) == (3, None)
    assert repaired["lost_versions"] == []
    demo = run("demo")
    assert (demo["created"], demo["series"], demo["version"]) == (40, 40, 4)


def test_read_and_revisions_take_json_as_a_shorthand(series_root: list[str]) -> None:
    ok(cli(*series_root, "write", "EX.SALES", "-", input="date,value\n2020-01-01,1\n2020-02-01,\n"))
    expected = [{"date": "2020-01-01", "value": 1.0}, {"date": "2020-02-01", "value": None}]
    assert as_json(cli(*series_root, "read", "EX.SALES", "--json")) == expected
    assert as_json(cli(*series_root, "read", "EX.SALES", "--json", "--format", "json")) == expected
    rows = as_json(cli(*series_root, "revisions", "EX.SALES", "--json"))
    assert [(r["date"], r["value"], r["realtime_end"]) for r in rows] == [
        ("2020-01-01", 1.0, None),
        ("2020-02-01", None, None),
    ]
    assert ok(cli(*series_root, "read", "EX.SALES", "--format", "csv")).stdout.startswith(
        "date,value\n"
    )
    fails(cli(*series_root, "read", "EX.SALES", "--json", "--format", "csv"), 2, "--json")
    fails(cli(*series_root, "revisions", "EX.SALES", "--json", "--format", "csv"), 2, "--json")


def _damage_newest_file(root: Path) -> Path:
    victim = max((root / "data").rglob("*.parquet"), key=lambda p: p.stat().st_mtime_ns)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    return victim


def test_verify_json_reports_damage_and_exits_4(tmp_path: Path, local: list[str]) -> None:
    ok(cli(*local, "init"))
    path = write_file(tmp_path / "wide.csv", WIDE)
    ok(cli(*local, "import", path, "--format", "wide"))
    # Version 2 appends to gdp through an eager catalog, so that it writes a data file
    # of its own to damage (``fincat write`` would hold so small an append in the manifest).
    with Catalog.open(local[1], options=EAGER) as catalog:
        catalog.write("gdp", ([dt.date(2000, 4, 1)], [103.0]))
    healthy = as_json(cli(*local, "verify", "--json"))
    # Records in each shard object: gdp and cpi share one id range, so version 1's
    # shard holds both and version 2's holds gdp's new state beside cpi.
    assert (healthy["ok"], healthy["versions_checked"], healthy["series_checked"]) == (True, 3, 4)
    assert healthy["objects_checked"] > 0
    assert as_json(cli(*local, "verify", "--latest", "--json"))["versions_checked"] == 1

    victim = _damage_newest_file(Path(local[1]))
    damaged = cli(*local, "verify", "--json")
    assert damaged.exit_code == 4, damaged.output
    assert damaged.stderr == ""
    report = json.loads(damaged.stdout)
    assert report["ok"] is False
    assert report["latest_version"] == 2
    assert report["problem_counts"]["corrupt_object"] >= 1
    found = [p for p in report["problems"] if p["key"].endswith(victim.name)]
    assert found
    assert {p["kind"] for p in found} <= {"corrupt_object", "file_mismatch"}
    assert {p["series_id"] for p in found} == {"gdp"}
    assert cli(*local, "verify", "--latest", "--json").exit_code == 4

    text = cli(*local, "verify")
    assert text.exit_code == 4
    assert "PROBLEMS FOUND" in text.stdout
    assert "corrupt_object" in text.stdout
    assert "[red]" not in text.stdout

    repaired = as_json(cli(*local, "repair", "--json"))
    assert repaired["healthy_version"] == 1
    assert (repaired["lost_versions"], repaired["new_version"]) == ([2], 3)
    assert repaired["lost_changes"] == [["append", "gdp"]]
    assert "restore version 1" in repaired["message"]
    assert as_json(cli(*local, "verify", "--latest", "--json"))["ok"] is True
    assert as_json(cli(*local, "show", "gdp", "--json"))["last_date"] == "2000-03-01"


def test_gc_json_lists_and_deletes_old_orphans(tmp_path: Path, local: list[str]) -> None:
    ok(cli(*local, "init"))
    path = write_file(tmp_path / "wide.csv", WIDE)
    ok(cli(*local, "import", path, "--format", "wide"))
    orphan = Path(local[1]) / "data" / "gdp~0000000000000000" / "part-orphan.parquet"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a writer that died")
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).timestamp()
    os.utime(orphan, (old, old))

    kept = as_json(cli(*local, "gc", "--grace-hours", "3", "--json"))
    assert (kept["deleted"], kept["unreferenced_too_young"], kept["candidates"]) == (0, 1, [])
    dry = as_json(cli(*local, "gc", "--grace-hours", "1", "--dry-run", "--json"))
    assert dry["candidates"] == ["data/gdp~0000000000000000/part-orphan.parquet"]
    assert (dry["dry_run"], dry["unreferenced_old_enough"], dry["deleted"]) == (True, 1, 0)
    assert orphan.exists()
    done = as_json(cli(*local, "gc", "--grace-hours", "1", "--json"))
    assert (done["dry_run"], done["deleted"]) == (False, 1)
    assert done["bytes_freed"] >= len(b"left by a writer that died")
    assert done["referenced"] == dry["referenced"] > 0
    assert not orphan.exists()
    assert as_json(cli(*local, "verify", "--json"))["orphans"] == 0


def _fincat(args: list[str], tty: bool, **extra_env: str) -> tuple[int, str, str]:
    """Run ``python -m catalog_store.cli``; stderr on a pseudo-terminal when ``tty``.

    Returns the exit status, stdout, and what reached stderr.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE", "NO_COLOR")
    }
    env["TERM"] = "xterm-256color"
    env.update(extra_env)
    command = [sys.executable, "-m", "catalog_store.cli", *args]
    if not tty:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=120, check=False
        )
        return done.returncode, done.stdout, done.stderr
    import pty

    master, replica = pty.openpty()
    seen = bytearray()

    def drain() -> None:  # a terminal's buffer is small: read while the command runs
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed with the process
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=replica, env=env
        )
    finally:
        os.close(replica)
    try:
        out, _ = proc.communicate(timeout=120)
        reader.join(timeout=30)
    finally:
        os.close(master)
    return proc.returncode, out.decode(), seen.decode(errors="replace")


@pytest.mark.timeout(300)
def test_progress_is_drawn_on_a_terminal_and_never_on_stdout(tmp_path: Path) -> None:
    root = ["--root", str(tmp_path / "catalog")]
    rows = "\n".join(f"S{i},2000-{m:02d}-01,{i + m}" for i in range(30) for m in range(1, 13))
    path = write_file(tmp_path / "many.csv", "id,date,value\n" + rows + "\n")

    code, out, err = _fincat([*root, "demo", "--json"], tty=True)
    assert code == 0, err
    assert json.loads(out)["created"] == 40
    assert "loading demo series" in err
    assert "committing" in err  # the last phase, drawn as the bar is taken down

    code, out, err = _fincat([*root, "import", path, "--format", "long", "--json"], tty=True)
    assert code == 0, err
    assert (json.loads(out)["series"], json.loads(out)["observations"]) == (30, 360)
    assert "reading many.csv" in err

    code, out, err = _fincat([*root, "verify", "--json"], tty=True)
    assert code == 0, err
    assert json.loads(out)["versions_checked"] == 3
    assert "verifying versions" in err

    code, out, err = _fincat([*root, "gc", "--json"], tty=True)
    assert code == 0, err
    assert json.loads(out)["deleted"] == 0
    assert "collecting garbage" in err

    code, out, err = _fincat([*root, "compact", "S0", "--json"], tty=True)
    assert code == 0, err
    assert json.loads(out) == {"series_id": "S0", "compacted": False, "version": None}
    assert "compacting S0" in err

    # Text output on a terminal too: the bar is gone before the report is printed.
    code, out, err = _fincat([*root, "verify"], tty=True)
    assert code == 0, err
    assert out.rstrip().endswith("OK")
    assert "verifying" not in out

    # Not a terminal (a pipe, a CI log): nothing on stderr at all.
    for args in (
        ["demo", "--json"],
        ["import", path, "--format", "long", "--json"],
        ["verify", "--json"],
        ["gc", "--json"],
        ["compact", "S1", "--json"],
    ):
        code, out, err = _fincat([*root, *args], tty=False)
        assert code == 0, err
        assert err == ""
        json.loads(out)


def test_progress_stays_off_when_told(tmp_path: Path) -> None:
    """TTY_INTERACTIVE=0 turns the bars off even on a terminal."""
    root = ["--root", str(tmp_path / "catalog")]
    code, out, err = _fincat([*root, "demo", "--json"], tty=True, TTY_INTERACTIVE="0")
    assert code == 0, err
    assert json.loads(out)["series"] == 40
    assert "loading" not in err


def test_meter_moves_to_the_next_phase_when_a_count_completes() -> None:
    bar = Progress(disable=True)
    meter = Meter(bar, "importing", 2, then="committing")
    meter.advance()
    assert [(t.description, t.completed, t.total) for t in bar.tasks] == [("importing", 1, 2)]
    meter.advance()
    assert [(t.description, t.completed, t.total) for t in bar.tasks] == [("committing", 0, None)]
    meter.stage("verifying", then="looking for orphans")
    meter(3, 5)
    assert [(t.description, t.completed, t.total) for t in bar.tasks] == [("verifying", 3, 5)]
    meter(5, 5)
    assert [t.description for t in bar.tasks] == ["looking for orphans"]
