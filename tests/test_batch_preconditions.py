"""A batch judges what depends on the stored series as a single change does: in the
commit, and again on the newest version when the version it built on was not.

The stale side is a catalog opened with a long ``max_staleness``: it builds on the
newest version it knows without asking the store, as a gateway replica does
within ``--cache-ttl``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from catalog_store import AsyncCatalog, Batch, Catalog, CatalogOptions
from catalog_store.errors import (
    AppendOrderError,
    CatalogStoreError,
    ValidationError,
    VersionMismatchError,
)

LAZY = CatalogOptions(max_staleness=3600.0)
D = dt.date


def open_pair(tmp_path: Path) -> tuple[Catalog, Catalog]:
    """A writer, and a catalog that knows version 1 and no later until an hour passes."""
    root = str(tmp_path / "store")
    writer = Catalog.open(root, create=True)
    writer.create(id="KNOWN", frequency="annual")
    stale = Catalog.open(root, options=LAZY)
    assert stale.version() == 1
    return writer, stale


def test_a_batch_writes_to_a_series_its_process_has_not_seen_yet(tmp_path: Path) -> None:
    writer, stale = open_pair(tmp_path)
    version = writer.create(id="NEW", frequency="daily").version
    assert stale.version(refresh=False) == 1, "the stale side was expected not to know NEW"
    # A single write re-judges "not found" on the newest version; a batch does too.
    with stale.batch() as batch:
        batch.write("NEW", ([D(2024, 1, 1)], [1.0]), expected_version=version)
    assert batch.version == version + 1
    with stale.batch() as batch:
        batch.write("NEW", ([D(2024, 1, 2)], [2.0]))
    assert batch.version == version + 2
    assert writer.read("NEW").column("value").to_pylist() == [1.0, 2.0]
    for opened in (writer, stale):
        opened.close()


def test_a_batch_write_is_judged_on_the_frequency_the_series_has_now(tmp_path: Path) -> None:
    writer, stale = open_pair(tmp_path)
    writer.create(id="F", frequency="monthly")
    assert stale.get("F", as_of=2).frequency == "monthly"
    version = writer.update("F", {"frequency": "daily"}).version
    mid_month = ([D(2024, 2, 3)], [1.0])  # a daily date, not a monthly one
    with stale.batch() as batch:
        batch.write("F", mid_month, expected_version=version)
    assert batch.version == version + 1
    assert writer.get("F").observation_count == 1
    # What fails on the newest version still fails, and nothing lands.
    with pytest.raises(VersionMismatchError), stale.batch() as batch:
        batch.write("F", ([D(2024, 2, 4)], [2.0]), expected_version=version)
    with pytest.raises(ValidationError) as info, stale.batch() as batch:
        batch.write("F", ([D(2024, 2, 4), D(2024, 2, 4)], [2.0, 3.0]))
    assert info.value.field == "dates"
    assert writer.version() == version + 1
    for opened in (writer, stale):
        opened.close()


async def refusal(
    catalog: AsyncCatalog, fill: Callable[[Batch], Awaitable[None]]
) -> tuple[CatalogStoreError, int | None]:
    """The error a batch ``fill`` makes fails with, and the operation it names."""
    try:
        async with catalog.batch() as batch:
            await fill(batch)
    except CatalogStoreError as exc:
        return exc, batch.failed_operation
    raise AssertionError("the batch was expected to fail")


def test_a_failed_batch_names_the_operation_that_refused_it(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    with Catalog.open(root, create=True) as seed:
        for sid in ("A", "B"):
            seed.create(id=sid, frequency="monthly")
        seed.write("B", ([D(2024, 5, 1)], [1.0]))

    async def main() -> None:
        catalog = await AsyncCatalog.open(root)
        before = await catalog.version()
        stale = (await catalog.get("A")).version - 1

        async def stale_update(batch: Batch) -> None:
            batch.update("B", {"title": "first"})
            batch.update("A", {"units": "x"}, expected_version=stale)

        async def mid_month(batch: Batch) -> None:
            batch.update("A", {"title": "first"})
            batch.update("B", {"title": "second"})
            await batch.write("A", ([D(2024, 1, 15)], [1.0]))  # not a monthly date

        async def before_the_last(batch: Batch) -> None:
            batch.update("A", {"title": "first"})
            await batch.write("B", ([D(2024, 1, 1)], [1.0]))

        error, index = await refusal(catalog, stale_update)
        assert (type(error), index) == (VersionMismatchError, 1)
        error, index = await refusal(catalog, mid_month)
        assert isinstance(error, ValidationError)
        assert (index, error.field) == (2, "dates")
        error, index = await refusal(catalog, before_the_last)
        assert (type(error), index) == (AppendOrderError, 1)
        assert await catalog.version() == before
        async with catalog.batch() as batch:
            batch.update("A", {"title": "landed"})
        assert (batch.failed_operation, batch.version) == (None, before + 1)
        await catalog.close()

    asyncio.run(main())


def test_each_operation_of_a_batch_expects_the_version_before_the_commit(tmp_path: Path) -> None:
    """A client read the series at one version and sends several changes to it in one
    batch, each conditioned on that version: none of them can know the version an
    earlier one of the batch will give it, which no reader ever sees."""
    with Catalog.open(str(tmp_path / "store"), create=True) as catalog:
        read = catalog.create(id="BX", frequency="monthly").version
        with catalog.batch() as batch:
            batch.update("BX", {"units": "g"}, expected_version=read)
            batch.update("BX", {"title": "g2"}, expected_version=read)
            batch.write("BX", ([D(2024, 1, 1)], [1.0]), expected_version=read)
        assert batch.version == read + 1
        series = catalog.get("BX")
        assert (series.units, series.title, series.version) == ("g", "g2", read + 1)

        def two_changes(first: str, expected: int) -> None:
            with catalog.batch() as batch:
                batch.update(first, {"units": "kg"})
                batch.update(first, {"title": "g3"}, expected_version=expected)

        # Stale is stale, however many operations of the batch name the series.
        with pytest.raises(VersionMismatchError) as info:
            two_changes("BX", read)
        assert (info.value.expected, info.value.actual) == (read, read + 1)

        def created_then_changed() -> None:
            with catalog.batch() as batch:
                batch.create({"id": "NEWBX", "frequency": "monthly"})
                batch.update("NEWBX", {"units": "kg"}, expected_version=read + 1)

        # A series the batch creates had no version before it: no expected one holds.
        with pytest.raises(VersionMismatchError, match="new in this commit"):
            created_then_changed()
        assert catalog.version() == read + 1
        assert catalog.get("BX").units == "g"
