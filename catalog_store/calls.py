"""The calls under way on an :class:`~catalog_store.catalog.AsyncCatalog`, which its
``close`` waits for.

Closing the store under a call cut it off: on S3 the client's session closed under
requests waiting for a connection, and each such call raised a bare
``CancelledError`` though nobody had cancelled it. So a close first refuses new
calls, lets those under way end (each store call has its deadline, each commit its
time limit), and only then releases the store. A call made from within a call
under way (``list`` reads through ``list_matching``, a write compacts after it) is
part of it, not a new one.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from catalog_store.errors import CatalogClosedError

P = ParamSpec("P")
R = TypeVar("R")


class CallsUnderWay:
    """Catalog calls in progress, counted per task (a nested call adds depth)."""

    def __init__(self, check_open: Callable[[], None]) -> None:
        self._check_open = check_open
        self._depth: dict[asyncio.Task[Any] | None, int] = {}
        self._ended: asyncio.Event | None = None
        #: Set as a close begins: calls made from then on are refused.
        self.closing = False

    def begin(self) -> asyncio.Task[Any] | None:
        """A call begins (its first check); CatalogClosedError if the catalog is
        closed, or closing and this is not a call within a call. Its task, for
        :meth:`end`. (Not a context manager: this runs on every lookup.)"""
        task = asyncio.current_task()
        depth = self._depth.get(task, 0)
        if self.closing and not depth:
            raise CatalogClosedError("this catalog is closed")
        self._check_open()
        self._depth[task] = depth + 1
        return task

    def end(self, task: asyncio.Task[Any] | None) -> None:
        depth = self._depth[task] - 1
        if depth:
            self._depth[task] = depth
            return
        del self._depth[task]
        if self._ended is not None:
            self._ended.set()

    async def wait(self) -> None:
        """Refuse new calls, and return once every call of another task has ended (a
        close made within a call of its own does not wait for that call). If the
        wait is cancelled, calls are taken again."""
        self.closing = True
        me = asyncio.current_task()
        try:
            while any(task is not me for task in self._depth):
                self._ended = self._ended or asyncio.Event()
                self._ended.clear()
                await self._ended.wait()
        except BaseException:
            self.closing = False  # a close given up on: the catalog still serves
            raise


class _Calling(Protocol):
    calls: CallsUnderWay


C = TypeVar("C", bound=_Calling)


def catalog_call(
    method: Callable[Concatenate[C, P], Awaitable[R]],
) -> Callable[Concatenate[C, P], Coroutine[Any, Any, R]]:
    """A public method of the catalog as one call under way (see the module)."""

    async def call(self: C, /, *args: P.args, **kwargs: P.kwargs) -> R:
        calls = self.calls
        task = calls.begin()
        try:
            return await method(self, *args, **kwargs)
        finally:
            calls.end(task)

    functools.update_wrapper(call, method)
    return call
