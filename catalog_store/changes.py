"""A change set: the new state of the series one commit touches, built on a base.

Operations (see :mod:`catalog_store.operations`) read and replace records through
a :class:`ChangeSet`; :meth:`ChangeSet.finish` returns the manifest of the next
version with the writes of the touched shards and new data files, which the
committer runs before it creates the manifest. Untouched shards are carried over
by reference, so a commit costs in proportion to its change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pyarrow as pa

from catalog_store import keys, table
from catalog_store.commit import Draft
from catalog_store.datafiles import INLINE_MAX_ROWS, EncodedFile, encode_inline, read_files
from catalog_store.errors import ExternalIdTakenError
from catalog_store.records import (
    MAX_LISTED_CHANGES,
    DataFile,
    Manifest,
    PendingRecord,
    PendingRow,
    SeriesRecord,
    ShardRef,
    TablePart,
    encode_record,
    encode_shard,
    encode_xid_shard,
    pieces,
    xid_key,
)
from catalog_store.shard_edit import ShardEdit
from catalog_store.snapshot import Snapshot, pending_of_shard
from catalog_store.storage import Store


@dataclass
class Staged:
    """What earlier attempts of one commit already wrote, so a retry does not repeat it."""

    shards: dict[str, ShardRef] = field(default_factory=dict)  # by checksum
    paths: set[str] = field(default_factory=set)
    #: Files made of a series' inline rows, by series and the rows' checksum.
    settled: dict[tuple[str, str], list[EncodedFile]] = field(default_factory=dict)


#: A rewritten shard with more records than its catalog's split size is split (see
#: :func:`~catalog_store.records.pieces`). The split size is 1/32 of the catalog's
#: series, kept between these two: small catalogs get shards small enough that
#: rewriting one costs a commit little, and no shard grows past ~240 KB, under a
#: millisecond of reading, checking and opening when a lookup misses the cache,
#: however large the catalog; the manifest, which lists every shard, holds ~1,300
#: of them at 10^6 series.
SHARD_MIN_SPLIT = 64
SHARD_MAX_RECORDS = 768

#: A commit leaves at most this many changed series in the manifest
#: (``records_pending``) instead of rewriting their shards, and only while their
#: encoded records stay under RECORDS_PENDING_BYTES: every reader decodes the
#: manifest. The commit that would pass either writes them all into their shards.
RECORDS_PENDING_MAX = 16
RECORDS_PENDING_BYTES = 64 * 1024


def split_size(series_count: int) -> int:
    """Records past which a shard of a catalog of ``series_count`` series is split."""
    return max(SHARD_MIN_SPLIT, min(SHARD_MAX_RECORDS, series_count // 32))


class ChangeSet:
    """Records changed by one commit attempt on top of ``base``."""

    def __init__(
        self,
        base: Snapshot,
        commit_id: str,
        committed_at: dt.datetime,
        staged: Staged,
        *,
        pending_max: int = RECORDS_PENDING_MAX,
        inline_max: int = INLINE_MAX_ROWS,
        settle_rows: bool = False,
        checkpoint: bool = False,
    ) -> None:
        self.base = base
        #: Limits of what this commit leaves in the manifest (see CatalogOptions).
        self.pending_max = pending_max
        self.inline_max = inline_max
        #: Whether to write out everything held: records into shards, and every
        #: record's rows, in the manifest or a shard, into files.
        self.checkpoint = checkpoint
        #: Whether rows held in the records this commit writes into shards go into
        #: files (a checkpoint, or a writer that holds none itself); otherwise they
        #: stay held.
        self.settle_rows = settle_rows or checkpoint
        self.reader = base.reader
        self.store: Store = base.reader.store
        self.version = base.version + 1
        self.commit_id = commit_id
        self.committed_at = committed_at
        self.shard_count = base.manifest.shard_count
        self.changes: list[tuple[str, str]] = []
        self.series_delta = 0
        self.observation_delta = 0
        self._records: dict[int, ShardEdit] = {}
        self._xids: dict[int, dict[str, str]] = {}
        #: External ids taken from a series that held them, settled when the commit
        #: ends: (provider, id, every series that held or claimed it) by index key.
        self._contested: dict[str, tuple[str, str, list[str]]] = {}
        self._staged = staged
        self._pending: dict[str, bytes] = {}
        self._looked_at: set[str] = set()
        #: Each changed series as the base has it (None: new), for the metadata table.
        self._before: dict[str, SeriesRecord | None] = {}

    async def _shard(self, series_id: str) -> ShardEdit:
        return await self._shard_at(keys.meta_shard_of(self.base.manifest.bounds, series_id))

    async def _shard_at(self, shard: int) -> ShardEdit:
        if shard not in self._records:
            manifest = self.base.manifest
            stored = await self.reader.records(manifest.shards[shard])
            self._records[shard] = ShardEdit(stored, pending_of_shard(manifest, shard))
        return self._records[shard]

    async def get(self, series_id: str) -> SeriesRecord | None:
        """The series as this change set has it so far, or None."""
        self._looked_at.add(series_id)
        return (await self._shard(series_id)).get(series_id)

    async def put(self, record: SeriesRecord, operation: str, before: SeriesRecord | None) -> None:
        """Store ``record``; ``before`` is what it replaces (None for a new series)."""
        (await self._shard(record.id))[record.id] = record
        self.changes.append((operation, record.id))
        self._before.setdefault(record.id, before)
        if before is None:
            self.series_delta += 1
        self.observation_delta += record.observation_count - (
            before.observation_count if before else 0
        )

    def version_before(self, series_id: str, record: SeriesRecord) -> int | None:
        """The version ``series_id`` (now ``record``) had before this commit (None:
        new in it). An operation's expected version is checked against it: a version
        an earlier operation of the same commit gave the series is seen by no one."""
        if series_id in self._before:
            before = self._before[series_id]
            return None if before is None else before.version
        return record.version

    def touched(self) -> dict[str, SeriesRecord | None]:
        """Each series this change set changed or looked at, as it leaves it (None when
        deleted or absent); an operation that changed nothing still looked its series up.

        Held in memory, so the caller of a landed commit needs no read to answer
        with the new state: a read failing after the commit landed must not turn
        a success into a reported failure.
        """
        result: dict[str, SeriesRecord | None] = {}
        for series_id in [*(sid for _op, sid in self.changes), *sorted(self._looked_at)]:
            shard = self._records.get(keys.meta_shard_of(self.base.manifest.bounds, series_id))
            result[series_id] = None if shard is None else shard.get(series_id)
        return result

    def removed_here(self, series_id: str) -> bool:
        """Whether the series was there at the base and an earlier operation of
        this commit deleted it."""
        deleted = ("delete", series_id) in self.changes
        return deleted and self._before.get(series_id) is not None

    async def remove(self, record: SeriesRecord, operation: str) -> None:
        (await self._shard(record.id))[record.id] = None
        self.changes.append((operation, record.id))
        self._before.setdefault(record.id, record)
        self.series_delta -= 1
        self.observation_delta -= record.observation_count

    def stamp(self, record: SeriesRecord, **fields: Any) -> SeriesRecord:
        """A new state of ``record`` changed in this commit, linked to its state before it.

        A series changed twice in one commit (created and written in one batch)
        keeps the link it had before the commit: linking to its own version would
        make the revision walk go round in a circle.
        """
        before = record.previous_version if record.version == self.version else record.version
        return msgspec.structs.replace(
            record,
            **fields,
            version=self.version,
            updated_at=self.committed_at,
            previous_version=before,
        )

    async def _xid_shard(self, key: str) -> dict[str, str]:
        shard = keys.shard_of(key, self.shard_count)
        if shard not in self._xids:
            base = await self.reader.xids(self.base.manifest.xid_shards[shard])
            self._xids[shard] = dict(base)
        return self._xids[shard]

    async def claim_xid(self, provider: str, external_id: str, series_id: str) -> None:
        """Index the external id as ``series_id``'s. Taken from another series, it is
        contested: :meth:`check_claims` settles it from the records as the commit
        leaves them (two series may swap ids in one batch)."""
        key = xid_key(provider, external_id)
        shard = await self._xid_shard(key)
        holder = shard.get(key)
        if holder is not None and holder != series_id:
            self._contested.setdefault(key, (provider, external_id, [holder]))[2].append(series_id)
        elif key in self._contested:
            self._contested[key][2].append(series_id)
        shard[key] = series_id

    async def release_xid(self, provider: str, external_id: str, series_id: str) -> None:
        """Unindex the external id, if ``series_id`` is the one indexed for it."""
        key = xid_key(provider, external_id)
        shard = await self._xid_shard(key)
        if shard.get(key) == series_id:
            del shard[key]

    async def check_claims(self) -> None:
        """Index each contested external id for the one series that carries it once
        every operation of the commit is applied, or for none; raise
        ExternalIdTakenError if more than one does."""
        for key, (provider, external_id, involved) in self._contested.items():
            carriers = []
            for series_id in dict.fromkeys(involved):
                record = await self.get(series_id)
                if record is not None and record.external_ids.get(provider) == external_id:
                    carriers.append(series_id)
            if len(carriers) > 1:
                raise ExternalIdTakenError(provider, external_id, carriers[0])
            shard = await self._xid_shard(key)
            if carriers:
                shard[key] = carriers[0]
            else:
                shard.pop(key, None)

    def _new_object(
        self, data: bytes, new_path: Callable[[], str]
    ) -> tuple[str, str, bytes | None]:
        """Path and checksum of an object holding ``data``, and the bytes still to write:
        None when an earlier attempt of this commit wrote the same bytes (its path)."""
        digest = keys.checksum(data)
        staged = self._staged.shards.get(digest)
        if staged is not None:
            return staged.path, digest, None
        return new_path(), digest, data

    def _shard_object(
        self, kind: str, shard: int, data: bytes, count: int, inline: int = 0
    ) -> tuple[ShardRef | None, bytes | None]:
        """The ref of a new shard object, and its bytes unless an earlier attempt wrote it."""
        if count == 0:
            return None, None
        path, digest, todo = self._new_object(data, lambda: keys.shard_file_key(kind, shard))
        ref = ShardRef(path=path, size=len(data), sha256=digest, count=count, inline=inline)
        return ref, todo

    async def _table(
        self, writes: list[Awaitable[None]]
    ) -> tuple[list[TablePart] | None, list[PendingRow]]:
        """The metadata table's parts and pending rows after this change set, queuing
        the parts it rewrites."""
        base = self.base.manifest
        if base.table is None or not self._before:
            # None: a catalog from before the table, which readers scan.
            return base.table, base.table_pending
        changed = [
            (before, self._records[keys.meta_shard_of(base.bounds, sid)].get(sid))
            for sid, before in self._before.items()
        ]
        pending = table.pend(base.table_pending, changed)
        if len(pending) == len(base.table_pending) and all(
            pending.get(entry.id) is entry for entry in base.table_pending
        ):
            return base.table, base.table_pending  # no row changed (an append)
        if table.pending_fits(pending.values()):
            return base.table, sorted(pending.values(), key=lambda entry: entry.id)
        result: list[TablePart] = []
        for part in await table.rewrite(base.table, self.reader.table_part, pending.values()):
            if isinstance(part, TablePart):
                result.append(part)
                continue
            source, low, rows = part
            rows = rows.combine_chunks()
            data = table.encode_part(rows)
            path, digest, todo = self._new_object(data, keys.table_part_key)
            new = TablePart(
                path=path,
                size=len(data),
                sha256=digest,
                count=rows.num_rows,
                source=source,
                low=low,
            )
            writes.append(self._write_table_part(new, todo, rows))
            result.append(new)
        return result, []

    async def settle(self, record: SeriesRecord) -> SeriesRecord:
        """``record`` with its inline rows moved into new files (queued), or as it is.

        Not a change of value: the series keeps its version.
        """
        if record.inline is None:
            return record
        key = (record.id, keys.checksum(msgspec.msgpack.encode(record.inline)))
        if key not in self._staged.settled:
            self._staged.settled[key] = await encode_inline(record)
        files = self.stage(self._staged.settled[key])
        return msgspec.structs.replace(record, files=record.files + tuple(files), inline=None)

    def _held(self) -> dict[str, SeriesRecord | None]:
        """The series held in the manifest after this change set, by id: the base's,
        with this change set's edits applied."""
        held = {entry.id: entry.record for entry in self.base.manifest.records_pending}
        for edit in self._records.values():
            for series_id, record in edit.edits.items():
                if record is None and series_id not in edit.base:
                    # Created and deleted while held: no shard has it to remove.
                    held.pop(series_id, None)
                else:
                    held[series_id] = record
        return held

    def _within_limits(self, held: dict[str, SeriesRecord | None]) -> list[PendingRecord] | None:
        """``held`` as the manifest lists it, None if it would pass the limits (the
        shards must then be rewritten)."""
        if len(held) > self.pending_max:
            return None
        size = sum(len(encode_record(r)) for r in held.values() if r is not None)
        if size > RECORDS_PENDING_BYTES:
            return None
        return [PendingRecord(id=k, record=r) for k, r in sorted(held.items())]

    async def _flush(self, held: dict[str, SeriesRecord | None]) -> set[int]:
        """Edit the ``held`` series into their shards (their inline rows into files
        if ``settle_rows``); return the shards to rewrite."""
        for series_id in sorted(held):
            edit = await self._shard(series_id)
            record = edit.get(series_id)
            if self.settle_rows and record is not None and record.inline is not None:
                edit[series_id] = await self.settle(record)
        return {keys.meta_shard_of(self.base.manifest.bounds, series_id) for series_id in held}

    async def _settle_shards(self) -> set[int]:
        """Move the rows that records in the base's shards hold into files; return
        the shards to rewrite."""
        rewrite = set()
        for index, ref in enumerate(self.base.manifest.shards):
            if ref is None or not ref.inline:
                continue
            rewrite.add(index)
            edit = await self._shard_at(index)
            for series_id, stored in edit.base.items():
                if stored.inline is None:
                    continue
                record = edit.get(series_id)
                if record is not None and record.inline is not None:
                    edit[series_id] = await self.settle(record)
        return rewrite

    def stage(self, files: list[EncodedFile]) -> list[DataFile]:
        """Queue new immutable files; :meth:`finish` writes them beside the shards."""
        for record, data in files:
            if record.path not in self._staged.paths:
                self._pending[record.path] = data
        return [record for record, _data in files]

    async def read_files(self, files: Sequence[DataFile], frequency: str) -> pa.Table:
        """Like :func:`~catalog_store.datafiles.read_files`, seeing files staged in this
        change set too (a series written twice in one batch)."""
        return await read_files(self.reader, files, frequency, self._pending)

    async def finish(self, message: str) -> Draft:
        """The manifest of ``self.version`` and the writes of the objects it names."""
        base = self.base.manifest
        xid_shards = list(base.xid_shards)
        held = self._held()
        records_pending = self._within_limits(held)
        rewrite = set() if records_pending is not None else await self._flush(held)
        if self.checkpoint:
            rewrite |= await self._settle_shards()
        # Only files a record still lists: one an operation read back and rewrote
        # (held rows a range rewrite replaced) would be an orphan of a good commit.
        listed = {
            f.path
            for edit in self._records.values()
            for record in edit.edits.values()
            if record is not None
            for f in record.files
        }
        writes: list[Awaitable[None]] = [
            self._write_data(path, data) for path, data in self._pending.items() if path in listed
        ]
        # Shards in id order: an untouched one is carried over by reference, a touched
        # one is rewritten, split when it has grown past the split size, and dropped
        # when empty. ``lows`` holds each shard's lowest allowed id.
        shards: list[ShardRef | None] = []
        lows: list[str | None] = []
        split_at = split_size(base.series_count + self.series_delta)
        superseded: list[str] = []
        base_lows: list[str | None] = [None, *base.bounds]
        kept = 0
        for index in sorted(rewrite):
            # The untouched shards before this one, as slices: at 10^6 series the
            # manifest lists ~1,300 shards and a commit rewrites a handful.
            shards += base.shards[kept:index]
            lows += base_lows[kept:index]
            kept = index + 1
            ref = base.shards[index]
            low = base_lows[index]
            edit = self._records[index]
            ids, raws = edit.merged()
            spans = pieces(len(ids), split_at, edit.at_tail())
            holding = edit.holding_counts(ref.inline if ref is not None else 0, ids, spans)
            if ref is not None:
                superseded.append(ref.path)
            for (start, end), inline in zip(spans, holding, strict=True):
                data = encode_shard(ids[start:end], raws[start:end])
                new, todo = self._shard_object(
                    keys.META_DIR, len(shards), data, end - start, inline
                )
                assert new is not None
                shards.append(new)
                lows.append(low if start == 0 else ids[start])
                writes.append(self._write_shard(new, todo, cache=data))
        shards += base.shards[kept:]
        lows += base_lows[kept:]
        if not shards:
            shards, lows = [None], [None]
        bounds = [low for low in lows[1:] if low is not None]
        assert len(bounds) == len(shards) - 1
        for shard, pairs in self._xids.items():
            ordered_pairs = sorted(pairs.items())
            xref, xdata = self._shard_object(
                keys.XID_DIR, shard, encode_xid_shard(ordered_pairs), len(ordered_pairs)
            )
            xid_shards[shard] = xref
            if xref is not None:
                writes.append(self._write_shard(xref, xdata))
        table_parts, table_pending = await self._table(writes)
        manifest = Manifest(
            version=self.version,
            parent=base.version,
            commit_id=self.commit_id,
            committed_at=self.committed_at,
            message=message,
            changes=self.changes[:MAX_LISTED_CHANGES],
            change_count=len(self.changes),
            series_count=base.series_count + self.series_delta,
            observation_count=base.observation_count + self.observation_delta,
            shard_count=self.shard_count,
            shards=shards,
            bounds=bounds,
            xid_shards=xid_shards,
            table=table_parts,
            table_pending=table_pending,
            records_pending=records_pending or [],
        )

        if not writes and not superseded:
            return Draft(manifest)

        async def write_objects() -> None:
            # Independent objects: written at once, so their flushes overlap.
            await asyncio.gather(*writes)
            for path in superseded:
                # Readers of the new version read the new shards: make room for them.
                self.reader.cache.discard(path)

        return Draft(manifest, write_objects)

    async def _write_data(self, path: str, data: bytes) -> None:
        await self.store.put_new(path, data)
        self._staged.paths.add(path)

    async def _write_object(self, ref: ShardRef, data: bytes | None) -> None:
        """Write a shard or table part (unless an earlier attempt did: ``data`` None)."""
        if data is not None:
            await self.store.put_new(ref.path, data)
            self._staged.shards[ref.sha256] = ref

    async def _write_table_part(self, ref: TablePart, data: bytes | None, rows: pa.Table) -> None:
        await self._write_object(ref, data)
        self.reader.cache_table_part(ref, rows)

    async def _write_shard(self, ref: ShardRef, data: bytes | None, cache: bytes = b"") -> None:
        await self._write_object(ref, data)
        if cache:
            # The next commit and the first read after this one start from here.
            self.reader.cache_records(ref, cache)
