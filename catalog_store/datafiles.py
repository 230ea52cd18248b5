"""Observation files in the store: write one, read one (verified, cached), read a series.

Each file is recorded in its series' record with partition, date bounds, rows,
size and checksum, so reads never list a directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

import pyarrow as pa

from catalog_store import keys
from catalog_store.observations import (
    clip,
    date_ints,
    decode_parquet,
    empty_table,
    encode_parquet,
    merge,
)
from catalog_store.records import DataFile, SeriesRecord, verify
from catalog_store.snapshot import StoreReader
from catalog_store.storage import Store


async def write_file(store: Store, series_id: str, partition: str, table: pa.Table) -> DataFile:
    """Write one sorted, validated table as a new immutable Parquet object."""
    data = await asyncio.to_thread(encode_parquet, table)
    path = keys.data_file_key(series_id, partition)
    await store.put(path, data)
    ints = date_ints(table)
    return DataFile(
        path=path,
        size=len(data),
        sha256=keys.checksum(data),
        partition=partition,
        lo=int(ints[0]),
        hi=int(ints[-1]),
        rows=table.num_rows,
    )


async def write_partitions(
    store: Store, series_id: str, parts: dict[str, pa.Table]
) -> list[DataFile]:
    """Write each non-empty partition table as one file, concurrently."""
    items = [(p, t) for p, t in parts.items() if t.num_rows]
    return list(await asyncio.gather(*(write_file(store, series_id, p, t) for p, t in items)))


async def read_file(reader: StoreReader, file: DataFile, frequency: str) -> pa.Table:
    """One file's table, checked against its recorded size and checksum (IntegrityError)."""

    async def load() -> pa.Table:
        data = await reader.store.get(file.path)
        verify(data, file)
        return decode_parquet(data, file.path, frequency)

    return await reader.cache.get_or_load(file.path, load, lambda t: int(t.nbytes) + 256)


def overlapping(files: Iterable[DataFile], low: int | None, high: int | None) -> list[DataFile]:
    """Files whose recorded date range meets ``[low, high]``, in order of writing."""
    return [f for f in files if (low is None or f.hi >= low) and (high is None or f.lo <= high)]


async def read_files(reader: StoreReader, files: Sequence[DataFile], frequency: str) -> pa.Table:
    """Merge files given in order of writing: one row per date, the newest wins."""
    if not files:
        return empty_table(frequency)
    tables = await asyncio.gather(*(read_file(reader, f, frequency) for f in files))
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
    return clip(await read_files(reader, files, record.frequency), low, high)
