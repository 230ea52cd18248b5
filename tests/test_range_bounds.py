"""replace_range and delete_range need a bound: both ends open would be the whole series."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from catalog_store import Catalog
from catalog_store.errors import ValidationError
from catalog_store.storage import drop_memory_store

D = dt.date
DAYS = [D(2024, 1, day) for day in range(1, 5)]


@pytest.fixture
def catalog() -> Iterator[Catalog]:
    name = f"bounds-{uuid.uuid4().hex}"
    cat = Catalog.open(f"memory://{name}", create=True)
    cat.create(id="S", frequency="daily")
    cat.write("S", (DAYS, [1.0, 2.0, 3.0, 4.0]))
    yield cat
    cat.close()
    drop_memory_store(name)


def values(catalog: Catalog) -> list[Any]:
    return catalog.read("S").column("value").to_pylist()  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["replace_range", "delete_range"])
def test_a_range_mode_without_start_or_end_is_refused(catalog: Catalog, mode: str) -> None:
    rows = ([DAYS[1]], [20.0]) if mode == "replace_range" else None
    before = catalog.version()
    with pytest.raises(ValidationError) as refused:
        catalog.write("S", rows, mode)
    assert refused.value.field == "start"
    assert f"{mode} needs start or end" in refused.value.message
    assert "give start as its first date" in refused.value.message

    def write_in_a_batch() -> None:
        with catalog.batch() as batch:
            batch.update("S", {"title": "changed"})
            batch.write("S", rows, mode)

    # A batch refuses it as the write is added; nothing of the batch is committed.
    with pytest.raises(ValidationError) as in_batch:
        write_in_a_batch()
    assert in_batch.value.field == "start"
    assert catalog.version() == before
    assert values(catalog) == [1.0, 2.0, 3.0, 4.0]
    assert catalog.get("S").title == ""


@pytest.mark.parametrize("mode", ["replace_range", "delete_range"])
def test_one_open_end_or_the_series_own_span_still_covers_it(catalog: Catalog, mode: str) -> None:
    rows = ([DAYS[1]], [20.0]) if mode == "replace_range" else None
    kept = [20.0] if mode == "replace_range" else []
    catalog.write("S", rows, mode, end=DAYS[1])
    assert values(catalog) == [*kept, 3.0, 4.0]
    catalog.write("S", rows, mode, start=DAYS[1])
    assert values(catalog) == kept
    # The whole series, on purpose: the bounds it spans.
    catalog.write("S", (DAYS, [1.0, 2.0, 3.0, 4.0]), "upsert")
    series = catalog.get("S")
    catalog.write("S", rows, mode, start=series.first_date, end=series.last_date)
    assert values(catalog) == kept


@pytest.mark.parametrize("mode", ["append", "upsert"])
@pytest.mark.parametrize("bound", ["start", "end"])
def test_a_bound_given_to_a_mode_without_a_range_is_named(
    catalog: Catalog, mode: str, bound: str
) -> None:
    before = catalog.version()
    with pytest.raises(ValidationError) as refused:
        catalog.write("S", ([D(2024, 1, 9)], [9.0]), mode, **{bound: D(2024, 1, 9)})
    assert refused.value.field == bound
    assert f"apply to replace_range and delete_range, not {mode}" in refused.value.message
    assert catalog.version() == before
    assert values(catalog) == [1.0, 2.0, 3.0, 4.0]
