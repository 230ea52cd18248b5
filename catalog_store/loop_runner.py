"""The event loop a synchronous :class:`~catalog_store.sync.Catalog` runs its calls on.

One loop per catalog, run in the calling thread (see :class:`LoopRunner`), so the
S3 client's connections live on one loop for the catalog's lifetime, and a call
costs no trip to another thread. Calls from several threads share it; a thread
that runs an event loop of its own (a notebook) has its calls run by a helper.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import selectors
import signal
import threading
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from catalog_store.errors import CatalogClosedError
from catalog_store.storage.base import caller_waits
from catalog_store.tasks import abandoned, outcome_seen

try:  # the C function: signal.signal's enum conversions cost ~8 us a call, twice a call
    from _signal import signal as _set_signal_handler  # type: ignore[import-not-found]
except ImportError:  # another Python
    _set_signal_handler = signal.signal

T = TypeVar("T")


class LoopRunner:
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
        self.loop.set_exception_handler(self._on_callback_error)
        #: What a signal handler raised inside a callback during a call (see below).
        self._callback_error: BaseException | None = None
        self._mutex = threading.Lock()
        #: Notified when the loop has no owner: a close waits for calls under way.
        self._idle = threading.Condition(self._mutex)
        self._owned = False
        self._closed = False
        #: Set as a close begins: calls made from then on are refused, so that the
        #: close, which waits for calls under way, is not kept waiting by new ones.
        self._closing = False
        self._guests = 0
        self._guests_done = asyncio.Event()
        self._helper: ThreadPoolExecutor | None = None
        #: Whether the helper thread is to run the loop for handed-over calls.
        self._driven = False
        #: The task the loop is being run until, if any (see _until_done).
        self._running_for: asyncio.Task[Any] | None = None
        #: Whether this process is a fork of the one that made the runner, which
        #: then runs nothing here (see _forsake).
        self.inherited = False
        #: Held while a forked child opens a catalog in place of an inherited one.
        self.reopening = threading.Lock()
        _runners.add(self)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._mutex:
            closed = self._closed or self._closing
        if closed or self.inherited:
            coro.close()
            if closed:
                raise CatalogClosedError("this Catalog is closed")
            raise RuntimeError(
                "this Catalog was opened by the parent of this forked process, "
                "from an already opened store, and cannot be opened again here; "
                "open a new Catalog in this process"
            )
        return self._call(coro)

    def _call(self, coro: Coroutine[Any, Any, T], final: bool = False) -> T:
        """Run ``coro`` as a call of this thread. On the main thread, Ctrl-C is taken
        as ``asyncio.Runner`` takes it while the call runs: the handler cancels the
        call, and KeyboardInterrupt is raised once the call has stopped. Python
        otherwise raises KeyboardInterrupt at whatever bytecode the main thread is
        at, which in the runner's own bookkeeping (taking the loop, handing a call
        over, serving other threads' calls) left calls waiting for good. Only where
        Python's own handler is in place (a program's own handler is left alone);
        a second Ctrl-C while the call stops is raised at once."""
        if threading.current_thread() is not threading.main_thread():
            return self._run(coro, final=final)
        ctrl_c = _CtrlC()
        try:
            previous = _set_signal_handler(signal.SIGINT, ctrl_c)
        except ValueError:  # the main thread of a subinterpreter: no signals here
            return self._run(coro, final=final)
        except BaseException:
            coro.close()
            raise
        if previous is not signal.default_int_handler:
            _set_signal_handler(signal.SIGINT, previous)
            return self._run(coro, final=final)
        try:
            result = self._run(coro, ctrl_c, final)
        except BaseException as exc:
            if ctrl_c.seen and not isinstance(exc, KeyboardInterrupt):
                raise KeyboardInterrupt from exc
            raise
        finally:
            _set_signal_handler(signal.SIGINT, previous)
        if ctrl_c.seen:
            raise KeyboardInterrupt
        return result

    def _forsake(self) -> None:
        """In a forked child. The loop's epoll instance and wake-up socket are the
        parent's too: running the loop here would take the parent's wake-ups, and
        closing it would unregister the parent's descriptors from the epoll both
        use (the parent's next call that waits for a worker thread never woke). So
        the loop is never run here, and gets a selector of its own, so that what
        touches it later (its collection, an S3 client's cleanup) touches nothing
        of the parent's. Locks a parent's thread held at the fork are made anew."""
        self.inherited = True
        self._mutex = threading.Lock()
        self._idle = threading.Condition(self._mutex)
        self.reopening = threading.Lock()
        self._helper = None  # its thread is the parent's
        shared = getattr(self.loop, "_selector", None)
        if isinstance(shared, selectors.BaseSelector):
            setattr(self.loop, "_selector", selectors.DefaultSelector())  # noqa: B010
            shared.close()  # this process's descriptor of the epoll; the parent's stays
        # Its tasks and connections (a hint write under way, an S3 session) are the
        # parent's, which finishes them: collected here, they are no error to report.
        self.loop.set_exception_handler(_ignore_inherited)

    def _inside_a_call(self) -> bool:
        """Whether this thread is inside one of this runner's calls (a callback
        the loop runs): a call from here would wait for the loop it blocks."""
        return _runs_a_loop() and asyncio.get_running_loop() is self.loop

    def _run(
        self, coro: Coroutine[Any, Any, T], ctrl_c: _CtrlC | None = None, final: bool = False
    ) -> T:
        """Run ``coro`` as a call: on the loop, as its owner or handed to the owner.
        Only the ``final`` calls of a close (its last call, the loop's shutdown) run
        once the close has begun: another thread's call that passed :meth:`run`'s
        check just before is refused here, where it used to take a loop the close
        had just shut, and failed with asyncio's "Event loop is closed"."""
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
                if (self._closing or self._closed) and not final:
                    coro.close()
                    raise CatalogClosedError("this Catalog is closed")
                if self._owned or helper is not None:
                    handed = _Handed(self, coro)
                    self._hand_over(handed)
                    if not self._owned:
                        self._owned = self._driven = drive = True
                else:
                    self._owned = owner = True
            if owner:
                return self._run_own_call(coro, ctrl_c)
            assert handed is not None
            if ctrl_c is not None:
                ctrl_c.on(handed.cancel)
            if drive:
                assert helper is not None
                helper.submit(self._drive)
                drive = False
            return handed.wait()
        except BaseException as exc:
            if handed is not None:
                self._settle(handed, helper, drive, abandon=_insisted(ctrl_c, exc))
            raise
        finally:
            if owner:
                self._serve_guests()

    def _settle(
        self,
        handed: _Handed[Any],
        helper: ThreadPoolExecutor | None,
        drive: bool,
        abandon: bool = False,
    ) -> None:
        """After an interrupt (Ctrl-C) of the thread that handed ``handed`` over:
        cancel it and wait until it has stopped, so that no write of it lands after
        the interrupt reaches the caller; after a second Ctrl-C (``abandon``) a
        commit no longer waits for its manifest's write, as on the owner's thread.
        The interrupt may have come before anyone was to run the loop for it: then
        this thread does, or has the helper do it."""
        with self._mutex:
            serve = not self._owned
            if serve:
                self._owned = True
                self._driven = helper is not None
        handed.cancel(abandon)
        if helper is not None and (serve or drive):
            helper.submit(self._drive)
        elif serve:
            with contextlib.suppress(KeyboardInterrupt):
                self._serve_guests()
        handed.wait_over()

    def _run_own_call(self, coro: Coroutine[Any, Any, T], ctrl_c: _CtrlC | None) -> T:
        task: asyncio.Task[T] | None = None
        try:
            task = self.loop.create_task(_waited_for(coro), name=_OWN_CALL)
            if ctrl_c is not None:
                ctrl_c.on(functools.partial(self._cancel_from_signal, task))
            return self._until_done(task)
        except BaseException as exc:
            # Interrupted (Ctrl-C) while running the call: left pending, it would go
            # on during the next call that runs the loop, and a write would land
            # after writes made since. Cancel it and let it stop (a commit whose
            # manifest is being written first waits for that write: see commit.py;
            # after a second Ctrl-C, which is to be raised at once, it does not).
            # Also found by name: the interrupt may have come as the task was made.
            again = _insisted(ctrl_c, exc)
            calls = {t for t in asyncio.all_tasks(self.loop) if t.get_name() == _OWN_CALL}
            for call in calls | ({task} if task is not None else set()):
                if not call.done():
                    if again:
                        abandoned.add(call)
                    call.cancel()
                    with contextlib.suppress(BaseException):
                        self._until_done(call)
                outcome_seen(call)  # how it ended is raised here, or was the interrupt
            _close_unstarted(coro)
            raise

    def _cancel_from_signal(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` from a signal handler on the loop's own thread: the loop
        may be waiting in epoll, which Python resumes after the handler; a byte on
        the loop's wake-up socket ends that wait, so the cancellation runs now."""
        task.cancel()
        self.loop.call_soon_threadsafe(_nothing)

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
        error, self._callback_error = self._callback_error, None
        if error is not None and not task.done():
            raise error  # the caller cancels the call (see _run_own_call)
        return task.result()

    def _on_callback_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An error raised in a callback while a call runs: a signal handler's (a
        timeout of the caller's, raised where it fell) that asyncio would log and
        drop. Fallen in the callback that stops the loop, or one that wakes the
        call, the call never ended. The loop stops, and the error is raised where
        the call waits."""
        error = context.get("exception")
        from_callback = "handle" in context and not ({"future", "task"} & context.keys())
        if error is not None and from_callback and self._running_for is not None:
            self._callback_error = error
            loop.stop()
            return
        loop.default_exception_handler(context)

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
        released = False
        try:
            while True:
                try:
                    with self._mutex:
                        if not self._guests:
                            # With the check, under the lock: a call handed over
                            # after it finds the loop unowned and runs it itself.
                            self._owned = False
                            released = True
                            break
                        self._guests_done.clear()
                    self._until_done(self.loop.create_task(self._guests_done.wait()))
                except KeyboardInterrupt as exc:
                    interrupt = interrupt or exc
        finally:
            # The lock itself, not the condition: Condition.__enter__ is Python code,
            # and an interrupt just after it took the lock would leave it taken.
            with self._mutex:
                if not released:  # an error no call expects: the loop is not kept
                    self._owned = False
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
        if self.inherited:  # the parent's to close; closed for this process
            last.close()
            with self._mutex:
                self._closed = True
            return
        if self._inside_a_call():
            last.close()
            raise RuntimeError("a Catalog cannot be closed from inside one of its own calls")
        with self._mutex:
            if self._closed or self._closing:
                last.close()
                return
            self._closing = True
            if wait:
                try:
                    while self._owned:  # polled: a Ctrl-C may have cut a notification short
                        self._idle.wait(0.1)
                except BaseException:  # Ctrl-C: not closed, so usable, as before the close
                    self._closing = False
                    last.close()
                    raise
            elif self._owned:
                self._closing = False
                last.close()
                return
            self._closed = True
        try:
            self._call(last, final=True)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.inherited:
            return
        try:
            # The call just made may have been handed to the helper thread (this one
            # runs a loop of its own), which runs the loop until its bookkeeping task
            # sees no call left: cancelled from here, as one of every task, it ended
            # that run without giving the loop up, and the next call waited for good.
            with self._mutex:
                while self._owned:
                    self._idle.wait(0.1)
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            if pending:
                self._run(_settle(pending), final=True)
            self._run(self.loop.shutdown_default_executor(), final=True)
        finally:
            if self._helper is not None:
                self._helper.shutdown(wait=True)
            self.loop.close()


#: Every runner of this process, for a forked child to set aside.
_runners: weakref.WeakSet[LoopRunner] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for runner in list(_runners):
        runner._forsake()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _CtrlC:
    """The SIGINT handler while a call runs on the main thread (see
    :meth:`LoopRunner._call`): notes the interrupt and cancels the call; a second
    interrupt is raised where it falls."""

    __slots__ = ("_cancel", "seen")

    def __init__(self) -> None:
        self.seen = False
        self._cancel: Callable[[], None] | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.seen:
            raise KeyboardInterrupt
        self.seen = True
        if self._cancel is not None:
            self._cancel()

    def on(self, cancel: Callable[[], None]) -> None:
        """What cancels the call from here on; called at once if Ctrl-C came first."""
        self._cancel = cancel
        if self.seen:
            cancel()


def _insisted(ctrl_c: _CtrlC | None, exc: BaseException) -> bool:
    """Whether ``exc`` is the second Ctrl-C of a call, raised where it fell: its
    caller gives up on knowing how a commit of it ends (see commit._settled)."""
    return ctrl_c is not None and ctrl_c.seen and isinstance(exc, KeyboardInterrupt)


def _nothing() -> None:
    pass


def _ignore_inherited(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    pass


#: The name of the task of the call the owner runs itself.
_OWN_CALL = "fincat-call"


class _Handed(Generic[T]):
    """A call handed to the thread that runs the loop. Its end, however it comes (a
    result, an error, a cancellation before it started), is counted on the loop,
    so that the owner stops serving only when it is over."""

    def __init__(self, runner: LoopRunner, coro: Coroutine[Any, Any, T]) -> None:
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
        try:
            _close_unstarted(self._coro)
            if task is not None and self._abandoned:
                outcome_seen(task)  # nobody waits for it any more
            self._runner._guest_done()
        finally:
            # Whatever an interrupt of the loop's thread cut short, the thread that
            # handed the call over is told: else it waited for good.
            self._over.set()

    def _cancel(self, abandon: bool = False) -> None:
        """On the loop's thread; queued after ``start``."""
        self._abandoned = True
        if self._task is not None:
            if abandon:
                abandoned.add(self._task)
            self._task.cancel()

    def wait(self) -> T:
        """The call's result, on the thread that handed it over."""
        self._over.wait()
        assert self._task is not None
        return self._task.result()

    def cancel(self, abandon: bool = False) -> None:
        """From the thread that handed it over; with ``abandon``, its caller gives up
        on knowing how a commit of it ends (see commit._settled)."""
        if not self._over.is_set():  # else it ended: its error is what is raised
            self._runner.loop.call_soon_threadsafe(self._cancel, abandon)

    def wait_over(self) -> None:
        """Wait until it has ended, however; a second interrupt stops the wait."""
        with contextlib.suppress(BaseException):
            self._over.wait()
        if self._task is not None:
            outcome_seen(self._task)


def _close_unstarted(coro: Coroutine[Any, Any, Any]) -> None:
    """Close a call's coroutine that an interrupt stopped before it started (else
    Python warns that it was never awaited)."""
    if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
        coro.close()


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


async def _settle(tasks: set[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)
