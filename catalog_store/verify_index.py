"""The external-id index against the records, for ``verify``.

A lookup by external id reads one index shard, placed by a hash of
``provider\\x1fid`` (:func:`~catalog_store.keys.shard_of`), then the series it
names. Each index shard is checked on its own once, wherever a version lists it:
its count, its entries in key order and each once, and each in the shard its id
hashes to (a lookup never reads one placed elsewhere). At the latest version the
index is compared with the ids the series carry, held records applied as a
reader applies them.

The records are split by id range and the index by hash, so neither can be read
in the other's order, and at 10^6 series neither side fits in memory. So the
comparison counts rather than holds: one walk of the records, a metadata shard
at a time, adds up for each index shard how many (id, series) pairs it should
hold and the sum of their 128-bit digests; one walk of the index, a shard at a
time, adds up the same of what each holds. A shard whose two figures agree holds
exactly its pairs (a digest sum, unlike a XOR, does not cancel a pair held
twice). Only the shards that disagree, few where something went wrong, are
compared entry by entry: as many as fit :data:`HELD_INDEX_BYTES` are held while
the records are walked once more, and each entry no record matched, and each id
a series carries that its shard does not name it for, is a problem. Memory holds
one metadata shard, one index shard or one group of them, two figures per index
shard and the problems, never the catalog.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msgspec

from catalog_store import keys
from catalog_store.cache import load_checked
from catalog_store.records import Manifest, ShardRef, decode_xid_shard, strictly_ascending, xid_key
from catalog_store.snapshot import Snapshot, StoreReader
from catalog_store.storage import Store

T = TypeVar("T")

#: Problem kinds of the index, from the worst down.
KINDS = ("index_stale", "index_duplicate", "index_missing", "index_misplaced")

#: Index shards held at once while the records are compared with them entry by
#: entry, estimated as the reader's cache estimates a shard, twice (the entries and
#: those not yet matched); a larger shard is held alone.
HELD_INDEX_BYTES = 16 * 2**20

_DIGEST_MASK = 2**128 - 1


@dataclass(frozen=True)
class Finding:
    """One thing wrong; ``verify`` reports it as a problem of the version checked."""

    kind: str
    key: str
    detail: str
    series_id: str | None = None


class Checker(Protocol):
    """What the index checks need of ``verify``'s walk of the store."""

    reader: StoreReader
    bad: set[str]
    seen: set[str]

    def problem(self, kind: str, key: str, detail: str, **where: Any) -> None: ...

    async def read(
        self, path: str, version: int, what: str, load: Callable[[], Awaitable[T]]
    ) -> T | None:
        """``load()``; None, and a problem reported once, if the object is missing or damaged."""


