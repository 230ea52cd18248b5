"""Writer processes of the crash campaign, the log they keep, and how a commit is checked.

A writer runs random commits against a shared store until it is killed or told to
stop. Before each commit it appends an *intent* line to its own log: the commit's
sequence number, its unique message and the operations it is about to commit.
After the commit it appends the *result*: the version the commit landed as
(fsync'ed before the next commit starts), or the error. The campaign reads these
logs after every SIGKILL to decide which commits must be, may be, or must not be
in the store, and checks each landed commit's content with :func:`check_commit`.

Child processes start from a fork server that has imported this module, so they
must only use what is importable from here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import re
from pathlib import Path
from typing import Any

from catalog_store import AsyncCatalog, CatalogOptions
from catalog_store.errors import CatalogStoreError, CommitStateUnknownError, SeriesNotFoundError
from catalog_store.storage.base import caller_waits

SHARED = [f"S{i}" for i in range(6)]
TEMPORARY = [f"T{i}" for i in range(4)]
MONTHS = [dt.date(2000 + m // 12, m % 12 + 1, 1) for m in range(240)]
MESSAGE = re.compile(r"^crash w(\d+) i(\d+) s(\d+)$")
#: A writer never compacts on its own, so every commit in the store is one it logged.
WRITER_OPTIONS = CatalogOptions(compact_threshold=10**9)

Op = dict[str, Any]


def message_of(writer: int, incarnation: int, seq: int) -> str:
    return f"crash w{writer} i{incarnation} s{seq}"


def log_path(log_dir: str | Path, incarnation: int) -> Path:
    return Path(log_dir) / f"i{incarnation:06d}.jsonl"


class Log:
    """One JSON object a line, appended with a single write(2) each."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, entry: dict[str, Any], sync: bool) -> None:
        os.write(self.fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())
        if sync:
            os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def read_log(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete lines from ``offset``; returns them and the offset after the last one."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    entries = [json.loads(line) for line in data[:end].splitlines() if line]
    return entries, offset + end


# -- what a writer does ------------------------------------------------------------------------


def _values(rng: random.Random, count: int) -> list[float | None]:
    return [None if rng.random() < 0.05 else round(rng.uniform(-1e3, 1e3), 3) for _ in range(count)]


async def plan_commit(catalog: AsyncCatalog, rng: random.Random, tag: str) -> tuple[str, list[Op]]:
    """A random commit: ("single" | "batch" | "compact", operations on distinct series)."""
    roll = rng.random()
    if roll < 0.2:
        return "compact", [{"op": "compact", "id": rng.choice(SHARED)}]
    if roll < 0.3:
        # Series that come and go: create one of a few ids if absent, else delete it
        # (writers race for them; the loser's conflict is logged as an error).
        sid = rng.choice(TEMPORARY)
        try:
            await catalog.get(sid)
        except SeriesNotFoundError:
            return "single", [{"op": "create", "id": sid, "title": f"temp {tag}"}]
        return "single", [{"op": "delete", "id": sid}]
    ops: list[Op] = []
    for sid in rng.sample(SHARED, rng.randrange(1, 4)):
        kind = rng.choice(["update", "upsert", "upsert", "append", "delete_range"])
        expected = None
        if rng.random() < 0.1 or kind == "append":
            series = await catalog.get(sid)
            expected = series.version if kind != "append" or rng.random() < 0.1 else None
        if kind == "update":
            ops.append(
                {
                    "op": "update",
                    "id": sid,
                    "title": f"{sid} {tag}",
                    "attributes": {"tag": tag, "n": rng.randrange(1000)},
                    "expected": expected,
                }
            )
            continue
        if kind == "append":
            last = series.last_date
            later = [m for m in MONTHS if last is None or m > last]
            if not later:
                kind = "upsert"
            else:
                dates = later[: rng.randrange(1, 4)]
        if kind == "upsert":
            dates = sorted(rng.sample(MONTHS, rng.randrange(1, 7)))
        if kind == "delete_range":
            low = rng.randrange(len(MONTHS) - 3)
            start, end = MONTHS[low], MONTHS[low + rng.randrange(3)]
            ops.append(
                {
                    "op": "delete_range",
                    "id": sid,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "expected": expected,
                }
            )
            continue
        ops.append(
            {
                "op": kind,
                "id": sid,
                "dates": [d.isoformat() for d in dates],
                "values": _values(rng, len(dates)),
                "expected": expected,
            }
        )
    return ("single" if len(ops) == 1 and rng.random() < 0.5 else "batch"), ops


def _rows(op: Op) -> tuple[list[dt.date], list[float | None]]:
    return [dt.date.fromisoformat(d) for d in op["dates"]], op["values"]


async def execute(catalog: AsyncCatalog, how: str, ops: list[Op], message: str) -> int | None:
    """Commit ``ops``; the version it landed as (None: compaction found nothing to do)."""
    if how == "compact":
        return await catalog.compact(ops[0]["id"], min_files=2)
    if how == "single":
        op = ops[0]
        kind = op["op"]
        if kind == "create":
            spec = {"id": op["id"], "frequency": "monthly", "title": op["title"]}
            return (await catalog.create(spec, message=message)).version
        if kind == "delete":
            return await catalog.delete(op["id"], message=message)
        if kind == "update":
            changes = {"title": op["title"], "attributes": op["attributes"]}
            return (await catalog.update(op["id"], changes, op["expected"], message)).version
        if kind == "delete_range":
            series = await catalog.write(
                op["id"],
                None,
                "delete_range",
                start=dt.date.fromisoformat(op["start"]),
                end=dt.date.fromisoformat(op["end"]),
                expected_version=op["expected"],
                message=message,
            )
        else:
            series = await catalog.write(
                op["id"], _rows(op), kind, expected_version=op["expected"], message=message
            )
        # A write that changes nothing (a range already empty, nulls upserted where
        # there are nulls) lands no version: the series' version is then an earlier
        # commit, another's or ours.
        manifest = await catalog.reader.manifest(series.version)
        return series.version if manifest.message == message else None
    async with catalog.batch(message) as batch:
        for op in ops:
            if op["op"] == "update":
                changes = {"title": op["title"], "attributes": op["attributes"]}
                batch.update(op["id"], changes, op["expected"])
            elif op["op"] == "delete_range":
                await batch.write(
                    op["id"],
                    None,
                    "delete_range",
                    start=dt.date.fromisoformat(op["start"]),
                    end=dt.date.fromisoformat(op["end"]),
                    expected_version=op["expected"],
                )
            else:
                await batch.write(op["id"], _rows(op), op["op"], expected_version=op["expected"])
    return batch.version


def run_writer(
    url: str,
    options: dict[str, Any],
    writer: int,
    incarnation: int,
    seed: int,
    log_dir: str,
    stop_path: str,
    pause: float = 0.0,
) -> None:
    """Commit random changes until ``stop_path`` exists (or until killed).

    After each commit the writer waits up to ``pause`` seconds (at random), which
    leaves the checking process some of the machine.
    """
    asyncio.run(_writer(url, options, writer, incarnation, seed, log_dir, stop_path, pause))


def _stopped(stop_path: str) -> bool:
    return os.path.exists(stop_path)


async def _writer(
    url: str,
    options: dict[str, Any],
    writer: int,
    incarnation: int,
    seed: int,
    log_dir: str,
    stop_path: str,
    pause: float,
) -> None:
    log = Log(log_path(log_dir, incarnation))
    log.write({"start": incarnation, "writer": writer, "pid": os.getpid()}, sync=False)
    if writer % 2:
        # As the synchronous Catalog's calls run: a local store then creates the
        # manifest on this thread, not a worker's; both ways are killed mid-commit.
        caller_waits.set(True)
    catalog = await AsyncCatalog.open(url, options or None, options=WRITER_OPTIONS)
    rng = random.Random(seed)
    seq = 0
    try:
        while not _stopped(stop_path):
            seq += 1
            message = message_of(writer, incarnation, seq)
            tag = f"w{writer}i{incarnation}s{seq}"
            try:
                how, ops = await plan_commit(catalog, rng, tag)
            except CatalogStoreError:
                continue  # a read for planning failed; nothing was committed
            log.write({"seq": seq, "how": how, "msg": message, "ops": ops}, sync=False)
            try:
                version = await execute(catalog, how, ops, message)
            except CommitStateUnknownError:
                log.write({"seq": seq, "unknown": True}, sync=True)
                continue
            except CatalogStoreError as exc:
                log.write({"seq": seq, "error": type(exc).__name__}, sync=False)
                continue
            log.write({"seq": seq, "version": version}, sync=True)
            await asyncio.sleep(rng.uniform(0.0, pause))
    finally:
        await catalog.close()
        log.close()


# -- checking a landed commit ------------------------------------------------------------------


def expected_changes(ops: list[Op]) -> list[tuple[str, str]]:
    return [(op["op"], op["id"]) for op in ops]


def _as_dict(table: Any) -> dict[dt.date, float | None]:
    return dict(
        zip(table.column("date").to_pylist(), table.column("value").to_pylist(), strict=True)
    )


async def check_commit(
    catalog: AsyncCatalog, version: int, how: str, ops: list[Op], message: str
) -> None:
    """Raise AssertionError unless ``version`` is this commit, with this content."""
    manifest = await catalog.reader.manifest(version)
    where = f"version {version} ({message})"
    if how != "compact":
        assert manifest.message == message, f"{where}: manifest says {manifest.message!r}"
    changed = set(manifest.changes)
    idle = [op for op in ops if (op["op"], op["id"]) not in changed]
    expected = [change for change in expected_changes(ops) if change in changed]
    assert manifest.changes == expected, f"{where}: changes {manifest.changes}"
    for op in idle:
        # A write that changed nothing: a range already empty, or values (nulls, in
        # practice) the series held. Tagged titles and fresh dates always change.
        if op["op"] == "delete_range":
            start, end = dt.date.fromisoformat(op["start"]), dt.date.fromisoformat(op["end"])
            before = await catalog.read(op["id"], start, end, as_of=version - 1)
            assert before.num_rows == 0, f"{where}: {op} deleted nothing but had rows"
            continue
        assert op["op"] == "upsert", f"{where}: {op} changed nothing"
        dates, values = _rows(op)
        held = _as_dict(await catalog.read(op["id"], min(dates), max(dates), as_of=version - 1))
        assert [held.get(d, "absent") for d in dates] == values, f"{where}: {op} was a change"
    for op in ops:
        if op in idle:
            continue
        sid, kind = op["id"], op["op"]
        if kind == "delete":
            try:
                await catalog.get(sid, as_of=version)
            except SeriesNotFoundError:
                continue
            raise AssertionError(f"{where}: {sid} still exists after its delete")
        series = await catalog.get(sid, as_of=version)
        if kind == "compact":
            now = _as_dict(await catalog.read(sid, as_of=version))
            assert now == _as_dict(await catalog.read(sid, as_of=version - 1)), where
            continue
        assert series.version == version, f"{where}: {sid} is at version {series.version}"
        if kind == "create":
            assert series.title == op["title"], where
        elif kind == "update":
            assert (series.title, series.attributes) == (op["title"], op["attributes"]), where
        elif kind == "delete_range":
            start, end = dt.date.fromisoformat(op["start"]), dt.date.fromisoformat(op["end"])
            table = await catalog.read(sid, start, end, as_of=version)
            assert table.num_rows == 0, f"{where}: {sid} has rows in [{start}, {end}]"
        else:
            dates, values = _rows(op)
            got = _as_dict(await catalog.read(sid, min(dates), max(dates), as_of=version))
            assert [got.get(d, "absent") for d in dates] == values, f"{where}: {sid} {kind}"
