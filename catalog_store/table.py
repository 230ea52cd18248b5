"""The metadata table: what users set on every series, as Arrow, in parts by source.

A manifest's ``table`` lists parts, each an Arrow IPC stream of the rows of one
source within one id range, in id order. A commit that creates or deletes a series,
or changes what a user set on it, rewrites the parts its row leaves and enters;
writing observations leaves the table alone. "Every series of source X" then reads
only X's parts and returns them as one Arrow table, with no record decoded and no
model built per series: at 10^6 series that is ~100 parts where a scan of the
records opens ~1,300 shards and builds 200,000 models.

Rows hold the fields a user sets (``SPEC_FIELDS``) and ``created_at``. What changes
with every write (version, dates, observation counts) stays in the records only,
so appends never rewrite a part. A commit that changes only a few rows lists them
in the manifest as pending (``Manifest.table_pending``) instead of rewriting parts;
readers apply them over the parts, and a later commit writes them in.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import ipc

from catalog_store.errors import IntegrityError
from catalog_store.models import SPEC_FIELDS
from catalog_store.records import PendingRow, SeriesRecord, TablePart, TableRow, pieces, verify

if TYPE_CHECKING:
    from catalog_store.listing import SeriesFilter

TABLE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("description", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("frequency", pa.string(), nullable=False),
        pa.field("units", pa.string(), nullable=False),
        pa.field("seasonal_adjustment", pa.string(), nullable=False),
        pa.field("tags", pa.list_(pa.string()), nullable=False),
        pa.field("external_ids", pa.map_(pa.string(), pa.string()), nullable=False),
        #: JSON text: attribute values mix strings, numbers, booleans and nulls.
        pa.field("attributes", pa.string(), nullable=False),
        pa.field("partitioning", pa.string()),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
#: A rewritten part with more rows than this is split. Rewriting one costs a metadata
#: change a fraction of a millisecond; a source of 200,000 series has ~130 parts.
TABLE_PART_ROWS = 2048
#: Parts bigger than this in memory are stored compressed (zstd): smaller objects on
#: S3 for ~0.5 ms of decoding; small parts decode faster uncompressed.
_COMPRESS_OVER = 64 * 1024

#: Changed rows a manifest may carry before a commit writes them into the parts: a
#: commit that creates or changes a series then writes no part at all (one object
#: less to make durable), and every 17th such commit rewrites the parts of all of
#: them at once. Every manifest carries them, so they stay few and small: counted
#: alone, 16 rows of long descriptions (FRED's notes run to 10,000 characters) put
#: 160 KB in every manifest, written by every commit and read by every reader.
TABLE_PENDING_MAX = 16
TABLE_PENDING_BYTES = 16 * 1024

_ROW_FIELDS = (*SPEC_FIELDS, "created_at")
_json = msgspec.json.Encoder()


def row_of(record: SeriesRecord) -> TableRow:
    """A record's row of the table."""
    return TableRow(**{name: getattr(record, name) for name in _ROW_FIELDS})


def table_of(rows: Sequence[SeriesRecord | TableRow]) -> pa.Table:
    """The table rows of records or rows, in their order."""
    columns: dict[str, list[Any]] = {name: [] for name in TABLE_SCHEMA.names}
    for row in rows:
        for name in _ROW_FIELDS:
            columns[name].append(getattr(row, name))
    columns["external_ids"] = [list(x.items()) for x in columns["external_ids"]]
    columns["attributes"] = [_json.encode(a).decode() for a in columns["attributes"]]
    return pa.Table.from_pydict(columns, schema=TABLE_SCHEMA)


def pending_fits(pending: Iterable[PendingRow]) -> bool:
    """Whether changed rows may stay in the manifest (see TABLE_PENDING_MAX)."""
    rows = list(pending)
    if len(rows) > TABLE_PENDING_MAX:
        return False
    return sum(len(_json.encode(row)) for row in rows) <= TABLE_PENDING_BYTES


def pend(
    pending: Sequence[PendingRow],
    changed: Iterable[tuple[SeriesRecord | None, SeriesRecord | None]],
) -> dict[str, PendingRow]:
    """``pending`` after the changes of one commit (each series' (before, after);
    None: absent), by id. A series whose row did not change adds nothing."""
    out = {entry.id: entry for entry in pending}
    for before, after in changed:
        series = after if after is not None else before
        if series is None:
            continue  # created and deleted by this commit: no row before or after
        row = None if after is None else row_of(after)
        known = out.get(series.id)
        if known is None:
            if before is not None and row == row_of(before):
                continue
            placed = None if before is None else before.source
        elif known.row == row:
            continue
        else:
            placed = known.placed
        if placed is None and row is None:
            out.pop(series.id, None)  # created and deleted before it reached the parts
        else:
            out[series.id] = PendingRow(id=series.id, placed=placed, row=row)
    return out


