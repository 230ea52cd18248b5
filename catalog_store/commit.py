"""The commit protocol: immutable files first, then put-if-absent of manifest N+1.

Whoever creates manifest ``N+1`` first has committed. A loser reloads, rebuilds its
changes on the new state (each operation re-checks its own preconditions and raises
a ConflictError when they no longer hold), and tries ``N+2``. This module holds the
one retry loop of the engine: backoff with full jitter, bounded in attempts and in
time. Every manifest carries a commit id, so a commit whose conditional put landed
but whose response was lost is recognised when it is read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NoReturn

from catalog_store import keys
from catalog_store.errors import (
    AlreadyExistsError,
    CatalogClosedError,
    CatalogStoreError,
    CommitRetriesExhaustedError,
    CommitStateUnknownError,
    FormatError,
    IntegrityError,
    ObjectNotFoundError,
    StorageError,
    StorageUnavailableError,
    VersionNotFoundError,
)
from catalog_store.hint import encode_hint
from catalog_store.records import (
    Manifest,
    StoreMarker,
    decode_manifest,
    encode_manifest,
    encode_marker,
)
from catalog_store.snapshot import Snapshot, StoreReader
from catalog_store.tasks import abandoned, outcome_seen

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Draft:
    """A manifest not yet committed, and the writes of the new objects it names."""

    manifest: Manifest
    #: Writes the immutable objects (with :meth:`Store.put_new`); the manifest is
    #: created only after it has returned, so no version names a missing object.
    #: None when the manifest names no new object.
    write_objects: Callable[[], Awaitable[None]] | None = None


#: Builds the draft of ``base.version + 1`` from a base snapshot, without writing;
#: it raises ConflictError (or another typed error) to give up.
Builder = Callable[[Snapshot, str, dt.datetime], Awaitable[Draft]]


@dataclass(frozen=True)
class RetryPolicy:
    """Limits of the commit retry loop."""

    max_attempts: int = 200
    max_seconds: float = 120.0
    base_delay: float = 0.002
    max_delay: float = 0.2

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff (uniform in [0, min(cap, base * 2^n)])."""
        return random.uniform(0.0, min(self.max_delay, self.base_delay * 2 ** min(attempt, 16)))


@dataclass
class CommitStats:
    """Counters a process can export as metrics."""

    commits: int = 0
    lost_races: int = 0
    retries: int = 0
    unknown_outcomes: int = 0
    gave_up: int = 0
    durations: list[float] = field(default_factory=list)

    def counters(self) -> dict[str, int]:
        """What a metrics exporter shows of the commits (``AsyncCatalog.stats``)."""
        return {
            "commits": self.commits,
            "commit_lost_races": self.lost_races,
            "commit_retries": self.retries,
            "commit_unknown_outcomes": self.unknown_outcomes,
            "commit_gave_up": self.gave_up,
        }


#: The resolution of a commit time as a manifest records it (RFC 3339 with
#: microseconds): the least step from one version's time to the next.
TICK = dt.timedelta(microseconds=1)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def commit_time(parent: Manifest) -> dt.datetime:
    """The time of a commit on ``parent``: this machine's clock, but always later
    than the parent's time, so that no two versions share an instant even when
    writers' clocks disagree (an as-of read of that instant could show only one)."""
    return max(utc_now(), parent.committed_at + TICK)


async def _settled(write: Awaitable[None]) -> None:
    """Await a commit's conditional write. A cancellation meanwhile (a timeout around
    the call, a cancelled task, Ctrl-C in a script) first waits until the write has
    landed or failed, within the store's deadline: when the cancellation goes on,
    the commit's outcome is fixed, and no write of it lands afterwards. (A local
    store's worker thread, or a request already sent to S3, would finish it anyway.)
    So do further cancellations: one that stopped the wait let the write land after
    the caller had been told of the cancellation, and had found it absent. Only a
    call the caller abandoned (a second Ctrl-C in a script, which is to be raised
    at once) cancels the write itself, and goes on without knowing its outcome.
    """
    task = asyncio.ensure_future(write)
    # Its error is the caller's to see; once the call is cancelled, nobody's.
    task.add_done_callback(outcome_seen)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            if asyncio.current_task() in abandoned:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.shield(task)
        raise


