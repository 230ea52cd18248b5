"""Integrity check of a whole store: ``fincat verify``.

Walks every live version (or only the latest), and checks that each manifest
parses, claims its own version and chains to its parent with non-decreasing
commit times; that every object it references exists with the recorded size and
checksum and decodes; that every observation file holds the rows and date bounds
its record says; that each series' derived fields (first and last date,
observation count) match its files; and that the metadata table and external-id
index (:mod:`.verify_index`) are in order and, at the latest version, hold exactly
what the records give. Objects that no version references are listed as orphans:
harmless leftovers of failed commits that ``fincat gc`` reclaims.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from catalog_store import keys, verify_index, verify_table
from catalog_store.datafiles import read_files, read_record
from catalog_store.errors import (
    IntegrityError,
    ObjectNotFoundError,
    StorageError,
    StorageUnavailableError,
    ValidationError,
    VersionNotFoundError,
)
from catalog_store.keys import checksum
from catalog_store.observations import date_ints
from catalog_store.records import (
    Manifest,
    SeriesRecord,
    ShardRef,
    encode_record,
    strictly_ascending,
)
from catalog_store.snapshot import StoreReader
from catalog_store.verify_report import Problem, VerifyReport

T = TypeVar("T")

Progress = Callable[[int, int], None]


def check_progress(progress: object) -> None:
    """A progress callback is a callable (or None); raises ValidationError on ``progress``."""
    if progress is not None and not callable(progress):
        raise ValidationError(
            f"must be a callable taking (done, total), not {type(progress).__name__}", "progress"
        )


class _Verifier:
    def __init__(self, reader: StoreReader, report: VerifyReport) -> None:
        self.reader = reader
        self.report = report
        self.seen: set[str] = set()
        #: Digests of the held records already checked (they stay held for versions).
        self.held_checked: set[str] = set()
        self.bad: set[str] = set()
        self.placed: set[tuple[str, str | None, str | None]] = set()
        self.misplaced: set[tuple[str, str | None, str | None]] = set()
        self.index = verify_index.IndexChecks(self)
        self.tables = verify_table.TableChecks(self)
        #: Observations recorded in each readable metadata shard, by path.
        self.observations: dict[str, int] = {}

    def problem(self, kind: str, key: str, detail: str, **where: Any) -> None:
        self.report.problems.append(Problem(kind, key, detail, **where))

    async def manifest(self, version: int, parent: Manifest | None) -> Manifest | None:
        key = keys.manifest_key(version)
        try:
            manifest = await self.reader.manifest(version)
        except VersionNotFoundError:
            if await self.expired(version):
                # A gc under retention expired it since this verify began: no damage.
                self.report.expired.append(version)
                return None
            self.problem("missing_manifest", key, "manifest is missing", version=version)
            return None
        except IntegrityError as exc:
            self.problem("bad_manifest", key, str(exc), version=version)
            return None
        except StorageError as exc:
            if isinstance(exc, StorageUnavailableError):
                raise  # the store, not this manifest: run verify again later
            # Refused to this reader (not permitted, an I/O error): no proof of damage,
            # which repair must not "mend" by restoring an older version over it.
            self.problem("unreadable_object", key, f"cannot be read: {exc}", version=version)
            return None
        if version > 0 and manifest.parent != version - 1:
            self.problem("broken_chain", key, f"parent is {manifest.parent}", version=version)
        if parent is not None and manifest.committed_at < parent.committed_at:
            self.problem("broken_chain", key, "committed before its parent", version=version)
        if len(manifest.xid_shards) != manifest.shard_count:
            self.problem("bad_manifest", key, "index shard list length differs", version=version)
        bounds = manifest.bounds
        if len(bounds) != len(manifest.shards) - 1 or not strictly_ascending(bounds):
            self.problem(
                "bad_manifest", key, "shard bounds do not order the shards", version=version
            )
        return manifest

    async def expired(self, version: int) -> bool:
        """Whether a gc under retention has expired ``version`` (since this check began)."""
        return version < await self.reader.oldest_version()

    async def check_version(self, manifest: Manifest) -> None:
        """Check what ``manifest`` names, unless a gc under retention expires its
        version meanwhile and deletes those objects under the check: the version is
        then listed as expired, not checked, and its missing objects are no damage.
        Nothing it named that failed to read counts as checked, so a kept version
        naming such an object still checks it (gc deletes none of those)."""
        try:
            await self.check_manifest(manifest)
        except (ObjectNotFoundError, IntegrityError):
            if not await self.expired(manifest.version):
                raise
            self.report.expired.append(manifest.version)
            return
        self.report.versions_checked += 1

    async def check_manifest(self, manifest: Manifest) -> None:
        shards = [ref for ref in manifest.shards if ref is not None]
        for ref in shards:
            await self.shard(ref, manifest.version)
        await self.index.shards(manifest)
        key = keys.manifest_key(manifest.version)
        placed = await self.placement(manifest)
        pending_series, pending_observations, sound = await self.pending(manifest)
        latest = manifest.version == self.report.latest_version
        # The table is compared shard by shard, cut at the bounds: only where the
        # shards hold what the bounds say.
        await self.tables.check(manifest, content=latest and sound and placed)
        if latest and sound and placed:
            self.report.external_ids_checked = await self.index.content(manifest)
        series = sum(ref.count for ref in shards) + pending_series
        if series != manifest.series_count:
            self.problem(
                "bad_manifest",
                key,
                f"series_count is {manifest.series_count}, shards hold {series}",
                version=manifest.version,
            )
        readable = all(ref.path in self.observations for ref in shards)
        if readable and pending_observations is not None:
            observations = sum(self.observations[ref.path] for ref in shards)
            observations += pending_observations
            if observations != manifest.observation_count:
                self.problem(
                    "bad_manifest",
                    key,
                    f"observation_count is {manifest.observation_count}, "
                    f"series hold {observations}",
                    version=manifest.version,
                )

    async def pending(self, manifest: Manifest) -> tuple[int, int | None, bool]:
        """Check the manifest's pending records as series; return what they add to the
        series and observations their shards hold (None: a shard is unreadable), and
        whether they make a view of the shards to compare the table with: in id
        order, each naming its own series, over readable shards."""
        version = manifest.version
        pending = manifest.records_pending
        sound = strictly_ascending([entry.id for entry in pending])
        if not sound:
            self.problem(
                "bad_manifest",
                keys.manifest_key(version),
                "pending records are not in id order",
                version=version,
            )
        series, observations = 0, 0
        for entry in pending:
            ref = manifest.shards[keys.meta_shard_of(manifest.bounds, entry.id)]
            stale = None
            if ref is not None:
                if ref.path in self.bad:
                    return series, None, False
                stale = (await self.reader.records(ref)).get(entry.id)
            series += (entry.record is not None) - (stale is not None)
            observations -= stale.observation_count if stale is not None else 0
            if entry.record is not None:
                if entry.record.id != entry.id:
                    sound = False
                    detail = f"pending record {entry.id!r} names {entry.record.id!r}"
                    key = keys.manifest_key(version)
                    self.problem("bad_manifest", key, detail, version=version)
                observations += entry.record.observation_count
                # Held records ride from version to version: check each state once.
                state = checksum(encode_record(entry.record))
                if state not in self.held_checked:
                    await self.series(entry.record, version)
                    self.held_checked.add(state)
        return series, observations, sound

    async def placement(self, manifest: Manifest) -> bool:
        """Each metadata shard holds only ids of its range (a lookup looks nowhere
        else); whether all of them do, and the bounds order them."""
        bounds = manifest.bounds
        if len(bounds) != len(manifest.shards) - 1 or not strictly_ascending(bounds):
            return False  # reported as bad_manifest already; no range to check against
        sound = True
        for i, ref in enumerate(manifest.shards):
            if ref is None or ref.path in self.bad:
                continue
            low = bounds[i - 1] if i else None
            high = bounds[i] if i < len(bounds) else None
            placing = (ref.path, low, high)
            if placing in self.placed:
                sound = sound and placing not in self.misplaced
                continue
            ids = (await self.reader.records(ref)).keys()
            self.placed.add(placing)
            if any((low is not None and k < low) or (high is not None and k >= high) for k in ids):
                self.misplaced.add(placing)
                sound = False
                self.problem(
                    "bad_manifest",
                    keys.manifest_key(manifest.version),
                    f"shard {ref.path} holds ids outside its range",
                    version=manifest.version,
                )
        return sound

    async def read(
        self,
        path: str,
        version: int,
        what: str,
        load: Callable[[], Awaitable[T]],
        **where: Any,
    ) -> T | None:
        """``load()``; None, and a problem reported the first time, if the object at
        ``path`` is missing or damaged. Counts each object checked once.

        Raises what ``load`` raised when ``version`` has expired meanwhile (see
        :meth:`check_version`): gc deletes what only expired versions name, and
        the object is then neither damaged nor checked."""
        new = path not in self.seen
        try:
            found = await load()
        except (ObjectNotFoundError, IntegrityError) as exc:
            if await self.expired(version):
                raise
            if isinstance(exc, ObjectNotFoundError):
                kind, detail = "missing_object", f"{what} is missing"
            else:
                kind, detail = "corrupt_object", str(exc)
        except StorageError as exc:
            if isinstance(exc, StorageUnavailableError):
                raise
            # Not permitted, a directory in its place, an I/O error: one object,
            # reported, rather than a verify (and a repair) that stops at it.
            kind, detail = "unreadable_object", str(exc)
        else:
            self.checked(path)
            return found
        self.checked(path)
        if new:
            self.problem(kind, path, detail, version=version, **where)
        self.bad.add(path)
        return None

    def checked(self, path: str) -> None:
        if path not in self.seen:
            self.seen.add(path)
            self.report.objects_checked += 1

    async def shard(self, ref: ShardRef, version: int) -> None:
        if ref.path in self.seen:
            return
        records = await self.read(ref.path, version, "shard", lambda: self.reader.records(ref))
        if records is None:
            return
        holding = sum(record.inline is not None for record in records.values())
        if (len(records), holding) != (ref.count, ref.inline):
            detail = "count of records, or of records holding rows, differs"
            self.problem("corrupt_object", ref.path, detail, version=version)
        self.observations[ref.path] = sum(r.observation_count for r in records.values())
        for record in records.values():
            await self.series(record, version)

    async def series(self, record: SeriesRecord, version: int) -> None:
        self.report.series_checked += 1
        healthy = True
        for file in record.files:
            if file.path in self.bad:
                healthy = False
                continue
            if file.path in self.seen:
                continue
            table = await self.read(
                file.path,
                version,
                "observation file",
                partial(read_files, self.reader, [file], record.frequency),
                series_id=record.id,
            )
            if table is None:
                healthy = False
                continue
            ints = date_ints(table)
            if table.num_rows != file.rows or (
                file.rows and (int(ints[0]) != file.lo or int(ints[-1]) != file.hi)
            ):
                self.problem(
                    "file_mismatch",
                    file.path,
                    "rows or date bounds differ from record",
                    version=version,
                    series_id=record.id,
                )
        if healthy:
            await self.derived(record, version)

    async def derived(self, record: SeriesRecord, version: int) -> None:
        inline = record.inline
        if inline is not None and (
            len(inline.dates) != len(inline.values)
            or not inline.dates
            or not strictly_ascending(inline.dates)
            or any(inline.dates[0] <= f.hi for f in record.files)
        ):
            self.problem(
                "derived_mismatch",
                record.id,
                "inline rows are empty, out of order, unmatched or not after every file",
                version=version,
                series_id=record.id,
            )
            return
        table = await read_record(self.reader, record, None, None)
        ints = date_ints(table)
        first = int(ints[0]) if len(ints) else None
        last = int(ints[-1]) if len(ints) else None
        if (first, last, table.num_rows) != (record.first, record.last, record.observation_count):
            self.problem(
                "derived_mismatch",
                record.id,
                f"record says first={record.first} last={record.last} "
                f"count={record.observation_count}; files give {first} {last} {table.num_rows}",
                version=version,
                series_id=record.id,
            )


async def verify(
    reader: StoreReader, latest_only: bool = False, progress: Progress | None = None
) -> VerifyReport:
    """Check the store; return a report (problems are reported, not raised).

    Raises only for a store that cannot be read at all (StorageError, FormatError).
    Safe while writers commit: it checks the versions that existed when it started.
    """
    report = VerifyReport()
    # A private reader: the caller's cache may hold objects decoded before they
    # were damaged, and verify must look at the bytes as they are now.
    reader = StoreReader(reader.store, cache_bytes=64 * 2**20, max_staleness=0.0)
    await reader.read_marker()
    # The hint first: a commit writes it after its manifest has landed, so a hint
    # read before the search names no version newer than the search finds, unless
    # manifests were deleted.
    hint = await reader.latest_hint()
    checker = _Verifier(reader, report)
    try:
        oldest = await reader.oldest_version()
    except IntegrityError as exc:
        # Where history starts is unknown, and so is which manifests are expired
        # ones a gc stopped part way left: nothing can be checked against it.
        checker.problem("bad_manifest", keys.RETENTION_FLOOR, f"{exc}; nothing else was checked")
        return report
    latest = await reader.latest_version(refresh=True)
    report.latest_version = latest
    if hint is not None and hint.proves_lost_after(latest):
        checker.problem(
            "missing_manifest",
            keys.manifest_key(hint.version),
            f"the manifests of versions {latest + 1}..{hint.version} are missing: the "
            f"latest hint names version {hint.version}, committed after version {latest}, "
            "the newest manifest the store holds",
            version=hint.version,
        )
    if oldest > latest:
        # gc would take every version for expired and delete what they reference.
        checker.problem(
            "bad_manifest",
            keys.RETENTION_FLOOR,
            f"names version {oldest}, after the newest version {latest}",
        )
        oldest = latest
    versions = [latest] if latest_only else list(range(oldest, latest + 1))
    parent: Manifest | None = None
    superseded: set[int] = set()
    for done, version in enumerate(versions, 1):
        manifest = await checker.manifest(version, parent)
        parent = manifest
        if manifest is not None:
            await checker.check_version(manifest)
            superseded.update(restored_over(manifest))
        if progress is not None:
            progress(done, len(versions))
    if not latest_only:
        await _orphans(reader, checker.seen, report)
    # A repair leaves the damaged versions in the history, and each object is
    # checked once, at the first version naming it: those the restored version
    # verified clean never reach a version after the repair.
    report.superseded = [p for p in report.problems if p.version in superseded]
    report.problems = [p for p in report.problems if p.version not in superseded]
    return report


def restored_over(manifest: Manifest) -> range:
    """The versions a repair commit took out of the catalog (none for any other)."""
    if len(manifest.changes) == 1 and manifest.changes[0][0] == "restore":
        restored = manifest.changes[0][1]
        if restored.isdigit():
            return range(int(restored) + 1, manifest.version)
    return range(0)


async def verify_version(reader: StoreReader, version: int) -> VerifyReport:
    """Check one version alone, bypassing caches (used by repair)."""
    report = VerifyReport(latest_version=version)
    fresh = StoreReader(reader.store, cache_bytes=64 * 2**20, max_staleness=0.0)
    checker = _Verifier(fresh, report)
    manifest = await checker.manifest(version, None)
    if manifest is not None:
        await checker.check_version(manifest)
    return report


async def _orphans(reader: StoreReader, referenced: set[str], report: VerifyReport) -> None:
    for prefix in (keys.META_DIR, keys.XID_DIR, keys.DATA_DIR):
        async for info in reader.store.list(f"{prefix}/"):
            if info.key not in referenced and keys.is_own_object(info.key):
                report.orphans.append(info.key)
