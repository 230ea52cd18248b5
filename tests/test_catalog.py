"""The catalog API on every backend: metadata, conditional changes, listing, history."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from catalog_store import AsyncCatalog, Catalog, CatalogOptions, SeriesFilter
from catalog_store.errors import (
    BatchEndedError,
    CatalogClosedError,
    ConflictError,
    ExternalIdTakenError,
    FormatError,
    IntegrityError,
    SeriesExistsError,
    SeriesNotFoundError,
    ValidationError,
    VersionMismatchError,
    VersionNotFoundError,
)
from catalog_store.keys import manifest_key
from catalog_store.listing import decode_cursor, encode_cursor
from tests.conftest import StoreTarget


def test_create_get_update_delete(catalog: Catalog) -> None:
    created = catalog.create(
        id="DGS10",
        frequency="business_daily",
        title="10-Year Treasury",
        source="FRED",
        tags=["rates"],
        external_ids={"fred": "DGS10"},
    )
    assert created.version == 1
    assert created.created_at == created.updated_at
    assert created.created_at.tzinfo is not None
    assert catalog.get("DGS10") == created

    updated = catalog.update("DGS10", {"title": "10Y yield", "units": "percent"})
    assert updated.version == 2
    assert (updated.title, updated.units, updated.source) == ("10Y yield", "percent", "FRED")
    assert updated.created_at == created.created_at
    assert updated.updated_at >= created.updated_at
    # None resets a field to its default; the frequency has none.
    reset = catalog.update("DGS10", {"source": None, "tags": None, "external_ids": None})
    assert (reset.source, reset.tags, reset.external_ids, reset.title) == ("", [], {}, "10Y yield")
    with pytest.raises(ValidationError) as refused:
        catalog.update("DGS10", {"frequency": None})
    assert refused.value.field == "frequency"
    assert catalog.version() == 3

    version = catalog.delete("DGS10", expected_version=3)
    assert version == 4
    with pytest.raises(SeriesNotFoundError):
        catalog.get("DGS10")
    assert catalog.get("DGS10", as_of=2).source == "FRED"
    assert catalog.get("DGS10", as_of=1).title == "10-Year Treasury"
    with pytest.raises(SeriesNotFoundError):
        catalog.get("DGS10", as_of=0)


def test_create_of_an_existing_id_fails_and_changes_nothing(catalog: Catalog) -> None:
    catalog.create(id="CPI", frequency="monthly")
    version = catalog.version()
    with pytest.raises(SeriesExistsError):
        catalog.create(id="CPI", frequency="annual")
    assert catalog.version() == version
    assert catalog.get("CPI").frequency == "monthly"


def test_stale_expected_version_is_a_typed_conflict(catalog: Catalog) -> None:
    first = catalog.create(id="UNRATE", frequency="monthly")
    catalog.update("UNRATE", {"title": "someone else"})
    version = catalog.version()
    with pytest.raises(VersionMismatchError) as info:
        catalog.update("UNRATE", {"title": "mine"}, expected_version=first.version)
    assert isinstance(info.value, ConflictError)
    assert (info.value.expected, info.value.actual) == (first.version, first.version + 1)
    with pytest.raises(VersionMismatchError):
        catalog.delete("UNRATE", expected_version=first.version)
    assert catalog.version() == version
    assert catalog.get("UNRATE").title == "someone else"


def test_a_commit_message_is_text_of_bounded_size(catalog: Catalog) -> None:
    catalog.create(id="M", frequency="monthly", title="m")
    before = catalog.version()
    for message in ("escape \x1b[2J", "nul \x00", "x" * 2_001):
        with pytest.raises(ValidationError) as refused:
            catalog.update("M", {"title": "changed"}, message=message)
        assert refused.value.field == "message"
        with pytest.raises(ValidationError), catalog.batch(message) as batch:
            batch.update("M", {"title": "changed"})
    assert catalog.version() == before
    assert catalog.get("M").title == "m"
    catalog.update("M", {"title": "changed"}, message="two lines\n\tand a tab")
    assert catalog.history(limit=1)[0].message == "two lines\n\tand a tab"


def test_arguments_of_the_wrong_type_are_refused_naming_them(catalog: Catalog) -> None:
    """A ValidationError naming the argument, never a TypeError from deep inside."""
    catalog.create(id="A", frequency="monthly", external_ids={"fred": "A1"})
    before = catalog.version()
    refused: list[tuple[Any, str]] = [
        (lambda: catalog.list(source=5), "source"),
        (lambda: catalog.metadata_table(source=5), "source"),
        (lambda: catalog.list(text=5), "text"),
        (lambda: catalog.list(cursor=5), "cursor"),
        (lambda: catalog.metadata_table(external_provider=5), "external_provider"),
        (lambda: catalog.list(tags=5), "tags"),
        (lambda: catalog.update("A", 5), "changes"),
        (lambda: catalog.update("A", [("title", "x")]), "changes"),
        (lambda: catalog.find_by_external_id(5, 6), "provider"),
        (lambda: catalog.find_by_external_id("fred", "\ud800"), "external_id"),
        (lambda: catalog.find_by_external_id("fred", ""), "external_id"),
        (lambda: catalog.update("A", {"title": "t"}, message="\ud800"), "message"),
    ]
    for call, field in refused:
        with pytest.raises(ValidationError) as error:
            call()
        assert error.value.field == field, (field, error.value)
    with pytest.raises(ValidationError) as error, catalog.batch() as batch:
        batch.update("A", [("title", "x")])
    assert error.value.field == "changes"
    assert catalog.version() == before
    # None is no filter, as an empty list is.
    assert [s.id for s in catalog.list(tags=None).items] == ["A"]
    assert catalog.find_by_external_id("fred", "A1").id == "A"
    # A retention or grace reaching past the first instant keeps everything.
    report = catalog.collect_garbage(grace=dt.timedelta.max, retain=dt.timedelta.max)
    assert (report.deleted, catalog.version()) == (0, before)


def test_missing_series(catalog: Catalog) -> None:
    with pytest.raises(SeriesNotFoundError):
        catalog.get("NOPE")
    with pytest.raises(SeriesNotFoundError):
        catalog.update("NOPE", {"title": "x"})
    with pytest.raises(SeriesNotFoundError):
        catalog.delete("NOPE")
    with pytest.raises(ValidationError):
        catalog.get("../NOPE")


def test_invalid_update_names_the_field_and_changes_nothing(catalog: Catalog) -> None:
    catalog.create(id="M1", frequency="monthly")
    version = catalog.version()
    with pytest.raises(ValidationError) as info:
        catalog.update("M1", {"tags": ["x y"]})
    assert info.value.field == "tags.0"
    with pytest.raises(ValidationError):
        catalog.update("M1", {"observation_count": 5})
    assert catalog.version() == version


def test_external_ids_are_unique_per_provider(catalog: Catalog) -> None:
    catalog.create(id="GDP", frequency="quarterly", external_ids={"fred": "GDPC1"})
    with pytest.raises(ExternalIdTakenError) as info:
        catalog.create(id="GDP2", frequency="quarterly", external_ids={"fred": "GDPC1"})
    assert info.value.owner == "GDP"
    catalog.create(id="GDP3", frequency="quarterly", external_ids={"bea": "GDPC1"})
    assert catalog.find_by_external_id("fred", "GDPC1").id == "GDP"
    assert catalog.find_by_external_id("bea", "GDPC1").id == "GDP3"
    catalog.update("GDP", {"external_ids": {"fred": "GDPC1_OLD"}})
    catalog.create(id="GDP2", frequency="quarterly", external_ids={"fred": "GDPC1"})
    assert catalog.find_by_external_id("fred", "GDPC1").id == "GDP2"
    assert catalog.find_by_external_id("fred", "GDPC1_OLD").id == "GDP"
    catalog.delete("GDP")
    with pytest.raises(SeriesNotFoundError):
        catalog.find_by_external_id("fred", "GDPC1_OLD")
    assert catalog.find_by_external_id("fred", "GDPC1_OLD", as_of=catalog.version() - 1).id == "GDP"


def test_a_write_after_a_delete_in_one_batch_says_so(catalog: Catalog) -> None:
    catalog.create(id="B", frequency="daily")
    version = catalog.version()

    def delete_then_write() -> None:
        with catalog.batch() as batch:
            batch.delete("B")
            batch.write("B", ([dt.date(2024, 1, 6)], [6.0]))

    # "not found at version N" would be false: B is there at N.
    with pytest.raises(SeriesNotFoundError, match="deleted earlier in this batch"):
        delete_then_write()
    assert catalog.version() == version


def test_a_batch_may_swap_and_hand_over_external_ids(catalog: Catalog) -> None:
    catalog.create(id="A", frequency="monthly", external_ids={"fred": "X"})
    catalog.create(id="B", frequency="monthly", external_ids={"fred": "Y"})
    catalog.create(id="C", frequency="monthly", external_ids={"fred": "Z"})
    with catalog.batch() as batch:  # a swap: each takes what the other lets go
        batch.update("A", {"external_ids": {"fred": "Y"}})
        batch.update("B", {"external_ids": {"fred": "X"}})
    assert catalog.find_by_external_id("fred", "X").id == "B"
    assert catalog.find_by_external_id("fred", "Y").id == "A"
    with catalog.batch() as batch:  # taken from a series deleted in the same batch
        batch.create({"id": "D", "frequency": "monthly", "external_ids": {"fred": "Z"}})
        batch.delete("C")
    assert catalog.find_by_external_id("fred", "Z").id == "D"
    version = catalog.version()

    def updates(*changes: tuple[str, dict[str, Any]]) -> None:
        with catalog.batch() as batch:
            for series_id, change in changes:
                batch.update(series_id, change)

    # Taken from a series that keeps it: refused, whatever the order.
    with pytest.raises(ExternalIdTakenError) as info:
        updates(("A", {"external_ids": {"fred": "X"}}), ("B", {"title": "still X"}))
    assert info.value.owner == "B"
    # Taken along a chain (D from A, then B from D): D still carries it, refused.
    with pytest.raises(ExternalIdTakenError) as info:
        updates(
            ("D", {"external_ids": {"fred": "Y"}}),
            ("B", {"external_ids": {"fred": "Y"}}),
            ("A", {"external_ids": {}}),
        )
    assert info.value.owner == "D"
    assert catalog.version() == version
    # Taken, then let go again by the taker: the holder keeps it, and the index too.
    updates(("A", {"external_ids": {"fred": "X"}}), ("A", {"external_ids": {"fred": "Y"}}))
    assert catalog.find_by_external_id("fred", "X").id == "B"
    assert catalog.find_by_external_id("fred", "Y").id == "A"
    assert catalog.verify().ok


def test_text_search_ignores_the_unicode_form_as_it_ignores_case(catalog: Catalog) -> None:
    composed, decomposed = "Indice des prix \u00e0 la consommation", "Zo\u0308llner Stra\u00dfe"
    with catalog.batch() as batch:
        batch.create({"id": "FR", "frequency": "monthly", "title": composed})
        batch.create({"id": "DE", "frequency": "monthly", "description": decomposed})
        batch.create({"id": "JP", "frequency": "monthly", "title": "\uff27\uff24\uff30 Japan"})
    searches = {
        "prix a\u0300 la": ["FR"],  # the accent typed apart finds it typed as one
        "Z\u00d6LLNER": ["DE"],  # and the other way round, in capitals
        "STRASSE": ["DE"],  # case folding: \u00df is ss
        "gdp": ["JP"],  # full-width letters read as the letters they are
        "prix a la": [],  # but an accent is not dropped
    }
    for text, expected in searches.items():
        assert sorted(s.id for s in catalog.list(text=text).items) == expected, text
        assert catalog.metadata_table(text=text)["id"].to_pylist() == expected, text


def test_listing_filters(catalog: Catalog) -> None:
    with catalog.batch("seed") as batch:
        batch.create({"id": "A1", "frequency": "monthly", "source": "BLS", "tags": ["jobs", "usa"]})
        batch.create({"id": "A2", "frequency": "monthly", "source": "BLS", "tags": ["jobs"]})
        batch.create(
            {
                "id": "B1",
                "frequency": "daily",
                "source": "FRED",
                "tags": ["usa"],
                "title": "Treasury Yield",
            }
        )
        batch.create(
            {
                "id": "B2",
                "frequency": "daily",
                "source": "FRED",
                "description": "Effective federal funds YIELD",
            }
        )
    ids = lambda page: sorted(s.id for s in page.items)  # noqa: E731
    assert ids(catalog.list()) == ["A1", "A2", "B1", "B2"]
    assert ids(catalog.list(source="BLS")) == ["A1", "A2"]
    assert ids(catalog.list(frequency="daily")) == ["B1", "B2"]
    assert ids(catalog.list(tags=["usa"])) == ["A1", "B1"]
    assert ids(catalog.list(tags=["usa", "jobs"])) == ["A1"]
    assert ids(catalog.list(text="yield")) == ["B1", "B2"]
    assert ids(catalog.list(text="a2")) == ["A2"]
    assert ids(catalog.list(source="FRED", tags=["jobs"])) == []
    with pytest.raises(ValidationError) as info:
        catalog.list(frequency="hourly")
    assert info.value.field == "frequency"
    for bad in (0, 1001, "5", 2.0, True):
        with pytest.raises(ValidationError) as info:
            catalog.list(limit=bad)  # type: ignore[arg-type]
        assert info.value.field == "limit"
    for bad in (0, "5"):
        with pytest.raises(ValidationError) as info:
            catalog.history(limit=bad)  # type: ignore[arg-type]
        assert info.value.field == "limit"
    for call in (catalog.list, catalog.metadata_table):
        with pytest.raises(ValidationError) as info:
            call(tags="jobs")  # one string, not a list of tags
        assert info.value.field == "tags"
    with pytest.raises(ValidationError) as info:
        catalog.list(cursor="not-a-cursor")
    assert info.value.field == "cursor"


def test_cursor_pages_are_complete_and_pinned_to_a_version(catalog: Catalog) -> None:
    with catalog.batch() as batch:
        for i in range(250):
            batch.create({"id": f"S{i:04d}", "frequency": "annual", "source": f"src{i % 2}"})
    first = catalog.list(limit=100)
    assert len(first.items) == 100 and first.next_cursor
    catalog.create(id="LATE", frequency="annual")
    seen = [s.id for s in first.items]
    cursor = first.next_cursor
    pages = 1
    while cursor:
        page = catalog.list(limit=100, cursor=cursor)
        seen += [s.id for s in page.items]
        cursor = page.next_cursor
        pages += 1
    assert pages == 3
    assert sorted(seen) == [f"S{i:04d}" for i in range(250)]
    assert len(catalog.list(source="src1", limit=1000).items) == 125
    assert sum(1 for _ in catalog.iter_series(page_size=7)) == 251


def test_a_hand_built_cursor_gives_the_series_after_the_id_it_names(catalog: Catalog) -> None:
    # Its shard number was trusted: another than the one holding the id listed ids
    # before it, or nothing at all; a client cannot know the shard layout.
    with catalog.batch() as batch:
        for i in range(250):
            batch.create({"id": f"S{i:04d}", "frequency": "annual"})
    version = catalog.version()
    made = catalog.list(limit=200).next_cursor  # names S0199's shard
    assert made is not None and decode_cursor(made)[1] > 0, "one shard: nothing to test"
    for shard in (0, 1, 3, 999):
        after_123 = catalog.list(limit=2, cursor=encode_cursor(version, shard, "S0123"))
        assert [s.id for s in after_123.items] == ["S0124", "S0125"], shard
        from_start = catalog.list(limit=1, cursor=encode_cursor(version, shard, ""))
        assert [s.id for s in from_start.items] == ["S0000"], shard
        assert catalog.list(cursor=encode_cursor(version, shard, "zzzz")).items == []


def test_iter_series_applies_every_condition_of_its_filter(catalog: Catalog) -> None:
    catalog.create(id="A", frequency="annual", external_ids={"fred": "A1"}, source="x")
    catalog.create(id="B", frequency="annual", source="x")
    catalog.create(id="C", frequency="annual", external_ids={"fred": "C1"}, source="y")
    found = catalog.iter_series(SeriesFilter(external_provider="fred", source="x"), page_size=1)
    assert [s.id for s in found] == ["A"]


def test_history_and_as_of_an_instant(catalog: Catalog) -> None:
    catalog.create(id="X", frequency="annual", title="one")
    time.sleep(0.01)
    middle = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    catalog.update("X", {"title": "two"})
    history = catalog.history()
    assert [h.version for h in history] == [2, 1, 0]
    assert history[0].changes == [("update", "X")]
    assert history[0].committed_at >= history[1].committed_at >= history[2].committed_at
    assert history[0].series_count == 1
    assert [h.version for h in catalog.history(limit=1, before=2)] == [1]
    # Below a version past the newest, as series_history: from the newest.
    assert [h.version for h in catalog.history(before=99)] == [2, 1, 0]
    assert catalog.get("X", as_of=middle).title == "one"
    assert catalog.get("X", as_of=dt.datetime.now(dt.UTC)).title == "two"
    with pytest.raises(VersionNotFoundError):
        catalog.get("X", as_of=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(ValidationError):
        catalog.get("X", as_of=dt.datetime(2030, 1, 1))  # naive
    with pytest.raises(VersionNotFoundError):
        catalog.get("X", as_of=99)
    with pytest.raises(ValidationError):
        catalog.get("X", as_of=-1)


def test_series_history_follows_the_series_changes(catalog: Catalog) -> None:
    catalog.create(id="X", frequency="annual", title="one")  # 1
    catalog.create(id="Y", frequency="annual")  # 2
    catalog.write("X", ([dt.date(2000, 1, 1)], [1.0]))  # 3
    catalog.update("Y", {"title": "y"})  # 4
    catalog.update("X", {"title": "two"})  # 5
    changes = catalog.series_history("X")
    assert [(c.series.version, c.commit.version) for c in changes] == [(5, 5), (3, 3), (1, 1)]
    assert [c.series.title for c in changes] == ["two", "one", "one"]
    assert [c.action for c in changes] == ["update", "append", "create"]
    assert [c.series.version for c in catalog.series_history("X", limit=1, before=5)] == [3]
    assert [c.series.version for c in catalog.series_history("X", as_of=4)] == [3, 1]
    # Paging one at a time gives what one page gives, and an earlier series of the
    # same id is no part of the history of the one created again.
    catalog.delete("X")  # 6
    catalog.create(id="X", frequency="annual", title="three")  # 7
    catalog.write("X", ([dt.date(2001, 1, 1)], [2.0]))  # 8
    assert [c.series.version for c in catalog.series_history("X")] == [8, 7]
    paged, before = [], None
    while page := catalog.series_history("X", before=before, limit=1):
        paged.append(page[0].series.version)
        before = paged[-1]
    assert paged == [8, 7]
    assert catalog.series_history("X", before=5) == []
    with pytest.raises(SeriesNotFoundError):
        catalog.series_history("Y", as_of=1)
    with pytest.raises(ValidationError) as info:
        catalog.series_history("X", limit=0)
    assert info.value.field == "limit"


def test_series_history_below_a_version_that_is_no_change_of_the_series(
    tmp_path: Path,
) -> None:
    # Any other version gives the series as it was just below it, from a read or
    # two however long the history: never a walk through every newer change.
    gets = {"n": 0}

    def count(operation: str, _seconds: float, _ok: bool) -> None:
        gets["n"] += operation == "get"

    root = str(tmp_path / "store")
    with Catalog.open(root, create=True) as cat:
        cat.create(id="X", frequency="annual")  # 1
        cat.create(id="Y", frequency="annual")  # 2
        for year in range(2000, 2100):  # X changes at 3, 5, ..., 201; Y at 4, 6, ..., 202
            cat.write("X", ([dt.date(year, 1, 1)], [1.0]))
            cat.update("Y", {"title": str(year)})
    with Catalog.open(root, options=CatalogOptions(store_listener=count)) as cat:
        gets["n"] = 0
        below = cat.series_history("X", before=200, limit=2)  # 200 changed Y only
        assert [c.series.version for c in below] == [199, 197]
        assert gets["n"] <= 12, f"{gets['n']} reads: a walk, not a jump"
        assert [c.series.version for c in cat.series_history("X", before=199, limit=1)] == [197]
        assert [c.series.version for c in cat.series_history("X", before=3)] == [1]
        assert cat.series_history("X", before=1) == []


def test_concurrent_reads_of_one_object_read_it_from_the_store_once(tmp_path: Path) -> None:
    # Each concurrent miss read and decoded its own copy (each outside the cache's
    # byte bound while held): eight aliased GraphQL windows, eight copies.
    root = tmp_path / "store"
    with Catalog.open(root, create=True, options=CatalogOptions(inline_rows=0)) as cat:
        cat.create(id="X", frequency="daily")
        # Over 64 KiB: a local store reads it in a worker thread, so reads overlap.
        days = [dt.date(1900, 1, 1) + dt.timedelta(days=i) for i in range(40_000)]
        cat.write("X", (days, [i / 7 for i in range(40_000)]))

    async def gets_of(readers: int) -> int:
        gets = []
        options = CatalogOptions(store_listener=lambda op, _s, _ok: gets.append(op))
        cat = await AsyncCatalog.open(root, options=options)
        gets.clear()
        tables = await asyncio.gather(*(cat.read("X") for _ in range(readers)))
        assert {t.num_rows for t in tables} == {40_000}
        await cat.close()
        return gets.count("get")

    alone = asyncio.run(gets_of(1))
    assert alone >= 1  # the data file at least
    assert asyncio.run(gets_of(8)) == alone


def test_series_history_actions_and_a_page_that_stops_before_damage(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Catalog.open(str(root), create=True) as cat:
        cat.create(id="X", frequency="annual", title="old")  # 1
        cat.write("X", ([dt.date(2000, 1, 1)], [1.0]))  # 2
        with cat.batch() as batch:  # 3: deleted and created again in one commit
            batch.delete("X")
            batch.create({"id": "X", "frequency": "annual", "title": "new"})
            batch.write("X", ([dt.date(2001, 1, 1)], [2.0]))
        cat.update("X", {"title": "newer"})  # 4
        cat.write("X", ([dt.date(2002, 1, 1)], [3.0]))  # 5
        changes = cat.series_history("X")
        assert [c.action for c in changes] == ["append", "update", "create"]
        # Everything commit 3 did to the series it left: not the delete of the old one.
        assert [c.actions for c in changes] == [("append",), ("update",), ("create", "append")]
    # A damaged version below the page is no reason to fail the page.
    damaged = root / manifest_key(3)
    damaged.write_bytes(damaged.read_bytes()[:-10])
    with Catalog.open(str(root)) as cat:
        assert [c.series.version for c in cat.series_history("X", limit=2)] == [5, 4]
        with pytest.raises(IntegrityError):
            cat.series_history("X", limit=3)


def test_series_history_below_a_damaged_version_walks_round_it(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Catalog.open(str(root), create=True) as cat:
        cat.create(id="X", frequency="annual")  # 1
        cat.create(id="Y", frequency="annual")  # 2
        cat.update("X", {"title": "x"})  # 3
        cat.update("Y", {"title": "y"})  # 4: damaged below
        cat.update("Y", {"title": "yy"})  # 5
        cat.update("X", {"title": "xx"})  # 6
    damaged = root / manifest_key(4)
    damaged.write_bytes(damaged.read_bytes()[:-10])
    with Catalog.open(str(root)) as cat:
        # As it was just below 5 is version 4, which cannot be read: the changes of X
        # made below 5 are found by its links instead.
        assert [c.series.version for c in cat.series_history("X", before=5)] == [3, 1]


def test_a_batch_may_create_a_series_and_delete_it_again(catalog: Catalog) -> None:
    catalog.create(id="KEPT", frequency="annual", source="X")
    with catalog.batch() as batch:
        batch.create({"id": "BRIEF", "frequency": "annual", "source": "X"})
        batch.write("BRIEF", ([dt.date(2000, 1, 1)], [1.0]))
        batch.delete("BRIEF")
    assert [s.id for s in catalog.list().items] == ["KEPT"]
    assert catalog.metadata_table(source="X")["id"].to_pylist() == ["KEPT"]
    with pytest.raises(SeriesNotFoundError):
        catalog.get("BRIEF")
    assert catalog.verify().problems == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("shard_count", 0),
        ("cache_bytes", -1),
        ("compact_threshold", 0),
        ("inline_rows", -1),
        ("pending_records", "16"),
        ("max_staleness", -0.5),
        ("store_timeout", 0),
    ],
)
def test_options_out_of_range_are_refused(name: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        CatalogOptions(**{name: value})
    assert info.value.field == name


def test_a_batch_refuses_changes_once_its_block_has_ended(catalog: Catalog) -> None:
    """They would never be committed: added silently, they were lost unseen."""
    catalog.create(id="A", frequency="daily")
    with catalog.batch() as batch:
        batch.write("A", ([dt.date(2024, 1, 1)], [1.0]))

    batches = [batch]
    with pytest.raises(RuntimeError), catalog.batch() as failed:  # noqa: PT012
        batches.append(failed)
        raise RuntimeError("the block failed")
    version = catalog.version()
    for ended in batches:
        with pytest.raises(BatchEndedError):
            ended.write("A", ([dt.date(2024, 1, 2)], [2.0]))
        with pytest.raises(BatchEndedError):
            ended.create({"id": "G", "frequency": "daily"})
        with pytest.raises(BatchEndedError):
            ended.update("A", {"title": "t"})
        with pytest.raises(BatchEndedError):
            ended.delete("A")
    assert catalog.version() == version
    assert catalog.read("A").num_rows == 1


def test_a_batch_whose_catalog_closed_meanwhile_refuses_changes_after_its_block(
    target: StoreTarget,
) -> None:
    catalog = target.open(create=True)
    with pytest.raises(CatalogClosedError), catalog.batch() as batch:  # noqa: PT012
        batch.create({"id": "A", "frequency": "daily"})
        catalog.close()  # as another thread may
    with pytest.raises(BatchEndedError):
        batch.create({"id": "B", "frequency": "daily"})


def test_batch_is_atomic(catalog: Catalog) -> None:
    catalog.create(id="EXISTS", frequency="annual")
    version = catalog.version()
    with catalog.batch("two series") as batch:
        batch.create({"id": "N1", "frequency": "annual"})
        batch.create({"id": "N2", "frequency": "annual"})
        batch.write("N1", ([dt.date(2000, 1, 1)], [1.0]))
        batch.update("EXISTS", {"title": "touched"})
    assert batch.version == version + 1
    assert catalog.version() == version + 1
    assert catalog.read("N1").num_rows == 1
    assert catalog.history(limit=1)[0].changes == [
        ("create", "N1"),
        ("create", "N2"),
        ("append", "N1"),
        ("update", "EXISTS"),
    ]

    def failing_crawler() -> None:
        with catalog.batch() as batch:
            batch.create({"id": "N3", "frequency": "annual"})
            raise RuntimeError("crawler failed half way")

    def conflicting_batch() -> None:
        with catalog.batch() as batch:
            batch.create({"id": "N4", "frequency": "annual"})
            batch.create({"id": "EXISTS", "frequency": "annual"})

    with pytest.raises(RuntimeError):
        failing_crawler()
    with pytest.raises(SeriesExistsError):
        conflicting_batch()
    assert catalog.version() == version + 1
    for missing in ("N3", "N4"):
        with pytest.raises(SeriesNotFoundError):
            catalog.get(missing)


def test_disjoint_concurrent_commits_both_land(target: StoreTarget) -> None:
    setup = target.open()
    setup.create(id="LEFT", frequency="annual")
    setup.create(id="RIGHT", frequency="annual")
    base = setup.version()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(series_id: str) -> None:
        cat = target.open()
        try:
            barrier.wait()
            for i in range(10):
                cat.update(series_id, {"title": f"{series_id}-{i}"}, expected_version=None)
        except BaseException as exc:
            errors.append(exc)
        finally:
            cat.close()

    threads = [threading.Thread(target=writer, args=(s,)) for s in ("LEFT", "RIGHT")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert setup.version() == base + 20
    assert setup.get("LEFT").title == "LEFT-9"
    assert setup.get("RIGHT").title == "RIGHT-9"
    setup.close()


def test_opening_a_store_without_a_catalog(target: StoreTarget) -> None:
    with pytest.raises(FormatError):
        target.open(create=False)
    cat = target.open(create=True)
    cat.close()
    again = target.open(create=False)
    assert again.version() == 0
    again.close()


def test_concurrent_initialisation_is_safe(target: StoreTarget) -> None:
    catalogs: list[Catalog] = []
    lock = threading.Lock()

    def init() -> None:
        cat = target.open(create=True)
        with lock:
            catalogs.append(cat)

    threads = [threading.Thread(target=init) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(catalogs) == 4
    catalogs[0].create(id="ONE", frequency="annual")
    assert all(c.get("ONE").id == "ONE" for c in catalogs)
    for c in catalogs:
        c.close()


def test_shard_count_is_chosen_at_init(target: StoreTarget) -> None:
    cat = target.open(options=CatalogOptions(shard_count=3))
    with cat.batch() as batch:
        for i in range(30):
            batch.create({"id": f"S{i}", "frequency": "annual"})
    assert cat.inner.reader.marker is not None
    assert cat.inner.reader.marker.shard_count == 3
    assert len(cat.list(limit=1000).items) == 30
    cat.close()


def test_a_big_batch_lists_its_first_changes_and_counts_them_all(catalog: Catalog) -> None:
    from catalog_store.records import MAX_LISTED_CHANGES

    with catalog.batch("many") as batch:
        for i in range(MAX_LISTED_CHANGES + 5):
            batch.create({"id": f"B{i:05d}", "frequency": "annual"})
    (info,) = catalog.history(limit=1)
    assert info.change_count == MAX_LISTED_CHANGES + 5
    assert len(info.changes) == MAX_LISTED_CHANGES
    assert info.changes[0] == ("create", "B00000")
    assert catalog.get(f"B{MAX_LISTED_CHANGES + 4:05d}").id == f"B{MAX_LISTED_CHANGES + 4:05d}"


def test_a_closed_async_catalog_refuses_every_call_and_changes_nothing(
    target: StoreTarget,
) -> None:
    async def main() -> None:
        cat = await AsyncCatalog.open(target.url, target.options or None, create=True)
        await cat.create({"id": "S", "frequency": "annual"})
        await cat.close()
        calls = {
            "get": lambda: cat.get("S"),
            "write": lambda: cat.write("S", ([dt.date(2000, 1, 1)], [1.0])),
            "create": lambda: cat.create({"id": "T", "frequency": "annual"}),
            "list": cat.list,
            "read": lambda: cat.read("S"),
            "version": cat.version,
            "history": cat.history,
            "verify": cat.verify,
            "gc": lambda: cat.collect_garbage(dry_run=True),
            "checkpoint": cat.checkpoint,
            # Closed comes first: bad arguments are not looked at.
            "read a bad id": lambda: cat.read("bad id !"),
            "list from a bad cursor": lambda: cat.list(cursor="abc"),
            "write bad rows": lambda: cat.write("S", ([1], [2, 3])),
        }
        for call in calls.values():
            with pytest.raises(CatalogClosedError, match="closed"):
                await call()
        with pytest.raises(CatalogClosedError):
            async with cat.batch() as batch:
                batch.create({"id": "U", "frequency": "annual"})
        await cat.close()  # again: nothing
        again = await AsyncCatalog.open(target.url, target.options or None)
        try:
            assert await again.version() == 1
            assert [s.id async for s in again.iter_series()] == ["S"]
        finally:
            await again.close()

    asyncio.run(main())


def test_an_async_close_waits_for_the_calls_under_way(target: StoreTarget) -> None:
    """On S3 the client's session closed under writes waiting for a connection, and
    each raised a bare CancelledError nobody had asked for; on every store a write
    not yet at its commit was refused as closed. A close now lets calls under way
    end, refuses calls made after it began, and can be given up on."""

    async def main() -> None:
        cat = await AsyncCatalog.open(target.url, target.options or None, create=True)
        await cat.create({"id": "S", "frequency": "daily"})
        days = [dt.date(2001, 1, 1) + dt.timedelta(days=i) for i in range(300)]
        writes = [
            asyncio.create_task(
                cat.write("S", (days[k * 10 : (k + 1) * 10], [float(k)] * 10), "upsert")
            )
            for k in range(30)
        ]
        await asyncio.sleep(0)  # each has begun its call
        closing = asyncio.create_task(cat.close())
        await asyncio.sleep(0)
        with pytest.raises(CatalogClosedError):
            await cat.get("S")
        await closing
        written = await asyncio.gather(*writes, return_exceptions=True)
        assert [type(w).__name__ for w in written] == ["Series"] * 30
        again = await AsyncCatalog.open(target.url, target.options or None)
        try:
            assert (await again.read("S")).column("date").to_pylist() == days
            assert await again.version() >= 31  # 30 writes, and a compaction they may cause
            slow = asyncio.create_task(again.verify())
            await asyncio.sleep(0)
            gave_up = asyncio.create_task(again.close())
            await asyncio.sleep(0)
            assert not gave_up.done()  # it waits for the verify
            gave_up.cancel()
            await asyncio.gather(gave_up, return_exceptions=True)
            assert (await slow).ok
            assert (await again.get("S")).observation_count == 300  # still serves
        finally:
            await again.close()

    asyncio.run(main())


def test_a_closed_catalog_raises_a_catalog_error_that_is_a_runtime_error(tmp_path: Path) -> None:
    cat = Catalog.open(str(tmp_path / "c"), create=True)
    cat.close()
    with pytest.raises(CatalogClosedError):
        cat.version()
    with pytest.raises(RuntimeError):
        cat.get("S")


def test_a_batch_that_creates_and_deletes_a_series_commits_nothing(catalog: Catalog) -> None:
    catalog.create(id="KEEP", frequency="annual")
    before = catalog.version()
    with catalog.batch() as batch:
        batch.create({"id": "TEMP", "frequency": "annual", "external_ids": {"fred": "TEMP"}})
        batch.write("TEMP", ([dt.date(2000, 1, 1)], [1.0]))
        batch.delete("TEMP")
    assert batch.version is None
    assert catalog.version() == before
    # Anything else in the batch is a change: it commits, the temporary series not in it.
    with catalog.batch() as batch:
        batch.create({"id": "TEMP", "frequency": "annual"})
        batch.delete("TEMP")
        batch.update("KEEP", {"title": "kept"})
    assert batch.version == before + 1
    # With changes that change nothing beside it, still nothing.
    with catalog.batch() as batch:
        batch.create({"id": "TEMP", "frequency": "annual"})
        batch.delete("TEMP")
        batch.update("KEEP", {"title": "kept"})
        batch.write("KEEP", ([dt.date(2001, 1, 1)], [2.0]))
        batch.write("KEEP", ([dt.date(2001, 1, 1)], [2.0]), "upsert")
    assert batch.version == before + 2  # the write is a change
    with catalog.batch() as batch:
        batch.create({"id": "TEMP", "frequency": "annual"})
        batch.delete("TEMP")
        batch.update("KEEP", {"title": "kept"})
        batch.write("KEEP", ([dt.date(2001, 1, 1)], [2.0]), "upsert")
    assert batch.version is None
    assert catalog.version() == before + 2
    assert [s.id for s in catalog.list().items] == ["KEEP"]
    with pytest.raises(SeriesNotFoundError):
        catalog.get("TEMP")
    # A field set and set back: the series' version, its ETag, stays too.
    kept = catalog.get("KEEP")
    with catalog.batch() as batch:
        batch.update("KEEP", {"title": "changed", "tags": ["a"]})
        batch.update("KEEP", {"title": "kept", "tags": []})
    assert batch.version is None
    assert catalog.version() == before + 2
    assert catalog.update("KEEP", {"units": "u"}, expected_version=kept.version).units == "u"
    # As stored, not as Python compares: 1 set to True and back to 1.0 is a change.
    catalog.update("KEEP", {"attributes": {"flag": 1}})
    with catalog.batch() as batch:
        batch.update("KEEP", {"attributes": {"flag": True}})
        batch.update("KEEP", {"attributes": {"flag": 1.0}})
    assert batch.version is not None
    assert type(catalog.get("KEEP").attributes["flag"]) is float
    catalog.update("KEEP", {"attributes": {}})
    with catalog.batch() as batch:  # created again: another series, though alike
        batch.delete("KEEP")
        batch.create({"id": "KEEP", "frequency": "annual", "title": "kept", "units": "u"})
    assert batch.version == before + 7
