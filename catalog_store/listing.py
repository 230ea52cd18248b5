"""Filtering and cursor pagination over metadata shards, one shard at a time.

A listing walks shards in order, and so series in order of id (each shard holds
one id range), so memory grows with one shard and one page, never with the
catalog. The cursor pins the version it started at: paging through a large
catalog sees one consistent snapshot even while writers commit.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import unicodedata
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import pyarrow as pa

from catalog_store import keys, table
from catalog_store.asof import MAX_VERSION
from catalog_store.errors import ValidationError
from catalog_store.models import FREQUENCIES, Series, check_count
from catalog_store.records import SeriesRecord, TablePart, to_series
from catalog_store.snapshot import Snapshot

MAX_PAGE = 1000


def tag_tuple(tags: Iterable[str] | None) -> tuple[str, ...]:
    """The tags a filter asks for (None: none); a string would be taken for its letters."""
    if tags is None:
        return ()
    try:
        chosen = () if isinstance(tags, str) else tuple(tags)
    except TypeError:
        chosen = None
    if chosen is None or isinstance(tags, str) or not all(isinstance(t, str) for t in chosen):
        raise ValidationError("tags must be a list of tags", "tags")
    return chosen


def check_text(value: object, name: str) -> None:
    """ValidationError on ``name`` unless ``value`` is text or None."""
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"must be text, not {type(value).__name__}", name)


def searchable(text: str) -> str:
    """``text`` as text search compares it: case folded and in one Unicode form
    (NFKC), so that an "é" typed as one character or as "e" and an accent, or a
    word in full-width letters, finds what it reads as."""
    if text.isascii():  # every ASCII string is already in that form
        return text.casefold()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


@dataclass(frozen=True)
class SeriesFilter:
    """All given conditions must hold; ``tags`` must all be present."""

    source: str | None = None
    frequency: str | None = None
    tags: tuple[str, ...] = ()
    text: str | None = None
    external_provider: str | None = None

    def __post_init__(self) -> None:
        for name in ("source", "frequency", "text", "external_provider"):
            check_text(getattr(self, name), name)
        object.__setattr__(self, "tags", tag_tuple(self.tags))
        if self.frequency is not None and self.frequency not in FREQUENCIES:
            raise ValidationError(
                f"unknown frequency {self.frequency!r}; one of {', '.join(FREQUENCIES)}",
                "frequency",
            )
        if self.text is not None:
            object.__setattr__(self, "text", searchable(self.text))

    def matches(self, record: Any, series_id: str) -> bool:
        """Whether the series holds; ``record`` needs only the fields of :meth:`fields`."""
        if self.source is not None and record.source != self.source:
            return False
        if self.frequency is not None and record.frequency != self.frequency:
            return False
        if self.tags and not all(tag in record.tags for tag in self.tags):
            return False
        if self.external_provider is not None and self.external_provider not in record.external_ids:
            return False
        if self.text:
            return (
                self.text in searchable(series_id)
                or self.text in searchable(record.title)
                or self.text in searchable(record.description)
            )
        return True

    def fields(self) -> tuple[str, ...]:
        """The record fields the conditions read (none: every series matches)."""
        wanted = {
            "source": self.source is not None,
            "frequency": self.frequency is not None,
            "tags": bool(self.tags),
            "external_ids": self.external_provider is not None,
            "title": bool(self.text),
            "description": bool(self.text),
        }
        return tuple(name for name, used in wanted.items() if used)


_RECORD_FIELDS = {f.name: f for f in msgspec.structs.fields(SeriesRecord)}


@functools.cache
def _view_decoder(fields: tuple[str, ...]) -> msgspec.msgpack.Decoder[Any]:
    """Decodes only ``fields`` of an encoded record, typed as SeriesRecord types them:
    a filter skips the rest (dates, files, attributes) for the records it rejects."""
    view = msgspec.defstruct(
        "RecordView",
        [(name, _RECORD_FIELDS[name].type) for name in fields],
        kw_only=True,
        gc=False,
    )
    return msgspec.msgpack.Decoder(view)


@dataclass(frozen=True)
class Page:
    """One page of a listing; pass ``next_cursor`` back for the next, None at the end."""

    items: Sequence[Series]
    next_cursor: str | None
    version: int


def pack_cursor(*parts: object) -> str:
    """An opaque cursor holding ``parts``: URL-safe base64 of compact JSON."""
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unpack_cursor(cursor: str, count: int) -> list[Any]:
    """The ``count`` parts :func:`pack_cursor` put in ``cursor``. Raises
    ValidationError (field ``cursor``) for anything else; the caller checks the
    parts' types and raises the same."""
    check_text(cursor, "cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("invalid cursor", "cursor") from None
    if not isinstance(parts, list) or len(parts) != count:
        raise ValidationError("invalid cursor", "cursor")
    return parts


def encode_cursor(version: int, shard: int, after: str) -> str:
    return pack_cursor(version, shard, after)


def is_version(value: object) -> bool:
    """Whether ``value``, read from a cursor, is a version number as ``as_of`` takes one.

    A cursor holding anything else was not made here: it is a bad cursor, never a
    version to look up (a 404) or an ``as_of`` the client did not send. GraphQL's
    cursors, which hold a version too, are read by the same rule.
    """
    return type(value) is int and 0 <= value <= MAX_VERSION


def decode_cursor(cursor: str) -> tuple[int, int, str]:
    """Raises ValidationError (field ``cursor``) for anything this code did not make."""
    version, shard, after = unpack_cursor(cursor, 3)
    if not (is_version(version) and type(shard) is int and shard >= 0 and isinstance(after, str)):
        raise ValidationError("invalid cursor", "cursor")
    return version, shard, after


async def iter_records(
    snapshot: Snapshot, flt: SeriesFilter, start_shard: int = 0, after: str = ""
) -> AsyncGenerator[tuple[int, SeriesRecord], None]:
    """Matching records from ``(start_shard, after)`` on, with their shard number."""
    manifest = snapshot.manifest
    fields = flt.fields()
    view = _view_decoder(fields) if fields else None  # None: every series matches
    holding = await _shards_holding(snapshot, flt.source)
    for shard in range(start_shard, len(manifest.shards)):
        if holding is not None and shard not in holding:
            continue
        records = await snapshot.shard_records(shard)
        for index, series_id in records.entries(after if shard == start_shard else ""):
            if view is not None and not flt.matches(records.view(index, view), series_id):
                continue
            yield shard, records.at(index)


#: A source with fewer series than this share of the catalog is looked up in the
#: metadata table first, so a listing opens only the shards that hold it; a larger
#: one is in nearly every shard, and the lookup would only add to the scan.
_SELECTIVE_SHARE = 1 / 8


async def _shards_holding(snapshot: Snapshot, source: str | None) -> set[int] | None:
    """The metadata shards holding series of ``source``, or None: scan them all."""
    manifest = snapshot.manifest
    if source is None or manifest.table is None:
        return None
    parts = [part for part in manifest.table if part.source == source]
    if sum(part.count for part in parts) > manifest.series_count * _SELECTIVE_SHARE:
        return None
    rows = await _rows_of_source(snapshot, parts, source)
    return {keys.meta_shard_of(manifest.bounds, sid) for sid in rows["id"].to_pylist()}


async def table_rows(snapshot: Snapshot, flt: SeriesFilter) -> pa.Table:
    """The metadata table's rows matching ``flt`` at the snapshot's version, by id."""
    parts = snapshot.manifest.table
    if parts is None:  # a version written before the table existed: build it from records
        return table.table_of([record async for _shard, record in iter_records(snapshot, flt)])
    return table.select(await _rows_of_source(snapshot, parts, flt.source), flt)


async def _rows_of_source(
    snapshot: Snapshot, parts: Sequence[TablePart], source: str | None
) -> pa.Table:
    manifest = snapshot.manifest
    chosen = [part for part in parts if source is None or part.source == source]

    async def combine() -> pa.Table:
        loaded = [await snapshot.reader.table_part(part) for part in chosen]
        return table.combine(loaded, manifest.table_pending, source)

    if not manifest.table_pending:
        return await combine()  # cached parts, put side by side
    # Applying pending rows builds a table: keep it for the next call at this version.
    key = f"table-view/{manifest.version}/{'*' if source is None else '=' + source}"
    return await snapshot.reader.cache.get_or_load(key, combine, table.part_bytes)


async def page(snapshot: Snapshot, flt: SeriesFilter, limit: int, cursor: str | None) -> Page:
    """One page of matching series at the snapshot's version."""
    check_count(limit, "limit", 1, MAX_PAGE)
    after = decode_cursor(cursor)[2] if cursor is not None else ""
    # The shard holding the id, whatever shard the cursor names: a cursor built by
    # hand names the series after an id, and cannot know the shard layout.
    start_shard = keys.meta_shard_of(snapshot.manifest.bounds, after)
    items: list[Series] = []
    last: tuple[int, str] | None = None
    # Closed here, not when collected: a page stops the scan early, and a generator
    # left open would be closed later by a task of the event loop, which a
    # synchronous caller's loop may never run (a warning at exit).
    async with contextlib.aclosing(iter_records(snapshot, flt, start_shard, after)) as found:
        async for shard, record in found:
            if len(items) == limit:
                assert last is not None
                return Page(items, encode_cursor(snapshot.version, *last), snapshot.version)
            items.append(to_series(record))
            last = (shard, record.id)
    return Page(items, None, snapshot.version)
