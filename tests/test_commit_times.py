"""Commit times increase strictly, whatever the writers' clocks say.

The clocks of writers on several machines disagree: a writer whose clock is
behind the last commit's time takes the parent's time plus one microsecond,
so no two versions share an instant, each version is what an as-of read at its
own commit time shows, and revision intervals are never empty.
"""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
from pathlib import Path

import msgspec
import pytest

from catalog_store import Catalog, commit
from catalog_store.keys import manifest_key
from catalog_store.records import decode_manifest, encode_manifest
from tests.test_revisions import assert_tiles, revision_rows

D = dt.date
BEHIND = dt.timedelta(hours=1)


def write_with_a_slow_clock(root: str, values: list[float]) -> list[int]:
    """In a process of its own, whose clock runs ``BEHIND`` behind: upsert each value of
    ``S`` on 2024-01-01 as a commit; return the versions."""
    real = commit.utc_now
    commit.utc_now = lambda: real() - BEHIND
    versions = []
    with Catalog.open(root) as cat:
        for value in values:
            cat.write("S", ([D(2024, 1, 1)], [value]), mode="upsert")
            versions.append(cat.version())
    return versions


def times_of(cat: Catalog) -> dict[int, dt.datetime]:
    return {info.version: info.committed_at for info in cat.history(limit=1000)}


def assert_each_version_reads_at_its_own_time(cat: Catalog, times: dict[int, dt.datetime]) -> None:
    """Times increase strictly, and an as-of read at a version's time reads that version."""
    ordered = sorted(times.items())
    for (_, earlier), (_, later) in itertools.pairwise(ordered):
        assert earlier < later
    for version, at in ordered:
        if version >= 1:  # S is created at version 1
            assert cat.read("S", as_of=at).equals(cat.read("S", as_of=version))


def test_a_writer_whose_clock_is_behind_still_commits_later(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    cat = Catalog.open(root, create=True)
    cat.create(id="S", frequency="daily")
    cat.write("S", ([D(2024, 1, 1)], [1.0]))
    # A second machine, its clock an hour behind: a real process with its own clock.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        versions = pool.apply(write_with_a_slow_clock, (root, [2.0, 3.0]))
    assert versions == [3, 4]
    cat.write("S", ([D(2024, 1, 1)], [4.0]), mode="upsert")  # this clock again

    times = times_of(cat)
    assert list(times) == [5, 4, 3, 2, 1, 0]
    # Behind the parent's time, a commit takes it plus the least step a manifest records.
    assert times[3] == times[2] + commit.TICK and times[4] == times[3] + commit.TICK
    assert_each_version_reads_at_its_own_time(cat, times)
    values = [1.0, 2.0, 3.0, 4.0]
    for version, value in zip((2, 3, 4, 5), values, strict=True):
        assert cat.read("S", as_of=times[version]).column("value").to_pylist() == [value]

    rows = revision_rows(cat.revisions("S"))
    assert_tiles(rows)
    assert [r[1] for r in rows] == values
    assert all(end is None or start < end for _date, _value, start, end in rows)
    assert [r[2] for r in rows] == [times[v] for v in (2, 3, 4, 5)]
    first = revision_rows(cat.revisions("S", first_release_only=True))
    assert first == rows[:1]
    assert cat.verify().ok
    cat.close()


def test_a_retry_takes_its_time_from_the_version_it_lost_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(tmp_path / "store")
    fast = Catalog.open(root, create=True)
    fast.create(id="A", frequency="daily")
    fast.create(id="B", frequency="daily")
    slow = Catalog.open(root)
    assert slow.version() == 2
    real = commit.utc_now
    clock_calls = 0

    def slow_clock() -> dt.datetime:
        # The slow writer reads its clock for version 3, then the fast one lands it.
        nonlocal clock_calls
        clock_calls += 1
        if clock_calls == 1:
            monkeypatch.setattr(commit, "utc_now", real)
            fast.write("A", ([D(2024, 1, 1)], [1.0]))
            monkeypatch.setattr(commit, "utc_now", slow_clock)
        return real() - BEHIND

    monkeypatch.setattr(commit, "utc_now", slow_clock)
    slow.write("B", ([D(2024, 1, 1)], [2.0]))
    monkeypatch.setattr(commit, "utc_now", real)

    assert slow.inner.committer.stats.lost_races == 1
    assert slow.version() == 4
    times = times_of(slow)
    assert times[2] < times[3] < times[4] == times[3] + commit.TICK
    assert slow.verify().ok
    slow.close()
    fast.close()


def test_versions_an_older_writer_committed_at_one_instant_count_as_the_newest(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    with Catalog.open(str(root), create=True) as cat:
        cat.create(id="S", frequency="daily")
        for i, value in enumerate([1.0, 2.0, 3.0]):
            cat.write("S", ([D(2024, 1, 1)], [value]), mode="upsert" if i else "append")
        cat.write("S", ([D(2024, 1, 2)], [9.0]))
    # As a fincat that took the later of its clock and the parent's time wrote
    # them: versions 3 and 4 committed at version 2's instant.
    path = root / manifest_key(2)
    tied = decode_manifest(path.read_bytes(), manifest_key(2)).committed_at
    for version in (3, 4):
        path = root / manifest_key(version)
        manifest = decode_manifest(path.read_bytes(), manifest_key(version))
        path.chmod(0o644)
        path.write_bytes(encode_manifest(msgspec.structs.replace(manifest, committed_at=tied)))

    with Catalog.open(str(root)) as cat:
        times = times_of(cat)
        assert times[2] == times[3] == times[4] < times[5]
        assert cat.read("S", as_of=tied).column("value").to_pylist() == [3.0]
        rows = revision_rows(cat.revisions("S"))
        assert_tiles(rows)
        assert rows == [
            (D(2024, 1, 1), 3.0, tied, None),
            (D(2024, 1, 2), 9.0, times[5], None),
        ]
        first = revision_rows(cat.revisions("S", first_release_only=True))
        assert first == rows
        for date, value, start, _end in rows:
            seen = cat.read("S", start=date, end=date, as_of=start)
            assert seen.column("value").to_pylist() == [value]
        assert cat.verify().ok
