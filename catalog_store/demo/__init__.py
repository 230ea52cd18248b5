"""Real demo data: US macro, US payrolls and stock prices, loaded with full metadata.

:func:`load_demo` (blocking) and :func:`load_demo_async` put the 40 series of the
three bundled CSV files into a catalog as one commit. Both are idempotent: a
series already holding the demo metadata and values is left alone, one that
differs is updated (metadata changes, observations upserted), and when nothing
differs nothing is committed. Observations outside the demo's dates are kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from catalog_store.demo.metadata import (
    ALL,
    EMPLOYMENT_FILE,
    MACRO_FILE,
    STOCKS_FILE,
    DemoSpec,
)
from catalog_store.errors import SeriesNotFoundError, ValidationError
from catalog_store.models import Series

if TYPE_CHECKING:
    from catalog_store.batch import Batch
    from catalog_store.catalog import AsyncCatalog
    from catalog_store.sync import Catalog, SyncBatch

__all__ = ["DATASETS", "DemoSeries", "demo_series", "load_demo", "load_demo_async"]

DATASETS = (MACRO_FILE, EMPLOYMENT_FILE, STOCKS_FILE)
MESSAGE = "load demo data"

#: Cells the source uses as placeholders rather than values (see README.md).
_PLACEHOLDERS = {("infl", dt.date(1959, 1, 1)), ("realint", dt.date(1959, 1, 1))}

Column = tuple[list[dt.date], list[float | None]]


@dataclass(frozen=True)
class DemoSeries:
    """One demo series: its metadata and its observations, sorted by date."""

    meta: DemoSpec
    dates: list[dt.date]
    values: list[float | None]

    def table(self) -> pa.Table:
        return pa.table(
            {
                "date": pa.array(self.dates, pa.date32()),
                "value": pa.array(self.values, pa.float64()),
            }
        )


def _rows(name: str) -> Iterator[dict[str, str]]:
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    yield from csv.DictReader(io.StringIO(text))


def _macro() -> dict[str, Column]:
    columns: dict[str, Column] = {}
    for row in _rows(MACRO_FILE):
        # Quarterly observations are dated the first day of the quarter (FRED's convention).
        date = dt.date(int(row["year"]), 3 * int(row["quarter"]) - 2, 1)
        for column, text in row.items():
            if column in ("year", "quarter"):
                continue
            dates, values = columns.setdefault(column, ([], []))
            dates.append(date)
            values.append(None if (column, date) in _PLACEHOLDERS else float(text))
    return columns


def _employment() -> dict[str, Column]:
    columns: dict[str, Column] = {}
    for row in _rows(EMPLOYMENT_FILE):
        date = dt.date.fromisoformat(row["month"])
        for column, text in row.items():
            if column != "month":
                dates, values = columns.setdefault(column, ([], []))
                dates.append(date)
                values.append(float(text))
    return columns


def _stocks() -> dict[str, Column]:
    columns: dict[str, Column] = {}
    for row in _rows(STOCKS_FILE):
        date = dt.datetime.strptime(row["date"], "%b %d %Y").date()
        dates, values = columns.setdefault(row["symbol"], ([], []))
        dates.append(date)
        values.append(float(row["price"]))
    return columns


def demo_series() -> list[DemoSeries]:
    """Every demo series with its observations, read from the bundled CSV files."""
    data = {MACRO_FILE: _macro(), EMPLOYMENT_FILE: _employment(), STOCKS_FILE: _stocks()}
    out = []
    for meta in ALL:
        key = meta.attributes.get("symbol", meta.column)
        dates, values = data[meta.dataset][key]
        order = sorted(range(len(dates)), key=dates.__getitem__)
        out.append(DemoSeries(meta, [dates[i] for i in order], [values[i] for i in order]))
    return out


@dataclass(frozen=True)
class _Step:
    action: str  # "created", "updated" or "unchanged"
    changes: dict[str, Any]
    write: bool


def _plan(item: DemoSeries, current: Series | None, stored: pa.Table | None) -> _Step:
    if current is None or stored is None:
        return _Step("created", {}, True)
    if current.frequency != item.meta.frequency:
        raise ValidationError(
            f"series {item.meta.id!r} exists as a {current.frequency} series; "
            f"the demo data is {item.meta.frequency}",
            "frequency",
        )
    wanted = item.meta.spec().model_dump(exclude={"id", "frequency", "partitioning"})
    changes = {k: v for k, v in wanted.items() if getattr(current, k) != v}
    have = dict(
        zip(
            stored.column("date").to_pylist(),
            stored.column("value").to_pylist(),
            strict=True,
        )
    )
    missing = object()
    write = any(have.get(d, missing) != v for d, v in zip(item.dates, item.values, strict=True))
    return _Step("updated" if changes or write else "unchanged", changes, write)


def _stage_sync(batch: SyncBatch, item: DemoSeries, step: _Step) -> None:
    if step.action == "created":
        batch.create(item.meta.spec())
        batch.write(item.meta.id, item.table(), "append")
        return
    if step.changes:
        batch.update(item.meta.id, step.changes)
    if step.write:
        batch.write(item.meta.id, item.table(), "upsert")


async def _stage_async(batch: Batch, item: DemoSeries, step: _Step) -> None:
    if step.action == "created":
        batch.create(item.meta.spec())
        await batch.write(item.meta.id, item.table(), "append")
        return
    if step.changes:
        batch.update(item.meta.id, step.changes)
    if step.write:
        await batch.write(item.meta.id, item.table(), "upsert")


def _summary(
    items: list[DemoSeries], steps: list[_Step], version: int, committed: bool
) -> dict[str, Any]:
    datasets = []
    for name in DATASETS:
        mine = [item for item in items if item.meta.dataset == name]
        datasets.append(
            {
                "file": name,
                "series": len(mine),
                "observations": sum(len(item.dates) for item in mine),
            }
        )
    return {
        "series": len(items),
        "observations": sum(len(item.dates) for item in items),
        "created": sum(step.action == "created" for step in steps),
        "updated": sum(step.action == "updated" for step in steps),
        "unchanged": sum(step.action == "unchanged" for step in steps),
        "committed": committed,
        "version": version,
        "datasets": datasets,
    }


def load_demo(
    catalog: Catalog, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Load (or bring up to date) every demo series in one commit; return a summary.

    The summary has ``series``, ``observations`` (counts of demo data), ``created``,
    ``updated``, ``unchanged``, ``committed`` (whether a commit was made), ``version``
    (the catalog version holding the demo data) and per-file ``datasets`` counts.
    ``progress(done, total)`` is called after each series is staged; the commit follows.
    """
    items = demo_series()
    steps = []
    with catalog.batch(MESSAGE) as batch:
        for item in items:
            try:
                current: Series | None = catalog.get(item.meta.id)
            except SeriesNotFoundError:
                current = None
            stored = None if current is None else catalog.read(item.meta.id)
            step = _plan(item, current, stored)
            _stage_sync(batch, item, step)
            steps.append(step)
            if progress is not None:
                progress(len(steps), len(items))
    committed = batch.version is not None
    version = batch.version if batch.version is not None else catalog.version()
    return _summary(items, steps, version, committed)


async def load_demo_async(
    catalog: AsyncCatalog, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """The async twin of :func:`load_demo`, for code running on an event loop."""
    items = demo_series()
    steps = []
    async with catalog.batch(MESSAGE) as batch:
        for item in items:
            try:
                current: Series | None = await catalog.get(item.meta.id)
            except SeriesNotFoundError:
                current = None
            stored = None if current is None else await catalog.read(item.meta.id)
            step = _plan(item, current, stored)
            await _stage_async(batch, item, step)
            steps.append(step)
            if progress is not None:
                progress(len(steps), len(items))
    committed = batch.version is not None
    version = batch.version if batch.version is not None else await catalog.version()
    return _summary(items, steps, version, committed)
