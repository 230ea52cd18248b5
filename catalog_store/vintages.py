"""Revision history: every value a date has had, and when it was current.

Nothing is overwritten, so each earlier state of a series is still readable. A
series record points to the version of its previous state, so the walk reads one
record per change of the series, not every manifest of the catalog. The result is
the ALFRED view: ``realtime_start`` (inclusive) and ``realtime_end`` (exclusive,
null while current) in UTC; the intervals of one date tile time without gaps or
overlaps from its first publication until it was deleted or until now.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pyarrow as pa

from catalog_store.datafiles import read_record
from catalog_store.errors import SeriesNotFoundError
from catalog_store.observations import INSTANT_TYPE, date_ints, schema_for
from catalog_store.records import SeriesRecord
from catalog_store.snapshot import Snapshot, StoreReader


async def states_of(reader: StoreReader, record: SeriesRecord) -> list[SeriesRecord]:
    """Every state of a series, oldest first, following ``previous_version`` links."""
    states = [record]
    while states[-1].previous_version is not None:
        current = states[-1]
        version = current.previous_version
        assert version is not None
        if version >= current.version:
            # A record that links to itself (a series changed twice in one commit by an
            # older writer): its state before that commit is in the commit's parent.
            parent = (await reader.manifest(current.version)).parent
            if parent is None:
                break
            version = parent
        earlier = await Snapshot(reader, await reader.manifest(version)).record(record.id)
        if earlier is None or earlier.version >= current.version:
            break  # created in that commit, or a damaged chain: stop rather than loop
        states.append(earlier)
    states.reverse()
    return states


def revisions_schema(frequency: str) -> pa.Schema:
    base = schema_for(frequency)
    return pa.schema(
        [
            *base,
            pa.field("realtime_start", INSTANT_TYPE, nullable=False),
            pa.field("realtime_end", INSTANT_TYPE),
        ]
    )


async def revisions(
    reader: StoreReader,
    record: SeriesRecord | None,
    series_id: str,
    low: int | None,
    high: int | None,
    first_release_only: bool = False,
) -> pa.Table:
    """The revision table of a series for dates in ``[low, high]``, sorted by date then time."""
    if record is None:
        raise SeriesNotFoundError(series_id)
    states = await states_of(reader, record)
    times = [(await reader.manifest(state.version)).committed_at for state in states]
    tables = await asyncio.gather(*(read_record(reader, s, low, high) for s in states))
    # Per date: list of [value, start, end]; a state that lacks the date closes it.
    open_rows: dict[int, list[object]] = {}
    rows: list[tuple[int, float | None, dt.datetime, dt.datetime | None]] = []
    for table, start in zip(tables, times, strict=True):
        dates = date_ints(table).tolist()
        values = table.column("value").to_pylist()
        present = dict(zip(dates, values, strict=True))
        for date in list(open_rows):
            if date not in present:
                value, since = open_rows.pop(date)
                rows.append((date, value, since, start))  # type: ignore[arg-type]
        for date, value in present.items():
            current = open_rows.get(date)
            if current is not None and _same(current[0], value):
                continue
            if current is not None:
                rows.append((date, current[0], current[1], start))  # type: ignore[arg-type]
            open_rows[date] = [value, start]
    for date, (value, since) in open_rows.items():
        rows.append((date, value, since, None))  # type: ignore[arg-type]
    rows.sort(key=lambda r: (r[0], r[2]))
    if first_release_only:
        seen: set[int] = set()
        rows = [r for r in rows if not (r[0] in seen or seen.add(r[0]))]  # type: ignore[func-returns-value]
    return _table(rows, record.frequency)


def _same(a: object, b: object) -> bool:
    return a == b or (a is None and b is None)


def _table(
    rows: list[tuple[int, float | None, dt.datetime, dt.datetime | None]], frequency: str
) -> pa.Table:
    schema = revisions_schema(frequency)
    storage = pa.int64() if frequency == "intraday" else pa.int32()
    dates = pa.array([r[0] for r in rows], storage).cast(schema.field("date").type)
    return pa.table(
        {
            "date": dates,
            "value": pa.array([r[1] for r in rows], pa.float64()),
            "realtime_start": pa.array([r[2] for r in rows], INSTANT_TYPE),
            "realtime_end": pa.array([r[3] for r in rows], INSTANT_TYPE),
        },
        schema=schema,
    )
