"""The public catalog API: series metadata, observations, batches and history.

``AsyncCatalog`` is the engine's face for async code (the gateway);
:class:`catalog_store.sync.Catalog` wraps it for scripts and crawlers. Every
method that changes something is one atomic commit (see :mod:`catalog_store.commit`)
and is safe while any number of other processes write to the same store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa

from catalog_store.apply import Committed, commit_operations, crowded_partitions
from catalog_store.asof import AsOf
from catalog_store.batch import Batch
from catalog_store.calls import CallsUnderWay, catalog_call
from catalog_store.commit import Committer, initialise
from catalog_store.datafiles import read_record, rows_at_most
from catalog_store.errors import (
    CatalogStoreError,
    FormatError,
    SeriesNotFoundError,
    ValidationError,
    VersionNotFoundError,
)
from catalog_store.listing import (
    Page,
    SeriesFilter,
    decode_cursor,
    iter_records,
    page,
    table_rows,
    tag_tuple,
)
from catalog_store.maintenance import DEFAULT_GRACE, GcReport, collect_garbage
from catalog_store.models import (
    Series,
    SeriesSpec,
    as_changes,
    check_count,
    check_external_id,
    check_series_id,
    parse_spec,
)
from catalog_store.observations import check_column_selection, range_bounds, utc_instant
from catalog_store.operations import (
    CompactSeries,
    CreateSeries,
    DeleteSeries,
    UpdateSeries,
    write_operation,
)
from catalog_store.options import CatalogOptions, SeriesChange, VersionInfo, version_info
from catalog_store.records import SeriesRecord, to_series
from catalog_store.repair import RepairReport, repair
from catalog_store.snapshot import Snapshot, StoreReader
from catalog_store.status import record_verify
from catalog_store.storage import Store, open_store
from catalog_store.storage.guarded import GuardedStore
from catalog_store.verify import Progress, check_progress, verify
from catalog_store.verify_report import VerifyReport
from catalog_store.vintages import catalog_versions, revisions, series_changes

log = logging.getLogger(__name__)


class AsyncCatalog:
    """A catalog of time series in one store. Use one instance per event loop."""

    def __init__(self, store: Store, options: CatalogOptions | None = None) -> None:
        self.options = options or CatalogOptions()
        if self.options.store_listener is not None or self.options.store_timeout is not None:
            store = GuardedStore(store, self.options.store_timeout, self.options.store_listener)
        self.store = store
        self.reader = StoreReader(store, self.options.cache_bytes, self.options.max_staleness)
        self.committer = Committer(self.reader, self.options.retry)
        #: Whether opening it initialised the store (``open(create=True)`` whose
        #: version 0 won, where several processes initialised it at once).
        self.created = False
        #: Operations applied to the newest version as one commit (see apply.py).
        self._commit = functools.partial(commit_operations, self.committer, self.options)
        self.calls = CallsUnderWay(self.committer.check_open)

    # -- opening -----------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str | Path,
        storage_options: Mapping[str, Any] | None = None,
        *,
        create: bool = False,
        options: CatalogOptions | None = None,
    ) -> AsyncCatalog:
        """Open the catalog at ``url``; with ``create=True`` initialise it if absent.

        Raises FormatError if the store holds no catalog (and ``create`` is false)
        or one of an unknown format. Concurrent creators are safe: the format
        marker and version 0 are each created with put-if-absent.
        """
        return await cls.open_store(
            open_store(url, storage_options), create=create, options=options
        )

    @classmethod
    async def open_store(
        cls, store: Store, *, create: bool = False, options: CatalogOptions | None = None
    ) -> AsyncCatalog:
        """Open the catalog in an already opened store (see :meth:`open`).

        The catalog owns the store from here on and closes it in :meth:`close`.
        """
        catalog = cls(store, options)
        try:
            try:
                await catalog.reader.read_marker()
            except FormatError:
                if not create:
                    raise
                # Idempotent: a marker or version 0 made meanwhile by another
                # process is kept, and an unknown marker still raises FormatError.
                catalog.created = await initialise(catalog.reader, catalog.options.shard_count)
            await catalog.reader.open_latest()
        except BaseException:
            await catalog.store.close()
            raise
        return catalog

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "an AsyncCatalog cannot be pickled or copied: it holds its store's "
            "connections; open one in each process (AsyncCatalog.open with the same "
            "URL and options)"
        )

    async def close(self) -> None:
        """Wait for the calls under way, finish background work and release the
        store's connections; later calls raise CatalogClosedError, and a later close
        does nothing."""
        if self.committer.closed:
            return
        await self.calls.wait()
        self.committer.closed = True
        await self.committer.drain()
        await self.store.close()

    def _check_open(self) -> None:
        # First in every call that checks its arguments: closed is the answer, not
        # what is wrong with them. The rest read a version or commit one (the
        # committer checks too, for a batch closed under way).
        self.committer.check_open()

    # -- versions ----------------------------------------------------------------

    @catalog_call
    async def version(self, refresh: bool = True) -> int:
        """The newest committed version."""
        return await self.reader.latest_version(refresh=refresh)

    @catalog_call
    async def check_pinned(self, version: int, field: str = "cursor") -> None:
        """Refuse a version read from a cursor that is newer than every commit: no
        listing of this catalog made that cursor (ValidationError on ``field``), where
        looking the version up would answer as if the client had asked for it."""
        if version > await self.version(refresh=False) and version > await self.version():
            raise ValidationError("invalid cursor", field)

    @catalog_call
    async def snapshot(self, as_of: AsOf = None) -> Snapshot:
        """The catalog at ``as_of``: a version number, a UTC instant, or None for latest.

        Raises ValidationError for a naive datetime or a negative version and
        VersionNotFoundError for a version that does not exist.
        """
        if as_of is None:
            version = await self.reader.latest_version()
        elif isinstance(as_of, bool) or not isinstance(as_of, int | dt.datetime):
            raise ValidationError("must be a version number or a UTC datetime", "as_of")
        elif isinstance(as_of, int):
            if as_of < 0:
                raise ValidationError("a version is a non-negative integer", "as_of")
            version = as_of
        else:
            version = await self.reader.version_at(utc_instant(as_of, "as_of"))
        return Snapshot(self.reader, await self.reader.manifest(version))

    @catalog_call
    async def history(self, limit: int = 50, before: int | None = None) -> list[VersionInfo]:
        """Catalog versions, newest first: up to ``limit`` below ``before`` (exclusive).

        A version whose manifest cannot be read is left out (``verify`` names it;
        the ``repair`` that superseded it says so in its message), and the next
        one below takes its place, so a page is short only at the oldest version.
        Raises VersionNotFoundError when every version below ``before`` has expired
        under retention: a page of them is not the end of the history, as an empty
        one would say.
        """
        check_count(limit, "limit", 1)
        if before is not None:
            check_count(before, "before", 0)
        oldest = await self.reader.oldest_version()
        if before is not None and 0 < before <= oldest:
            raise VersionNotFoundError(
                f"catalog versions below {before} have expired; the oldest kept is {oldest}"
            )
        latest = await self.version()
        top = latest if before is None else min(before - 1, latest)
        return await catalog_versions(self.reader, top, limit, oldest)

    @catalog_call
    async def series_history(
        self, series_id: str, as_of: AsOf = None, before: int | None = None, limit: int = 10
    ) -> list[SeriesChange]:
        """The changes of one series, newest first: up to ``limit``, from the state
        current at ``as_of``. With ``before``, the version of the last change a page
        showed, the changes before it; any other version gives the changes of the
        series as it was just below that version.

        Follows the link each state keeps to the one before, so states that cannot
        be read (lost to damage and passed over by ``repair``) are skipped; under
        retention it ends at the oldest change whose commit is still kept.
        Compactions and checkpoints change no value and are not changes of a
        series. Raises SeriesNotFoundError if the series does not exist at ``as_of``.
        """
        check_series_id(series_id)
        check_count(limit, "limit", 1)
        if before is not None:
            check_count(before, "before", 0)
        record = await self._record(series_id, as_of)
        floor = await self.reader.oldest_version()
        return await series_changes(self.reader, record, floor, before, limit)

    @catalog_call
    async def verify(
        self, latest_only: bool = False, progress: Progress | None = None, record: bool = False
    ) -> VerifyReport:
        """Check every live version (or the latest) end to end; see :mod:`catalog_store.verify`.

        With ``record``, also keep the outcome in the store for monitoring
        (:mod:`catalog_store.status`), best effort."""
        check_progress(progress)
        report = await verify(self.reader, latest_only, progress)
        if record:
            await record_verify(self.store, report, latest_only)
        return report

    @catalog_call
    async def collect_garbage(
        self,
        grace: dt.timedelta = DEFAULT_GRACE,
        dry_run: bool = False,
        progress: Progress | None = None,
        retain: dt.timedelta | None = None,
    ) -> GcReport:
        """Delete objects no kept version references, older than ``grace``; with
        ``retain``, expire versions superseded longer ago first. See :mod:`.maintenance`."""
        check_progress(progress)
        return await collect_garbage(self.reader, grace, dry_run, progress=progress, retain=retain)

    @catalog_call
    async def repair(self) -> RepairReport:
        """Restore the newest version that verifies as a new commit; see :mod:`.maintenance`."""
        return await repair(self.committer)

    def stats(self) -> dict[str, int]:
        """Counters for metrics: commits, lost races, retries, cache use."""
        return {**self.committer.stats.counters(), **self.reader.cache.counters()}

    @catalog_call
    async def version_details(self, version: int) -> VersionInfo:
        return version_info(await self.reader.manifest(version))

    # -- metadata ------------------------------------------------------------------

    @catalog_call
    async def create(self, spec: SeriesSpec | Mapping[str, Any], message: str = "") -> Series:
        """Create a series. Raises ValidationError, SeriesExistsError, ExternalIdTakenError."""
        op = CreateSeries(parse_spec(spec))
        committed = await self._commit([op], message or f"create {op.series_id}")
        return committed.series(op.series_id)

    @catalog_call
    async def get(self, series_id: str, as_of: AsOf = None) -> Series:
        """The series at ``as_of``. Raises SeriesNotFoundError."""
        check_series_id(series_id)
        record = await self._record(series_id, as_of)
        return to_series(record)

    async def _record(self, series_id: str, as_of: AsOf) -> SeriesRecord:
        """The series' record at ``as_of``. Raises SeriesNotFoundError."""
        snapshot = await self.snapshot(as_of)
        record = await snapshot.record(series_id)
        if record is None:
            raise SeriesNotFoundError(series_id, snapshot.version)
        return record

    @catalog_call
    async def update(
        self,
        series_id: str,
        changes: Mapping[str, Any],
        expected_version: int | None = None,
        message: str = "",
    ) -> Series:
        """Change metadata fields (a None resets one to its default, as a JSON merge
        patch's null does). With ``expected_version``, only if the series is still
        at that version (else VersionMismatchError, a ConflictError)."""
        check_series_id(series_id)
        op = UpdateSeries(series_id, as_changes(changes), expected_version)
        committed = await self._commit([op], message or f"update {series_id}", allow_empty=False)
        return committed.series(series_id)

    @catalog_call
    async def delete(
        self, series_id: str, expected_version: int | None = None, message: str = ""
    ) -> int:
        """Delete a series (its history stays readable as of earlier versions).

        Returns the new catalog version. Raises SeriesNotFoundError, VersionMismatchError.
        """
        check_series_id(series_id)
        op = DeleteSeries(series_id, expected_version)
        return (await self._commit([op], message or f"delete {series_id}")).manifest.version

    @catalog_call
    async def list(
        self,
        *,
        source: str | None = None,
        frequency: str | None = None,
        tags: Iterable[str] = (),
        text: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        as_of: AsOf = None,
    ) -> Page:
        """One page of series matching every given filter; ``next_cursor`` continues it.

        A cursor pins the version its listing started at (and overrides ``as_of``).
        Raises ValidationError for a bad limit, frequency or cursor.
        """
        flt = SeriesFilter(source, frequency, tag_tuple(tags), text)
        return await self.list_matching(flt, limit, cursor, as_of)

    @catalog_call
    async def list_matching(
        self, flt: SeriesFilter, limit: int = 100, cursor: str | None = None, as_of: AsOf = None
    ) -> Page:
        """:meth:`list` by a :class:`SeriesFilter` (which can also ask for an external-id
        provider)."""
        if cursor is not None:
            as_of = decode_cursor(cursor)[0]
            await self.check_pinned(as_of)
        return await page(await self.snapshot(as_of), flt, limit, cursor)

    async def iter_series(
        self, flt: SeriesFilter | None = None, as_of: AsOf = None
    ) -> AsyncGenerator[Series, None]:
        """Stream every matching series at one version, one shard in memory at a time."""
        snapshot = await self.snapshot(as_of)
        # A caller that stops early closes this generator; it closes the scan.
        async with contextlib.aclosing(iter_records(snapshot, flt or SeriesFilter())) as found:
            async for _shard, record in found:
                yield to_series(record)

    @catalog_call
    async def metadata_table(
        self,
        *,
        source: str | None = None,
        frequency: str | None = None,
        tags: Iterable[str] = (),
        text: str | None = None,
        external_provider: str | None = None,
        as_of: AsOf = None,
    ) -> pa.Table:
        """What users set on every matching series, as one Arrow table in id order.

        Columns are the user-set fields and ``created_at`` (``attributes`` as JSON
        text); version, dates and counts are on :meth:`get` and :meth:`list`. With
        ``source``, only that source's part of the table is read: the fast way to
        take a large selection into a dataframe. ``external_provider`` keeps series
        with an id from that provider. Raises ValidationError for an unknown
        frequency.
        """
        flt = SeriesFilter(source, frequency, tag_tuple(tags), text, external_provider)
        return await table_rows(await self.snapshot(as_of), flt)

    @catalog_call
    async def find_by_external_id(
        self, provider: str, external_id: str, as_of: AsOf = None
    ) -> Series:
        """The series carrying this external id. Raises SeriesNotFoundError, and
        ValidationError for a provider or id no series could carry."""
        check_external_id(provider, external_id)
        snapshot = await self.snapshot(as_of)
        owner = await snapshot.owner_of(provider, external_id)
        record = await snapshot.record(owner) if owner else None
        if record is None:
            raise SeriesNotFoundError(f"{provider}:{external_id}", snapshot.version)
        return to_series(record)

    # -- observations ----------------------------------------------------------------

    @catalog_call
    async def write(
        self,
        series_id: str,
        observations: Any = None,
        mode: str = "append",
        *,
        start: dt.date | dt.datetime | None = None,
        end: dt.date | dt.datetime | None = None,
        expected_version: int | None = None,
        message: str = "",
    ) -> Series:
        """Write observations of one series as one commit; return the series after it.

        Modes: ``append`` (every date after the last one, else AppendOrderError),
        ``upsert`` (rows replace earlier rows of the same date), ``replace_range``
        (delete ``[start, end]`` then insert rows that lie inside it) and
        ``delete_range``; the two range modes need ``start`` or ``end`` (a missing one
        is open). Raises ValidationError (nothing written) for bad input.
        """
        check_series_id(series_id)
        op = write_operation(series_id, observations, mode, start, end, expected_version)
        committed = await self._commit([op], message or f"{mode} {series_id}", allow_empty=False)
        if committed.landed:
            await self._maybe_compact(committed)
        return committed.series(series_id)

    @catalog_call
    async def read(
        self,
        series_id: str,
        start: dt.date | dt.datetime | None = None,
        end: dt.date | dt.datetime | None = None,
        as_of: AsOf = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """Observations in ``[start, end]`` as a table sorted by date, one row per date.

        ``as_of`` (a version or UTC instant) gives the series exactly as it was then.
        Raises SeriesNotFoundError, ValidationError, IntegrityError (damaged file).
        """
        check_series_id(series_id)
        if columns is not None:
            check_column_selection(columns)
        record = await self._record(series_id, as_of)
        low, high = range_bounds(start, end, record.frequency)
        table = await read_record(self.reader, record, low, high)
        return table.select(list(columns)) if columns is not None else table

    @catalog_call
    async def rows_at_most(
        self,
        series_id: str,
        start: dt.date | dt.datetime | None = None,
        end: dt.date | dt.datetime | None = None,
        as_of: AsOf = None,
    ) -> int:
        """At most how many rows :meth:`read` with these arguments gives, told by the
        series' record without reading a file (see :func:`datafiles.rows_at_most`)."""
        record = await self._record(check_series_id(series_id), as_of)
        return rows_at_most(record, *range_bounds(start, end, record.frequency))

    @catalog_call
    async def revisions(
        self,
        series_id: str,
        start: dt.date | dt.datetime | None = None,
        end: dt.date | dt.datetime | None = None,
        first_release_only: bool = False,
        max_values: int | None = None,
        as_of: AsOf = None,
    ) -> pa.Table:
        """Every value each date in ``[start, end]`` has had, with ``realtime_start`` and
        ``realtime_end`` (null while current): the ALFRED view. With ``as_of``, of the
        series as it was then, as it was known then (null: current at ``as_of``); an
        id deleted and created again since names the earlier series there. Raises
        SeriesNotFoundError if the series does not exist at ``as_of``.

        ``max_values`` bounds the work: the stored values compared, every state's
        rows in the range. Past it, RevisionsTooLargeError (a ValidationError naming
        ``start``) is raised once the states read pass it; the state that takes them
        past it is the last one read."""
        check_series_id(series_id)
        if not isinstance(first_release_only, bool):
            raise ValidationError("must be True or False", "first_release_only")
        if max_values is not None:
            check_count(max_values, "max_values", 1)
        snapshot = await self.snapshot(as_of)
        record = await snapshot.record(series_id)
        frequency = record.frequency if record else "daily"
        low, high = range_bounds(start, end, frequency)
        return await revisions(
            self.reader, record, series_id, low, high, first_release_only, max_values
        )

    @catalog_call
    async def compact(self, series_id: str, min_files: int = 2) -> int | None:
        """Rewrite each partition of the series with ``min_files`` or more files into one.

        Changes no value. Returns the new version, or None if nothing needed it.
        """
        check_series_id(series_id)
        check_count(min_files, "min_files", 1)
        await self.get(series_id)
        op = CompactSeries(series_id, min_files)
        committed = await self._commit([op], f"compact {series_id}", allow_empty=False)
        return committed.manifest.version if committed.landed else None

    @catalog_call
    async def checkpoint(self) -> int | None:
        """Write every series the manifest holds (``records_pending``) into its
        metadata shard, and every row a record holds (``inline``, there or in a
        shard) into Parquet files, as one commit.

        Changes no value. Afterwards every observation is in a file that the
        records list, for engines that read the files directly. Returns the new
        version, or None if nothing was held.
        """
        committed = await self._commit([], "checkpoint", checkpoint=True)
        return committed.manifest.version if committed.landed else None

    async def _maybe_compact(self, committed: Committed) -> None:
        crowded = crowded_partitions(committed, self.options.compact_threshold)
        if not crowded:
            return
        try:
            await self._commit(crowded, "compact", allow_empty=False)
        except CatalogStoreError as exc:  # the write itself has landed; compaction can wait
            log.warning("compaction after write skipped: %s", exc)

    # -- batches -------------------------------------------------------------------

    @asynccontextmanager
    async def batch(self, message: str = "") -> AsyncIterator[Batch]:
        """Collect changes to many series and commit them atomically on exit.

        Nothing is visible until the block ends without an exception; then all of
        it is, as one version. An exception inside the block commits nothing.
        """
        self._check_open()
        batch = Batch(self)
        try:
            yield batch
        finally:
            batch.ended = True
        if batch.operations:
            task = self.calls.begin()
            try:
                committed = await self._commit(
                    batch.operations,
                    message or f"batch of {len(batch.operations)}",
                    allow_empty=False,
                    batch=batch,
                )
                if committed.landed:
                    batch.version = committed.manifest.version
                    await self._maybe_compact(committed)
            finally:
                self.calls.end(task)
