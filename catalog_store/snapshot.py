"""Reading the catalog at a version: manifests, shards and the byte-bounded cache.

Everything a manifest references is immutable, so decoded objects are cached by
key forever, evicted least-recently-used when the cache passes its byte bound. Only
"which version is latest" changes; it is re-read when older than ``max_staleness``.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa

from catalog_store import keys
from catalog_store.cache import ObjectCache, load_checked
from catalog_store.errors import (
    FormatError,
    IntegrityError,
    ObjectNotFoundError,
    StorageError,
    StorageUnavailableError,
    VersionNotFoundError,
)
from catalog_store.hint import LatestHint, decode_hint
from catalog_store.records import (
    STORE_FORMAT,
    Manifest,
    PendingRecord,
    SeriesRecord,
    ShardRecords,
    ShardRef,
    StoreMarker,
    TablePart,
    decode_manifest,
    decode_marker,
    decode_shard,
    decode_xid_shard,
    xid_key,
)
from catalog_store.retention_floor import kept_from, read_recorded
from catalog_store.storage import Store
from catalog_store.table import decode_part, part_bytes
from catalog_store.tasks import outcome_seen

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Versions probed one at a time past a known one before the search gallops.
_STEPS_OF_ONE = 4

#: Seconds an old version's read trusts the retention floor last read: the floor
#: moves only when gc expires history, and a walk through history (``history``,
#: revisions) then reads it once, not once per version.
FLOOR_STALENESS = 1.0


def _manifest_size(manifest: Manifest) -> int:
    # Measured with tracemalloc: ~400 bytes a decoded shard reference, ~160 a change.
    refs = len(manifest.shards) + len(manifest.xid_shards) + len(manifest.table or ())
    pending = 1000 * len(manifest.table_pending) + 2000 * len(manifest.records_pending)
    inline = sum(
        len(entry.record.inline.dates)
        for entry in manifest.records_pending
        if entry.record is not None and entry.record.inline is not None
    )
    return 1024 + 400 * refs + 160 * len(manifest.changes) + pending + 60 * inline


def _shard_bytes(records: ShardRecords) -> int:
    return records.nbytes


@dataclass(frozen=True)
class _Probe:
    """A look for the newest version under way, and when it began."""

    task: asyncio.Task[int]
    began: float

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.task.get_loop()


class StoreReader:
    """Reads versions of one store. Safe to share between tasks of one event loop."""

    def __init__(self, store: Store, cache_bytes: int, max_staleness: float) -> None:
        self.store = store
        self.cache = ObjectCache(cache_bytes)
        self.max_staleness = max_staleness
        self._latest: int | None = None
        self._latest_checked = 0.0
        self._floor = 0  # the oldest version kept, as last seen
        #: The last floor read from the store, and the oldest version kept it gave.
        self._floor_recorded, self._floor_kept = 0, 0
        self._floor_checked = float("-inf")
        self._kept_checked = float("-inf")  # when the latest known was last seen held
        #: The probe for the newest version that stale calls share, while it runs.
        self._probing: _Probe | None = None
        self.marker: StoreMarker | None = None

    @property
    def history_staleness(self) -> float:
        """Seconds the retention floor and the latest version's presence are trusted:
        both change only when gc expires history."""
        return max(self.max_staleness, FLOOR_STALENESS)

    async def read_marker(self) -> StoreMarker:
        """Read and check ``fincat.json``, and remember it as this store's."""
        self.marker = await self.marker_now()
        return self.marker

    async def marker_now(self) -> StoreMarker:
        """``fincat.json`` as the store holds it now. Raises FormatError if absent or
        unknown."""
        try:
            data = await self.store.get(keys.FORMAT_MARKER)
        except ObjectNotFoundError:
            if await self.store.exists(keys.manifest_key(0)):
                # A creation stopped between its two writes (see commit.initialise).
                raise FormatError(
                    f"{self.store.url} has a version 0 but no fincat.json: its creation "
                    "was interrupted; run fincat init (or open it with create) to finish it"
                ) from None
            raise FormatError(f"{self.store.url} is not a fincat store (no fincat.json)") from None
        marker = decode_marker(data)
        if marker.format != STORE_FORMAT:
            raise FormatError(f"unsupported store format {marker.format!r}")
        return marker

    async def manifest(self, version: int, cached: bool = True) -> Manifest:
        """The manifest of ``version``. Raises VersionNotFoundError if there is none.

        ``cached=False`` reads it from the store whatever the cache holds (and
        leaves the cache as it is): a health check must see the store, not memory.
        """
        if self._latest is not None and version < self._latest:
            # An old version may have expired since: its manifest (cached here, or
            # left by a gc that stopped part way) may outlive the files it names.
            await self.kept_floor()
        if version < self._floor:
            raise VersionNotFoundError(f"catalog version {version} has expired")
        key = keys.manifest_key(version)

        async def load() -> Manifest:
            try:
                data = await self.store.get(key)
            except ObjectNotFoundError:
                # Absent below the retention floor means expired, not "never was";
                # a process that has not read the floor yet asks for it now.
                if version < await self.oldest_version():
                    raise VersionNotFoundError(f"catalog version {version} has expired") from None
                raise VersionNotFoundError(f"no catalog version {version}") from None
            manifest = decode_manifest(data, key)
            if manifest.version != version:
                raise IntegrityError(f"{key} claims version {manifest.version}")
            return manifest

        if not cached:
            return await load_checked(load)
        return await self.cache.get_or_load(key, load, _manifest_size)

    def cache_manifest(self, manifest: Manifest) -> None:
        """Remember a manifest this process wrote, sparing a read; its parent, now
        superseded, makes room (an as-of read of it reads it again)."""
        self.cache.put(keys.manifest_key(manifest.version), manifest, _manifest_size(manifest))
        if manifest.parent is not None:
            self.cache.discard(keys.manifest_key(manifest.parent))

    async def _exists(self, version: int) -> bool:
        return await self.store.exists(keys.manifest_key(version))

    async def holds(self, version: int) -> bool:
        """Whether the store still holds ``version``'s manifest. When gc expired it
        under retention, False, and it is forgotten as the latest, so that the next
        :meth:`latest_version` searches afresh from the floor.

        Raises IntegrityError when it is gone and retention does not explain it: the
        store was damaged, and taking an older version for the newest would quietly
        roll the catalog back; FormatError when the store itself is gone (no
        ``fincat.json``: emptied, moved or replaced), as an open would.
        """
        if await self._exists(version):
            return True
        if not await self.store.exists(keys.FORMAT_MARKER):
            raise FormatError(
                f"{self.store.url} no longer holds a fincat store (no {keys.FORMAT_MARKER}): "
                "it was emptied, moved or replaced"
            )
        if version < await self.oldest_version():
            if self._latest is not None and self._latest <= version:
                self._latest = None
            return False
        raise IntegrityError(
            f"version {version} is no longer in {self.store.url}, and no retention gc "
            "expired it: the store was damaged, emptied or replaced (fincat verify tells)"
        )

    def note_latest(self, version: int) -> None:
        """Record a version known to exist (after our own commit)."""
        if self._latest is None or version > self._latest:
            self._latest = version
        self._latest_checked = time.monotonic()

    async def latest_version(self, refresh: bool = False) -> int:
        """The newest committed version: probe past the last known one, else start
        from the advisory hint and probe forward.

        Within ``max_staleness`` seconds of the last check the remembered answer
        is returned without touching the store.
        """
        now = time.monotonic()
        if self._latest is not None and self._latest < self._floor:
            self._latest = None  # expired under retention: search from the floor
        if refresh or not self.max_staleness:
            return await self._probe_latest(now)  # in this task: no probe is shared
        if self._latest is not None and now - self._latest_checked <= self.max_staleness:
            return self._latest
        # Calls that find the answer stale at once share one probe, when it began
        # within the staleness they accept (with none, each probes for itself, as
        # a refresh does: its probe must begin after its call did).
        loop = asyncio.get_running_loop()
        probe = self._probing
        if probe is None or probe.get_loop() is not loop or now - probe.began > self.max_staleness:
            probe = self._probing = _Probe(loop.create_task(self._probe_latest(now)), now)
            probe.task.add_done_callback(self._probed)
        return await asyncio.shield(probe.task)

    def _probed(self, task: asyncio.Task[int]) -> None:
        if self._probing is not None and self._probing.task is task:
            self._probing = None
        outcome_seen(task)  # every caller may have gone (cancelled)

    async def _probe_latest(self, now: float) -> int:
        """Ask the store for the newest version (see :meth:`latest_version`)."""
        newer = True
        if self._latest is not None:
            newer = await self._exists(self._latest + 1)
            if not newer and now - self._kept_checked > self.history_staleness:
                # Is ours still there? gc under retention deletes old manifests:
                # probing only forward from a version it expired would stay on it
                # for good. Asked at most once a second, as the floor is (gone
                # otherwise is damage: see holds).
                await self.holds(self._latest)
                self._kept_checked = now
        if self._latest is not None and not newer:
            # The common case: nothing new since we last looked.
            version = self._latest
        else:
            hint = await self.latest_hint()
            start = 0 if hint is None else hint.version
            if self._latest is not None:
                start = max(start, self._latest)
            # Never from below the floor: a manifest there may be one that did not
            # land (see holds), and probing on from it would follow it. (A floor
            # naming no version is damage, which verify reports.)
            floor = await self.oldest_version()
            if start < floor and await self._exists(floor):
                start = floor
            if await self._exists(start):
                version = await self._newest_from(start)
            else:
                version = await self._search_from_zero()
            if hint is not None and hint.proves_lost_after(version):
                log.warning(
                    "%s: the latest hint names version %d, but the newest manifest is "
                    "version %d: the newest commits' manifests were deleted (run fincat verify)",
                    self.store.url,
                    hint.version,
                    version,
                )
        self._latest = version
        self._latest_checked = now
        return version

    def known_latest(self) -> int | None:
        """The newest version this reader has seen, without asking the store."""
        return self._latest

    async def open_latest(self) -> int:
        """Learn the newest version when a catalog opens, in two reads.

        The hint and the manifest it names (which the first operation needs anyway,
        and which proves the hint names a real version). Newer versions are found
        by the next :meth:`latest_version`, which probes past this one.
        """
        found = await self.latest_hint()
        hint = 0 if found is None else found.version
        try:
            await self.manifest(hint)
        except (VersionNotFoundError, IntegrityError):
            return await self.latest_version(refresh=True)
        # Just read from the store: the next probe need not ask whether it is there.
        self._kept_checked = time.monotonic()
        if self._latest is None or hint > self._latest:
            self._latest = hint
            self._latest_checked = float("-inf")  # unconfirmed as newest: probe next time
        return self._latest

    async def latest_hint(self) -> LatestHint | None:
        """The "latest" hint as the store holds it now (see :mod:`.hint`)."""
        try:
            return decode_hint(await self.store.get(keys.LATEST_HINT))
        except StorageUnavailableError:
            raise
        except (ObjectNotFoundError, StorageError):
            # Advisory: unreadable (absent, not permitted, a directory) is no hint.
            return None

    async def oldest_version(self) -> int:
        """The oldest version kept: 0 unless gc expired history under a retention policy
        (see :mod:`catalog_store.retention_floor`)."""
        recorded = await self.recorded_floor()
        if recorded != self._floor_recorded:
            floor = await kept_from(
                recorded,
                self._exists,
                self._latest,
                lambda: self.store.list(f"{keys.MANIFEST_DIR}/"),
            )
            self._floor_recorded, self._floor_kept = recorded, floor
        floor = self._floor_kept
        self._floor = max(self._floor, floor)
        self._floor_checked = time.monotonic()
        return floor

    async def kept_floor(self) -> int:
        """The oldest version kept as reads of old versions check it: read from the
        store at most once per ``history_staleness``."""
        if time.monotonic() - self._floor_checked > self.history_staleness:
            await self.oldest_version()
        return self._floor

    async def recorded_floor(self) -> int:
        """The floor ``_manifests/_floor`` records, which a late write may have lowered."""
        return await read_recorded(self.store.get)

    async def _search_from_zero(self) -> int:
        """Find the newest version without a hint, from the oldest kept."""
        low = await self.oldest_version()
        if not await self._exists(low):
            raise FormatError(f"{self.store.url} has no version {low} manifest")
        return await self._newest_from(low)

    async def _newest_from(self, low: int) -> int:
        """The newest version, from ``low``, a version known to exist: a few steps
        of one (a head per version, as a hint a few commits behind needs), then
        gallop and bisect (O(log n) heads). A hint lost or far behind (a restored
        backup, a replica that only reads) cost a head per version, on every open."""
        for _ in range(_STEPS_OF_ONE):
            if not await self._exists(low + 1):
                return low
            low += 1
        step = 2
        while await self._exists(low + step):
            low, step = low + step, step * 2
        high = low + step  # absent
        while high - low > 1:
            mid = (low + high) // 2
            if await self._exists(mid):
                low = mid
            else:
                high = mid
        return low

    async def version_at(self, instant: dt.datetime) -> int:
        """The newest version committed at or before ``instant`` (UTC).

        Commit times never decrease along the chain (the protocol makes sure), so a
        binary search over manifests finds it. A manifest that cannot be read (a
        damaged version, superseded by a repair) has no known time: the search goes
        round it, and an instant that may fall in its time raises IntegrityError
        naming it. Raises VersionNotFoundError if the catalog did not exist yet.
        """
        latest = await self.latest_version()
        cache: dict[int, dt.datetime | None] = {}

        async def time_of(version: int) -> dt.datetime | None:
            if version not in cache:
                try:
                    cache[version] = (await self.manifest(version)).committed_at
                except (IntegrityError, VersionNotFoundError):
                    cache[version] = None
            return cache[version]

        newest_time = await time_of(latest)
        if newest_time is not None and newest_time <= instant:
            # The answer may be a version committed since ``latest`` was learnt
            # (by another process, within ``max_staleness``): an as-of read is
            # never stale, so ask the store.
            latest = await self.latest_version(refresh=True)

        async def readable(first: int, last: int, step: int) -> int | None:
            for version in range(first, last + step, step):
                if await time_of(version) is not None:
                    return version
            return None

        oldest = await self.oldest_version()
        first = await readable(oldest, latest, 1)
        first_time = None if first is None else await time_of(first)
        if first_time is None or first_time > instant:
            if oldest == 0 and first == 0:
                raise VersionNotFoundError(f"the catalog did not exist at {instant.isoformat()}")
            if first == oldest and first_time is not None:
                raise VersionNotFoundError(
                    f"history before {instant.isoformat()} has expired: the oldest version "
                    f"kept is {oldest}, committed at {first_time.isoformat()}"
                )
            damaged_to = latest if first is None else first - 1
            raise IntegrityError(
                f"the version current at {instant.isoformat()} cannot be read "
                f"(versions {oldest}..{damaged_to} are damaged)"
            )
        assert first is not None  # else first_time is None, refused above
        low, high = first, latest
        while low < high:
            mid = (low + high + 1) // 2
            # The nearest readable version in (low, mid], else in (mid, high].
            probe = await readable(mid, low + 1, -1)
            if probe is None:
                probe = await readable(mid + 1, high, 1)
            moment = None if probe is None else await time_of(probe)
            if probe is not None and moment is not None and moment <= instant:
                low = probe
            elif probe is not None and probe <= mid:
                high = probe - 1
            else:
                high = low if probe is None else min(high, probe - 1)
        if low < latest and await time_of(low + 1) is None:
            after = await readable(low + 1, latest, 1)
            raise IntegrityError(
                f"the version current at {instant.isoformat()} cannot be told: version "
                f"{low + 1} is damaged"
                + (f" (version {after} is the next that reads)" if after is not None else "")
            )
        return low

    async def records(self, ref: ShardRef | None) -> ShardRecords:
        """The records of one metadata shard, by id (empty for an empty shard)."""
        if ref is None:
            return ShardRecords.empty()

        async def load() -> ShardRecords:
            data = await self.store.get(ref.path)
            return await _decode_off_loop(data, lambda: decode_shard(data, ref))

        return await self.cache.get_or_load(ref.path, load, _shard_bytes, len)

    def cache_records(self, ref: ShardRef, data: bytes) -> None:
        """Remember a shard this process wrote, sparing a read."""
        # Opened from its own bytes, not from the parts it was encoded from: those
        # are views into older shards' buffers, which would then stay alive unseen
        # by the cache's byte count.
        records = ShardRecords.decode(data, ref.path)
        self.cache.put(ref.path, records, records.nbytes, len(records))

    async def xids(self, ref: ShardRef | None) -> dict[str, str]:
        """One external-id index shard: ``provider\\x1fid`` -> series id."""
        if ref is None:
            return {}

        async def load() -> dict[str, str]:
            data = await self.store.get(ref.path)
            return dict(decode_xid_shard(data, ref))

        return await self.cache.get_or_load(ref.path, load, lambda d: 256 + 120 * len(d))

    async def table_part(self, ref: TablePart) -> pa.Table:
        """The rows of one part of the metadata table."""

        async def load() -> pa.Table:
            data = await self.store.get(ref.path)
            return await _decode_off_loop(data, lambda: decode_part(data, ref))

        return await self.cache.get_or_load(ref.path, load, part_bytes)

    def cache_table_part(self, ref: TablePart, rows: pa.Table) -> None:
        """Remember a part this process wrote, sparing a read: its rows as encoded
        (contiguous, so the cache counts exactly the buffers it keeps)."""
        self.cache.put(ref.path, rows, part_bytes(rows))


