"""Metadata shards hold id ranges: they split as they grow, vanish when emptied, and a
lookup, a listing and a commit each touch only the shards of the ids involved."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from catalog_store import AsyncCatalog, SeriesFilter, changes
from catalog_store.errors import IntegrityError
from catalog_store.keys import checksum, manifest_key
from catalog_store.records import (
    Manifest,
    SeriesRecord,
    ShardRecords,
    ShardRef,
    encode_manifest,
    encode_record,
    encode_shard,
)
from catalog_store.storage import MemoryStore
from catalog_store.verify_report import Problem
from tests.conftest import EAGER


@pytest.fixture(autouse=True)
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    # The production sizes (thousands of records) would need thousands of series.
    monkeypatch.setattr(changes, "SHARD_MIN_SPLIT", 8)
    monkeypatch.setattr(changes, "SHARD_MAX_RECORDS", 8)


def spec(series_id: str) -> dict[str, str]:
    return {"id": series_id, "frequency": "monthly", "source": f"src{len(series_id) % 3}"}


async def latest(catalog: AsyncCatalog) -> Manifest:
    return (await catalog.snapshot()).manifest


async def create_all(catalog: AsyncCatalog, specs: Iterable[dict[str, Any]]) -> Manifest:
    """Create every series in one batch; the manifest of the version that made."""
    async with catalog.batch() as batch:
        for spec_ in specs:
            batch.create(spec_)
    return await latest(catalog)


async def ids_by_shard(catalog: AsyncCatalog, manifest: Manifest) -> list[list[str]]:
    reader = catalog.reader
    return [list(await reader.records(ref)) for ref in manifest.shards]


def test_shards_split_by_id_range_and_every_lookup_finds_its_series(tmp_path: Path) -> None:
    async def main() -> None:
        catalog = await AsyncCatalog.open(tmp_path / "c", create=True)
        ids = [f"S{n:03d}" for n in random.Random(7).sample(range(1000), 60)]
        for first in range(0, 60, 15):  # ids in no order, four batches
            manifest = await create_all(catalog, map(spec, ids[first : first + 15]))
        held = await ids_by_shard(catalog, manifest)
        assert len(manifest.shards) >= 60 // 8
        assert all(0 < len(shard) <= 8 for shard in held)
        assert sorted(manifest.bounds) == manifest.bounds
        assert len(set(manifest.bounds)) == len(manifest.bounds) == len(manifest.shards) - 1
        # In order across shards, each shard within its bounds.
        assert [i for shard in held for i in shard] == sorted(ids)
        for low, shard in zip(manifest.bounds, held[1:], strict=True):
            assert shard[0] >= low
        for high, shard in zip(manifest.bounds, held, strict=False):
            assert shard[-1] < high
        for series_id in ids:
            assert (await catalog.get(series_id)).id == series_id
        listed = [s.id async for s in catalog.iter_series()]
        assert listed == sorted(ids)
        assert (await catalog.verify()).ok
        await catalog.close()

    asyncio.run(main())


def test_a_commit_rewrites_only_the_shard_its_ids_fall_in(tmp_path: Path) -> None:
    async def main() -> None:
        # Eager: every commit rewrites the shards of its ids instead of holding them.
        catalog = await AsyncCatalog.open(tmp_path / "c", create=True, options=EAGER)
        before = await create_all(catalog, (spec(f"S{n:03d}") for n in range(40)))
        await catalog.update("S017", {"title": "changed"})
        after = await latest(catalog)
        changed = [
            i for i, (a, b) in enumerate(zip(before.shards, after.shards, strict=True)) if a != b
        ]
        assert len(changed) == 1
        assert after.bounds == before.bounds
        # Ids past the end land in the last shard, which alone is rewritten (and split).
        grown = await create_all(catalog, (spec(f"S{n:03d}") for n in range(40, 52)))
        assert grown.shards[: len(after.shards) - 1] == after.shards[:-1]
        assert len(grown.shards) > len(after.shards)
        assert (await catalog.verify()).ok
        await catalog.close()

    asyncio.run(main())


def test_emptied_shards_are_dropped_and_their_ids_can_come_back(tmp_path: Path) -> None:
    async def main() -> None:
        # Eager: every commit rewrites the shards of its ids instead of holding them.
        catalog = await AsyncCatalog.open(tmp_path / "c", create=True, options=EAGER)
        ids = [f"S{n:03d}" for n in range(30)]
        manifest = await create_all(catalog, map(spec, ids))
        first_shard = (await ids_by_shard(catalog, manifest))[0]
        async with catalog.batch() as batch:
            for series_id in first_shard:
                batch.delete(series_id)
        shrunk = await latest(catalog)
        assert len(shrunk.shards) == len(manifest.shards) - 1
        assert shrunk.bounds == manifest.bounds[1:]
        assert [s.id async for s in catalog.iter_series()] == ids[len(first_shard) :]
        await catalog.create(spec(first_shard[0]))  # below every bound: the first shard
        assert (await catalog.get(first_shard[0])).id == first_shard[0]
        async with catalog.batch() as batch:
            for series_id in [first_shard[0], *ids[len(first_shard) :]]:
                batch.delete(series_id)
        empty = await latest(catalog)
        assert (empty.shards, empty.bounds, empty.series_count) == ([None], [], 0)
        assert [s async for s in catalog.iter_series()] == []
        assert (await catalog.verify()).ok
        await catalog.close()

    asyncio.run(main())


def verify_with_bounds(
    root: Path, bounds: Callable[[Manifest, list[list[str]]], list[str]]
) -> tuple[int, list[Problem]]:
    """Commit, as a faulty writer would, the next version of a catalog of 20 series
    in several shards with ``bounds(manifest, ids by shard)``; verify."""

    async def main() -> tuple[int, list[Problem]]:
        catalog = await AsyncCatalog.open(root, create=True)
        manifest = await create_all(catalog, (spec(f"S{n:03d}") for n in range(20)))
        assert len(manifest.bounds) >= 2
        held = await ids_by_shard(catalog, manifest)
        bad = msgspec.structs.replace(
            manifest,
            version=manifest.version + 1,
            parent=manifest.version,
            bounds=bounds(manifest, held),
        )
        await catalog.store.put_if_absent(manifest_key(bad.version), encode_manifest(bad))
        report = await catalog.verify()
        await catalog.close()
        return bad.version, report.problems

    return asyncio.run(main())


def test_verify_finds_a_record_outside_its_shards_range(tmp_path: Path) -> None:
    # The first bound leaves the first shard's last record outside its range:
    # lookups of that id would look elsewhere.
    version, problems = verify_with_bounds(
        tmp_path / "c", lambda manifest, held: [held[0][-1], *manifest.bounds[1:]]
    )
    assert [(p.kind, p.version) for p in problems] == [("bad_manifest", version)]
    assert "outside its range" in problems[0].detail


def test_verify_reports_bounds_out_of_order_and_leaves_the_table_alone(tmp_path: Path) -> None:
    version, problems = verify_with_bounds(
        tmp_path / "c", lambda manifest, _held: list(reversed(manifest.bounds))
    )
    # The table is compared shard by shard, cut at the bounds: with no order to cut
    # at, only the bounds are reported.
    assert [(p.kind, p.version) for p in problems] == [("bad_manifest", version)]
    assert "bounds do not order" in problems[0].detail


def test_shard_size_follows_the_catalog_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards split at 1/32 of the catalog, between the two limits: small catalogs
    get small shards (cheap to rewrite), large ones no more than the maximum."""
    monkeypatch.setattr(changes, "SHARD_MIN_SPLIT", 64)
    monkeypatch.setattr(changes, "SHARD_MAX_RECORDS", 2048)

    async def main() -> None:
        catalog = await AsyncCatalog.open_store(MemoryStore(str(tmp_path)), create=True)
        first = await create_all(catalog, (spec(f"S{n:05d}") for n in range(1000)))
        small = [len(s) for s in await ids_by_shard(catalog, first)]
        assert max(small) <= 64 and sum(small) == 1000
        await create_all(catalog, (spec(f"S{n:05d}") for n in range(1000, 80_000)))
        # 80,000 / 32 = 2,500, capped at 2,048. The new ids all come after the old
        # ones, so the last shard splits into full pieces, as a B-tree's rightmost page.
        large = [len(s) for s in await ids_by_shard(catalog, await latest(catalog))]
        assert small[:-1] == large[: len(small) - 1]  # untouched shards carried over
        grown = large[len(small) - 1 :]
        assert set(grown[:-1]) == {2048} and 0 < grown[-1] <= 2048
        assert sum(large) == 80_000
        # Ids inserted among the existing ones split a shard into equal pieces of at
        # most three quarters of the split size: room for more inserts there.
        await create_all(catalog, (spec(f"S{n:05d}a") for n in range(5000, 5600)))
        mixed = [len(s) for s in await ids_by_shard(catalog, await latest(catalog))]
        assert max(mixed) == 2048 and sum(mixed) == 80_600
        assert all(n <= 1536 for n in mixed if n not in large)
        await catalog.close()

    asyncio.run(main())


