"""Observation writers run in child processes (spawned, so they must be importable).

Each returns what it saw commit, so the parent can check that every write that
reported success landed exactly once and nothing else did.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from catalog_store.errors import AppendOrderError
from tests.conftest import StoreTarget

BASE = dt.date(2020, 1, 1)
SHARED = "SHARED"
RACE = "RACE"


def own_series(worker: int) -> str:
    return f"W{worker}"


def shared_date(worker: int, step: int, workers: int) -> dt.date:
    """Dates of the shared series: disjoint between workers, interleaved in time."""
    return BASE + dt.timedelta(days=step * workers + worker)


def append_and_upsert(
    target: StoreTarget, worker: int, steps: int, workers: int, barrier: Any
) -> dict[str, list[tuple[str, float]]]:
    """Append to this worker's own series and upsert its own dates of the shared one.

    Returns the (ISO date, value) rows each write reported as committed, by series.
    """
    committed: dict[str, list[tuple[str, float]]] = {own_series(worker): [], SHARED: []}
    cat = target.open(create=False)
    try:
        barrier.wait(timeout=120)
        for step in range(steps):
            day = BASE + dt.timedelta(days=step)
            value = worker * 1000.0 + step
            cat.write(own_series(worker), ([day], [value]))
            committed[own_series(worker)].append((day.isoformat(), value))
            day = shared_date(worker, step, workers)
            cat.write(SHARED, ([day], [value]), mode="upsert")
            committed[SHARED].append((day.isoformat(), value))
    finally:
        cat.close()
    return committed


def append_next(
    target: StoreTarget, worker: int, successes: int, barrier: Any
) -> tuple[list[tuple[str, float]], int]:
    """Append the day after the last one until ``successes`` appends have landed.

    Every worker aims at the same next day, so most attempts lose to another
    worker's append; those must raise AppendOrderError. Returns the rows that
    landed and the number of refused appends.
    """
    landed: list[tuple[str, float]] = []
    refused = 0
    cat = target.open(create=False)
    try:
        barrier.wait(timeout=120)
        while len(landed) < successes:
            last = cat.get(RACE).last_date
            assert isinstance(last, dt.date)
            day = last + dt.timedelta(days=1)
            try:
                cat.write(RACE, ([day], [float(worker)]))
            except AppendOrderError:
                refused += 1
                continue
            landed.append((day.isoformat(), float(worker)))
    finally:
        cat.close()
    return landed, refused


def append_when_told(target: StoreTarget, day: str, ready: Any, go: Any) -> int:
    """Wait for ``go``, then append ``day`` to the race series; return the new version."""
    cat = target.open(create=False)
    try:
        ready.set()
        go.wait(timeout=120)
        cat.write(RACE, ([dt.date.fromisoformat(day)], [-1.0]))
        return cat.version()
    finally:
        cat.close()
