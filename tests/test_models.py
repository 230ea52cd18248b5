"""Every metadata validation rule, including hostile ids."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from catalog_store import Catalog
from catalog_store.errors import ValidationError
from catalog_store.models import (
    MAX_ATTRIBUTES,
    MAX_ATTRIBUTES_BYTES,
    MAX_TAGS,
    SeriesSpec,
    apply_changes,
    check_series_id,
    parse_spec,
)


def spec(**fields: Any) -> dict[str, Any]:
    return {"id": "GDP", "frequency": "quarterly", **fields}


@pytest.mark.parametrize(
    "series_id",
    ["GDP", "gdp", "A", "9", "US.CPI-U_2024", "x" * 128, "DGS10", "a.b.c"],
)
def test_valid_ids(series_id: str) -> None:
    assert check_series_id(series_id) == series_id
    assert parse_spec(spec(id=series_id)).id == series_id


@pytest.mark.parametrize(
    "series_id",
    [
        "",
        "../x",
        "a/b",
        "a\\b",
        "x" * 129,
        ".hidden",
        "-dash",
        "_under",
        "GDP\0",
        "G\u0044P",  # plain ASCII D written as an escape: valid, checked below
        "GD\u0420",  # Cyrillic Er looks like P
        "\uff27DP",  # fullwidth G
        "GDP ",
        " GDP",
        "a b",
        "tab\t",
        "new\nline",
        "caf\u00e9",
        "a:b",
        "a~b",
    ],
)
def test_hostile_ids_are_rejected_naming_the_id(series_id: str) -> None:
    if series_id == "GDP":
        return  # the escape above is the ASCII id, which is fine
    with pytest.raises(ValidationError) as info:
        check_series_id(series_id)
    assert info.value.field == "id"
    with pytest.raises(ValidationError) as info2:
        parse_spec(spec(id=series_id))
    assert info2.value.field == "id"


def test_id_must_be_a_string() -> None:
    with pytest.raises(ValidationError):
        check_series_id(42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        parse_spec(spec(id=42))
    assert info.value.field == "id"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"frequency": "hourly"}, "frequency"),
        ({"frequency": None}, "frequency"),
        ({"title": "t" * 501}, "title"),
        ({"title": 5}, "title"),
        ({"description": "d" * 10_001}, "description"),
        ({"title": "red \x1b[31m"}, "title"),  # a terminal escape
        ({"units": "a\x00b"}, "units"),
        ({"seasonal_adjustment": "SA\x85"}, "seasonal_adjustment"),  # C1 next line
        ({"description": "bell\x07"}, "description"),
        ({"source": "has space"}, "source"),
        ({"source": "s" * 65}, "source"),
        ({"units": "u" * 129}, "units"),
        ({"seasonal_adjustment": "s" * 65}, "seasonal_adjustment"),
        ({"tags": ["ok", "ok"]}, "tags"),
        ({"tags": ["bad tag"]}, "tags.0"),
        ({"tags": [f"t{i}" for i in range(MAX_TAGS + 1)]}, "tags"),
        ({"tags": "macro"}, "tags"),
        ({"external_ids": {"fred": ""}}, "external_ids.fred"),
        ({"external_ids": {"fred": " padded"}}, "external_ids.fred"),
        ({"external_ids": {"fred": "x" * 257}}, "external_ids.fred"),
        ({"external_ids": {"bad provider": "x"}}, "external_ids.bad provider.[key]"),
        ({"external_ids": {f"p{i}": "x" for i in range(17)}}, "external_ids"),
        ({"attributes": {"k": [1, 2]}}, "attributes"),
        ({"attributes": {"k": float("nan")}}, "attributes"),
        ({"attributes": {f"k{i}": i for i in range(MAX_ATTRIBUTES + 1)}}, "attributes"),
        ({"attributes": {"big": "x" * 20_000}}, "attributes"),
        ({"attributes": {"": 1}}, "attributes.[key]"),
        ({"attributes": {"huge": 2**70}}, "attributes"),
        ({"attributes": {"k\x00\x1b[2J": 1}}, "attributes"),  # shown as the title is
        ({"attributes": {"note": "red \x1b[31m"}}, "attributes"),
        ({"attributes": {"note": "C1\x9b"}}, "attributes"),
        ({"attributes": {"note": "lone \ud800"}}, "attributes"),  # was UnicodeEncodeError
        ({"attributes": {"cjk": "\u6587" * 5462}}, "attributes"),  # 16,386 bytes as UTF-8
        ({"partitioning": "weekly"}, "partitioning"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"version": 3}, "version"),
        ({"observation_count": 3}, "observation_count"),
        ({"created_at": dt.datetime.now(dt.UTC)}, "created_at"),
    ],
)
def test_each_field_limit_names_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_spec(spec(**fields))
    assert info.value.field == field, str(info.value)
    # In words, naming the field once: no regex, no "Value error, " from pydantic.
    text = str(info.value)
    assert text.startswith(f"{field}: ") and text.count(f"{field}: ") == 1, text
    assert "pattern" not in text and "Value error" not in text, text


def test_attributes_are_measured_as_the_compact_utf8_json_a_client_sends() -> None:
    """Measured escaped to ASCII with spaces, 3,200 CJK characters (9,611 bytes as a
    client sends them) were refused as 19,212 bytes, past the 16,384 limit."""
    text = "\u6587" * 3200
    assert parse_spec(spec(attributes={"note": text})).attributes == {"note": text}
    at_limit = {"k": "x" * (MAX_ATTRIBUTES_BYTES - len('{"k":""}'))}
    assert parse_spec(spec(attributes=at_limit)).attributes == at_limit
    with pytest.raises(ValidationError, match="16385 bytes as compact UTF-8 JSON"):
        parse_spec(spec(attributes={"k": at_limit["k"] + "x"}))


def test_attribute_text_may_hold_line_breaks_and_tabs_as_a_description_may() -> None:
    parsed = parse_spec(spec(attributes={"note": "first line\nsecond\tcolumn", "n": 1}))
    assert parsed.attributes == {"note": "first line\nsecond\tcolumn", "n": 1}


def test_an_update_keeps_fields_stored_before_a_rule_without_judging_them() -> None:
    """Fields written before a rule came in (control characters in attributes, or
    in a title or units): an update that does not touch them keeps them, one that
    does is held to the rule."""
    stored = SeriesSpec.model_construct(
        **{
            **parse_spec(spec()).model_dump(),
            "attributes": {"unit\tcode": "a\x1bb"},
            "units": "USD\x1b[0m",
        }
    )
    updated = apply_changes(stored, {"title": "renamed"})
    assert (updated.title, updated.attributes, updated.units) == (
        "renamed",
        {"unit\tcode": "a\x1bb"},
        "USD\x1b[0m",
    )
    with pytest.raises(ValidationError) as bad_title:
        apply_changes(stored, {"title": "bell\x07"})
    assert bad_title.value.field == "title"
    # A problem naming no field of the spec is the change's own.
    for unknown in ({"foo.bar": 1}, {1: "a"}):
        with pytest.raises(ValidationError):
            apply_changes(stored, unknown)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        apply_changes(stored, {"attributes": {"unit\tcode": "a\x1bb", "more": 1}})
    assert info.value.field == "attributes"
    assert apply_changes(stored, {"attributes": None}).attributes == {}


def test_several_problems_are_each_named_once() -> None:
    with pytest.raises(ValidationError) as info:
        parse_spec(spec(title=5, units="u" * 129))
    assert str(info.value) == (
        "title: Input should be a valid string; units: String should have at most 128 characters"
    )
    assert [p["field"] for p in info.value.problems] == ["title", "units"]


def test_strict_mode_does_not_coerce() -> None:
    with pytest.raises(ValidationError):
        parse_spec(spec(title=b"bytes"))
    with pytest.raises(ValidationError):
        parse_spec(spec(attributes={"n": object()}))


def test_a_full_valid_spec_round_trips() -> None:
    value = parse_spec(
        spec(
            title="Real GDP",
            description="Billions of chained 2017 dollars.\n\tSee NIPA table 1.1.6.",
            source="FRED",
            units="Bil. of Chn. 2017 $",
            seasonal_adjustment="SAAR",
            tags=["macro", "usa", "nipa:1.1.6"],
            external_ids={"fred": "GDPC1", "bea": "T10106-A191RX"},
            attributes={"notes": "quarterly", "rank": 1, "weight": 0.5, "flag": True, "none": None},
            partitioning="none",
        )
    )
    assert isinstance(value, SeriesSpec)
    assert parse_spec(value) == value
    assert value.tags == ["macro", "usa", "nipa:1.1.6"]


def test_changes_cannot_rename_or_set_derived_fields() -> None:
    base = parse_spec(spec())
    assert apply_changes(base, {"title": "new"}).title == "new"
    assert apply_changes(base, {"id": "GDP"}).id == "GDP"
    with pytest.raises(ValidationError) as info:
        apply_changes(base, {"id": "OTHER"})
    assert info.value.field == "id"
    with pytest.raises(ValidationError) as info:
        apply_changes(base, {"last_date": "2020-01-01"})
    assert info.value.field == "last_date"
    with pytest.raises(ValidationError):
        apply_changes(base, ["title"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        parse_spec(["id"])  # type: ignore[arg-type]


def test_ids_differing_in_case_do_not_collide_on_disk(tmp_path: Any) -> None:
    cat = Catalog.open(str(tmp_path / "s"), create=True)
    try:
        cat.create(id="GDP", frequency="annual", title="upper")
        cat.create(id="gdp", frequency="annual", title="lower")
        cat.write("GDP", ([dt.date(2000, 1, 1)], [1.0]))
        cat.write("gdp", ([dt.date(2000, 1, 1)], [2.0]))
        cat.checkpoint()  # both series' rows into data files
        assert cat.get("GDP").title == "upper"
        assert cat.get("gdp").title == "lower"
        assert cat.read("GDP").column("value").to_pylist() == [1.0]
        assert cat.read("gdp").column("value").to_pylist() == [2.0]
        dirs = sorted(p.name.casefold() for p in (tmp_path / "s" / "data").iterdir())
        assert len(set(dirs)) == 2, dirs
    finally:
        cat.close()


def test_a_rejected_create_writes_nothing(tmp_path: Any) -> None:
    cat = Catalog.open(str(tmp_path / "s"), create=True)
    try:
        before = cat.version()
        files_before = sorted(p for p in (tmp_path / "s").rglob("*") if p.is_file())
        with pytest.raises(ValidationError):
            cat.create(id="../etc", frequency="daily")
        with pytest.raises(ValidationError):
            cat.create(id="OK", frequency="daily", tags=["a", "a"])
        assert cat.version() == before
        files_after = sorted(p for p in (tmp_path / "s").rglob("*") if p.is_file())
        assert files_after == files_before
    finally:
        cat.close()
