"""The ``fincat`` demo, ls, show and log commands, on the demo data set."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from catalog_store import AsyncCatalog, Catalog
from catalog_store.demo import load_demo_async
from tests.cli.helpers import WIDE, as_json, cli, fails, ok, roots, write_file
from tests.conftest import StoreTarget

# -- demo, ls, show, log -------------------------------------------------------------------


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
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
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
