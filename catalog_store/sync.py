"""A synchronous catalog for scripts, notebooks and crawlers.

It owns one event loop and runs the async catalog on it, in the calling thread
(see :class:`_LoopRunner`), so the S3 client's connections live on one loop for
the catalog's lifetime. Safe to call from several threads, and from a thread that
runs an event loop of its own (a notebook); each call blocks until its coroutine
finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import pyarrow as pa

from catalog_store.asof import AsOf
from catalog_store.batch import Batch
from catalog_store.catalog import AsyncCatalog
from catalog_store.listing import Page, SeriesFilter
from catalog_store.maintenance import DEFAULT_GRACE, GcReport, RepairReport
from catalog_store.models import Series, SeriesSpec
from catalog_store.options import CatalogOptions, SeriesChange, VersionInfo
from catalog_store.storage.base import caller_waits
from catalog_store.verify import VerifyReport

T = TypeVar("T")
DateLike = dt.date | dt.datetime | None


class _LoopRunner:
    """Runs the async catalog's coroutines on one event loop, in the calling thread.

    Handing each call to a loop in a thread of its own costs two thread wake-ups,
    about 60 us on a small machine, more than a cached lookup itself. So a call
    runs the loop in its own thread when no other call is running it (it becomes
    the owner); a call made meanwhile from another thread hands its coroutine to
    the owner, which keeps the loop running until every coroutine handed to it has
    finished. Calls from several threads so still overlap on one loop, and the S3
    client's connections stay on that loop. A thread that already runs an event
    loop (a notebook) cannot run a second one: its calls go to a helper thread.
    Background work a call leaves (the "latest" hint) runs during the next call,
    or at close.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._mutex = threading.Lock()
        #: Notified when the loop has no owner: a close waits for calls under way.
        self._idle = threading.Condition(self._mutex)
        self._owned = False
        self._closed = False
        self._guests = 0
        self._guests_done = asyncio.Event()
        self._helper: ThreadPoolExecutor | None = None
        #: Whether the helper thread is to run the loop for handed-over calls.
        self._driven = False
        #: The task the loop is being run until, if any (see _until_done).
        self._running_for: asyncio.Task[Any] | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._mutex:
            closed = self._closed
        if closed:
            coro.close()
            raise RuntimeError("this Catalog is closed")
        return self._run(coro)

    def _inside_a_call(self) -> bool:
        """Whether this thread is inside one of this runner's calls (a callback
        the loop runs): a call from here would wait for the loop it blocks."""
        return _runs_a_loop() and asyncio.get_running_loop() is self.loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        # A thread that runs an event loop of its own cannot run a second: its call
        # is handed over, and if nobody runs the loop, the helper thread does.
        notebook = _runs_a_loop()
        if notebook and self._inside_a_call():
            coro.close()
            raise RuntimeError(
                "a Catalog call from inside one of its own calls (a progress callback) "
                "would wait for itself; note the progress and call the catalog after, "
                "or use catalog.inner, the AsyncCatalog, from async code"
            )
        helper = self._helper_thread() if notebook else None
        handed: _Handed[T] | None = None
        # Everything from taking the loop or handing the call over is inside one try:
        # a Ctrl-C anywhere after it used to leave the loop owned by nobody (every
        # later call waited for good) or a handed call to run after the interrupt.
        owner = drive = False
        try:
            with self._mutex:
                if self._owned or helper is not None:
                    handed = _Handed(self, coro)
                    self._hand_over(handed)
                    if not self._owned:
                        self._owned = self._driven = drive = True
                else:
                    self._owned = owner = True
            if owner:
                return self._run_own_call(coro)
            assert handed is not None
            if drive:
                assert helper is not None
                helper.submit(self._drive)
                drive = False
            return handed.wait()
        except BaseException:
            if handed is not None:
                self._settle(handed, helper, drive)
            raise
        finally:
            if owner:
                self._serve_guests()

    def _settle(self, handed: _Handed[Any], helper: ThreadPoolExecutor | None, drive: bool) -> None:
        """After an interrupt (Ctrl-C) of the thread that handed ``handed`` over:
        cancel it and wait until it has stopped, so that no write of it lands after
        the interrupt reaches the caller. The interrupt may have come before anyone
        was to run the loop for it: then this thread does, or has the helper do it."""
        with self._mutex:
            serve = not self._owned
            if serve:
                self._owned = True
                self._driven = helper is not None
        handed.cancel()
        if helper is not None and (serve or drive):
            helper.submit(self._drive)
        elif serve:
            with contextlib.suppress(KeyboardInterrupt):
                self._serve_guests()
        handed.wait_over()

    def _run_own_call(self, coro: Coroutine[Any, Any, T]) -> T:
        task: asyncio.Task[T] | None = None
        try:
            task = self.loop.create_task(_waited_for(coro), name=_OWN_CALL)
            return self._until_done(task)
        except BaseException:
            # Interrupted (Ctrl-C) while running the call: left pending, it would go
            # on during the next call that runs the loop, and a write would land
            # after writes made since. Cancel it and let it stop (a commit whose
            # manifest is being written first waits for that write: see commit.py).
            # Also found by name: the interrupt may have come as the task was made.
            calls = {t for t in asyncio.all_tasks(self.loop) if t.get_name() == _OWN_CALL}
            for call in calls | ({task} if task is not None else set()):
                if not call.done():
                    call.cancel()
                    with contextlib.suppress(BaseException):
                        self._until_done(call)
                _retrieved(call)  # how it ended is raised here, or was the interrupt
            _close_unstarted(coro)
            raise

    def _until_done(self, task: asyncio.Task[T]) -> T:
        """Run the loop until ``task`` is done; its result.

        ``loop.run_until_complete`` stops the loop from a callback that the task's
        end schedules. Ctrl-C between the two leaves that callback queued, and it
        then stopped the next call's run before its task was done, which failed
        with "Event loop stopped before Future completed". Here a stop is only
        ever that of the task the loop now runs for."""

        def stop_if_current(done: asyncio.Task[T]) -> None:
            if self._running_for is done:
                self.loop.stop()

        self._running_for = task
        task.add_done_callback(stop_if_current)
        try:
            self.loop.run_forever()
        finally:
            self._running_for = None
            task.remove_done_callback(stop_if_current)
        return task.result()

    def _hand_over(self, handed: _Handed[Any]) -> None:
        """Queue a call for the loop's owner (the mutex held): counted first, so the
        owner does not give the loop up before it has run it."""
        self._guests += 1
        self.loop.call_soon_threadsafe(handed.start)

    def _guest_done(self) -> None:
        with self._mutex:
            self._guests -= 1
            if not self._guests:
                self._guests_done.set()

    def _drive(self) -> None:
        """On the helper thread: run the loop for calls handed over by threads that
        cannot (once, however often an interrupted caller asked)."""
        with self._mutex:
            if not self._driven:
                return
            self._driven = False
        self._serve_guests()

    def _serve_guests(self) -> None:
        """Run the loop until no handed-over call is left, then give up ownership.

        Guests run only while the owner runs the loop, so between the check and the
        next run none can finish unseen. A Ctrl-C meanwhile waits until the calls
        other threads handed over are done: they would wait for good otherwise.
        """
        interrupt: BaseException | None = None
        while True:
            try:
                with self._mutex:
                    if not self._guests:
                        self._owned = False
                        break
                    self._guests_done.clear()
                self._until_done(self.loop.create_task(self._guests_done.wait()))
            except KeyboardInterrupt as exc:
                interrupt = interrupt or exc
        # The lock itself, not the condition: Condition.__enter__ is Python code, and
        # an interrupt just after it took the lock would leave it taken for good.
        with self._mutex:
            self._idle.notify_all()
        if interrupt is not None:
            raise interrupt

    def _helper_thread(self) -> ThreadPoolExecutor:
        with self._mutex:
            if self._helper is None:
                self._helper = ThreadPoolExecutor(1, thread_name_prefix="fincat-sync")
            return self._helper

    def finish(self, last: Coroutine[Any, Any, None], wait: bool) -> None:
        """Run ``last`` as the last call, then stop the loop; later calls raise.

        With ``wait``, first waits for calls other threads have under way; without
        (at exit, when a daemon thread may be stuck inside one), does nothing while
        one is."""
        if self._inside_a_call():
            last.close()
            raise RuntimeError("a Catalog cannot be closed from inside one of its own calls")
        with self._mutex:
            if self._closed:
                last.close()
                return
            if wait:
                while self._owned:  # polled too: a Ctrl-C may have cut a notification short
                    self._idle.wait(0.1)
            elif self._owned:
                last.close()
                return
            self._closed = True
        try:
            self._run(last)
        finally:
            self.stop()

    def stop(self) -> None:
        try:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            if pending:
                self._run(_settle(pending))
            self._run(self.loop.shutdown_default_executor())
        finally:
            if self._helper is not None:
                self._helper.shutdown(wait=True)
            self.loop.close()


