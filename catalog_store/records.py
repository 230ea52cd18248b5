"""What the engine stores: manifests, metadata shards and their records.

Pure data and (de)serialisation, no I/O. Manifests are JSON (small, readable, one
per version); shards are MessagePack (fast to decode). Both are msgspec Structs, so
decoding is typed and a malformed object raises IntegrityError.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import operator
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import msgspec

from catalog_store.errors import FormatError, IntegrityError
from catalog_store.keys import checksum
from catalog_store.models import SPEC_FIELDS, Series

MANIFEST_FORMAT = "fincat-manifest/4"
#: Version 4 without shards whose records hold rows (``ShardRef.inline``): a
#: fincat from before those would rewrite such a shard without its count.
MANIFEST_FORMAT_3 = "fincat-manifest/3"
#: Version 3 without held series (``records_pending``): what a manifest holding
#: none is written as, so that a fincat from before them can still read it.
MANIFEST_FORMAT_2 = "fincat-manifest/2"
READABLE_MANIFEST_FORMATS = (MANIFEST_FORMAT_2, MANIFEST_FORMAT_3, MANIFEST_FORMAT)
#: A manifest lists at most this many of its changes: every reader decodes the
#: manifest, so its size must not grow with the size of a batch.
MAX_LISTED_CHANGES = 1000
STORE_FORMAT = "fincat/1"

#: What decoding damaged bytes raises: msgspec's errors, and UnicodeDecodeError for
#: a string that is not UTF-8 (a flipped byte inside a JSON string).
DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)


class ObjectRef(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An immutable object a manifest or record references, with its check values."""

    path: str
    size: int
    sha256: str


class ShardRef(ObjectRef, frozen=True, kw_only=True, omit_defaults=True):
    """One metadata or index shard at some version; ``count`` entries."""

    count: int
    #: Of a metadata shard: how many of its records hold rows (``inline``), which a
    #: checkpoint writes into files. Not written when 0, as before such records.
    inline: int = 0


class TablePart(ShardRef, frozen=True, kw_only=True):
    """One part of the metadata table: ``count`` rows of ``source``, ids from ``low``
    up to the next part's ``low`` of that source."""

    source: str
    low: str


class DataFile(ObjectRef, frozen=True, kw_only=True):
    """One Parquet file of observations, in order of writing within a series.

    ``lo``/``hi`` bound its dates: days since 1970-01-01, or microseconds since the
    epoch (UTC) for intraday series.
    """

    partition: str
    lo: int
    hi: int
    rows: int