async def _decode_off_loop(data: bytes, decode: Callable[[], T]) -> T:
    # Small shards decode faster than a thread hop costs; large ones must not stall the loop.
    if len(data) < 256 * 1024:
        return decode()
    return await asyncio.to_thread(decode)


@dataclass(frozen=True)
class Snapshot:
    """The catalog as of one version."""

    reader: StoreReader
    manifest: Manifest

    @property
    def version(self) -> int:
        return self.manifest.version

    async def record(self, series_id: str) -> SeriesRecord | None:
        """The series' record at this version, or None."""
        pending = self.manifest.records_pending
        i = bisect.bisect_left(pending, series_id, key=_entry_id)
        if i < len(pending) and pending[i].id == series_id:
            return pending[i].record
        shard = keys.meta_shard_of(self.manifest.bounds, series_id)
        return (await self.reader.records(self.manifest.shards[shard])).get(series_id)

    async def shard_records(self, index: int) -> ShardRecords:
        """The records of metadata shard ``index`` at this version: the shard's own,
        with the manifest's pending records of its id range applied."""
        manifest = self.manifest
        records = await self.reader.records(manifest.shards[index])
        return records.overlaid(pending_of_shard(manifest, index))

    async def owner_of(self, provider: str, external_id: str) -> str | None:
        """The series holding this external id at this version, or None."""
        key = xid_key(provider, external_id)
        shard = keys.shard_of(key, self.manifest.shard_count)
        return (await self.reader.xids(self.manifest.xid_shards[shard])).get(key)


def _entry_id(entry: PendingRecord) -> str:
    return entry.id


def pending_of_shard(manifest: Manifest, index: int) -> list[PendingRecord]:
    """The manifest's pending records that belong in shard ``index``, in id order."""
    pending = manifest.records_pending
    if not pending:
        return []
    bounds = manifest.bounds
    start = bisect.bisect_left(pending, bounds[index - 1], key=_entry_id) if index else 0
    end = bisect.bisect_left(pending, bounds[index], key=_entry_id) if index < len(bounds) else None
    return pending[start:end]