class IndexChecks:
    """The index checks of one run of ``verify``."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        #: (path, position, shard count) of each index shard checked where it was listed.
        self.placed: set[tuple[str, int, int]] = set()

    def report(self, findings: list[Finding], version: int) -> None:
        for f in findings:
            self.checker.problem(f.kind, f.key, f.detail, version=version, series_id=f.series_id)

    async def shards(self, manifest: Manifest) -> None:
        """Each index shard of ``manifest`` on its own once, and its entries where
        lookups look for them once per place a version lists it."""
        checker, version, count = self.checker, manifest.version, manifest.shard_count
        if count < 1:
            detail = "shard_count is not positive: no lookup can place an id"
            checker.problem("bad_manifest", keys.manifest_key(version), detail, version=version)
        for position, ref in enumerate(manifest.xid_shards):
            if ref is None or ref.path in checker.bad or (ref.path, position, count) in self.placed:
                continue
            new = ref.path not in checker.seen
            load = _loader(checker.reader.store, ref)
            pairs = await checker.read(ref.path, version, "index shard", load)
            self.placed.add((ref.path, position, count))
            if pairs is not None:
                found = shard_findings(ref, pairs) if new else []
                if count > 0:
                    found += misplaced(ref, position, count, pairs)
                self.report(found, version)

    async def content(self, manifest: Manifest) -> int:
        """Compare the index with the external ids the series carry, where every
        shard and index shard reads (else it is reported already); how many they
        carry (0 when not compared)."""
        paths = [ref.path for ref in (*manifest.shards, *manifest.xid_shards) if ref is not None]
        count = manifest.shard_count
        if not 0 < count == len(manifest.xid_shards) or not self.checker.bad.isdisjoint(paths):
            return 0
        carried, found = await compare(Snapshot(self.checker.reader, manifest))
        self.report(found, manifest.version)
        return carried


def _loader(store: Store, ref: ShardRef) -> Callable[[], Awaitable[list[tuple[str, str]]]]:
    return lambda: read_index_shard(store, ref)


class _Carried(msgspec.Struct, gc=False):
    """The part of a record the comparison decodes: the external ids it carries."""

    external_ids: dict[str, str] = msgspec.field(default_factory=dict)


_carried = msgspec.msgpack.Decoder(_Carried)


async def read_index_shard(store: Store, ref: ShardRef) -> list[tuple[str, str]]:
    """The entries of an index shard as stored, duplicates and order kept (a reader
    takes them into a dict). Raises ObjectNotFoundError or IntegrityError."""

    async def load() -> list[tuple[str, str]]:
        return decode_xid_shard(await store.get(ref.path), ref)

    return await load_checked(load)


def label(key: str) -> str:
    """An index key as a user writes it: ``provider:id``."""
    provider, _, external_id = key.partition("\x1f")
    return f"{provider}:{external_id}"


def _names(series: Iterable[str]) -> str:
    return ", ".join(map(repr, series))


def shard_findings(ref: ShardRef, pairs: list[tuple[str, str]]) -> list[Finding]:
    """What is wrong with an index shard's entries on their own: their count, and
    keys out of order or held twice (a lookup finds the last)."""
    found = []
    if len(pairs) != ref.count:
        found.append(Finding("corrupt_object", ref.path, "count of index entries differs"))
    if strictly_ascending([key for key, _series in pairs]):
        return found
    owners: dict[str, list[str]] = {}
    for key, series_id in pairs:
        owners.setdefault(key, []).append(series_id)
    twice = {key: series for key, series in owners.items() if len(series) > 1}
    for key, series in twice.items():
        detail = (
            f"{label(key)} is indexed {len(series)} times, to {_names(series)}; "
            f"lookups find {series[-1]!r}"
        )
        found.append(Finding("index_duplicate", ref.path, detail, series[0]))
    if not twice:
        found.append(Finding("corrupt_object", ref.path, "index entries are not in key order"))
    return found


def misplaced(
    ref: ShardRef, position: int, shard_count: int, pairs: Iterable[tuple[str, str]]
) -> list[Finding]:
    """Entries of an index shard listed at ``position`` whose ids hash to another
    shard: no lookup reads them."""
    found = []
    for key, series_id in pairs:
        home = keys.shard_of(key, shard_count)
        if home != position:
            detail = (
                f"{label(key)} (series {series_id!r}) belongs in index shard {home}, "
                f"not {position}: no lookup reads it"
            )
            found.append(Finding("index_misplaced", ref.path, detail, series_id))
    return found


def _digest(key: str, series_id: str) -> int:
    data = f"{key}\x1e{series_id}".encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=16).digest(), "big")


class _Tally:
    """For each index shard: how many (key, series) pairs, and their digest sum."""

    def __init__(self, shard_count: int) -> None:
        self.counts = [0] * shard_count
        self.sums = [0] * shard_count

    def add(self, position: int, key: str, series_id: str) -> None:
        self.counts[position] += 1
        self.sums[position] = (self.sums[position] + _digest(key, series_id)) & _DIGEST_MASK

    def differs(self, other: _Tally) -> list[int]:
        return [
            position
            for position, (count, total) in enumerate(zip(self.counts, self.sums, strict=True))
            if (count, total) != (other.counts[position], other.sums[position])
        ]


async def _carried_ids(snapshot: Snapshot) -> AsyncIterator[tuple[str, str]]:
    """``(series id, index key)`` of every external id the series carry, one metadata
    shard at a time, with the manifest's held records applied as a reader applies them."""
    for index in range(len(snapshot.manifest.shards)):
        records = await snapshot.shard_records(index)
        for position, series_id in records.entries():
            for provider, external_id in records.view(position, _carried).external_ids.items():
                yield series_id, xid_key(provider, external_id)


