"""Many writer processes, one store: no lost update, history replays to the final state."""

from __future__ import annotations

import multiprocessing

from catalog_store.records import to_series
from tests.conftest import StoreTarget
from tests.workers import commit_many

PROCESSES = 8
COMMITS = 50
SERIES = [f"HOT{i}" for i in range(5)]


def test_eight_processes_fifty_commits_each(shared_target: StoreTarget) -> None:
    setup = shared_target.open()
    with setup.batch("seed") as batch:
        for series_id in SERIES:
            batch.create({"id": series_id, "frequency": "monthly"})
    base = setup.version()

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        jobs = [
            pool.apply_async(
                commit_many, (shared_target.url, shared_target.options, w, COMMITS, SERIES)
            )
            for w in range(PROCESSES)
        ]
        reported = [item for job in jobs for item in job.get(timeout=600)]

    # Every commit that reported success is in the history, each exactly once.
    assert len(reported) == PROCESSES * COMMITS
    versions = sorted(version for *_rest, version in reported)
    final = setup.version()
    assert final == base + PROCESSES * COMMITS
    assert versions == list(range(base + 1, final + 1))

    # Each manifest says what it changed, and replaying the history in order
    # gives every series' final state.
    by_version = {version: (series_id, w, s) for series_id, w, s, version in reported}
    last_writer: dict[str, tuple[int, int, int]] = {}
    for version in range(base + 1, final + 1):
        manifest = setup._runner.run(setup.inner.reader.manifest(version))
        series_id, worker, step = by_version[version]
        assert manifest.changes == [("update", series_id)]
        assert manifest.parent == version - 1
        last_writer[series_id] = (worker, step, version)
    for series_id, (worker, step, version) in last_writer.items():
        series = setup.get(series_id)
        assert series.title == f"w{worker}s{step}"
        assert series.attributes == {"writer": worker, "step": step}
        assert series.version == version
        # and each intermediate state is readable as of its version
        snapshot = setup._runner.run(setup.inner.snapshot(version))
        record = setup._runner.run(snapshot.record(series_id))
        assert record is not None and to_series(record).title == f"w{worker}s{step}"
    stats = setup.inner.committer.stats
    assert stats.gave_up == 0
    setup.close()
