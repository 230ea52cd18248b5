"""After a repair, revision history and series versions agree with as-of reads.

A repair restores the newest version that verifies as a new commit. That commit
changes back every series the lost versions changed: those series get a record of
its version, linked to the state they had before it, so the history shows what
the lost versions published over the interval as-of reads showed it, and the
restored values again from the repair on.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from catalog_store import Catalog, CatalogOptions
from catalog_store.errors import IntegrityError, SeriesNotFoundError
from catalog_store.keys import manifest_key, series_dir
from catalog_store.records import decode_manifest
from tests.conftest import EAGER
from tests.test_revisions import assert_tiles, revision_rows

D = dt.date
DAY = D(2000, 1, 1)


def times_of(cat: Catalog) -> dict[int, dt.datetime]:
    return {info.version: info.committed_at for info in cat.history(limit=1000)}


def assert_rows_are_what_reads_show(cat: Catalog, series_id: str) -> None:
    """Each revision row is what an as-of read at its start shows, until its end."""
    rows = revision_rows(cat.revisions(series_id))
    assert_tiles(rows)
    for date, value, start, end in rows:
        seen = cat.read(series_id, start=date, end=date, as_of=start)
        assert seen.column("value").to_pylist() == [value]
        if end is not None:
            after = cat.read(series_id, start=date, end=date, as_of=end)
            assert after.column("value").to_pylist() != [value]


def newest_data_file(root: Path, series_id: str) -> Path:
    """The file of the series' latest append: the one holding its latest date (a
    modification time ties with the one before within the clock's resolution)."""
    files = (root / series_dir(series_id)).rglob("*.parquet")
    return max(files, key=lambda p: pq.read_table(p).column("date").to_pylist()[-1])


def test_a_repair_changes_back_the_series_the_lost_version_changed(tmp_path: Path) -> None:
    root = tmp_path / "store"
    cat = Catalog.open(str(root), create=True, options=EAGER)
    for series_id in ("A", "B", "C"):
        cat.create(id=series_id, frequency="daily")  # versions 1-3
    cat.write("A", ([DAY], [1.0]))  # 4
    cat.write("B", ([DAY], [1.0]))  # 5
    cat.write("A", ([DAY], [2.0]), mode="upsert")  # 6: A revised; healthy
    c_version = cat.get("C").version
    with cat.batch() as batch:  # 7: A revised again, and a day appended to B
        batch.write("A", ([DAY], [3.0]), mode="upsert")
        batch.write("B", ([D(2000, 1, 2)], [2.0]))
    # Damage the file B's append wrote: version 7 no longer verifies.
    b_file = newest_data_file(root, "B")
    damaged = bytearray(b_file.read_bytes())
    damaged[10] ^= 0xFF
    b_file.write_bytes(bytes(damaged))
    cat.close()

    cat = Catalog.open(str(root))
    report = cat.repair()
    assert (report.healthy_version, report.lost_versions, report.new_version) == (6, [7], 8)
    t = times_of(cat)

    # A: what the reads show, the history shows, and its version is the repair's.
    assert cat.read("A", as_of=t[7]).column("value").to_pylist() == [3.0]
    assert cat.read("A", as_of=t[8]).column("value").to_pylist() == [2.0]
    assert revision_rows(cat.revisions("A")) == [
        (DAY, 1.0, t[4], t[6]),
        (DAY, 2.0, t[6], t[7]),
        (DAY, 3.0, t[7], t[8]),
        (DAY, 2.0, t[8], None),
    ]
    first = revision_rows(cat.revisions("A", first_release_only=True))
    assert first == [(DAY, 1.0, t[4], t[6])]
    assert_rows_are_what_reads_show(cat, "A")
    assert cat.get("A").version == 8
    assert cat.get("A").updated_at == t[8]

    # B's state at version 7 reads nowhere (its file is damaged): the history goes
    # round it, but B changed back all the same.
    with pytest.raises(IntegrityError):
        cat.read("B", as_of=t[7])
    assert revision_rows(cat.revisions("B")) == [(DAY, 1.0, t[5], None)]
    assert cat.get("B").version == 8
    # C: not changed by the lost version, so not by the repair either.
    assert cat.get("C").version == c_version

    # The log shows the repair as one change, restoring version 6; all verifies.
    entry = cat.history(limit=1)[0]
    assert (entry.version, entry.changes, entry.change_count) == (8, [("restore", "6")], 1)
    assert entry.message.startswith("repair: restore version 6")
    assert (entry.series_count, entry.observation_count) == (3, 2)
    full = cat.verify()
    assert full.ok and [p.version for p in full.superseded] == [7]
    assert cat.repair().new_version is None

    # Later changes link on from the repair's state.
    cat.write("A", ([DAY], [4.0]), mode="upsert")
    rows = revision_rows(cat.revisions("A"))
    assert [r[1] for r in rows] == [1.0, 2.0, 3.0, 2.0, 4.0]
    assert_rows_are_what_reads_show(cat, "A")
    with Catalog.open(str(root)) as reopened:
        assert revision_rows(reopened.revisions("A")) == rows
    cat.close()