async def compare(snapshot: Snapshot) -> tuple[int, list[Finding]]:
    """How many external ids the series carry, and where the index disagrees with
    them. The manifest's shards must read and hold the ids of their ranges, its
    held records be in id order, and it must list ``shard_count`` index shards that
    read and have been checked with :func:`misplaced` (whose findings are not repeated)."""
    manifest = snapshot.manifest
    shard_count = manifest.shard_count
    expected = _Tally(shard_count)
    carried = 0
    async for series_id, key in _carried_ids(snapshot):
        carried += 1
        expected.add(keys.shard_of(key, shard_count), key, series_id)
    held = _Tally(shard_count)
    sizes: list[int] = []
    for position, ref in enumerate(manifest.xid_shards):
        entries = await snapshot.reader.xids(ref)
        sizes.append(len(entries))
        for key, series_id in entries.items():
            held.add(position, key, series_id)  # one misplaced makes its shard differ
    found: list[Finding] = []
    for group in _groups(expected.differs(held), sizes):
        found += await _compare_entries(snapshot, group)
    return carried, found


def _groups(positions: list[int], sizes: list[int]) -> list[list[int]]:
    """``positions`` in groups whose shards fit HELD_INDEX_BYTES together."""
    groups: list[list[int]] = []
    held = 0
    for position in positions:
        cost = 2 * (256 + 120 * sizes[position])
        if not groups or held + cost > HELD_INDEX_BYTES:
            groups.append([])
            held = 0
        groups[-1].append(position)
        held += cost
    return groups


async def _compare_entries(snapshot: Snapshot, positions: list[int]) -> list[Finding]:
    """Compare the index shards at ``positions`` with the records entry by entry."""
    manifest = snapshot.manifest
    shard_count = manifest.shard_count
    index: dict[int, dict[str, str]] = {}
    unmatched: dict[int, dict[str, str]] = {}
    for position in positions:
        entries = await snapshot.reader.xids(manifest.xid_shards[position])
        index[position] = entries
        unmatched[position] = {
            key: series_id
            for key, series_id in entries.items()
            if keys.shard_of(key, shard_count) == position
        }
    # Ids a series carries that its shard names another series for, or none.
    carriers: dict[int, dict[str, list[str]]] = {position: {} for position in positions}
    async for series_id, key in _carried_ids(snapshot):
        position = keys.shard_of(key, shard_count)
        if position not in index:
            continue
        if index[position].get(key) == series_id:
            unmatched[position].pop(key, None)
        else:
            carriers[position].setdefault(key, []).append(series_id)
    found: list[Finding] = []
    for position in positions:
        ref = manifest.xid_shards[position]
        where = ref.path if ref is not None else keys.manifest_key(manifest.version)
        stale, others = unmatched[position], carriers[position]
        for key in sorted({*stale, *others}):
            owner = index[position].get(key)
            carrying = others.get(key, [])
            if key in stale:
                assert owner is not None
                state = "is gone" if await snapshot.record(owner) is None else "does not carry it"
                detail = f"{label(key)} is indexed to {owner!r}, which {state}"
                if carrying:
                    detail += f"; carried by {_names(carrying)}"
                found.append(Finding("index_stale", where, detail, owner))
            elif owner is None:
                detail = (
                    f"{label(key)} is carried by {_names(carrying)}; the index does not hold it"
                )
                found.append(Finding("index_missing", where, detail, carrying[0]))
            else:
                carrying = [owner, *carrying]  # matched: the series named carries it too
            if len(carrying) > 1:
                detail = f"{label(key)} is carried by {_names(carrying)}"
                if owner is not None:
                    detail += f"; the index names {owner!r}"
                found.append(Finding("index_duplicate", where, detail, carrying[-1]))
    return found