async def initialise(reader: StoreReader, shard_count: int) -> bool:
    """Create version 0 of an empty catalog, then the format marker, each with
    put-if-absent; return whether this call's version 0 is the one that stands
    (else another initialiser's won, with its own shard count).

    In that order a marker always means version 0 exists, and when several
    processes initialise at once the marker is derived from whichever version 0
    won, so every initialiser writes the same marker.
    """
    empty = Manifest(
        version=0,
        parent=None,
        commit_id=uuid.uuid4().hex,
        committed_at=utc_now(),
        message="initialise catalog",
        shard_count=shard_count,
        shards=[None],
        xid_shards=[None] * shard_count,
        table=[],
    )
    with contextlib.suppress(AlreadyExistsError):
        await reader.store.put_if_absent(keys.manifest_key(0), encode_manifest(empty))
    first = await reader.manifest(0)
    created = first.commit_id == empty.commit_id  # ours, or a landed write of ours
    marker = StoreMarker(
        store_id=first.commit_id, created_at=first.committed_at, shard_count=first.shard_count
    )
    with contextlib.suppress(AlreadyExistsError):
        await reader.store.put_if_absent(keys.FORMAT_MARKER, encode_marker(marker))
    await reader.read_marker()
    return created


class Committer:
    """Runs commits against one store through its reader."""

    def __init__(self, reader: StoreReader, policy: RetryPolicy | None = None) -> None:
        self.reader = reader
        self.store = reader.store
        self.policy = policy or RetryPolicy()
        self.stats = CommitStats()
        #: Set when its catalog is closed: every call then raises CatalogClosedError.
        self.closed = False
        #: The one task writing the "latest" hint, and the versions it is to write
        #: and has written: commits landing meanwhile raise the first, and the task
        #: writes the newest once more. Two writes at once raced, and the older
        #: could be left as the hint.
        self._hint_task: asyncio.Task[None] | None = None
        self._hint_wanted = -1
        self._hint_done = -1

    async def commit(
        self, build: Builder, stand_in: Callable[[int], Manifest] | None = None
    ) -> Manifest:
        """Commit what ``build`` makes, retrying lost races; return the landed manifest.

        ``stand_in`` gives the base to build on, by version, when the newest
        manifest cannot be read whole: only a repair, whose build needs no more of
        its base than the version number, commits over the damage it repairs.

        Raises what ``build`` raises (ConflictError and subclasses when a
        precondition no longer holds; nothing is then visible),
        CommitRetriesExhaustedError when the limits are reached,
        CommitStateUnknownError when a write failed and the outcome could not be
        read back, and StorageError for permanent storage failures.
        """
        self.check_open()
        commit_id = uuid.uuid4().hex
        started = time.monotonic()
        unknown: set[int] = set()
        try:
            return await self._attempts(build, commit_id, started, unknown, stand_in)
        except (StorageError, IntegrityError) as exc:
            if not unknown:
                raise
            # A write of ours may have landed: whatever failed since, that decides.
            landed = await self._settle_unknown(unknown, commit_id)
            if landed is not None:
                return self._landed(landed, started)
            if not unknown:
                raise  # every candidate version is proven not ours
            self.stats.gave_up += 1
            raise CommitStateUnknownError(
                f"commit {commit_id}: outcome of version(s) {sorted(unknown)} unknown; "
                f"then {type(exc).__name__}: {exc}",
                commit_id,
                sorted(unknown),
            ) from exc

    def check_open(self) -> None:
        if self.closed:
            raise CatalogClosedError("this catalog is closed")

    async def _attempts(
        self,
        build: Builder,
        commit_id: str,
        started: float,
        unknown: set[int],
        stand_in: Callable[[int], Manifest] | None,
    ) -> Manifest:
        attempt = 0
        storage_failure: StorageUnavailableError | None = None
        while True:
            attempt += 1
            landed = await self._settle_unknown(unknown, commit_id)
            if landed is not None:
                return self._landed(landed, started)
            version = -1
            objects_written = False
            try:
                # First attempt: build on the newest version we know of, without a
                # probe. If it is stale, put-if-absent of its successor fails and
                # the retry looks again; the protocol, not the probe, makes it safe.
                known = self.reader.known_latest() if attempt == 1 else None
                base = await self._base(known, stand_in)
                latest = base.version
                version = latest + 1
                if any(v <= latest for v in unknown):
                    # A version we may have written exists but could not be read
                    # back; building on it could apply this commit twice.
                    raise StorageUnavailableError(
                        f"cannot read back version(s) {sorted(unknown)} to settle the outcome"
                    )
                # From the base of this attempt: a retry on a newer base gets a newer time.
                committed_at = commit_time(base.manifest)
                try:
                    draft = await build(base, commit_id, committed_at)
                except CatalogStoreError as exc:
                    # A precondition judged on an unprobed base may be judged on a
                    # stale one: it stands only if that base is still the newest,
                    # and still held. A refresh checks the latter at most once a
                    # second, and gc under retention may have expired the base and
                    # its successors meanwhile: "nothing new" after it is no proof.
                    if (
                        known is None
                        or isinstance(exc, StorageError)
                        or (
                            await self.reader.latest_version(refresh=True) == latest
                            and await self.reader.holds(latest)
                        )
                    ):
                        raise
                    continue

                async def write_objects(writes: Callable[[], Awaitable[None]]) -> None:
                    nonlocal objects_written
                    await writes()
                    objects_written = True

                key, data = keys.manifest_key(version), encode_manifest(draft.manifest)
                try:
                    if draft.write_objects is None:
                        # Nothing to wait for: the plain conditional create, which
                        # a local store does in one trip to its worker thread.
                        objects_written = True
                        await _settled(self.store.put_if_absent(key, data))
                    else:
                        ready = write_objects(draft.write_objects)
                        await _settled(self.store.put_if_absent_after(key, data, ready))
                    if not await self._expired(version, commit_id):
                        return self._landed(draft.manifest, started)
                    # Built on a version gc expired meanwhile, it took a name gc had
                    # freed, below the retention floor, where no reader looks: it did
                    # not land. Build again on the newest version.
                    reason = f"version {version} fell below the retention floor"
                except AlreadyExistsError:
                    # Someone's manifest, or ours if an SDK retry re-sent a landed write.
                    try:
                        ours = await self._read_if_ours(version, commit_id)
                    except ObjectNotFoundError:
                        ours = None  # someone's, expired by gc since: a lost race
                    except (StorageError, IntegrityError) as exc:
                        raise StorageUnavailableError(
                            f"cannot read back version {version}: {exc}"
                        ) from exc
                    if ours is not None and not await self._expired(version, commit_id):
                        return self._landed(ours, started)
                    reason = f"lost the race for version {version} {attempt} times"
                self.stats.lost_races += 1
                storage_failure = None
            except StorageUnavailableError as exc:
                if objects_written:
                    # The conditional write may have landed; settle before building again.
                    self.stats.unknown_outcomes += 1
                    unknown.add(version)
                storage_failure = exc
                reason = f"storage unavailable at version {version}: {exc}"
            elapsed = time.monotonic() - started
            if attempt >= self.policy.max_attempts or elapsed >= self.policy.max_seconds:
                if unknown:
                    landed = await self._settle_unknown(unknown, commit_id)
                    if landed is not None:
                        return self._landed(landed, started)
                self.stats.gave_up += 1
                if unknown:
                    raise CommitStateUnknownError(
                        f"commit {commit_id}: outcome of version(s) {sorted(unknown)} unknown "
                        f"after {attempt} attempts; {reason}",
                        commit_id,
                        sorted(unknown),
                    )
                if storage_failure is not None:
                    raise StorageUnavailableError(
                        f"commit did not land, storage kept failing: {reason}"
                    ) from storage_failure
                raise CommitRetriesExhaustedError(
                    f"{reason} ({attempt} attempts in {elapsed:.1f}s, "
                    f"limits {self.policy.max_attempts} and {self.policy.max_seconds}s)"
                )
            self.stats.retries += 1
            await asyncio.sleep(self.policy.delay(attempt))

    async def _base(
        self, known: int | None, stand_in: Callable[[int], Manifest] | None
    ) -> Snapshot:
        if known is not None:
            try:
                return await self._snapshot(known, stand_in)
            except VersionNotFoundError:
                pass  # expired under retention meanwhile: look for the newest
        latest = await self.reader.latest_version(refresh=True)
        return await self._snapshot(latest, stand_in)

    async def _snapshot(self, version: int, stand_in: Callable[[int], Manifest] | None) -> Snapshot:
        try:
            return Snapshot(self.reader, await self.reader.manifest(version))
        except IntegrityError:
            if stand_in is None:
                raise
            return Snapshot(self.reader, stand_in(version))

    async def _expired(self, version: int, commit_id: str) -> bool:
        """Whether ``version``, just written on top of ``version - 1``, took a name
        that gc under retention had freed, below the floor, where no reader looks.

        Checked after the write (before it, the check would be check-then-act). gc
        raises the floor before it deletes the manifests below it, oldest first: so
        while the base is still in the store, no name after it was freed, and the
        write is the true successor (one HEAD, as the check before it cost). If the
        base is gone, the floor tells. When neither explains a missing base, the
        store was damaged, emptied or replaced: see :meth:`_withdraw`."""
        try:
            if await self.reader.holds(version - 1):
                return False
        except (IntegrityError, FormatError) as exc:
            await self._withdraw(version, commit_id, exc)
        return version < await self.reader.oldest_version()

    async def _withdraw(self, version: int, commit_id: str, cause: CatalogStoreError) -> NoReturn:
        """The commit wrote ``version`` into a store that no longer holds its base, and
        nothing explains why (``cause``): it did not land. Its manifest is deleted,
        the one delete a writer makes: left there, it would become the newest
        version once the store's own commits reached its number, silently undoing
        them. Raises ``cause`` (FormatError when the store is another one now: its
        marker gone or another store's) saying so; CommitStateUnknownError when the
        manifest is not where it was written (the store moved meanwhile: the
        commit may stand there)."""
        key = keys.manifest_key(version)
        known = self.reader.marker
        try:
            marker = await self.reader.marker_now()
            replaced = known is not None and marker.store_id != known.store_id
        except FormatError:  # none, or one of another format: another store
            replaced = True
        except CatalogStoreError:
            replaced = False
        try:
            written = await self.store.exists(key)
        except CatalogStoreError as exc:
            outcome = f"left there, as the store could not be asked for it ({exc})"
        else:
            if not written:
                raise CommitStateUnknownError(
                    f"commit {commit_id}: {cause}; and its manifest {key} is no longer "
                    "where it was written (the store moved?): it may stand there",
                    commit_id,
                    [version],
                ) from cause
            try:
                await self.store.delete(key)
                outcome = "withdrawn"
            except CatalogStoreError as exc:
                outcome = f"left there, as it could not be deleted ({exc})"
        detail = f"the manifest this commit wrote, {key}, was {outcome}"
        if replaced:
            raise FormatError(
                f"{self.store.url} was emptied or replaced since this catalog opened it: "
                f"{detail}; open the catalog again"
            ) from cause
        raise type(cause)(f"{cause}; {detail}") from cause

    async def _read_if_ours(self, version: int, commit_id: str) -> Manifest | None:
        key = keys.manifest_key(version)
        data = await self.store.get(key)
        manifest = decode_manifest(data, key)
        return manifest if manifest.commit_id == commit_id else None

    async def _settle_unknown(self, unknown: set[int], commit_id: str) -> Manifest | None:
        """Resolve versions whose write outcome is unknown: ours, someone else's, or absent.

        Absent is no proof: a write of ours that outlived its deadline (a request S3
        had already received, a local worker thread still running) may land later.
        Such a version stays unknown until another manifest holds its key, or the
        retention floor passes it. Meanwhile the next attempt targets the same key
        (the latest is still below it), so a delayed write of ours can never land
        beside a second copy of the same commit; if the limits are reached first,
        the outcome is reported unknown, never as a failure that might yet land.
        """
        for version in sorted(unknown):
            try:
                ours = await self._read_if_ours(version, commit_id)
                expired = ours is not None and await self._expired(version, commit_id)
            except ObjectNotFoundError:
                with contextlib.suppress(StorageError, IntegrityError):
                    if version < await self.reader.oldest_version():
                        unknown.discard(version)  # a late landing there is below the floor
                continue
            except (StorageError, IntegrityError):
                continue  # still unknown: ours, but whether below the floor is not
            if ours is not None and not expired:
                return ours
            unknown.discard(version)  # another's, or ours below the floor: not landed
        return None

    def _landed(self, manifest: Manifest, started: float) -> Manifest:
        self.stats.commits += 1
        self.stats.durations.append(time.monotonic() - started)
        if len(self.stats.durations) > 1000:
            del self.stats.durations[:500]
        self.reader.note_latest(manifest.version)
        self.reader.cache_manifest(manifest)
        self._hint_wanted = max(self._hint_wanted, manifest.version)
        if self._hint_task is None or self._hint_task.done():
            self._hint_task = asyncio.ensure_future(self._write_hints())
            # Seen: a Ctrl-C that came while it ran reached the caller already.
            self._hint_task.add_done_callback(outcome_seen)
        return manifest

    async def _write_hints(self) -> None:
        # Advisory only: readers probe forward from it, so a stale or lost hint is harmless.
        while self._hint_done < self._hint_wanted:
            version = self._hint_wanted
            try:
                await self.store.put(keys.LATEST_HINT, encode_hint(version), durable=False)
            except Exception as exc:  # noqa: BLE001 - best effort by design
                log.debug("could not write the latest hint: %s", exc)
                return
            self._hint_done = version

    async def drain(self) -> None:
        """Wait for the background hint write (before closing the store)."""
        if self._hint_task is not None:
            await asyncio.gather(self._hint_task, return_exceptions=True)
