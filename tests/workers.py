"""Functions run in child processes (spawned, so they must be importable)."""

from __future__ import annotations

import asyncio
import multiprocessing.synchronize
import time
from typing import Any

from catalog_store.errors import AlreadyExistsError
from catalog_store.storage import open_store


def race_put_if_absent(
    url: str, options: dict[str, Any], key: str, payload: bytes, start_at: float
) -> bool:
    """Try to create ``key`` at ``start_at``; True if this process won."""

    async def attempt() -> bool:
        store = open_store(url, options or None)
        try:
            # Sleep until the agreed instant so that all contenders fire together.
            await asyncio.sleep(max(0.0, start_at - time.time()))
            try:
                await store.put_if_absent(key, payload)
            except AlreadyExistsError:
                return False
            return True
        finally:
            await store.close()

    return asyncio.run(attempt())


def commit_many(
    url: str,
    options: dict[str, Any],
    worker: int,
    commits: int,
    series: list[str],
    barrier: multiprocessing.synchronize.Barrier | None = None,
) -> list[tuple[str, int, int, int]]:
    """Make ``commits`` metadata commits to overlapping series.

    Returns (series id, worker, step, version) for each commit that reported success.
    """
    from catalog_store import Catalog

    done: list[tuple[str, int, int, int]] = []
    cat = Catalog.open(url, options or None)
    try:
        if barrier is not None:
            barrier.wait()
        for step in range(commits):
            series_id = series[(worker + step) % len(series)]
            updated = cat.update(
                series_id,
                {"attributes": {"writer": worker, "step": step}, "title": f"w{worker}s{step}"},
            )
            done.append((series_id, worker, step, updated.version))
    finally:
        cat.close()
    return done


def gc_keeping_only_the_newest(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """``gc --retain-days 0 --grace-hours 0``: expire every version but the newest and
    delete what only they name; return its report."""
    import datetime as dt

    from catalog_store import Catalog

    with Catalog.open(url, options or None) as cat:
        zero = dt.timedelta(0)
        return cat.collect_garbage(grace=zero, retain=zero).to_dict()


def repair(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """``fincat repair``; return its report."""
    from catalog_store import Catalog

    with Catalog.open(url, options or None) as cat:
        return cat.repair().to_dict()
