"""A synchronous catalog for scripts, notebooks and crawlers.

It owns one event loop and runs the async catalog on it, in the calling thread
(see :class:`~catalog_store.loop_runner.LoopRunner`), so the S3 client's
connections live on one loop for the catalog's lifetime. Safe to call from
several threads, and from a thread that runs an event loop of its own (a
notebook); each call blocks until its coroutine finishes.
"""

from __future__ import annotations

import datetime as dt
import functools
import weakref
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa

from catalog_store.asof import AsOf
from catalog_store.batch import Batch
from catalog_store.catalog import AsyncCatalog
from catalog_store.listing import Page, SeriesFilter
from catalog_store.loop_runner import LoopRunner
from catalog_store.maintenance import DEFAULT_GRACE, GcReport
from catalog_store.models import Series, SeriesSpec
from catalog_store.options import CatalogOptions, SeriesChange, VersionInfo
from catalog_store.repair import RepairReport
from catalog_store.verify_report import VerifyReport

DateLike = dt.date | dt.datetime | None


def _close(inner: AsyncCatalog, runner: LoopRunner, wait: bool = False) -> None:
    # Without ``wait`` (collected, or at exit), a call under way leaves it open: a
    # daemon thread may be inside one, and the process ends with that thread.
    runner.finish(inner.close(), wait)


class SyncBatch:
    """The synchronous face of :class:`catalog_store.catalog.Batch`."""

    def __init__(self, batch: Batch, runner: LoopRunner) -> None:
        self._batch = batch
        self._runner = runner

    @property
    def version(self) -> int | None:
        """The version the batch committed as, once the block has ended; None if it
        committed nothing (no change, only changes to what the series hold, or
        series created and deleted again)."""
        return self._batch.version

    @property
    def failed_operation(self) -> int | None:
        """After a commit that failed: which operation, in the order they were added,
        was refused (see :attr:`catalog_store.batch.Batch.failed_operation`)."""
        return self._batch.failed_operation

    def create(self, spec: SeriesSpec | Mapping[str, Any]) -> None:
        self._batch.create(spec)

    def update(
        self, series_id: str, changes: Mapping[str, Any], expected_version: int | None = None
    ) -> None:
        self._batch.update(series_id, changes, expected_version)

    def delete(self, series_id: str, expected_version: int | None = None) -> None:
        self._batch.delete(series_id, expected_version)

    def write(
        self,
        series_id: str,
        observations: Any = None,
        mode: str = "append",
        *,
        start: DateLike = None,
        end: DateLike = None,
        expected_version: int | None = None,
    ) -> None:
        self._runner.run(
            self._batch.write(
                series_id,
                observations,
                mode,
                start=start,
                end=end,
                expected_version=expected_version,
            )
        )


