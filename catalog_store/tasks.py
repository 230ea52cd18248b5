"""What the engine does with asyncio tasks it may stop waiting for."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

#: Calls whose caller gave up on knowing how they end (a second Ctrl-C): a commit
#: among them stops waiting for its manifest's write, which it otherwise does
#: through any number of cancellations (see commit._settled).
abandoned: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()


def outcome_seen(task: asyncio.Future[Any]) -> None:
    """Mark how ``task`` ended as seen, so that asyncio does not report its error as
    never retrieved when the task is collected: the error reached the caller another
    way, or nobody waits for the task any more. A done callback, or called after."""
    if task.done() and not task.cancelled():
        task.exception()
