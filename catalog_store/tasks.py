"""What the engine does with asyncio tasks it may stop waiting for."""

from __future__ import annotations

import asyncio
from typing import Any


def outcome_seen(task: asyncio.Future[Any]) -> None:
    """Mark how ``task`` ended as seen, so that asyncio does not report its error as
    never retrieved when the task is collected: the error reached the caller another
    way, or nobody waits for the task any more. A done callback, or called after."""
    if task.done() and not task.cancelled():
        task.exception()