#: The name of the task of the call the owner runs itself.
_OWN_CALL = "fincat-call"


class _Handed(Generic[T]):
    """A call handed to the thread that runs the loop. Its end, however it comes (a
    result, an error, a cancellation before it started), is counted on the loop,
    so that the owner stops serving only when it is over."""

    def __init__(self, runner: _LoopRunner, coro: Coroutine[Any, Any, T]) -> None:
        self._runner = runner
        self._coro = coro  # from now on touched on the loop's thread only
        self._task: asyncio.Task[T] | None = None
        self._over = threading.Event()
        self._abandoned = False

    def start(self) -> None:
        """On the loop's thread."""
        if self._abandoned:  # its caller gave up before it started
            self._ended(None)
            return
        self._task = self._runner.loop.create_task(_waited_for(self._coro))
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[T] | None) -> None:
        _close_unstarted(self._coro)
        if task is not None and self._abandoned:
            _retrieved(task)  # nobody waits for it any more
        self._runner._guest_done()
        self._over.set()

    def _cancel(self) -> None:
        """On the loop's thread; queued after ``start``."""
        self._abandoned = True
        if self._task is not None:
            self._task.cancel()

    def wait(self) -> T:
        """The call's result, on the thread that handed it over."""
        self._over.wait()
        assert self._task is not None
        return self._task.result()

    def cancel(self) -> None:
        """From the thread that handed it over."""
        if not self._over.is_set():  # else it ended: its error is what is raised
            self._runner.loop.call_soon_threadsafe(self._cancel)

    def wait_over(self) -> None:
        """Wait until it has ended, however; a second interrupt stops the wait."""
        with contextlib.suppress(BaseException):
            self._over.wait()
        if self._task is not None:
            _retrieved(self._task)


