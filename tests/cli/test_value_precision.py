"""``fincat write`` and ``import`` refuse an integer value a 64-bit float cannot hold
exactly (beyond 2^53), naming its line and column, as the catalog refuses it from
Python; they never store it rounded."""

from __future__ import annotations

import pytest

from catalog_store import Catalog
from tests.cli.helpers import as_json, cli, fails, latest_version, ok

BIG = 2**53 + 1  # 9007199254740993: as a float, 9007199254740992.0
REFUSED = "is an integer a 64-bit float cannot hold exactly; it is refused rather than rounded"


@pytest.fixture
def daily(local: list[str]) -> list[str]:
    """A catalog holding series S, daily, with one value."""
    ok(cli(*local, "init"))
    with Catalog.open(local[1]) as catalog:
        catalog.create(id="S", frequency="daily")
        catalog.write("S", (["2024-01-01"], [1.0]))
    return local


@pytest.mark.parametrize("text", [str(BIG), str(-BIG), f"+{BIG}", f'" {BIG} "', str(10**30)])
def test_write_refuses_an_integer_a_float_would_round(daily: list[str], text: str) -> None:
    before = latest_version(daily)
    upsert = ["write", "S", "-", "--mode", "upsert"]
    content = f"date,value\n2024-01-02,1.5\n2024-01-03,{text}\n"
    shown = text.strip('" ')
    fails(cli(*daily, *upsert, input=content), 1, f"error: value: line 3: {shown} {REFUSED}")
    assert latest_version(daily) == before


@pytest.mark.parametrize(
    ("layout", "content", "column"),
    [
        ("wide", f"date,a,b\n2024-01-02,1,2\n2024-01-03,{BIG},4\n", "a"),
        ("long", f"id,date,amount\nS,2024-01-02,1\nS,2024-01-03,{-BIG}\n", "amount"),
    ],
)
def test_import_refuses_an_integer_a_float_would_round(
    daily: list[str], layout: str, content: str, column: str
) -> None:
    before = latest_version(daily)
    fails(
        cli(*daily, "import", "-", "--format", layout, input=content),
        1,
        f"error: {column}: line 3: ",
        REFUSED,
    )
    assert latest_version(daily) == before


def test_integers_a_float_holds_and_decimal_text_are_written(daily: list[str]) -> None:
    # Decimal text is a float, rounded as any float is; only integers are exact.
    content = f"date,value\n2024-01-02,{2**53}\n2024-01-03,{-(2**53)}\n2024-01-04,1e20\n"
    content += f"2024-01-05,{BIG}.0\n2024-01-06,0.1\n2024-01-07,\n"
    ok(cli(*daily, "write", "S", "-", input=content))
    wide = f"date,S\n2024-01-08,{BIG}e0\n2024-01-09,{2**53 - 1}\n"
    ok(cli(*daily, "import", "-", "--format", "wide", input=wide))
    read = as_json(cli(*daily, "read", "S", "--start", "2024-01-02", "--json"))
    assert [row["value"] for row in read] == [
        2.0**53,
        -(2.0**53),
        1e20,
        2.0**53,
        0.1,
        None,
        2.0**53,
        float(2**53 - 1),
    ]