def test_a_shard_that_is_not_what_it_claims_is_refused() -> None:
    """A writer bug (bytes that pass their checksum) is an IntegrityError, not a
    wrong answer: not a shard, ids out of order, or a record under another id."""
    now = dt.datetime.now(dt.UTC)

    def record(series_id: str) -> SeriesRecord:
        return SeriesRecord(
            id=series_id, frequency="annual", created_at=now, updated_at=now, version=1
        )

    good = encode_shard(["A", "B"], [encode_record(record("A")), encode_record(record("B"))])
    shard = ShardRecords.decode(good, "meta/00000/good.msgpack")
    assert (list(shard), shard["B"].id, "C" in shard) == (["A", "B"], "B", False)
    with pytest.raises(IntegrityError, match="cannot be parsed"):
        ShardRecords.decode(b"\x93not a shard", "meta/00000/x.msgpack")
    unordered = encode_shard(["B", "A"], [encode_record(record("B")), encode_record(record("A"))])
    with pytest.raises(IntegrityError, match="not in order"):
        ShardRecords.decode(unordered, "meta/00000/x.msgpack")
    swapped = encode_shard(["A", "B"], [encode_record(record("B")), encode_record(record("A"))])
    with pytest.raises(IntegrityError, match="names 'B'"):
        ShardRecords.decode(swapped, "meta/00000/x.msgpack")["A"]
    broken = encode_shard(["A"], [msgspec.Raw(msgspec.msgpack.encode({"id": 5}))])
    with pytest.raises(IntegrityError, match="record 'A'"):
        ShardRecords.decode(broken, "meta/00000/x.msgpack").at(0)