def test_a_repair_over_a_manifest_that_cannot_be_read_links_to_the_newest_that_can(
    tmp_path: Path,
) -> None:
    # Rows go into files; the series changed are held in the manifests.
    root = tmp_path / "store"
    cat = Catalog.open(str(root), create=True, options=CatalogOptions(inline_rows=0))
    for series_id in ("A", "B", "C"):
        cat.create(id=series_id, frequency="daily")
        cat.write(series_id, ([DAY], [1.0]))  # versions 1-6
    good = cat.version()
    with cat.batch() as batch:  # 7
        batch.write("A", ([DAY], [3.0]), mode="upsert")
        batch.write("B", ([D(2000, 1, 2)], [2.0]))
    b_file = newest_data_file(root, "B")  # damaged below: no version from 7 on verifies
    cat.delete("C")  # 8
    cat.update("B", {"title": "retitled"})  # 9
    cat.write("A", ([D(2000, 1, 2)], [4.0]))  # 10: its manifest is damaged below
    cat.close()
    b_file.write_bytes(b_file.read_bytes()[:-1])
    newest = root / manifest_key(10)
    newest.write_bytes(newest.read_bytes()[:-10])

    cat = Catalog.open(str(root))
    report = cat.repair()
    assert (report.healthy_version, report.lost_versions) == (good, [7, 8, 9, 10])
    assert report.new_version == 11
    t = times_of(cat)
    assert 10 not in t

    # A: its state at version 9, the newest that reads, runs on to the repair (from
    # version 9's time on, as-of reads fail: version 10 may have been current).
    assert revision_rows(cat.revisions("A")) == [
        (DAY, 1.0, t[2], t[7]),
        (DAY, 3.0, t[7], t[11]),
        (DAY, 1.0, t[11], None),
    ]
    assert cat.read("A", as_of=t[8]).column("value").to_pylist() == [3.0]
    with pytest.raises(IntegrityError, match="version 10 is damaged"):
        cat.read("A", as_of=t[9])
    assert cat.get("A").version == 11
    # B: its states at versions 7 and 9 name the damaged file; its title came back.
    with pytest.raises(IntegrityError):
        cat.read("B", as_of=t[7])
    assert cat.get("B", as_of=9).title == "retitled"
    assert (cat.get("B").title, cat.get("B").version) == ("", 11)
    assert revision_rows(cat.revisions("B")) == [(DAY, 1.0, t[4], None)]
    # C, deleted at version 8, starts again at the repair, as a series created again.
    with pytest.raises(SeriesNotFoundError):
        cat.read("C", as_of=t[8])
    assert revision_rows(cat.revisions("C")) == [(DAY, 1.0, t[11], None)]
    assert cat.get("C").version == 11
    for series_id in ("A", "C"):
        assert_rows_are_what_reads_show(cat, series_id)
    assert cat.verify().ok
    cat.close()


def test_a_repair_changing_back_many_series_writes_them_into_their_shards(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    cat = Catalog.open(str(root), create=True, options=CatalogOptions(inline_rows=0))
    ids = [f"S{i:02d}" for i in range(40)]
    with cat.batch() as batch:
        for series_id in ids:
            batch.create({"id": series_id, "frequency": "daily"})
            batch.write(series_id, ([DAY], [1.0]))
    good = cat.version()
    with cat.batch() as batch:  # more series than a manifest holds
        for series_id in ids[:30]:
            batch.write(series_id, ([DAY], [2.0]), mode="upsert")
        batch.write(ids[-1], ([D(2000, 1, 2)], [2.0]))  # its file is deleted below
    newest_data_file(root, ids[-1]).unlink()
    cat.close()

    cat = Catalog.open(str(root))
    assert cat.repair().new_version == good + 2
    t = times_of(cat)
    assert {cat.get(i).version for i in ids[:30]} == {good + 2}
    assert {cat.get(i).version for i in ids[30:39]} == {good}
    assert cat.get(ids[-1]).version == good + 2
    for series_id in ids[:30]:
        assert [r[1:] for r in revision_rows(cat.revisions(series_id))] == [
            (1.0, t[good], t[good + 1]),
            (2.0, t[good + 1], t[good + 2]),
            (1.0, t[good + 2], None),
        ]
    assert [r[1:] for r in revision_rows(cat.revisions(ids[-1]))] == [(1.0, t[good], None)]
    # Too many to hold in the manifest: the repair rewrote their shards.
    key = manifest_key(good + 2)
    restored = decode_manifest((root / key).read_bytes(), key)
    assert restored.records_pending == []
    healthy = decode_manifest((root / manifest_key(good)).read_bytes(), manifest_key(good))
    assert restored.shards != healthy.shards
    assert cat.verify().ok
    cat.close()
