"""Observation files in the store: write one, read one (verified, cached), read a series.

Each file is recorded in its series' record with partition, date bounds, rows,
size and checksum, so reads never list a directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

import pyarrow as pa

from catalog_store import keys
from catalog_store.observations import (
    DEFAULT_PARTITIONING,
    clip,
    date_ints,
    decode_parquet,
    empty_table,
    encode_parquet,
    merge,
    split_by_partition,
    table_of_rows,
)
from catalog_store.records import DataFile, InlineRows, SeriesRecord, verify
from catalog_store.snapshot import StoreReader

EncodedFile = tuple[DataFile, bytes]

#: By default a series' record holds at most this many appended rows before they go
#: to a file (CatalogOptions.inline_rows).
INLINE_MAX_ROWS = 64


def scheme_of(record: SeriesRecord) -> str:
    """The series' time partitioning."""
    return record.partitioning or DEFAULT_PARTITIONING[record.frequency]


def inline_rows(record: SeriesRecord, table: pa.Table, limit: int) -> InlineRows | None:
    """The record's inline rows with ``table`` (rows after all of them) appended, or
    None when together they pass ``limit``."""
    held = record.inline
    if (len(held.dates) if held else 0) + table.num_rows > limit:
        return None
    dates = date_ints(table).tolist()
    values = table.column("value").to_pylist()
    if held is None:
        return InlineRows(dates, values)
    return InlineRows(held.dates + dates, held.values + values)


def inline_table(record: SeriesRecord) -> pa.Table:
    """The record's inline rows (it must have some) as a table."""
    assert record.inline is not None
    return table_of_rows(record.inline.dates, record.inline.values, record.frequency)


async def encode_inline(record: SeriesRecord) -> list[EncodedFile]:
    """The record's inline rows as new files, one per partition they fall in."""
    table = inline_table(record)
    return await encode_partitions(
        record.id, split_by_partition(table, scheme_of(record), record.frequency == "intraday")
    )


def encode_file(series_id: str, partition: str, table: pa.Table) -> EncodedFile:
    """One sorted, validated table as the bytes of a new Parquet object and its record."""
    data = encode_parquet(table)
    ints = date_ints(table)
    record = DataFile(
        path=keys.data_file_key(series_id, partition),
        size=len(data),
        sha256=keys.checksum(data),
        partition=partition,
        lo=int(ints[0]),
        hi=int(ints[-1]),
        rows=table.num_rows,
    )
    return record, data


async def encode_partitions(series_id: str, parts: dict[str, pa.Table]) -> list[EncodedFile]:
    """Each non-empty partition table as one new file; large inputs encode off the loop."""
    items = [(p, t) for p, t in parts.items() if t.num_rows]
    if sum(t.num_rows for _p, t in items) < 20_000:
        return [encode_file(series_id, p, t) for p, t in items]
    return list(
        await asyncio.gather(*(asyncio.to_thread(encode_file, series_id, p, t) for p, t in items))
    )


async def read_file(
    reader: StoreReader,
    file: DataFile,
    frequency: str,
    pending: Mapping[str, bytes] | None = None,
) -> pa.Table:
    """One file's table, checked against its recorded size and checksum (IntegrityError).

    ``pending`` holds files a commit in progress has encoded but not yet written.
    """
    if pending and file.path in pending:
        return decode_parquet(pending[file.path], file.path, frequency)

    async def load() -> pa.Table:
        data = await reader.store.get(file.path)
        verify(data, file)
        return decode_parquet(data, file.path, frequency)

    return await reader.cache.get_or_load(file.path, load, lambda t: int(t.nbytes) + 256)


def rows_at_most(record: SeriesRecord, low: int | None, high: int | None) -> int:
    """At most how many rows a read of ``[low, high]`` gives, from the record alone:
    the rows of the files whose dates meet the range and of the held rows in it.
    Over the true count where files overlap (an upsert's file beside the one it
    revised), never under it."""
    held = 0
    if record.inline is not None:
        held = sum(
            (low is None or d >= low) and (high is None or d <= high) for d in record.inline.dates
        )
    files = sum(f.rows for f in overlapping(record.files, low, high))
    return min(record.observation_count, files + held)


def overlapping(files: Iterable[DataFile], low: int | None, high: int | None) -> list[DataFile]:
    """Files whose recorded date range meets ``[low, high]``, in order of writing."""
    return [f for f in files if (low is None or f.hi >= low) and (high is None or f.lo <= high)]


async def read_files(
    reader: StoreReader,
    files: Sequence[DataFile],
    frequency: str,
    pending: Mapping[str, bytes] | None = None,
) -> pa.Table:
    """Merge files given in order of writing: one row per date, the newest wins."""
    if not files:
        return empty_table(frequency)
    tables = await asyncio.gather(*(read_file(reader, f, frequency, pending) for f in files))
    order = sorted(range(len(files)), key=lambda i: files[i].lo)
    disjoint = all(files[order[k]].lo > files[order[k - 1]].hi for k in range(1, len(order)))
    if disjoint:
        return merge([tables[i] for i in order], disjoint=True)
    return merge(tables, disjoint=False)


async def read_record(
    reader: StoreReader, record: SeriesRecord, low: int | None, high: int | None
) -> pa.Table:
    """A series' observations in ``[low, high]`` (ordinals; None is open)."""
    files = overlapping(record.files, low, high)
    table = await read_files(reader, files, record.frequency)
    inline = record.inline
    if inline is not None and (high is None or inline.dates[0] <= high):
        # Appended after every file: later than all their dates, so they follow them.
        rows = inline_table(record)
        table = pa.concat_tables([table, rows]).combine_chunks() if table.num_rows else rows
    return clip(table, low, high)
