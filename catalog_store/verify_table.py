"""The metadata table's checks in ``verify`` (:mod:`.verify`): its parts in order,
each holding rows of its own source and id range, and at the latest version
exactly the rows the records give."""

from __future__ import annotations

import bisect
from operator import attrgetter

import pyarrow as pa
import pyarrow.compute as pc

from catalog_store import keys, table
from catalog_store.records import Manifest, TablePart, strictly_ascending
from catalog_store.snapshot import Snapshot
from catalog_store.verify_index import Checker


class TableChecks:
    """The metadata table checks of one run of ``verify``."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    async def check(self, manifest: Manifest, content: bool) -> None:
        """The metadata table's parts read, are in order and hold only rows of their
        source and id range; with ``content``, exactly the rows the records give."""
        parts = manifest.table
        if parts is None:
            return  # a version written before the table existed
        version = manifest.version
        key = keys.manifest_key(version)
        ordered = strictly_ascending([(part.source, part.low) for part in parts])
        if not ordered:
            detail = "metadata table parts are out of order"
            self.checker.problem("bad_manifest", key, detail, version=version)
        readable = 0
        # Rows of the series the manifest holds pending rows of, wherever they are.
        pending = pa.array([entry.id for entry in manifest.table_pending], pa.string())
        holding: list[pa.Table] = []
        for i, part in enumerate(parts):
            following = parts[i + 1] if i + 1 < len(parts) else None
            high = following.low if following and following.source == part.source else None
            found = await self.table_part(part, high, version)
            if found is not None:
                readable += 1
                holding.append(found.filter(pc.is_in(found["id"], pending)))
        if (
            content
            and ordered
            and readable == len(parts)
            and not self.checker.bad.intersection(
                ref.path for ref in manifest.shards if ref is not None
            )
        ):
            await self.table_content(manifest, holding)

    async def table_part(self, part: TablePart, high: str | None, version: int) -> pa.Table | None:
        rows = await self.checker.read(
            part.path, version, "table part", lambda: self.checker.reader.table_part(part)
        )
        if rows is None:
            return None
        ids = rows["id"]
        if rows.num_rows and (
            not pc.all(pc.equal(rows["source"], part.source)).as_py()
            or pc.min(ids).as_py() < part.low
            or (high is not None and pc.max(ids).as_py() >= high)
            or pc.any(pc.greater_equal(ids[:-1], ids[1:])).as_py()
        ):
            self.checker.problem(
                "bad_manifest",
                keys.manifest_key(version),
                f"table part {part.path} holds rows outside its source or id range, "
                "or out of id order",
                version=version,
            )
            return None  # its rows cannot be compared in id order
        return rows

    async def table_content(self, manifest: Manifest, holding: list[pa.Table]) -> None:
        """Compare the table with the records shard by shard: the parts are cut at the
        shards' bounds, so only one shard's records and rows, and one part of each
        source, are held at a time (10^6 of them would not fit). ``holding``: the
        rows of the series with pending rows."""
        assert manifest.table is not None
        self.pending_placed(manifest, holding)
        by_id = attrgetter("id")
        pending = sorted(manifest.table_pending, key=by_id)
        highs = [*manifest.bounds, None]
        cutter = table.RangeCutter(manifest.table, self.checker.reader.table_part)
        snapshot = Snapshot(self.checker.reader, manifest)
        for index, high in enumerate(highs):
            found_parts = await cutter.take(high)
            split = len(pending) if high is None else bisect.bisect_left(pending, high, key=by_id)
            found = table.combine(found_parts, pending[:split], None)
            pending = pending[split:]
            expected = table.table_of(list((await snapshot.shard_records(index)).values()))
            wrong = table.first_difference(expected, found)
            if wrong is not None:
                self.checker.problem(
                    "table_mismatch",
                    keys.manifest_key(manifest.version),
                    f"the metadata table disagrees with the records from series {wrong!r} on",
                    version=manifest.version,
                    series_id=wrong,
                )
                return

    def pending_placed(self, manifest: Manifest, holding: list[pa.Table]) -> None:
        """Each pending row names where the parts hold its series' stale row, if they do
        (``holding``: those rows): the next rewrite removes the row from there."""
        rows = table.combine(holding, [], None)
        where = dict(zip(rows["id"].to_pylist(), rows["source"].to_pylist(), strict=True))
        for entry in manifest.table_pending:
            if where.get(entry.id) != entry.placed:
                self.checker.problem(
                    "table_mismatch",
                    keys.manifest_key(manifest.version),
                    f"pending row of {entry.id!r} says the parts hold it under "
                    f"{entry.placed!r}; they hold it under {where.get(entry.id)!r}",
                    version=manifest.version,
                    series_id=entry.id,
                )