class Catalog:
    """Blocking twin of :class:`~catalog_store.catalog.AsyncCatalog`; same semantics."""

    def __init__(
        self,
        inner: AsyncCatalog,
        runner: LoopRunner,
        reopen: Callable[[], Coroutine[Any, Any, AsyncCatalog]] | None = None,
    ) -> None:
        self._inner = inner
        self._loop_runner = runner
        #: Opens the same catalog again: what a forked child uses in place of the
        #: parent's loop and connections (None: it cannot, and says so).
        self._reopen = reopen
        # A catalog a script never closes is closed when collected or at exit, as a
        # file is: the "latest" hint its last commit left is written, and no task
        # is left pending on a loop nobody runs again.
        self._closer = weakref.finalize(self, _close, inner, runner)

    @property
    def inner(self) -> AsyncCatalog:
        """The :class:`AsyncCatalog` this catalog runs."""
        if self._loop_runner.inherited:
            self._open_in_child()
        return self._inner

    @property
    def _runner(self) -> LoopRunner:
        if self._loop_runner.inherited:
            self._open_in_child()
        return self._loop_runner

    def _open_in_child(self) -> None:
        """In a process forked from the one that opened it, open the catalog anew on
        first use (a multiprocessing pool's workers use a module's catalog so): the
        parent's loop, threads and connections are not this process's to use."""
        inherited = self._loop_runner
        with inherited.reopening:
            if self._loop_runner is not inherited or self._reopen is None:
                return
            if not self._closer.alive:
                return  # closed before the fork: stays closed
            runner = LoopRunner()
            try:
                inner = runner.run(self._reopen())
            except BaseException:
                runner.stop()
                raise
            self._closer.detach()  # the parent's loop and store: not closed from here
            self._inner, self._loop_runner = inner, runner
            self._closer = weakref.finalize(self, _close, inner, runner)

    @classmethod
    def open(
        cls,
        url: str | Path,
        storage_options: Mapping[str, Any] | None = None,
        *,
        create: bool = False,
        options: CatalogOptions | None = None,
    ) -> Catalog:
        """Open (or with ``create=True`` initialise) the catalog at ``url``."""
        runner = LoopRunner()
        try:
            inner = runner.run(
                AsyncCatalog.open(url, storage_options, create=create, options=options)
            )
        except BaseException:
            runner.stop()
            raise
        reopen = functools.partial(AsyncCatalog.open, url, storage_options, options=options)
        return cls(inner, runner, reopen)

    @property
    def created(self) -> bool:
        """Whether opening it initialised the store (see :attr:`AsyncCatalog.created`)."""
        return self.inner.created

    def close(self) -> None:
        """Finish background work and release the store, once the calls other
        threads have under way are done; calls made from the moment it begins
        raise CatalogClosedError (a RuntimeError), and a later close does nothing."""
        if self._closer.detach() is not None:
            try:
                _close(self._inner, self._loop_runner, wait=True)
            except KeyboardInterrupt:
                # Interrupted while waiting for other threads' calls: still open,
                # and to be closed by the next close (or at exit).
                self._closer = weakref.finalize(self, _close, self._inner, self._loop_runner)
                raise

    def __enter__(self) -> Catalog:
        return self

    def __reduce__(self) -> NoReturn:
        # A copy would share this one's connections and close with it; pickled for
        # another process, it could not carry them at all.
        raise TypeError(
            "a Catalog cannot be pickled or copied: it holds its store's connections; "
            "open one in each process (Catalog.open with the same URL and options)"
        )

    def __exit__(self, *exc: object) -> None:
        self.close()

    def version(self, refresh: bool = True) -> int:
        return self._runner.run(self.inner.version(refresh))

    def history(self, limit: int = 50, before: int | None = None) -> list[VersionInfo]:
        return self._runner.run(self.inner.history(limit, before))

    def series_history(
        self, series_id: str, as_of: AsOf = None, before: int | None = None, limit: int = 10
    ) -> list[SeriesChange]:
        return self._runner.run(self.inner.series_history(series_id, as_of, before, limit))

    def create(
        self,
        spec: SeriesSpec | Mapping[str, Any] | None = None,
        *,
        message: str = "",
        **fields: Any,
    ) -> Series:
        return self._runner.run(self.inner.create(spec if spec is not None else fields, message))

    def get(self, series_id: str, as_of: AsOf = None) -> Series:
        return self._runner.run(self.inner.get(series_id, as_of))

    def update(
        self,
        series_id: str,
        changes: Mapping[str, Any],
        expected_version: int | None = None,
        message: str = "",
    ) -> Series:
        return self._runner.run(self.inner.update(series_id, changes, expected_version, message))

    def delete(self, series_id: str, expected_version: int | None = None, message: str = "") -> int:
        return self._runner.run(self.inner.delete(series_id, expected_version, message))

    def list(
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
        return self._runner.run(
            self.inner.list(
                source=source,
                frequency=frequency,
                tags=tags,
                text=text,
                limit=limit,
                cursor=cursor,
                as_of=as_of,
            )
        )

    def iter_series(
        self, flt: SeriesFilter | None = None, page_size: int = 1000, as_of: AsOf = None
    ) -> Iterator[Series]:
        """Every matching series, fetched a page at a time at one version (the latest,
        or ``as_of``)."""
        flt = flt or SeriesFilter()
        cursor: str | None = None
        while True:
            # The first page pins the version; the cursor carries it to the next.
            page = self._runner.run(self.inner.list_matching(flt, page_size, cursor, as_of))
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def metadata_table(
        self,
        *,
        source: str | None = None,
        frequency: str | None = None,
        tags: Iterable[str] = (),
        text: str | None = None,
        external_provider: str | None = None,
        as_of: AsOf = None,
    ) -> pa.Table:
        return self._runner.run(
            self.inner.metadata_table(
                source=source,
                frequency=frequency,
                tags=tags,
                text=text,
                external_provider=external_provider,
                as_of=as_of,
            )
        )

    def find_by_external_id(self, provider: str, external_id: str, as_of: AsOf = None) -> Series:
        return self._runner.run(self.inner.find_by_external_id(provider, external_id, as_of))

    def write(
        self,
        series_id: str,
        observations: Any = None,
        mode: str = "append",
        *,
        start: DateLike = None,
        end: DateLike = None,
        expected_version: int | None = None,
        message: str = "",
    ) -> Series:
        return self._runner.run(
            self.inner.write(
                series_id,
                observations,
                mode,
                start=start,
                end=end,
                expected_version=expected_version,
                message=message,
            )
        )

    def read(
        self,
        series_id: str,
        start: DateLike = None,
        end: DateLike = None,
        as_of: AsOf = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        return self._runner.run(self.inner.read(series_id, start, end, as_of, columns))

    def rows_at_most(
        self,
        series_id: str,
        start: DateLike = None,
        end: DateLike = None,
        as_of: AsOf = None,
    ) -> int:
        return self._runner.run(self.inner.rows_at_most(series_id, start, end, as_of))

    def revisions(
        self,
        series_id: str,
        start: DateLike = None,
        end: DateLike = None,
        first_release_only: bool = False,
        max_values: int | None = None,
        as_of: AsOf = None,
    ) -> pa.Table:
        return self._runner.run(
            self.inner.revisions(series_id, start, end, first_release_only, max_values, as_of)
        )

    def verify(
        self,
        latest_only: bool = False,
        progress: Callable[[int, int], None] | None = None,
        record: bool = False,
    ) -> VerifyReport:
        return self._runner.run(self.inner.verify(latest_only, progress, record))

    def collect_garbage(
        self,
        grace: dt.timedelta = DEFAULT_GRACE,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
        retain: dt.timedelta | None = None,
    ) -> GcReport:
        return self._runner.run(self.inner.collect_garbage(grace, dry_run, progress, retain))

    def repair(self) -> RepairReport:
        return self._runner.run(self.inner.repair())

    def compact(self, series_id: str, min_files: int = 2) -> int | None:
        return self._runner.run(self.inner.compact(series_id, min_files))

    def checkpoint(self) -> int | None:
        return self._runner.run(self.inner.checkpoint())

    @contextmanager
    def batch(self, message: str = "") -> Iterator[SyncBatch]:
        """Gather changes; commit them as one version when the block ends cleanly."""
        manager = self.inner.batch(message)
        batch = self._runner.run(manager.__aenter__())
        try:
            yield SyncBatch(batch, self._runner)
        except BaseException as exc:
            batch.ended = True  # also where the catalog closed meanwhile refuses the exit
            self._runner.run(manager.__aexit__(type(exc), exc, exc.__traceback__))
            raise
        batch.ended = True
        self._runner.run(manager.__aexit__(None, None, None))