def _close_unstarted(coro: Coroutine[Any, Any, Any]) -> None:
    """Close a call's coroutine that an interrupt stopped before it started (else
    Python warns that it was never awaited)."""
    if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
        coro.close()


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Mark how ``task`` ended as seen, so that asyncio does not report it as never
    retrieved when the task is collected."""
    if task.done() and not task.cancelled():
        task.exception()


async def _waited_for(coro: Coroutine[Any, Any, T]) -> T:
    """``coro`` as the call of a thread that waits for it (see ``caller_waits``)."""
    caller_waits.set(True)  # in this task's own copy of the context
    return await coro


def _runs_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _close(inner: AsyncCatalog, runner: _LoopRunner, wait: bool = False) -> None:
    # Without ``wait`` (collected, or at exit), a call under way leaves it open: a
    # daemon thread may be inside one, and the process ends with that thread.
    runner.finish(inner.close(), wait)


async def _settle(tasks: set[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


class SyncBatch:
    """The synchronous face of :class:`catalog_store.catalog.Batch`."""

    def __init__(self, batch: Batch, runner: _LoopRunner) -> None:
        self._batch = batch
        self._runner = runner

    @property
    def version(self) -> int | None:
        """The version the batch committed as, once the block has ended; None if it
        committed nothing (no change, or only changes to what the series hold)."""
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

    def __init__(self, inner: AsyncCatalog, runner: _LoopRunner) -> None:
        self.inner = inner
        self._runner = runner
        # A catalog a script never closes is closed when collected or at exit, as a
        # file is: the "latest" hint its last commit left is written, and no task
        # is left pending on a loop nobody runs again.
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
        runner = _LoopRunner()
        try:
            inner = runner.run(
                AsyncCatalog.open(url, storage_options, create=create, options=options)
            )
        except BaseException:
            runner.stop()
            raise
        return cls(inner, runner)

    @property
    def created(self) -> bool:
        """Whether opening it initialised the store (see :attr:`AsyncCatalog.created`)."""
        return self.inner.created

    def close(self) -> None:
        """Finish background work and release the store, once the calls other
        threads have under way are done; later calls raise RuntimeError, and a
        later close does nothing."""
        if self._closer.detach() is not None:
            _close(self.inner, self._runner, wait=True)

    def __enter__(self) -> Catalog:
        return self

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

    def revisions(
        self,
        series_id: str,
        start: DateLike = None,
        end: DateLike = None,
        first_release_only: bool = False,
    ) -> pa.Table:
        return self._runner.run(self.inner.revisions(series_id, start, end, first_release_only))

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
            self._runner.run(manager.__aexit__(type(exc), exc, exc.__traceback__))
            raise
        self._runner.run(manager.__aexit__(None, None, None))
