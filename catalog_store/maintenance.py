"""Garbage collection: ``fincat gc``.

gc deletes only objects that no version references and that are older than a
grace period: a commit in flight has written its files but not yet its manifest,
and its files must survive until it lands. Versions themselves are history users
rely on (as-of reads, revisions), so by default gc keeps every version; with a
retention period it expires the versions superseded before it (the state as of
the cutoff stays readable) by raising the floor ``_manifests/_floor``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from catalog_store import keys
from catalog_store.errors import (
    CatalogStoreError,
    IntegrityError,
    ObjectNotFoundError,
    StorageFullError,
    ValidationError,
    VersionNotFoundError,
)
from catalog_store.restore_marker import restore_markers
from catalog_store.snapshot import StoreReader
from catalog_store.verify import restored_over

T = TypeVar("T")

DEFAULT_GRACE = dt.timedelta(hours=1)


@dataclass
class GcReport:
    """What gc found unreferenced, and what it deleted (nothing on a dry run)."""

    dry_run: bool
    referenced: int = 0
    candidates: list[str] = field(default_factory=list)
    too_young: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    #: Temp files of writers that died mid-write (local disk), removed likewise.
    partial_writes: int = 0
    #: Versions whose manifests expired under the retention policy, and the floor.
    expired_versions: int = 0
    oldest_version: int = 0
    #: Old versions whose manifests could not be read, passed over; and the
    #: unreferenced objects kept because they were written around one of them.
    damaged_versions: list[int] = field(default_factory=list)
    kept_near_damage: int = 0
    #: The markers of repairs restoring an older version: while there are any,
    #: nothing is deleted. And the markers of repairs that died, removed.
    restores_in_progress: list[str] = field(default_factory=list)
    stale_restore_markers: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "referenced": self.referenced,
            "unreferenced_old_enough": len(self.candidates),
            "unreferenced_too_young": self.too_young,
            "deleted": self.deleted,
            "bytes_freed": self.bytes_freed,
            "partial_writes": self.partial_writes,
            "expired_versions": self.expired_versions,
            "oldest_version": self.oldest_version,
            "damaged_versions": self.damaged_versions,
            "kept_near_damage": self.kept_near_damage,
            "restores_in_progress": self.restores_in_progress,
            "stale_restore_markers": self.stale_restore_markers,
        }


@dataclass
class Referenced:
    """What gc must keep: the keys kept versions reference, and time windows around
    old versions whose manifests cannot be read (see :func:`referenced_objects`)."""

    keys: set[str] = field(default_factory=set)
    #: Versions passed over as damaged, and (after, until) around each: an object
    #: written then may be one that only the damaged version references.
    damaged: list[int] = field(default_factory=list)
    windows: list[list[dt.datetime | None]] = field(default_factory=list)

    def near_damage(self, modified: dt.datetime) -> bool:
        return any(
            (after is None or modified > after - DAMAGE_MARGIN)
            and (until is None or modified <= until + DAMAGE_MARGIN)
            for after, until in self.windows
        )


#: Slack around a damaged version's window, for clocks that disagree.
DAMAGE_MARGIN = dt.timedelta(hours=1)


async def referenced_objects(reader: StoreReader, latest: int, oldest: int = 0) -> Referenced:
    """Every object key any version from ``oldest`` to ``latest`` references.

    A read is tried twice, since a body cut short in transit fails its checksum
    like damage does; a store that fails raises its StorageError. Versions a repair
    took out of the catalog are passed over: their damage is known. An older
    version whose manifest stays unreadable is passed over too, so that old damage
    does not stop gc for good, but every object written between its readable
    neighbours is kept (those only it references were written then). The newest
    version's manifest, or a shard, that cannot be read stops gc (GcRefusedError):
    the objects they name could have been written at any time.
    Versions are read newest first, so each repair is seen before what it replaced.
    """
    found = Referenced()
    superseded: set[int] = set()
    newer: dt.datetime | None = None  # commit time of the next newer readable version
    for version in range(latest, oldest - 1, -1):
        try:
            manifest = await _readable(
                reader, version, superseded, partial(reader.manifest, version)
            )
        except GcRefusedError:
            if version == latest:
                raise
            found.damaged.append(version)
            found.windows.append([None, newer])
            continue
        if manifest is None:
            continue
        for window in found.windows:
            if window[0] is None:
                window[0] = manifest.committed_at
        newer = manifest.committed_at
        superseded.update(restored_over(manifest))
        seen = found.keys
        for ref in manifest.xid_shards:
            if ref is not None:
                seen.add(ref.path)
        seen.update(part.path for part in manifest.table or ())
        for entry in manifest.records_pending:
            if entry.record is not None:
                seen.update(f.path for f in entry.record.files)
        for ref in manifest.shards:
            if ref is None or ref.path in seen:
                continue
            seen.add(ref.path)  # kept even when damaged: a manifest names it
            records = await _readable(reader, version, superseded, partial(reader.records, ref))
            if records is None:
                continue
            for record in records.values():
                seen.update(f.path for f in record.files)
    return found


async def _readable(
    reader: StoreReader,
    version: int,
    superseded: set[int],
    read: Callable[[], Awaitable[T]],
) -> T | None:
    """What ``read`` returns; None when ``version`` is out of the catalog (expired by
    a concurrent gc, or taken out by a repair) and so references nothing gc keeps.
    Raises GcRefusedError when it cannot be read (a damaged object is read twice
    before that: see :func:`catalog_store.cache.load_checked`)."""
    try:
        return await read()
    except (VersionNotFoundError, IntegrityError, ObjectNotFoundError) as exc:
        if version in superseded or version < await reader.oldest_version():
            return None
        raise GcRefusedError(
            f"version {version} cannot be read ({exc}), so gc cannot tell which "
            "objects it holds and deletes nothing; run fincat verify, then "
            "fincat repair if it finds damage"
        ) from exc


async def collect_garbage(
    reader: StoreReader,
    grace: dt.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    retain: dt.timedelta | None = None,
) -> GcReport:
    """Delete unreferenced objects older than ``grace`` (never younger: in flight).

    With ``retain``, versions superseded before ``now - retain`` (and before
    ``now - grace``) expire first (see :func:`expire_versions`); by default every
    version is kept. Safe while writers
    commit: an object written after gc started is younger than the grace period,
    and the newest version, and every version after the retention cutoff, is kept.
    A repair's restore names old objects instead: while one is in progress, gc
    deletes nothing (see catalog_store/restore_marker.py).
    """
    _check_period(grace, "grace")
    if retain is not None:
        _check_period(retain, "retain")
    report = GcReport(dry_run=dry_run)
    now = now or dt.datetime.now(dt.UTC)
    latest = await reader.latest_version(refresh=True)
    oldest = await reader.oldest_version()
    if oldest > latest:
        # Every version would count as expired, and everything they reference go.
        raise GcRefusedError(
            f"{keys.RETENTION_FLOOR} names version {oldest}, after the newest version "
            f"{latest}, so gc deletes nothing; write the oldest version kept into it"
        )
    if retain is not None:
        # Never a version superseded within the grace period: a commit in flight
        # checks, once its manifest is written, whether it fell below the floor
        # (see Committer._expired); a floor raised past it after it landed, by a
        # successor built on it, would have it report a landed commit as failed.
        kept_from = _ago(now, max(retain, grace))
        try:
            oldest = await expire_versions(reader, kept_from, latest, oldest, report)
        except StorageFullError as exc:
            # Writing the floor takes space; deleting does not. What gc may delete
            # without raising the floor goes first, and the floor is tried again.
            first = await collect_garbage(reader, grace, dry_run, now, progress)
            report.deleted, report.bytes_freed = first.deleted, first.bytes_freed
            report.partial_writes = first.partial_writes
            try:
                oldest = await expire_versions(reader, kept_from, latest, oldest, report)
            except StorageFullError:
                raise StorageFullError(
                    f"{exc}; gc deleted {first.deleted} unreferenced objects "
                    f"({first.bytes_freed} bytes) first, which left too little space to "
                    "write the retention floor: free space on the storage, then run gc again"
                ) from exc
    # Once the floor is raised: a repair may be restoring an older version, whose
    # objects no version from the floor on names and no grace period protects
    # (they are old). Either its marker is listed here, and nothing is deleted,
    # or it read the floor raised and restores nothing, or it had landed and
    # removed its marker already, and the newest version, read next, is its
    # restore (see catalog_store/restore_marker.py).
    report.restores_in_progress, stale_markers = await restore_markers(reader.store, now)
    latest = await reader.latest_version(refresh=True)
    report.oldest_version = oldest
    referenced = await referenced_objects(reader, latest, oldest)
    report.referenced = len(referenced.keys)
    report.damaged_versions = referenced.damaged
    cutoff = _ago(now, grace)
    sizes: dict[str, int] = {}
    for prefix in (keys.META_DIR, keys.XID_DIR, keys.DATA_DIR):
        async for info in reader.store.list(f"{prefix}/"):
            if info.key in referenced.keys or not keys.is_own_object(info.key):
                continue  # in use, or not ours (a catalog nested under this one)
            if info.modified is None or info.modified > cutoff:
                report.too_young += 1
                continue
            if referenced.near_damage(info.modified):
                report.kept_near_damage += 1
                continue
            report.candidates.append(info.key)
            sizes[info.key] = info.size
    swept = await reader.store.sweep_partial_writes(cutoff, dry_run=dry_run)
    report.partial_writes += len(swept)
    if not dry_run:
        report.bytes_freed += sum(info.size for info in swept)
        for key in stale_markers:
            await reader.store.delete(key)
        report.stale_restore_markers = len(stale_markers)
        if report.restores_in_progress:
            return report  # what they restore may be among the candidates
        for done, key in enumerate(report.candidates, 1):
            await reader.store.delete(key)
            report.deleted += 1
            report.bytes_freed += sizes[key]
            if progress is not None:
                progress(done, len(report.candidates))
    return report


def _ago(now: dt.datetime, period: dt.timedelta) -> dt.datetime:
    """``period`` before ``now``, or the earliest instant for a period reaching past
    it (``timedelta.max``: keep everything)."""
    try:
        return now - period
    except OverflowError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def _check_period(period: dt.timedelta, name: str) -> None:
    if not isinstance(period, dt.timedelta):
        raise ValidationError(f"must be a datetime.timedelta, not {type(period).__name__}", name)
    if period < dt.timedelta(0):
        raise ValidationError("must not be negative", name)


async def expire_versions(
    reader: StoreReader, before: dt.datetime, latest: int, oldest: int, report: GcReport
) -> int:
    """Make the version current at ``before`` the oldest kept; return the new floor.

    The floor (``_manifests/_floor``) is written first, so readers treat older
    versions as expired before any of their manifests goes; then those manifests
    are deleted oldest first. A gc that dies part-way leaves only manifests below
    the floor, which the next run deletes. The floor only rises: after deleting,
    gc reads it again and restores its own floor if a concurrent gc lowered it.
    """
    try:
        floor = await reader.version_at(before)
    except VersionNotFoundError:
        floor = oldest  # nothing was superseded before the cutoff
    floor = max(min(floor, latest), oldest)
    stale = sorted(
        version
        for info in [i async for i in reader.store.list(f"{keys.MANIFEST_DIR}/")]
        if (version := keys.manifest_version(info.key)) is not None and version < floor
    )
    # Versions are numbered without gaps from the old floor: those below the new one
    # expire. Not the manifests deleted, among which may be one a writer left below
    # the floor (its base expired as it wrote), which was never a version.
    report.expired_versions = floor - oldest
    report.oldest_version = floor
    if report.dry_run:
        return floor
    while True:
        # Against the floor as recorded: one a late write lowered is written again.
        if floor > await reader.recorded_floor():
            await reader.store.put(keys.RETENTION_FLOOR, str(floor).encode())
        for version in stale:
            await reader.store.delete(keys.manifest_key(version))
        if await reader.oldest_version() >= floor:
            return floor
        stale = []  # lowered by a concurrent gc: raise it again


class GcRefusedError(CatalogStoreError):
    """gc cannot read a version it keeps, so it deletes nothing."""
