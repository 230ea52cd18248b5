"""Repair: ``fincat repair``.

repair never deletes anything. When the newest version is damaged (its manifest
unreadable or an object it references missing or corrupt), it commits a copy of
the newest version that verifies as a new version, so readers see whole data
again, and reports the versions whose changes are no longer current. The series
the copy changes back are changed by that commit like by any other: their records
carry its version, linked to the states they had before it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import msgspec

from catalog_store import keys
from catalog_store.changes import ChangeSet, Staged
from catalog_store.commit import Committer, Draft
from catalog_store.datafiles import read_record
from catalog_store.errors import (
    CatalogMovedOnError,
    CatalogStoreError,
    IntegrityError,
    ObjectNotFoundError,
    StorageError,
    StorageFullError,
    StoragePermissionError,
    StorageUnavailableError,
    VersionNotFoundError,
)
from catalog_store.hint import LatestHint, encode_hint
from catalog_store.records import Manifest, SeriesRecord
from catalog_store.restore_marker import RestoreMarker
from catalog_store.snapshot import Snapshot, StoreReader
from catalog_store.verify import verify_version
from catalog_store.verify_report import VerifyReport
from catalog_store.vintages import previous_state

#: How many times repair looks for the newest version that verifies, when a gc
#: under retention expires the versions it is checking meanwhile.
_REPAIR_LOOKS = 5


@dataclass
class RepairReport:
    """The outcome of a repair: the version restored, and what is no longer current."""

    latest_before: int
    healthy_version: int | None
    new_version: int | None = None
    lost_versions: list[int] = field(default_factory=list)
    lost_changes: list[tuple[str, str]] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "latest_before": self.latest_before,
            "healthy_version": self.healthy_version,
            "new_version": self.new_version,
            "lost_versions": self.lost_versions,
            "lost_changes": [list(c) for c in self.lost_changes],
            "message": self.message,
        }


async def repair(committer: Committer) -> RepairReport:
    """Move the catalog back to the newest version that verifies, as a new commit.

    Does nothing when the newest version verifies. Refuses (RepairRefusedError)
    when no version can be proven whole, and (CatalogMovedOnError) when a commit
    lands, or a gc under retention expires the version to restore, while it
    works. Raises RestoreAtRiskError when its restore landed but took so long
    that a gc may delete objects it names. Rewrites the "latest" hint unless it
    names the newest version already (on a store it cannot write, it says so
    instead).
    """
    reader = committer.reader
    hint = await reader.latest_hint()  # before the search: see verify
    good: int | None = None
    for _look in range(_REPAIR_LOOKS):
        # The floor first: the reader then searches past a latest version it expired.
        oldest = await reader.oldest_version()
        latest = await reader.latest_version(refresh=True)
        if oldest > latest:
            # No version is kept by that floor, so none could be checked: the floor
            # is at fault, not the versions, and a restore would not mend it.
            raise RepairRefusedError(
                f"{keys.RETENTION_FLOOR} names version {oldest}, after the newest version "
                f"{latest}; write the oldest version kept into it "
                "(docs/storage-format.md, Retention floor)"
            )
        for version in range(latest, oldest - 1, -1):
            checked = await verify_version(reader, version)
            if checked.expired:
                break  # a gc under retention moved the floor past it: look again
            _refuse_unreadable(checked, version)
            if checked.ok:
                good = version
                break
        else:
            break  # every version kept was checked
        if good is not None:
            break
    report = RepairReport(latest_before=latest, healthy_version=good)
    if good is None:
        raise RepairRefusedError("no version of this catalog verifies; nothing safe to restore")
    gone = hint is not None and hint.proves_lost_after(latest)
    if good == latest or gone:
        report.message = f"version {latest} verifies; nothing to repair"
        if hint is not None and gone:
            # Nothing to restore them from. A restore committed now would take the
            # first of their numbers, and the backup of that commit could no longer
            # be put back: so nothing is committed, even over older damage. The hint
            # is rewritten below, so that verify stops reporting what this report
            # has now told, and the next repair restores.
            report.lost_versions = list(range(latest + 1, hint.version + 1))
            damaged = "verifies" if good == latest else "is damaged"
            report.message = (
                f"version {latest} {damaged}; the manifests of versions "
                f"{latest + 1}..{hint.version} are gone, and their commits with them: "
                "restore them from a backup of the store, if there is one, before "
                "any new commit takes their numbers"
            )
            if good != latest:
                report.message += (
                    f"; nothing was committed: run repair again to restore version "
                    f"{good}, the newest that verifies"
                )
        if hint != LatestHint(latest, attested=True):
            try:
                await reader.store.put(keys.LATEST_HINT, encode_hint(latest), durable=False)
            except (StoragePermissionError, StorageFullError) as exc:
                # A healthy store that cannot be written (read-only, a role that may
                # only read) is still healthy: say so rather than fail.
                report.message += f"; the latest hint could not be rewritten: {exc}"
        return report
    report.lost_versions = list(range(good + 1, latest + 1))
    try:
        target = await reader.manifest(good)
        newest_time = target.committed_at
        newest_lost: Manifest | None = None
        for version in report.lost_versions:
            try:
                lost = await reader.manifest(version)
            except CatalogStoreError:
                continue
            report.lost_changes.extend(lost.changes)
            newest_time = max(newest_time, lost.committed_at)
            newest_lost = lost
        # The series whose state the restore changes back, and the state each links to.
        links = {} if newest_lost is None else await changed_back(reader, target, newest_lost)
    except (VersionNotFoundError, ObjectNotFoundError, IntegrityError):
        await _still_kept(reader, good, latest)  # gone under retention: say so
        raise
    message = f"repair: restore version {good}; versions {good + 1}..{latest} are no longer current"
    staged = Staged()

    async def build(base: Any, commit_id: str, at: dt.datetime) -> Draft:
        if base.version != latest:
            # A commit landed since the versions were verified: restoring over it
            # would undo a change its writer was told had landed.
            raise CatalogMovedOnError(
                f"the catalog moved on to version {base.version} during the repair "
                f"of version {latest}; run repair again"
            )
        await _still_kept(reader, good, latest)
        # The healthy version's state, built on as if it were the newest: each series
        # changed back gets a new state of this commit, as any commit changing it does.
        healthy = Snapshot(reader, msgspec.structs.replace(target, version=base.version))
        changes = ChangeSet(healthy, commit_id, at, staged)
        for series_id, link in links.items():
            record = await changes.get(series_id)
            assert record is not None  # links name only series of the healthy version
            new = msgspec.structs.replace(
                record, version=changes.version, updated_at=at, previous_version=link
            )
            await changes.put(new, "restore", record)
        draft = await changes.finish(message)
        # One change, naming the version restored: what verify and gc look for.
        restored = msgspec.structs.replace(
            draft.manifest, changes=[("restore", str(good))], change_count=1
        )
        return Draft(restored, draft.write_objects)

    def stand_in(version: int) -> Manifest:
        # The newest manifest is itself the damage: build on its number alone, and
        # after the newest commit time known, so that commit times never go back.
        return msgspec.structs.replace(target, version=version, committed_at=newest_time)

    marker = RestoreMarker(reader.store, good)
    await marker.write()  # before the floor is read: see catalog_store/restore_marker.py
    try:
        landed = await committer.commit(build, stand_in)
    finally:
        await marker.remove()
    report.new_version = landed.version
    report.message = message
    if marker.outlived():
        raise RestoreAtRiskError(report, "it took longer than gc honours a restore's marker")
    return report


async def _still_kept(reader: StoreReader, good: int, latest: int) -> None:
    """Raise CatalogMovedOnError, having committed nothing, when a gc under retention
    has expired ``good``, the version to restore: gc deletes the objects that only
    expired versions name, and a restore naming them would be a newest version that
    cannot be read. Once the restore's marker is written, a gc that raises the
    floor later deletes nothing while it is there."""
    if good < await reader.oldest_version():
        raise CatalogMovedOnError(
            f"a gc under retention expired version {good}, the newest that verified, "
            f"during the repair of version {latest}; run repair again"
        )


def _refuse_unreadable(checked: VerifyReport, version: int) -> None:
    """RepairRefusedError for an object the store would not let this reader read
    (not permitted, an I/O error): that proves no damage, and a restore would roll
    every later change back over a catalog that may be whole (a loader's umask, a
    bucket policy that denies this account ``data/``)."""
    for problem in checked.problems:
        if problem.kind == "unreadable_object":
            raise RepairRefusedError(
                f"version {version}: {problem.key} cannot be read ({problem.detail}); "
                "repair restores over damage it can prove only: make it readable (or "
                "remove it, if it is lost) and run verify again"
            )


async def changed_back(
    reader: StoreReader, healthy: Manifest, lost: Manifest
) -> dict[str, int | None]:
    """The series whose state a restore of ``healthy`` over ``lost`` (the newest
    version after it that reads) changes, each with the ``previous_version`` its
    restored record gets: the version of the state it had before the restore.

    A series is changed back when its record at ``lost`` is another state (another
    version) or is gone. Only shards ``lost`` does not share with ``healthy``, and
    the records either holds in its manifest, can hold such a series. A record that
    cannot be read at ``lost`` showed no other state to any read, and is left as it
    is. The objects are read as they are now, not as a cache holds them.
    """
    fresh = StoreReader(reader.store, cache_bytes=64 * 2**20, max_staleness=0.0)
    floor = await fresh.oldest_version()
    before = Snapshot(fresh, lost)
    after = Snapshot(fresh, healthy)
    shared = {ref.path for ref in lost.shards if ref is not None}
    links: dict[str, int | None] = {}
    seen: set[str] = set()

    async def compare(record: SeriesRecord) -> None:
        seen.add(record.id)
        try:
            then = await before.record(record.id)
        except (IntegrityError, ObjectNotFoundError):
            return
        if then is None:
            links[record.id] = None  # deleted since: the restore creates it again
        elif then.version != record.version:
            links[record.id] = await _readable_state(fresh, then, record, floor)

    for index, ref in enumerate(healthy.shards):
        if ref is not None and ref.path not in shared:
            for record in (await after.shard_records(index)).values():
                await compare(record)
    for entry in [*healthy.records_pending, *lost.records_pending]:
        if entry.id not in seen and (held := await after.record(entry.id)) is not None:
            await compare(held)
    return links


async def _readable_state(
    reader: StoreReader, state: SeriesRecord, healthy: SeriesRecord, floor: int
) -> int | None:
    """The version of the newest state of a series, from ``state`` back to the one
    ``healthy`` holds, that revisions can read whole (its record at its own version,
    and its rows); None when the series did not exist then.

    A state whose objects are damaged is passed over: no read shows it, and linking
    to it would make every revision history of the series fail. When the states
    before one cannot be told, the healthy one is all that is known.
    """
    current: SeriesRecord | None = state
    while current is not None and current.version > healthy.version:
        if await _reads_whole(reader, current):
            return current.version
        try:
            current = await previous_state(reader, current, floor)
        except (IntegrityError, ObjectNotFoundError, VersionNotFoundError):
            return healthy.version
    # None: created after the healthy version (deleted, then created again).
    return None if current is None else healthy.version


async def _reads_whole(reader: StoreReader, state: SeriesRecord) -> bool:
    """Whether a state reads as revisions read it: the record at its own version,
    then all its rows."""
    try:
        manifest = await reader.manifest(state.version)
        held = await Snapshot(reader, manifest).record(state.id)
        if held is None or held.version != state.version:
            return False
        await read_record(reader, held, None, None)
    except (IntegrityError, ObjectNotFoundError, VersionNotFoundError):
        return False
    except StorageError as exc:
        if isinstance(exc, StorageUnavailableError):
            raise  # the store, not the state: repair again later
        # Not permitted, an I/O error: no proof of damage (see _refuse_unreadable).
        raise RepairRefusedError(
            f"{exc}; repair restores over damage it can prove only: make it readable "
            "and run repair again"
        ) from exc
    return True


class RepairRefusedError(CatalogStoreError):
    """repair cannot prove any version whole, so it changes nothing."""


class RestoreAtRiskError(CatalogStoreError):
    """repair committed its restore (``report.new_version``), but a gc under retention
    may delete objects it names: the restore took so long that gc may have stopped
    honouring its marker. Run ``fincat verify`` once any gc has finished, and repair
    again if it reports damage."""

    def __init__(self, report: RepairReport, why: str) -> None:
        super().__init__(
            f"repair committed version {report.new_version}, which restores version "
            f"{report.healthy_version}, but {why}: a gc may delete objects it names; run "
            "fincat verify once that gc has finished, and fincat repair if it finds damage"
        )
        #: What repair did, as it would have returned it.
        self.report = report