def test_filtered_pages_across_shards_match_a_plain_scan(tmp_path: Path) -> None:
    """Filters read only the fields they test; pages of 3 across many shards must
    give exactly the series a plain Python scan of the specs selects, in id order."""

    async def main() -> None:
        catalog = await AsyncCatalog.open(tmp_path / "c", create=True)
        rng = random.Random(11)
        specs = []
        for n in rng.sample(range(1000), 50):
            spec_ = {
                "id": f"S{n:03d}",
                "frequency": rng.choice(["monthly", "annual"]),
                "source": rng.choice(["BLS", "FRED"]),
                "tags": rng.sample(["usa", "jobs", "rates"], rng.randrange(3)),
                "title": rng.choice(["Yield curve", "Payrolls", ""]),
                "external_ids": {"fred": f"X{n}"} if n % 3 == 0 else {},
            }
            specs.append(spec_)
        assert len((await create_all(catalog, specs)).shards) > 3
        conditions = [
            ({"source": "FRED"}, lambda s: s["source"] == "FRED"),
            ({"frequency": "annual", "tags": ["usa"]},
             lambda s: s["frequency"] == "annual" and "usa" in s["tags"]),
            ({"text": "yield"}, lambda s: "yield" in s["title"].lower()),
            ({"text": "s01"}, lambda s: "s01" in s["id"].lower()),
        ]  # fmt: skip
        for kwargs, wanted in conditions:
            expected = sorted(s["id"] for s in specs if wanted(s))
            got, cursor = [], None
            while True:
                page = await catalog.list(limit=3, cursor=cursor, **kwargs)
                got += [s.id for s in page.items]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert got == expected, kwargs
        with_fred = [
            s.id async for s in catalog.iter_series(SeriesFilter(external_provider="fred"))
        ]
        assert with_fred == sorted(s["id"] for s in specs if s["external_ids"])
        await catalog.close()

    asyncio.run(main())


def test_a_filter_over_a_record_it_cannot_read_raises_integrity_error(tmp_path: Path) -> None:
    """A filter reads only some fields of each record; one it cannot read is damage
    reported as such, not a decoding error from deep inside."""

    async def main() -> None:
        catalog = await AsyncCatalog.open(tmp_path / "c", create=True)
        await catalog.create(spec("S000"))
        await catalog.checkpoint()  # S000 into its shard, not held in the manifest
        manifest = await latest(catalog)
        assert manifest.records_pending == []
        bad_record = msgspec.msgpack.encode({"id": "S000", "frequency": "monthly", "source": 5})
        data = encode_shard(["S000"], [msgspec.Raw(bad_record)])
        ref = ShardRef(
            path="meta/00000/bad.msgpack", size=len(data), sha256=checksum(data), count=1
        )
        await catalog.store.put_new(ref.path, data)
        bad = msgspec.structs.replace(
            manifest, version=manifest.version + 1, parent=manifest.version, shards=[ref]
        )
        await catalog.store.put_if_absent(manifest_key(bad.version), encode_manifest(bad))
        with pytest.raises(IntegrityError, match="record 'S000'"):
            await catalog.list(source="src1")
        await catalog.close()

    asyncio.run(main())