def encode_part(table: pa.Table) -> bytes:
    compression = "zstd" if table.nbytes > _COMPRESS_OVER else None
    sink = pa.BufferOutputStream()
    options = ipc.IpcWriteOptions(compression=compression)
    with ipc.new_stream(sink, TABLE_SCHEMA, options=options) as writer:
        writer.write_table(table.combine_chunks())
    return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]


def open_part(data: bytes, ref: TablePart) -> pa.Table:
    """A part's rows from its bytes (IntegrityError if they are not what ``ref`` says)."""
    try:
        # One thread, as for Parquet files (see observations.decode_parquet).
        options = ipc.IpcReadOptions(use_threads=False)
        table = ipc.open_stream(pa.py_buffer(data), options=options).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise IntegrityError(f"table part {ref.path} cannot be read: {exc}") from None
    if not table.schema.equals(TABLE_SCHEMA) or table.num_rows != ref.count:
        raise IntegrityError(f"table part {ref.path}: schema or row count differs")
    return table


def decode_part(data: bytes, ref: TablePart) -> pa.Table:
    verify(data, ref)
    return open_part(data, ref)


def part_bytes(table: pa.Table) -> int:
    """What holding a decoded part costs, for the cache's byte bound."""
    return 512 + int(table.get_total_buffer_size())


class _Placement:
    """Finds the part of a (source, id): parts are ordered by (source, low)."""

    def __init__(self, parts: Sequence[TablePart]) -> None:
        self.parts = parts
        self.starts = [(p.source, p.low) for p in parts]

    def part_of(self, source: str, series_id: str) -> int | None:
        i = bisect.bisect_right(self.starts, (source, series_id)) - 1
        return i if i >= 0 and self.parts[i].source == source else None


#: A new part: (source, low, rows). The caller stores it and makes its TablePart.
NewPart = tuple[str, str, pa.Table]


async def rewrite(
    parts: Sequence[TablePart],
    load: Callable[[TablePart], Awaitable[pa.Table]],
    pending: Iterable[PendingRow],
) -> list[TablePart | NewPart]:
    """The parts with ``pending`` written into them, in order: unchanged parts as
    they are, rewritten ones as :data:`NewPart`."""
    placement = _Placement(parts)
    leaving: dict[int, set[str]] = defaultdict(set)
    entering: dict[int | str, list[TableRow]] = defaultdict(list)  # a part, or a new source
    for entry in pending:
        if entry.placed is not None:
            i = placement.part_of(entry.placed, entry.id)
            if i is None:
                raise IntegrityError(f"the metadata table has no part for series {entry.id!r}")
            leaving[i].add(entry.id)
        if entry.row is not None:
            found = placement.part_of(entry.row.source, entry.id)
            entering[entry.row.source if found is None else found].append(entry.row)
    result: list[TablePart | NewPart] = []
    for i, part in enumerate(parts):
        if i not in leaving and i not in entering:
            result.append(part)
            continue
        rows = await load(part)
        gone = leaving.get(i)  # an updated row leaves, then enters again
        if gone:
            rows = rows.filter(pc.invert(pc.is_in(rows["id"], pa.array(sorted(gone), pa.string()))))
        result.extend(_split(part.source, part.low, rows, entering.get(i, [])))
    for source in sorted(k for k in entering if isinstance(k, str)):
        result.extend(_split(source, "", TABLE_SCHEMA.empty_table(), entering[source]))
    # A new source's parts, or a part below a source's lowest, take their place.
    result.sort(key=lambda p: (p.source, p.low) if isinstance(p, TablePart) else p[:2])
    return result


def _split(source: str, low: str, rows: pa.Table, added: list[TableRow]) -> list[NewPart]:
    tail = True
    if added:
        new = table_of(sorted(added, key=lambda row: row.id))
        tail = rows.num_rows == 0 or new["id"][0].as_py() > rows["id"][-1].as_py()
        rows = pa.concat_tables([rows, new])
        if not tail:  # ids created in order, the common case, need no sort
            rows = rows.sort_by("id")
    ids = rows["id"]
    return [
        (source, low if start == 0 else ids[start].as_py(), rows.slice(start, end - start))
        for start, end in pieces(rows.num_rows, TABLE_PART_ROWS, tail)
    ]