class TableRow(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One series' row of the metadata table: what a user set, and ``created_at``."""

    id: str
    frequency: str
    title: str = ""
    description: str = ""
    source: str = ""
    units: str = ""
    seasonal_adjustment: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    external_ids: dict[str, str] = msgspec.field(default_factory=dict)
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    partitioning: str | None = None
    created_at: dt.datetime


class PendingRow(msgspec.Struct, frozen=True, kw_only=True):
    """A change to the metadata table not yet written into its parts.

    ``placed`` is the source under which the parts hold a (now stale) row of the
    series, None if they hold none; ``row`` is its row now, None once deleted.
    """

    id: str
    placed: str | None
    row: TableRow | None


class InlineRows(msgspec.Struct, frozen=True, gc=False):
    """Observations appended after every file of a series, held in its record until
    they are written into a file: ``dates`` as ordinals (see :func:`to_ordinal`),
    ascending; ``values`` float64 or None (missing), never NaN or infinite."""

    dates: list[int]
    values: list[float | None]


class SeriesRecord(TableRow, frozen=True, kw_only=True, omit_defaults=False, gc=False):
    """A series in a metadata shard: its table row, derived fields and live files."""

    updated_at: dt.datetime
    version: int
    first: int | None = None
    last: int | None = None
    observation_count: int = 0
    files: tuple[DataFile, ...] = ()
    #: The catalog version at which this series last changed before ``version``;
    #: following it walks the series' own history without reading every manifest.
    previous_version: int | None = None
    #: Rows appended since the last file, newer than every file's, until they are
    #: written into one (in ``Manifest.records_pending`` or in a shard, which then
    #: counts the record in its ``ShardRef.inline``).
    inline: InlineRows | None = None


class PendingRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A series as a version has it, held in the manifest instead of its shard:
    ``record`` None once deleted."""

    id: str
    record: SeriesRecord | None


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """The commit point of one catalog version: a full snapshot, not a delta."""

    format: str = MANIFEST_FORMAT
    version: int
    parent: int | None
    commit_id: str
    committed_at: dt.datetime
    message: str = ""
    #: (operation, series id) for the first MAX_LISTED_CHANGES changes of this commit.
    changes: list[tuple[str, str]] = msgspec.field(default_factory=list)
    #: How many changes the commit made in all (more than ``changes`` lists for a big batch).
    change_count: int = 0
    series_count: int = 0
    observation_count: int = 0
    #: How many external-id index shards there are (``xid_shards``, placed by hash).
    shard_count: int
    #: Metadata shards in order of series id, each holding one contiguous id range;
    #: ``None`` only for the single shard of an empty catalog.
    shards: list[ShardRef | None]
    #: ``bounds[i]`` is the lowest id shard ``i + 1`` may hold (one fewer than shards).
    bounds: list[str] = msgspec.field(default_factory=list)
    xid_shards: list[ShardRef | None]
    #: The metadata table's parts in order of (source, low); None in a manifest written
    #: by a version of fincat without the table (readers then scan the shards).
    table: list[TablePart] | None = None
    #: Changes to the table since its parts were last rewritten, by id: a commit that
    #: changes a few series' metadata lists them here instead of rewriting parts.
    table_pending: list[PendingRow] = msgspec.field(default_factory=list)
    #: Series a commit changed since their shards were last rewritten, by id: a
    #: commit touching a few series lists them here instead of rewriting shards,
    #: and readers look here before the shards.
    records_pending: list[PendingRecord] = msgspec.field(default_factory=list)
    #: SHA-256 of the manifest's own JSON with this field empty; last, so that a
    #: reader checks the exact bytes it read (see :func:`encode_manifest`).
    checksum: str = ""


class StoreMarker(msgspec.Struct, frozen=True, kw_only=True):
    """``fincat.json``: written once when a store is initialised."""

    format: str = STORE_FORMAT
    store_id: str
    created_at: dt.datetime
    shard_count: int


_json = msgspec.json.Encoder()
_pack = msgspec.msgpack.Encoder()
_manifest_decoder = msgspec.json.Decoder(Manifest)
_marker_decoder = msgspec.json.Decoder(StoreMarker)
_shard_decoder = msgspec.msgpack.Decoder(tuple[list[str], list[msgspec.Raw]])
_record_decoder = msgspec.msgpack.Decoder(SeriesRecord)
_records_decoder = msgspec.msgpack.Decoder(list[msgspec.Raw])
_xid_decoder = msgspec.msgpack.Decoder(list[tuple[str, str]])


class _FormatOnly(msgspec.Struct):
    format: str = ""
    checksum: str = ""


_format_decoder = msgspec.json.Decoder(_FormatOnly)
#: A manifest format as every fincat has named one.
_MANIFEST_FORMAT_NAME = re.compile(r"fincat-manifest/[0-9]+")


def strictly_ascending(items: Sequence[Any]) -> bool:
    """Whether each item sorts after the one before it (no two equal)."""
    return all(map(operator.lt, items, items[1:]))


_UNSEALED = b'"checksum":""}'


def encode_marker(obj: StoreMarker) -> bytes:
    return _json.encode(obj)


def _shards_hold_rows(manifest: Manifest) -> bool:
    return any(ref is not None and ref.inline for ref in manifest.shards)


def has_held_writes(manifest: Manifest) -> bool:
    """Whether ``manifest`` holds series (``records_pending``) or lists a shard whose
    records hold rows: what a checkpoint writes out."""
    return bool(manifest.records_pending) or _shards_hold_rows(manifest)


def encode_manifest(manifest: Manifest) -> bytes:
    """The manifest's JSON, sealed with the checksum of its bytes.

    The digest covers the JSON with ``"checksum":""`` and is then written into that
    field, which msgspec encodes last; so any changed byte, a digit of a count or a
    letter of the commit id, fails :func:`decode_manifest`. The format is the
    oldest that can say what the manifest holds.
    """
    if _shards_hold_rows(manifest):
        form = MANIFEST_FORMAT
    else:
        form = MANIFEST_FORMAT_3 if manifest.records_pending else MANIFEST_FORMAT_2
    body = _json.encode(msgspec.structs.replace(manifest, format=form, checksum=""))
    assert body.endswith(_UNSEALED)
    return body[:-2] + checksum(body).encode() + b'"}'


def decode_manifest(data: bytes, key: str) -> Manifest:
    try:
        manifest = _manifest_decoder.decode(data)
    except DECODE_ERRORS as exc:
        _refuse_other_format(data, key)
        raise IntegrityError(f"manifest {key} cannot be parsed: {exc}") from None
    if manifest.format not in READABLE_MANIFEST_FORMATS:
        _refuse_other_format(data, key)
        raise IntegrityError(f"manifest {key} has unknown format {manifest.format!r}")
    if not _sealed(data, manifest.checksum):
        raise IntegrityError(f"manifest {key}: checksum mismatch")
    return manifest


def _sealed(data: bytes, digest: str) -> bool:
    """Whether ``data`` ends in the seal ``digest`` and holds it (see encode_manifest)."""
    seal = f'"checksum":"{digest}"}}'.encode()
    return (
        bool(digest) and data.endswith(seal) and checksum(data[: -len(seal)] + _UNSEALED) == digest
    )


def _refuse_other_format(data: bytes, key: str) -> None:
    """FormatError for a manifest in a format fincat has named that this one does
    not read: written by a newer fincat, or by one from before the oldest format
    read here. That is no damage, and verify, repair and gc must not take it for
    damage, which repair would "mend" by restoring an older version over it."""
    try:
        head = _format_decoder.decode(data)
    except DECODE_ERRORS:
        return
    found = head.format
    # Sealed, as every format seals: else a flipped bit of the format's digit would
    # pass for a format of another fincat, and damage would go unrepaired.
    if (
        _MANIFEST_FORMAT_NAME.fullmatch(found)
        and found not in READABLE_MANIFEST_FORMATS
        and _sealed(data, head.checksum)
    ):
        raise FormatError(
            f"manifest {key} is in format {found!r}, which this fincat does not read "
            f"(it reads {', '.join(READABLE_MANIFEST_FORMATS)}); see docs/operations.md, "
            "Upgrades"
        )


def decode_marker(data: bytes) -> StoreMarker:
    try:
        return _marker_decoder.decode(data)
    except DECODE_ERRORS as exc:
        raise IntegrityError(f"store marker cannot be parsed: {exc}") from None


#: Bytes an open shard holds per record beside its encoded bytes (its id and the
#: view of its bytes), measured with tracemalloc.
RECORD_OVERHEAD = 136


class ShardRecords(Mapping[str, SeriesRecord]):
    """The records of one metadata shard by id, each decoded when it is asked for.

    A shard is ``[ids, records]``: its ids in order, then the records in the same
    order. Opening one decodes only the ids and notes where each record's bytes are
    (a few percent of a full decode); a lookup then bisects the ids and decodes one
    record. A shard costs its encoded bytes in memory plus ~130 bytes a record,
    about half of holding every record decoded.
    """

    __slots__ = ("_ids", "_path", "_raws", "nbytes")

    def __init__(self, ids: list[str], raws: list[msgspec.Raw], path: str, nbytes: int) -> None:
        self._ids = ids
        self._raws = raws
        self._path = path
        #: What holding this shard costs, for the cache's byte bound.
        self.nbytes = 256 + nbytes + RECORD_OVERHEAD * len(ids)

    @classmethod
    def empty(cls) -> ShardRecords:
        """The records of an empty catalog's single shard."""
        return cls([], [], "", 0)

    @classmethod
    def decode(cls, data: bytes, path: str) -> ShardRecords:
        """Open an encoded shard (IntegrityError if it is not one)."""
        try:
            ids, raws = _shard_decoder.decode(data)
        except DECODE_ERRORS as exc:
            try:  # the first encoding of format 2: the records alone, each naming its id
                raws = _records_decoder.decode(data)
                ids = [_record_decoder.decode(raw).id for raw in raws]
            except DECODE_ERRORS:
                raise IntegrityError(f"shard {path} cannot be parsed: {exc}") from None
        if len(ids) != len(raws) or not strictly_ascending(ids):
            raise IntegrityError(f"shard {path}: ids are not in order or do not match records")
        return cls(ids, raws, path, len(data))

    def overlaid(self, pending: list[PendingRecord]) -> ShardRecords:
        """These records with ``pending`` (entries of this shard's range, in id order)
        applied: a view sharing the unchanged records' bytes."""
        if not pending:
            return self
        changed = {entry.id: entry.record for entry in pending}
        kept = ((k, raw) for k, raw in zip(self._ids, self._raws, strict=True) if k not in changed)
        added = ((k, encode_record(r)) for k, r in changed.items() if r is not None)
        ids: list[str] = []
        raws: list[msgspec.Raw] = []
        for k, raw in heapq.merge(kept, added, key=lambda item: item[0]):
            ids.append(k)
            raws.append(raw)
        encoded = self.nbytes - 256 - RECORD_OVERHEAD * len(self._ids)
        encoded += sum(len(raw) for k, raw in zip(ids, raws, strict=True) if k in changed)
        return ShardRecords(ids, raws, self._path, encoded)

    def encoded(self) -> tuple[list[str], list[msgspec.Raw]]:
        """Ids in order and their records as stored: what :func:`encode_shard` takes."""
        return self._ids, self._raws

    def _index(self, series_id: str) -> int:
        i = bisect.bisect_left(self._ids, series_id)
        return i if i < len(self._ids) and self._ids[i] == series_id else -1

    def _parse(self, i: int, decoder: msgspec.msgpack.Decoder[Any]) -> Any:
        try:
            return decoder.decode(self._raws[i])
        except DECODE_ERRORS as exc:
            raise IntegrityError(f"shard {self._path}: record {self._ids[i]!r}: {exc}") from None

    def _decode(self, i: int) -> SeriesRecord:
        record: SeriesRecord = self._parse(i, _record_decoder)
        if record.id != self._ids[i]:
            raise IntegrityError(f"shard {self._path}: record {self._ids[i]!r} names {record.id!r}")
        return record

    def __getitem__(self, series_id: str) -> SeriesRecord:
        i = self._index(series_id)
        if i < 0:
            raise KeyError(series_id)
        return self._decode(i)

    def __contains__(self, series_id: object) -> bool:
        return isinstance(series_id, str) and self._index(series_id) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def last_id(self) -> str:
        """The highest id held ("" when empty)."""
        return self._ids[-1] if self._ids else ""

    def entries(self, after: str = "") -> Iterator[tuple[int, str]]:
        """``(position, id)`` in id order past ``after``, nothing decoded."""
        start = bisect.bisect_right(self._ids, after) if after else 0
        return ((i, self._ids[i]) for i in range(start, len(self._ids)))

    def at(self, position: int) -> SeriesRecord:
        """The record at ``position`` of :meth:`entries`."""
        return self._decode(position)

    def view(self, position: int, decoder: msgspec.msgpack.Decoder[Any]) -> Any:
        """Part of the record at ``position``, as ``decoder`` reads it (a filter's fields)."""
        return self._parse(position, decoder)

    def raw(self, position: int) -> msgspec.Raw:
        """The encoded record at ``position``, as stored."""
        return self._raws[position]


def pieces(count: int, split_at: int, tail: bool = False) -> list[tuple[int, int]]:
    """``[start, end)`` of each object ``count`` sorted entries make when objects split
    past ``split_at``: one, or equal pieces of at most three quarters of it.

    With ``tail`` (every new entry sorts after the old ones: ids created in order)
    the pieces are full but the last, as a B-tree splits its rightmost page: the
    room left for inserts would never be used, and half-full objects would make
    the manifest, which lists them all, half as large again.
    """
    if count <= split_at:
        return [(0, count)] if count else []
    size = split_at if tail else -(-count // -(-count // max(1, split_at * 3 // 4)))
    return [(i, min(i + size, count)) for i in range(0, count, size)]


def encode_record(record: SeriesRecord) -> msgspec.Raw:
    return msgspec.Raw(_pack.encode(record))


def encode_shard(ids: list[str], raws: list[msgspec.Raw]) -> bytes:
    """A shard of the encoded records ``raws``, whose ids ``ids`` are in order."""
    return _pack.encode((ids, raws))


def decode_shard(data: bytes, ref: ObjectRef) -> ShardRecords:
    verify(data, ref)
    try:
        return ShardRecords.decode(data, ref.path)
    except IntegrityError as exc:
        # The bytes are those its writer named (their checksum holds): not damage,
        # which repair would "mend" by restoring an older version, but an encoding
        # this fincat does not read.
        raise FormatError(
            f"{exc}; its bytes are whole (their checksum holds): it is in an encoding "
            "this fincat does not read"
        ) from None


def encode_xid_shard(pairs: list[tuple[str, str]]) -> bytes:
    return _pack.encode(pairs)


def decode_xid_shard(data: bytes, ref: ObjectRef) -> list[tuple[str, str]]:
    verify(data, ref)
    try:
        return _xid_decoder.decode(data)
    except DECODE_ERRORS as exc:
        raise IntegrityError(f"index shard {ref.path} cannot be parsed: {exc}") from None


def verify(data: bytes, ref: ObjectRef) -> None:
    """Raise IntegrityError unless ``data`` has the size and checksum ``ref`` records."""
    if len(data) != ref.size:
        raise IntegrityError(f"{ref.path}: size {len(data)}, recorded {ref.size}")
    if checksum(data) != ref.sha256:
        raise IntegrityError(f"{ref.path}: checksum mismatch")


def xid_key(provider: str, external_id: str) -> str:
    """Index key of an external id; the unit separator cannot occur in either part."""
    return f"{provider}\x1f{external_id}"


_EPOCH = dt.date(1970, 1, 1)
_EPOCH_TS = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_ordinal(value: dt.date | dt.datetime, intraday: bool) -> int:
    """A date as days since 1970-01-01, an instant as microseconds since the epoch."""
    if intraday:
        assert isinstance(value, dt.datetime)
        return (value - _EPOCH_TS) // dt.timedelta(microseconds=1)
    return (
        (value - _EPOCH).days
        if not isinstance(value, dt.datetime)
        else (value.date() - _EPOCH).days
    )


def from_ordinal(value: int, intraday: bool) -> dt.date | dt.datetime:
    """Inverse of :func:`to_ordinal`."""
    if intraday:
        return _EPOCH_TS + dt.timedelta(microseconds=value)
    return _EPOCH + dt.timedelta(days=value)


def to_series(record: SeriesRecord) -> Series:
    """The public view of a stored record (trusted: it passed its checksum)."""
    intraday = record.frequency == "intraday"
    fields: dict[str, Any] = {name: getattr(record, name) for name in SPEC_FIELDS}
    return Series.model_construct(
        **fields,
        created_at=record.created_at,
        updated_at=record.updated_at,
        version=record.version,
        first_date=None if record.first is None else from_ordinal(record.first, intraday),
        last_date=None if record.last is None else from_ordinal(record.last, intraday),
        observation_count=record.observation_count,
    )
