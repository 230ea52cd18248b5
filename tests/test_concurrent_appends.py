"""Several processes write observations of the same series at once: none is lost."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.managers import SyncManager

import pyarrow as pa
import pytest

from catalog_store.errors import AppendOrderError
from tests.conftest import StoreTarget
from tests.workers_obs import (
    BASE,
    RACE,
    SHARED,
    append_and_upsert,
    append_next,
    append_when_told,
    own_series,
)

WORKERS = 4
STEPS = 5
RACE_SUCCESSES = 3

ctx = multiprocessing.get_context("spawn")


@dataclass
class Workers:
    pool: ProcessPoolExecutor
    manager: SyncManager


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    """Spawned once for the module: starting Python processes is the slow part."""
    with ctx.Manager() as manager, ProcessPoolExecutor(WORKERS, mp_context=ctx) as pool:
        yield Workers(pool, manager)


def iso_rows(table: pa.Table) -> list[tuple[str, float]]:
    dates = table.column("date").to_pylist()
    values = table.column("value").to_pylist()
    return [(d.isoformat(), v) for d, v in zip(dates, values, strict=True)]


def test_four_processes_append_and_upsert_and_every_write_lands_once(
    shared_target: StoreTarget, workers: Workers
) -> None:
    with shared_target.open() as cat, cat.batch("seed") as batch:
        for worker in range(WORKERS):
            batch.create({"id": own_series(worker), "frequency": "daily"})
        batch.create({"id": SHARED, "frequency": "daily", "partitioning": "year"})
        batch.write(SHARED, ([BASE - dt.timedelta(days=1)], [0.0]))
    barrier = workers.manager.Barrier(WORKERS)
    jobs = [
        workers.pool.submit(append_and_upsert, shared_target, w, STEPS, WORKERS, barrier)
        for w in range(WORKERS)
    ]
    reports = [job.result(timeout=300) for job in jobs]

    with shared_target.open(create=False) as cat:
        shared = [((BASE - dt.timedelta(days=1)).isoformat(), 0.0)]
        for worker, report in enumerate(reports):
            own = report[own_series(worker)]
            assert len(own) == STEPS
            assert iso_rows(cat.read(own_series(worker))) == own
            assert cat.get(own_series(worker)).observation_count == STEPS
            shared += report[SHARED]
        assert len(shared) == 1 + WORKERS * STEPS
        assert iso_rows(cat.read(SHARED)) == sorted(shared)
        assert cat.get(SHARED).observation_count == len(shared)

        # Each reported write is exactly one version; the rest are compactions.
        changes = Counter(
            op for info in cat.history(limit=1000) for op in info.changes if op[0] != "create"
        )
        expected = {("append", own_series(w)): STEPS for w in range(WORKERS)}
        expected[("upsert", SHARED)] = WORKERS * STEPS
        expected[("append", SHARED)] = 1
        assert {k: v for k, v in changes.items() if k[0] != "compact"} == expected
        assert cat.inner.committer.stats.gave_up == 0


def test_racing_appends_of_the_next_date_land_once_or_fail(
    shared_target: StoreTarget, workers: Workers
) -> None:
    with shared_target.open() as cat:
        cat.create(id=RACE, frequency="daily")
        cat.write(RACE, ([BASE], [-1.0]))
    barrier = workers.manager.Barrier(WORKERS)
    jobs = [
        workers.pool.submit(append_next, shared_target, w, RACE_SUCCESSES, barrier)
        for w in range(WORKERS)
    ]
    reports = [job.result(timeout=300) for job in jobs]

    landed = [row for rows, _refused in reports for row in rows]
    assert len(landed) == WORKERS * RACE_SUCCESSES
    with shared_target.open(create=False) as cat:
        rows = iso_rows(cat.read(RACE))
        # One row per date, no gaps, and each with the value of the one append that landed it.
        expected = [(BASE.isoformat(), -1.0), *sorted(landed)]
        assert rows == expected
        days = [dt.date.fromisoformat(d) for d, _ in rows]
        assert days == [BASE + dt.timedelta(days=i) for i in range(len(days))]
        appends = sum(
            1 for info in cat.history(limit=1000) for op in info.changes if op == ("append", RACE)
        )
        assert appends == len(rows)


def test_an_append_overtaken_by_another_process_raises_append_order_error(
    shared_target: StoreTarget, workers: Workers
) -> None:
    """The batch's append was valid when it was added; it is checked again when it
    commits, after another process appended the same date, and refused."""
    day = BASE + dt.timedelta(days=1)
    with shared_target.open() as cat:
        cat.create(id=RACE, frequency="daily")
        cat.write(RACE, ([BASE], [0.0]))
        ready, go = workers.manager.Event(), workers.manager.Event()
        other = workers.pool.submit(append_when_told, shared_target, day.isoformat(), ready, go)
        landed: list[int] = []

        def overtaken_batch() -> None:
            with cat.batch() as batch:
                batch.write(RACE, ([day, day + dt.timedelta(days=1)], [1.0, 2.0]))
                go.set()
                landed.append(other.result(timeout=120))

        try:
            assert ready.wait(timeout=120)
            with pytest.raises(AppendOrderError) as info:
                overtaken_batch()
            assert info.value.series_id == RACE
        finally:
            go.set()
        other_version = landed[0]
        # Only the other process' append landed; the batch left no version behind.
        assert cat.version() == other_version
        assert iso_rows(cat.read(RACE)) == [(BASE.isoformat(), 0.0), (day.isoformat(), -1.0)]
        assert cat.get(RACE).observation_count == 2
        assert [i.changes for i in cat.history(limit=2)] == [[("append", RACE)]] * 2