def combine(
    parts: Sequence[pa.Table], pending: Sequence[PendingRow], source: str | None
) -> pa.Table:
    """The rows of ``source`` (None: every source) at one version, in id order: its
    ``parts`` without the stale rows of ``pending`` ids, plus the pending rows."""
    table = pa.concat_tables(parts) if parts else TABLE_SCHEMA.empty_table()
    ordered = source is not None or len(parts) < 2  # parts are in order of source first
    if pending:
        stale = pa.array([entry.id for entry in pending], pa.string())
        table = table.filter(pc.invert(pc.is_in(table["id"], stale)))
        rows = [
            entry.row
            for entry in pending
            if entry.row is not None and source in (None, entry.row.source)
        ]
        if rows:
            table = pa.concat_tables([table, table_of(rows)])
            ordered = False
    return table if ordered else table.sort_by("id")


class _SourceCursor:
    """Where the next id range starts in one source's parts."""

    def __init__(
        self, refs: list[TablePart], load: Callable[[TablePart], Awaitable[pa.Table]]
    ) -> None:
        self.refs = refs
        self.load = load
        self.index = 0  # the part being cut
        self.rows: pa.Table | None = None  # its rows, read when the cut reaches it
        self.ids: list[str] = []
        self.start = 0  # the row the next range starts at

    async def take(self, high: str | None) -> list[pa.Table]:
        """Slices of this source's rows before ``high`` (None: all the rest)."""
        out = []
        while self.index < len(self.refs):
            if self.rows is None:
                self.rows = await self.load(self.refs[self.index])
                self.ids = self.rows["id"].to_pylist()
            end = len(self.ids) if high is None else bisect.bisect_left(self.ids, high, self.start)
            if end > self.start:
                out.append(self.rows.slice(self.start, end - self.start))
            if end < len(self.ids):
                self.start = end
                return out
            self.index, self.rows, self.ids, self.start = self.index + 1, None, [], 0
        return out


class RangeCutter:
    """The rows of the parts ``refs`` (each source's in id order) in consecutive id
    ranges: per range, the slices of the sources with rows there. Each source's
    parts are read with ``load`` one at a time, as the ranges reach them."""

    def __init__(
        self, refs: Sequence[TablePart], load: Callable[[TablePart], Awaitable[pa.Table]]
    ) -> None:
        by_source: dict[str, list[TablePart]] = defaultdict(list)
        for ref in refs:
            by_source[ref.source].append(ref)
        self.cursors = [_SourceCursor(source_refs, load) for source_refs in by_source.values()]

    async def take(self, high: str | None) -> list[pa.Table]:
        """The rows after the last range and before ``high`` (None: all the rest)."""
        out: list[pa.Table] = []
        for cursor in self.cursors:
            out += await cursor.take(high)
        return out


def first_difference(expected: pa.Table, found: pa.Table) -> str | None:
    """The id of the first row where two id-ordered tables differ, or None."""
    if expected.equals(found):
        return None
    want, have = expected.to_pylist(), found.to_pylist()
    for a, b in zip(want, have, strict=False):
        if a != b:
            return str(min(a["id"], b["id"]))  # a row changed, lost or extra
    longer = want if len(want) > len(have) else have
    return str(longer[min(len(want), len(have))]["id"])


def select(table: pa.Table, flt: SeriesFilter) -> pa.Table:
    """The rows of ``table`` (one source's, or all, from :func:`combine`) that ``flt``
    matches."""
    if flt.frequency is not None:
        table = table.filter(pc.equal(table["frequency"], flt.frequency))
    if flt.tags:
        table = table.filter(_lists_holding(table["tags"].combine_chunks(), flt.tags))
    if flt.external_provider is not None:
        ids = table["external_ids"].combine_chunks()
        providers = pa.ListArray.from_arrays(ids.offsets, ids.keys)
        table = table.filter(_lists_holding(providers, (flt.external_provider,)))
    if not flt.text or table.num_rows == 0:
        return table
    # Text goes through SeriesFilter.matches, so a table and a listing select by
    # exactly the same rule (case folding and one Unicode form, not just lower case).
    text = type(flt)(text=flt.text)
    titles, descriptions = table["title"].to_pylist(), table["description"].to_pylist()
    mask = [
        text.matches(SimpleNamespace(title=title, description=description), series_id)
        for series_id, title, description in zip(
            table["id"].to_pylist(), titles, descriptions, strict=True
        )
    ]
    return table.filter(pa.array(mask, pa.bool_()))


def _lists_holding(lists: pa.Array, wanted: Iterable[str]) -> pa.Array:
    """Which of ``lists`` (list<string>) hold every one of ``wanted``."""
    flat = pc.list_flatten(lists)
    owners = pc.list_parent_indices(lists).to_numpy()
    keep = np.ones(len(lists), dtype=bool)
    for value in wanted:
        holds = np.zeros(len(lists), dtype=bool)
        holds[owners[pc.equal(flat, value).to_numpy(zero_copy_only=False)]] = True
        keep &= holds
    return pa.array(keep)
