"""Fault campaigns: random operations on stores that fail the way real storage fails.

One writer runs a few hundred random operations (create, update, delete, write in
every mode, batches, compaction) and a second, cacheless reader runs reads, both
through a FaultyStore that injects transient errors, lost responses, permanent
errors and corrupted reads at a moderate rate. A plain Python model predicts each
operation's outcome. After each operation, with faults paused, the catalog's
version must say the operation landed exactly when it reported success (either way
for CommitStateUnknownError); every error must be typed and explained by a fault
injected during the operation (or predicted by the model). At the end, with faults
off, the store verifies and every version holds what the model says.

Permanent faults hit writes only, and corruption hits only checksummed objects
(observation files, shards): the campaign's model cannot predict the outcome of a
permanent read error. The targeted tests at the end of this file cover those cases:
permanent and corrupt reads after a commit landed, and damaged manifests.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime as dt
import errno
import os
import random
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from catalog_store import AsyncCatalog, CatalogOptions, RetryPolicy
from catalog_store.errors import (
    AppendOrderError,
    CatalogStoreError,
    CommitStateUnknownError,
    ExternalIdTakenError,
    IntegrityError,
    SeriesExistsError,
    SeriesNotFoundError,
    StorageError,
    StorageFullError,
    StoragePermissionError,
    StorageUnavailableError,
    VersionMismatchError,
)
from catalog_store.keys import LATEST_HINT, manifest_key
from catalog_store.storage import Store, drop_memory_store, open_store
from catalog_store.storage.guarded import GuardedStore
from catalog_store.testing.faults import (
    EXPECTED_ERROR,
    FaultKind,
    FaultPlan,
    FaultRule,
    FaultyStore,
    Injection,
)
from tests.conftest import EAGER, StoreTarget, make_target

SMALL_RETRY = RetryPolicy(max_attempts=4, max_seconds=5.0, base_delay=0.001, max_delay=0.01)
CHECKSUMMED = r"^(data|meta|xid)/"
NOT_HINT = r"^(?!_manifests/_latest$)"
PUTS = frozenset({"put", "put_if_absent"})
CREATE = frozenset({"put_if_absent"})
RATE = 0.05


def campaign_rules(rate: float = RATE) -> list[FaultRule]:
    """Faults at a moderate rate: roughly one call in eight fails somehow."""
    return [
        FaultRule(FaultKind.UNAVAILABLE, probability=rate),
        FaultRule(FaultKind.LOST_RESPONSE, probability=rate * 0.6, operations=PUTS),
        FaultRule(FaultKind.LOST_RESPONSE, probability=rate * 0.3, operations=frozenset({"get"})),
        FaultRule(FaultKind.EXISTS_AFTER_WRITE, probability=rate * 0.5),
        FaultRule(FaultKind.TRUNCATE, probability=rate * 0.5, keys=CHECKSUMMED),
        FaultRule(FaultKind.CORRUPT, probability=rate * 0.5, keys=CHECKSUMMED),
        FaultRule(FaultKind.FULL, probability=rate * 0.12),
        FaultRule(FaultKind.PERMISSION, probability=rate * 0.08, operations=PUTS),
        FaultRule(FaultKind.IO_ERROR, probability=rate * 0.08, operations=PUTS),
        # Stalls end only by the catalog's deadline (STALL_DEADLINE). The rarest
        # kinds also fire on a set call, so every run has them whatever calls the
        # catalog makes.
        FaultRule(FaultKind.HANG, probability=rate * 0.03, calls=frozenset({40})),
        FaultRule(
            FaultKind.HANG_AFTER, probability=rate * 0.03, operations=PUTS, calls=frozenset({20})
        ),
    ]


#: store_timeout of the campaign's catalogs: a stalled call fails after this long.
STALL_DEADLINE = {"memory": 0.2, "local": 0.2, "s3": 3.0}


# -- the model ---------------------------------------------------------------------------


@dataclass
class SeriesModel:
    frequency: str
    title: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    external_ids: dict[str, str] = field(default_factory=dict)
    version: int = 0
    values: dict[dt.date, float | None] = field(default_factory=dict)


State = dict[str, SeriesModel]


class Refused(Exception):
    """The model predicts that the engine refuses the operation with ``error``."""

    def __init__(self, error: type[CatalogStoreError]) -> None:
        super().__init__(error.__name__)
        self.error = error


def apply_ops(state: State, ops: list[dict[str, Any]], version: int) -> State:
    """The state after ``ops`` land together as ``version``; Refused if they cannot."""
    new = copy.deepcopy(state)
    owners = {(p, x): sid for sid, s in new.items() for p, x in s.external_ids.items()}
    # An external id taken from another series is settled once every operation is
    # applied: refused if more than one series that held or claimed it carries it.
    contested: dict[tuple[str, str], list[str]] = {}
    for op in ops:
        kind = op["op"]
        if kind == "create":
            spec = op["spec"]
            sid = spec["id"]
            if sid in new:
                raise Refused(SeriesExistsError)
            for pair in spec.get("external_ids", {}).items():
                if owners.get(pair, sid) != sid:
                    contested.setdefault(pair, [owners[pair]]).append(sid)
                elif pair in contested:
                    contested[pair].append(sid)
                owners[pair] = sid
            new[sid] = SeriesModel(
                frequency=spec["frequency"],
                title=spec.get("title", ""),
                external_ids=dict(spec.get("external_ids", {})),
                version=version,
            )
            continue
        sid = op["id"]
        if sid not in new:
            raise Refused(SeriesNotFoundError)
        series = new[sid]
        if op.get("expected") is not None and series.version != op["expected"]:
            raise Refused(VersionMismatchError)
        if kind == "compact":
            continue  # changes no value and no series version
        if kind == "update":
            title = op["changes"].get("title", series.title)
            attributes = dict(op["changes"].get("attributes", series.attributes))
            if (title, attributes) == (series.title, series.attributes):
                continue  # changes nothing: the series keeps its version
            series.title, series.attributes = title, attributes
        elif kind == "delete":
            for pair in series.external_ids.items():
                if owners.get(pair) == sid:
                    del owners[pair]
            del new[sid]
            continue
        else:
            rows = dict(zip(op["dates"], op["values"], strict=True))
            held = dict(series.values)
            mode = op["mode"]
            if mode == "append" and series.values and min(rows) <= max(series.values):
                raise Refused(AppendOrderError)
            if mode in ("replace_range", "delete_range"):
                for day in [d for d in series.values if op["start"] <= d <= op["end"]]:
                    del series.values[day]
            series.values.update(rows)
            if series.values == held:
                continue  # changes no value: the series keeps its version
        series.version = version
    for (provider, value), involved in contested.items():
        carriers = {s for s in involved if s in new and new[s].external_ids.get(provider) == value}
        if len(carriers) > 1:
            raise Refused(ExternalIdTakenError)
    return new


# -- random operations --------------------------------------------------------------------

MONTHS = [dt.date(2000 + m // 12, m % 12 + 1, 1) for m in range(96)]
DAYS = [dt.date(2019, 12, 1) + dt.timedelta(days=d) for d in range(500)]  # across 2020-02-29


def dates_of(frequency: str) -> list[dt.date]:
    return MONTHS if frequency == "monthly" else DAYS


class Generator:
    """Random operations over a small, changing set of series."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.created = 0

    def value(self) -> float | None:
        return None if self.rng.random() < 0.05 else round(self.rng.uniform(-1e4, 1e4), 4)

    def new_spec(self, state: State) -> dict[str, Any]:
        rng = self.rng
        if state and rng.random() < 0.05:
            return {"id": rng.choice(sorted(state)), "frequency": "monthly"}  # exists
        self.created += 1
        spec: dict[str, Any] = {
            "id": f"F{self.created:03d}",
            "frequency": rng.choice(["monthly", "daily"]),
            "title": f"series {self.created}",
        }
        if spec["frequency"] == "daily" and rng.random() < 0.5:
            spec["partitioning"] = "year"
        if rng.random() < 0.3:
            spec["external_ids"] = {"src": f"x{rng.randrange(self.created + 3)}"}
        return spec

    def write(self, sid: str, series: SeriesModel | None) -> dict[str, Any]:
        rng = self.rng
        frequency = series.frequency if series else "monthly"
        calendar = dates_of(frequency)
        mode = rng.choice(["append", "upsert", "upsert", "replace_range", "delete_range"])
        expected = None
        if series is not None and rng.random() < 0.15:
            expected = series.version if rng.random() < 0.7 else max(series.version - 1, 0)
        op: dict[str, Any] = {"op": "write", "id": sid, "mode": mode, "expected": expected}
        if mode == "append":
            last = max(series.values) if series and series.values else None
            later = [d for d in calendar if last is None or d > last]
            if not later or rng.random() < 0.1:
                later = calendar[: rng.randrange(1, 8)]  # before the last date: refused
            dates = later[: rng.randrange(1, 8)]
        elif mode == "upsert":
            dates = sorted(rng.sample(calendar, rng.randrange(1, 10)))
        else:
            low = rng.randrange(len(calendar) - 12)
            high = low + rng.randrange(12)
            op["start"], op["end"] = calendar[low], calendar[high]
            window = calendar[low : high + 1]
            dates = (
                sorted(rng.sample(window, rng.randrange(1, len(window) + 1)))
                if mode == "replace_range"
                else []
            )
        op["dates"] = dates
        op["values"] = [self.value() for _ in dates]
        return op

    def update(self, sid: str, series: SeriesModel | None) -> dict[str, Any]:
        rng = self.rng
        changes: dict[str, Any] = {"title": f"t{rng.randrange(10**6)}"}
        if rng.random() < 0.5:
            changes["attributes"] = {"n": rng.randrange(100), "flag": rng.random() < 0.5}
        expected = None
        if series is not None and rng.random() < 0.3:
            expected = series.version if rng.random() < 0.7 else series.version + 1
        return {"op": "update", "id": sid, "changes": changes, "expected": expected}

    def pick(self, state: State) -> str:
        if not state or self.rng.random() < 0.03:
            return "MISSING"
        return self.rng.choice(sorted(state))

    def commit(self, state: State) -> tuple[str, list[dict[str, Any]]]:
        """(how, operations): how is "single", "batch" or "compact"."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.1 or len(state) < 3:
            return "single", [{"op": "create", "spec": self.new_spec(state)}]
        if roll < 0.25:
            sid = self.pick(state)
            return "single", [self.update(sid, state.get(sid))]
        if roll < 0.6:
            sid = self.pick(state)
            return "single", [self.write(sid, state.get(sid))]
        if roll < 0.65:
            sid = self.pick(state)
            expected = state[sid].version if sid in state and rng.random() < 0.3 else None
            return "single", [{"op": "delete", "id": sid, "expected": expected}]
        if roll < 0.72:
            return "compact", [{"op": "compact", "id": self.pick(state)}]
        ops: list[dict[str, Any]] = []
        used: set[str] = set()
        for _ in range(rng.randrange(2, 5)):
            if rng.random() < 0.2:
                spec = self.new_spec(state)
                if spec["id"] in used:
                    continue
                used.add(spec["id"])
                ops.append({"op": "create", "spec": spec})
                if rng.random() < 0.5 and spec["id"] not in state:
                    fresh = SeriesModel(frequency=spec["frequency"])
                    ops.append(self.write(spec["id"], fresh) | {"mode": "upsert", "expected": None})
                    ops[-1].pop("start", None)
                    ops[-1].pop("end", None)
                    if not ops[-1]["dates"]:
                        ops.pop()
                continue
            sid = self.pick(state)
            if sid in used or sid == "MISSING":
                continue
            used.add(sid)
            ops.append(
                self.write(sid, state[sid]) if rng.random() < 0.7 else self.update(sid, state[sid])
            )
        return "batch", ops or [{"op": "create", "spec": self.new_spec(state)}]


async def run_commit(
    catalog: AsyncCatalog, how: str, ops: list[dict[str, Any]], message: str
) -> int | None:
    """Run one commit; return the version it reports (None: nothing to do)."""
    if how == "compact":
        return await catalog.compact(ops[0]["id"])
    if how == "batch":
        async with catalog.batch(message) as batch:
            for op in ops:
                if op["op"] == "create":
                    batch.create(op["spec"])
                elif op["op"] == "update":
                    batch.update(op["id"], op["changes"], op["expected"])
                else:
                    observations, mode, start, end, expected = _write_args(op)
                    await batch.write(
                        op["id"],
                        observations,
                        mode,
                        start=start,
                        end=end,
                        expected_version=expected,
                    )
        return batch.version
    op = ops[0]
    if op["op"] == "create":
        return (await catalog.create(op["spec"], message=message)).version
    if op["op"] == "update":
        series = await catalog.update(op["id"], op["changes"], op["expected"], message=message)
        return series.version
    if op["op"] == "delete":
        return await catalog.delete(op["id"], op["expected"], message=message)
    observations, mode, start, end, expected = _write_args(op)
    series = await catalog.write(
        op["id"],
        observations,
        mode,
        start=start,
        end=end,
        expected_version=expected,
        message=message,
    )
    return series.version


def _write_args(op: dict[str, Any]) -> tuple[Any, str, Any, Any, Any]:
    observations = None if op["mode"] == "delete_range" else (op["dates"], op["values"])
    return observations, op["mode"], op.get("start"), op.get("end"), op["expected"]


def as_values(table: Any) -> dict[dt.date, float | None]:
    return dict(
        zip(table.column("date").to_pylist(), table.column("value").to_pylist(), strict=True)
    )


# -- the campaign -----------------------------------------------------------------------------


def explained(error: BaseException, window: list[Injection]) -> bool:
    """Whether a fault injected during the operation accounts for ``error``."""
    # The advisory hint is written in the background and its failures are ignored
    # by design; a failed read of it is a failed read like any other.
    kinds = {i.kind for i in window if i.key != LATEST_HINT or i.operation == "get"}
    if isinstance(error, StorageUnavailableError):
        return any(k.transient for k in kinds)
    if isinstance(error, StorageFullError):
        return FaultKind.FULL in kinds
    if isinstance(error, StoragePermissionError):
        return FaultKind.PERMISSION in kinds
    if isinstance(error, StorageError):
        return FaultKind.IO_ERROR in kinds
    if isinstance(error, IntegrityError):
        return any(k.corrupts for k in kinds)
    return False


@dataclass
class Tally:
    succeeded: int = 0
    refused: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    unknown_landed: int = 0
    unknown_absent: int = 0
    retried_and_succeeded: int = 0
    windows: dict[str, int] = field(default_factory=dict)
    reads_ok: int = 0
    reads_failed: dict[str, int] = field(default_factory=dict)

    def fail(self, error: BaseException) -> None:
        name = type(error).__name__
        self.failed[name] = self.failed.get(name, 0) + 1


class Campaign:
    def __init__(self, target: StoreTarget, seed: int, operations: int) -> None:
        self.target = target
        self.seed = seed
        self.operations = operations
        self.plan = FaultPlan(campaign_rules(), seed=seed)
        self.gen = Generator(seed)
        self.state: State = {}
        self.history: dict[int, State] = {}
        self.touched: dict[int, set[str]] = {}
        self.tally = Tally()

    def raw(self) -> Store:
        return open_store(self.target.url, self.target.options or None)

    async def run(self) -> None:
        setup = await AsyncCatalog.open_store(self.raw(), create=True)
        await setup.close()
        with self.plan.paused():
            deadline = STALL_DEADLINE[self.target.backend]
            self.writer = await AsyncCatalog.open_store(
                FaultyStore(self.raw(), self.plan),
                options=CatalogOptions(retry=SMALL_RETRY, store_timeout=deadline),
            )
            self.reader = await AsyncCatalog.open_store(
                FaultyStore(self.raw(), self.plan),
                options=CatalogOptions(cache_bytes=1, store_timeout=deadline),
            )
        self.oracle = await AsyncCatalog.open_store(self.raw())
        try:
            self.version = await self.oracle.version()
            self.history[self.version] = {}
            for n in range(self.operations):
                if self.gen.rng.random() < 0.2 and self.history:
                    await self.read_op()
                else:
                    await self.commit_op(n)
            await self.writer.committer.drain()
            with self.plan.paused():
                await self.final_checks()
        finally:
            with self.plan.paused():
                await self.writer.close()
                await self.reader.close()
            await self.oracle.close()

    async def commit_op(self, n: int) -> None:
        how, ops = self.gen.commit(self.state)
        message = f"op {n} {uuid.uuid4().hex[:8]}"
        before = self.version
        try:
            expected: State | None = apply_ops(self.state, ops, before + 1)
            refusal: type[CatalogStoreError] | None = None
        except Refused as refused:
            expected, refusal = None, refused.error
        window_name, window_rules = self.window(n, before)
        mark = len(self.plan.injected)
        outcome: BaseException | None = None
        reported: int | None = None
        with self.plan.during(*window_rules):
            try:
                reported = await run_commit(self.writer, how, ops, message)
            except CatalogStoreError as exc:
                outcome = exc
        window = self.plan.injected[mark:]
        with self.plan.paused():
            after = await self.oracle.version()
            context = f"op {n} {how} {ops} -> {outcome!r} ({window})"
            landed = after > before and await self.landed(before + 1, how, ops, message)
            if outcome is None and how == "compact" and reported is None:
                assert after == before, f"compaction of nothing committed: {context}"
                self.tally.succeeded += 1
            elif outcome is None and expected == self.state and how != "compact":
                assert after == before, f"a commit that changes nothing landed: {context}"
                self.tally.succeeded += 1
            elif outcome is None:
                assert refusal is None, f"refusal {refusal} expected: {context}"
                assert landed, f"reported success but did not land: {context}"
                assert reported == before + 1 or (how == "compact" and reported is None), context
                self.tally.succeeded += 1
                if any(i.kind.transient for i in window):
                    self.tally.retried_and_succeeded += 1
            elif isinstance(outcome, CommitStateUnknownError):
                assert refusal is None, context
                if landed:
                    self.tally.unknown_landed += 1
                else:
                    self.tally.unknown_absent += 1
                    assert after == before, context
            else:
                assert not landed and after == before, f"a failed op is visible: {context}"
                predicted = refusal is not None and isinstance(outcome, refusal)
                assert predicted or explained(outcome, window), f"unexplained: {context}"
                if predicted:
                    self.tally.refused += 1
                else:
                    self.tally.fail(outcome)
                    if window_name:
                        self.tally.windows[window_name] = self.tally.windows.get(window_name, 0) + 1
            if landed:
                assert expected is not None, context
                if how != "compact":
                    self.state = expected
                self.touched[before + 1] = {op.get("id") or op["spec"]["id"] for op in ops}
            for version in range(before + 1, after + 1):
                if version > before + 1:
                    # Only an automatic compaction may follow a write's own commit.
                    manifest = await self.oracle.reader.manifest(version)
                    assert {c for c, _ in manifest.changes} == {"compact"}, context
                self.history[version] = copy.deepcopy(self.state)
            self.version = after

    def window(self, n: int, before: int) -> tuple[str, list[FaultRule]]:
        """Conditions that last for a whole operation, on some operations.

        Every 12th operation runs while the storage refuses every write (full,
        read-only, failing), and another in 12 while the manifest it writes cannot
        be read back: its write either lands with the response lost, or keeps
        failing, so the outcome is unknown to the writer.
        """
        if n % 12 == 11:
            kind = [FaultKind.FULL, FaultKind.PERMISSION, FaultKind.IO_ERROR][(n // 12) % 3]
            return kind.name, [FaultRule(kind, probability=1.0, operations=PUTS, keys=NOT_HINT)]
        if n % 12 == 5:
            key = "^" + re.escape(manifest_key(before + 1)) + "$"
            unreadable = FaultRule(
                FaultKind.UNAVAILABLE, probability=1.0, operations=frozenset({"get"}), keys=key
            )
            if (n // 12) % 2:
                write = FaultRule(
                    FaultKind.LOST_RESPONSE, calls=frozenset({1}), operations=CREATE, keys=key
                )
                return "unknown-landed", [write, unreadable]
            write = FaultRule(FaultKind.UNAVAILABLE, probability=1.0, operations=CREATE, keys=key)
            return "unknown-absent", [write, unreadable]
        return "", []

    async def landed(self, version: int, how: str, ops: list[dict[str, Any]], message: str) -> bool:
        manifest = await self.oracle.reader.manifest(version)
        if how == "compact":
            return manifest.changes == [("compact", ops[0]["id"])]
        return manifest.message == message

    async def read_op(self) -> None:
        rng = self.gen.rng
        version = rng.choice([None, rng.choice(sorted(self.history))])
        state = self.state if version is None else self.history[version]
        sid = rng.choice([*sorted(state), "MISSING"]) if state else "MISSING"
        mark = len(self.plan.injected)
        try:
            if rng.random() < 0.7:
                values = as_values(await self.reader.read(sid, as_of=version))
                assert sid in state and values == state[sid].values, (sid, version)
            else:
                series = await self.reader.get(sid, as_of=version)
                assert sid in state, (sid, version)
                model = state[sid]
                assert (series.title, series.attributes, series.version) == (
                    model.title,
                    model.attributes,
                    model.version,
                )
            self.tally.reads_ok += 1
        except SeriesNotFoundError:
            assert sid not in state, (sid, version)
        except CatalogStoreError as exc:
            error: BaseException = exc
            window = self.plan.injected[mark:]
            assert explained(error, window), f"read {sid} as of {version}: {error!r} ({window})"
            name = type(exc).__name__
            self.tally.reads_failed[name] = self.tally.reads_failed.get(name, 0) + 1

    async def final_checks(self) -> None:
        oracle = await AsyncCatalog.open_store(self.raw())
        try:
            assert await oracle.version() == self.version
            report = await oracle.verify()
            assert report.ok, report.problems[:5]
            versions = sorted(self.history)
            for version in versions:
                full = version in (versions[0], versions[-1]) or version % 20 == 0
                await self.compare(oracle, version, None if full else self.touched.get(version))
        finally:
            await oracle.close()

    async def compare(self, oracle: AsyncCatalog, version: int, only: set[str] | None) -> None:
        state = self.history[version]
        if only is None:
            listed = {s.id async for s in oracle.iter_series(as_of=version)}
            assert listed == set(state), f"series at version {version}"
        for sid in sorted(only if only is not None else state):
            if sid not in state:
                with pytest.raises(SeriesNotFoundError):
                    await oracle.get(sid, as_of=version)
                continue
            model = state[sid]
            series = await oracle.get(sid, as_of=version)
            assert (series.title, series.attributes, series.version) == (
                model.title,
                model.attributes,
                model.version,
            ), f"{sid} at version {version}"
            values = as_values(await oracle.read(sid, as_of=version))
            assert values == model.values, f"{sid} values at version {version}"


@pytest.mark.parametrize(("backend", "operations"), [("memory", 300), ("local", 300), ("s3", 70)])
def test_random_operations_under_faults(
    backend: str, operations: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    target = make_target(backend, tmp_path, request)
    if request.config.getoption("--long"):
        operations *= 10  # thousands of operations and faults per backend
    campaign = Campaign(target, seed=20240 + operations, operations=operations)
    started = time.monotonic()
    asyncio.run(campaign.run())
    tally, plan = campaign.tally, campaign.plan
    counts = plan.counts()
    stats = campaign.writer.stats()
    print(
        f"\n{backend}: {operations} ops in {time.monotonic() - started:.1f}s; {tally}; "
        f"injected {dict(counts)}; stats {stats}"
    )
    # The campaign did what it is for: faults of every kind, retried and surfaced.
    assert tally.succeeded > operations // 3
    assert stats["commit_retries"] > 0
    assert tally.retried_and_succeeded > 0
    assert tally.reads_ok > 0
    assert tally.unknown_landed > 0
    assert tally.unknown_absent > 0
    if backend != "s3":
        assert set(counts) == set(FaultKind) - {FaultKind.NONE}
        assert stats["commit_unknown_outcomes"] > 0
        assert tally.refused > 0
        for error in ("StorageFullError", "StoragePermissionError", "StorageError"):
            assert tally.failed.get(error, 0) > 0, error
        # Corrupted and truncated bytes (among the kinds above) are read again, as a
        # body cut short in transit is; a read that returned them would have failed
        # its comparison with the state.
        assert sum(tally.windows.values()) > 0


# -- the fault-injecting store itself ---------------------------------------------------------


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def raw_store(target: StoreTarget) -> Store:
    return open_store(target.url, target.options or None)


@pytest.mark.parametrize(
    ("kind", "operation"),
    [
        (FaultKind.UNAVAILABLE, "get"),
        (FaultKind.UNAVAILABLE, "head"),
        (FaultKind.LOST_RESPONSE, "put"),
        (FaultKind.LOST_RESPONSE, "put_if_absent"),
        (FaultKind.LOST_RESPONSE, "delete"),
        (FaultKind.EXISTS_AFTER_WRITE, "put_if_absent"),
        (FaultKind.FULL, "put"),
        (FaultKind.FULL, "put_if_absent"),
        (FaultKind.PERMISSION, "get"),
        (FaultKind.PERMISSION, "put"),
        (FaultKind.IO_ERROR, "get"),
        (FaultKind.IO_ERROR, "put_if_absent"),
    ],
)
def test_each_fault_surfaces_as_the_typed_error_of_the_backend(
    target: StoreTarget, kind: FaultKind, operation: str
) -> None:
    async def main() -> None:
        inner = raw_store(target)
        await inner.put("obj/existing", b"before")
        plan = FaultPlan([FaultRule(kind, calls=frozenset({1}), operations=frozenset({operation}))])
        store = FaultyStore(inner, plan)
        key = "obj/existing" if operation in ("get", "head", "delete") else "obj/new"
        calls = {
            "get": lambda: store.get(key),
            "head": lambda: store.head(key),
            "put": lambda: store.put(key, b"payload"),
            "put_if_absent": lambda: store.put_if_absent(key, b"payload"),
            "delete": lambda: store.delete(key),
        }
        with pytest.raises(EXPECTED_ERROR[kind]) as raised:
            await calls[operation]()
        if kind is FaultKind.IO_ERROR:
            assert type(raised.value) is StorageError
        (injection,) = plan.injected
        assert (injection.operation, injection.key, injection.kind) == (operation, key, kind)
        assert injection.error == type(raised.value).__name__
        # A fault before the call changes nothing; after it, the write has landed.
        exists = await inner.exists(key)
        if operation in ("put", "put_if_absent"):
            assert exists == kind.after_call
            if exists:
                assert await inner.get(key) == b"payload"
        elif operation == "delete":
            assert not exists
        # The next call goes through.
        await calls[operation]() if operation != "put_if_absent" else None
        assert [c.fault for c in store.calls] == [kind] + [FaultKind.NONE] * (len(store.calls) - 1)
        await store.close()

    run(main())


def test_backends_see_native_errors(tmp_path: Path) -> None:
    async def main() -> None:
        rules = [FaultRule(FaultKind.FULL, probability=1.0, flavours=("ENOSPC",))]
        store = FaultyStore(open_store(str(tmp_path / "s")), FaultPlan(rules))
        with pytest.raises(StorageFullError) as raised:
            await store.put("a/b", b"x")
        assert isinstance(raised.value.__cause__, OSError)
        assert raised.value.__cause__.errno == errno.ENOSPC
        assert store.injected[0].detail == "ENOSPC"
        bad = FaultyStore(
            open_store(str(tmp_path / "s")),
            FaultPlan([FaultRule(FaultKind.FULL, probability=1.0, flavours=("EPIPE",))]),
        )
        with pytest.raises(ValueError, match="unknown flavour"):
            await bad.put("a/c", b"x")

    run(main())


def test_corrupting_faults_return_wrong_bytes_and_say_so(target: StoreTarget) -> None:
    async def main() -> None:
        inner = raw_store(target)
        payload = bytes(range(256)) * 4
        await inner.put("obj/x", payload)
        rules = [
            FaultRule(FaultKind.TRUNCATE, calls=frozenset({1})),
            FaultRule(FaultKind.CORRUPT, calls=frozenset({2})),
        ]
        store = FaultyStore(inner, FaultPlan(rules, seed=7))
        truncated = await store.get("obj/x")
        corrupted = await store.get("obj/x")
        assert len(truncated) < len(payload) and payload.startswith(truncated)
        assert len(corrupted) == len(payload)
        assert sum(a != b for a, b in zip(corrupted, payload, strict=True)) == 1
        assert await store.get("obj/x") == payload
        assert [i.kind for i in store.injected] == [FaultKind.TRUNCATE, FaultKind.CORRUPT]
        await store.close()

    run(main())


def test_a_lost_listing_fails_part_way(target: StoreTarget) -> None:
    async def main() -> None:
        inner = raw_store(target)
        for i in range(6):
            await inner.put(f"obj/{i}", b"x")
        store = FaultyStore(inner, lambda op, key: "fail-after" if op == "list" else "ok")
        seen: list[str] = []

        async def listing() -> None:
            async for info in store.list("obj/"):
                seen.append(info.key)

        with pytest.raises(StorageUnavailableError):
            await listing()
        assert len(seen) == 3
        await store.close()

    run(main())


def test_a_plan_is_deterministic_given_its_seed() -> None:
    def injections(seed: int) -> list[tuple[int, str, str]]:
        async def main() -> list[tuple[int, str, str]]:
            plan = FaultPlan(campaign_rules(rate=0.2), seed=seed)
            name = f"det-{uuid.uuid4().hex}"
            # The plan's stalls end by this deadline, as in a catalog.
            store = GuardedStore(FaultyStore(open_store(f"memory://{name}"), plan), timeout=0.01)
            for i in range(300):
                with contextlib.suppress(CatalogStoreError):
                    await store.put(f"data/{i % 7}", b"0123456789" * (i + 1))
                with contextlib.suppress(CatalogStoreError):
                    await store.get(f"data/{i % 7}")
                with contextlib.suppress(CatalogStoreError):
                    await store.put_if_absent(f"_manifests/{i:020d}.json", b"{}")
            drop_memory_store(name)
            return [(i.call, i.kind.value, i.detail) for i in plan.injected]

        return run(main())  # type: ignore[no-any-return]

    first = injections(3)
    assert len(first) > 100
    assert injections(3) == first
    assert injections(4) != first


def test_rules_refuse_faults_that_cannot_happen() -> None:
    with pytest.raises(ValueError, match="cannot happen"):
        FaultRule(FaultKind.FULL, operations=frozenset({"get"}))
    with pytest.raises(ValueError, match="cannot happen"):
        FaultRule(FaultKind.TRUNCATE, operations=frozenset({"put"}))
    with pytest.raises(ValueError, match="probability"):
        FaultRule(FaultKind.UNAVAILABLE, probability=1.5)


def test_paused_and_during_switch_faults_for_a_block() -> None:
    async def main() -> None:
        name = f"pause-{uuid.uuid4().hex}"
        plan = FaultPlan([FaultRule(FaultKind.UNAVAILABLE, probability=1.0)])
        store = FaultyStore(open_store(f"memory://{name}"), plan)
        with plan.paused():
            await store.put("k/a", b"1")
        with pytest.raises(StorageUnavailableError):
            await store.get("k/a")
        plan.enabled = False
        with plan.during(FaultRule(FaultKind.PERMISSION, probability=1.0)):
            assert await store.get("k/a") == b"1"  # disabled wins
        plan.enabled = True
        with (
            plan.during(FaultRule(FaultKind.PERMISSION, probability=1.0)),
            pytest.raises(StoragePermissionError),
        ):
            await store.get("k/a")
        assert plan.counts() == {FaultKind.UNAVAILABLE: 1, FaultKind.PERMISSION: 1}
        drop_memory_store(name)

    run(main())


# -- full disks, read-only storage, damaged reads ------------------------------------------


async def writes_in_flight() -> None:
    """Wait for the other writes of a failed commit.

    A commit writes its objects together; when one write fails, the error reaches
    the caller while the others may still be running (they become orphans).
    """
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    await asyncio.gather(*others, return_exceptions=True)


async def seeded_catalog(target: StoreTarget) -> dict[dt.date, float | None]:
    """A catalog with series S (daily, external id src:S) holding a few values, written
    out: S's record in its metadata shard and its values in a data file."""
    setup = await AsyncCatalog.open(target.url, target.options or None, create=True)
    await setup.create({"id": "S", "frequency": "daily", "external_ids": {"src": "S"}})
    rows = {dt.date(2020, 2, 27) + dt.timedelta(days=i): float(i) for i in range(5)}
    await setup.write("S", (list(rows), list(rows.values())))
    assert await setup.checkpoint() is not None
    await setup.close()
    return dict(rows)


async def faulty_catalog(
    target: StoreTarget, plan: FaultPlan, base: CatalogOptions | None = None, **options: Any
) -> tuple[AsyncCatalog, AsyncCatalog]:
    """(catalog through the faults, oracle on the bare store); the catalog's options
    are ``base`` (default: the defaults) with ``options`` and the campaign's retries."""
    with plan.paused():
        catalog = await AsyncCatalog.open_store(
            FaultyStore(raw_store(target), plan),
            options=dataclasses.replace(base or CatalogOptions(), retry=SMALL_RETRY, **options),
        )
    oracle = await AsyncCatalog.open_store(raw_store(target))
    return catalog, oracle


@pytest.mark.parametrize("where", ["data file", "manifest"])
def test_a_full_disk_fails_the_commit_cleanly(target: StoreTarget, where: str) -> None:
    async def main() -> None:
        rows = await seeded_catalog(target)
        plan = FaultPlan()
        # Eager: the write puts a data file and a shard before its manifest.
        catalog, oracle = await faulty_catalog(target, plan, EAGER)
        before = await oracle.version()
        full = (
            FaultRule(FaultKind.FULL, probability=1.0, operations=frozenset({"put"}), keys="^data/")
            if where == "data file"
            else FaultRule(FaultKind.FULL, probability=1.0, operations=CREATE, keys="^_manifests/")
        )
        new = ([dt.date(2021, 1, 1)], [99.0])
        with plan.during(full), pytest.raises(StorageFullError):
            await catalog.write("S", new, "upsert")
        await writes_in_flight()
        assert plan.counts() == {FaultKind.FULL: 1}
        assert await oracle.version() == before
        assert as_values(await oracle.read("S")) == rows
        report = await oracle.verify()
        assert report.ok, report.problems
        if where == "manifest":
            assert report.orphans  # the data file and shard written before the manifest
        gc = await oracle.collect_garbage(grace=dt.timedelta(0))
        assert gc.deleted == len(report.orphans)
        assert (await oracle.verify()).orphans == []
        # Space is back: the same write goes through.
        series = await catalog.write("S", new, "upsert")
        assert series.version == before + 1
        assert as_values(await oracle.read("S")) == rows | {dt.date(2021, 1, 1): 99.0}
        await catalog.close()
        await oracle.close()

    run(main())


@pytest.mark.parametrize("kind", [FaultKind.PERMISSION, FaultKind.FULL, FaultKind.IO_ERROR])
def test_storage_that_refuses_writes_changes_nothing(target: StoreTarget, kind: FaultKind) -> None:
    async def main() -> None:
        rows = await seeded_catalog(target)
        plan = FaultPlan()
        catalog, oracle = await faulty_catalog(target, plan)
        # A second file, so that compaction has a partition to merge.
        last = max(rows)
        rows[last] = (rows[last] or 0.0) + 0.5
        await oracle.write("S", ([last], [rows[last]]), "upsert")
        before = await oracle.version()
        changes: list[Any] = [
            lambda: catalog.create({"id": "T", "frequency": "annual"}),
            lambda: catalog.update("S", {"title": "new"}),
            lambda: catalog.write("S", ([dt.date(2021, 1, 1)], [1.0])),
            lambda: catalog.write("S", None, "delete_range", start=dt.date(2020, 1, 1)),
            lambda: catalog.delete("S"),
            lambda: catalog.compact("S", min_files=1),
        ]
        with plan.during(FaultRule(kind, probability=1.0, operations=PUTS)):
            for change in changes:
                with pytest.raises(EXPECTED_ERROR[kind]):
                    await change()
            # Reads still work.
            assert as_values(await catalog.read("S")) == rows
        assert await oracle.version() == before
        assert (await oracle.get("S")).title == ""
        assert (await oracle.verify()).ok
        await catalog.close()
        await oracle.close()

    run(main())


@pytest.mark.parametrize("kind", [FaultKind.TRUNCATE, FaultKind.CORRUPT])
@pytest.mark.parametrize("prefix", ["data", "meta", "xid"])
def test_a_damaged_read_raises_integrity_error_and_poisons_nothing(
    target: StoreTarget, kind: FaultKind, prefix: str
) -> None:
    async def main() -> None:
        rows = await seeded_catalog(target)
        plan = FaultPlan()
        catalog, oracle = await faulty_catalog(target, plan)

        async def look() -> object:
            if prefix == "xid":
                return (await catalog.find_by_external_id("src", "S")).id
            return as_values(await catalog.read("S"))

        rule = FaultRule(kind, probability=1.0, keys=f"^{prefix}/")
        with plan.during(rule), pytest.raises(IntegrityError):
            await look()
        assert {i.kind for i in plan.injected} == {kind}
        assert all(i.key.startswith(f"{prefix}/") for i in plan.injected)
        # Nothing wrong was cached: the next read, undamaged, is right.
        assert await look() == ("S" if prefix == "xid" else rows)
        await catalog.close()
        await oracle.close()

    run(main())


@pytest.mark.parametrize("prefix", ["_manifests/0", "meta/", "xid/", "data/"])
def test_a_read_cut_short_once_is_read_again_not_taken_for_damage(
    target: StoreTarget, prefix: str
) -> None:
    """A body cut short in transit (a store or proxy that frames it by closing the
    connection, with no length or checksum to tell) fails its checksum as damage
    does. One such read failed a read, made verify report damage, and had repair
    roll the catalog back over its healthy newest version, losing its commits."""

    async def main() -> None:
        rows = await seeded_catalog(target)
        plan = FaultPlan()
        catalog, oracle = await faulty_catalog(target, plan)
        latest = await oracle.version()
        once = FaultRule(FaultKind.TRUNCATE, calls=frozenset({1}), keys=f"^{prefix}")
        with plan.during(once):
            assert as_values(await catalog.read("S")) == rows
            assert (await catalog.find_by_external_id("src", "S")).id == "S"
        with plan.during(once):
            assert (await catalog.verify()).ok
        fired = len(plan.injected)
        with plan.during(once):
            repaired = await catalog.repair()
        assert len(plan.injected) == fired + 1  # repair checks every object afresh
        assert (repaired.new_version, repaired.lost_versions) == (None, [])
        assert await oracle.version() == latest
        assert as_values(await oracle.read("S")) == rows
        await catalog.close()
        await oracle.close()

    run(main())


# -- a real file system that fills up ------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_real_file_system_that_fills_up(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", "2m") as mount:
        ballast = mount / "ballast"
        ballast.write_bytes(os.urandom(256 * 1024))
        url = str(mount / "store")

        async def main() -> None:
            rng = random.Random(5)
            catalog = await AsyncCatalog.open(
                url, create=True, options=CatalogOptions(shard_count=4)
            )
            await catalog.create({"id": "BIG", "frequency": "daily"})
            model: dict[dt.date, float | None] = {}
            start = dt.date(1900, 1, 1)
            failure: StorageFullError | None = None
            for step in range(200):
                days = [start + dt.timedelta(days=step * 2000 + i) for i in range(2000)]
                values = [rng.random() for _ in days]
                before = await catalog.version()
                try:
                    await catalog.write("BIG", (days, values), "append")
                except StorageFullError as exc:
                    failure = exc
                    await writes_in_flight()
                    assert await catalog.version() == before
                    break
                model.update(zip(days, values, strict=True))
            assert failure is not None, "the file system never filled up"
            await catalog.close()

            # The catalog still opens, verifies and reads what landed.
            reopened = await AsyncCatalog.open(url)
            report = await reopened.verify()
            assert report.ok, report.problems
            assert as_values(await reopened.read("BIG")) == model
            # Free some space, reclaim the failed commit's leftovers: writes work again.
            ballast.unlink()
            await reopened.collect_garbage(grace=dt.timedelta(0))
            days = [max(model) + dt.timedelta(days=1 + i) for i in range(10)]
            await reopened.write("BIG", (days, [1.0] * 10), "append")
            model.update(dict.fromkeys(days, 1.0))
            assert as_values(await reopened.read("BIG")) == model
            # (The compaction that follows the write may fail for want of space;
            # what it wrote is an orphan for gc.)
            await writes_in_flight()
            assert (await reopened.verify()).ok
            await reopened.collect_garbage(grace=dt.timedelta(0))
            report = await reopened.verify()
            assert report.ok and not report.orphans, report.problems
            await reopened.close()
            # Nothing the failed writes started is left behind as a temp file.
            assert not list(mount.rglob("*.tmp"))

        run(main())


# -- regressions: each once a bug ------------------------------------------------------------------


async def outcome_of(change: Any) -> BaseException | None:
    try:
        await change
    except CatalogStoreError as exc:
        return exc
    return None


@pytest.mark.parametrize("kind", ["permission", "io-error"])
def test_a_permanent_read_error_after_a_lost_response_is_reported_as_unknown(
    target: StoreTarget, kind: str
) -> None:
    state = {"landed": False, "reads": 0}

    def schedule(op: str, key: str) -> str:
        if op == "put_if_absent" and key.startswith("_manifests/") and not state["landed"]:
            state["landed"] = True
            return "fail-after"
        if state["landed"] and op in ("get", "head") and key.startswith("_manifests/0"):
            state["reads"] += 1
            return kind if state["reads"] <= 2 else "ok"
        return "ok"

    async def main() -> None:
        await seeded_catalog(target)
        catalog = await AsyncCatalog.open_store(
            FaultyStore(raw_store(target), schedule), options=CatalogOptions(retry=SMALL_RETRY)
        )
        oracle = await AsyncCatalog.open_store(raw_store(target))
        before = await oracle.version()
        outcome = await outcome_of(catalog.update("S", {"title": "once"}))
        landed = await oracle.version() == before + 1
        await catalog.close()
        await oracle.close()
        assert outcome is None or isinstance(outcome, CommitStateUnknownError), (
            f"landed={landed} but the commit reported {outcome!r}"
        )

    run(main())


def test_a_damaged_read_back_of_our_own_manifest_is_not_a_failure(target: StoreTarget) -> None:
    state = {"landed": False, "reads": 0}

    def schedule(op: str, key: str) -> str:
        if op == "put_if_absent" and key.startswith("_manifests/") and not state["landed"]:
            state["landed"] = True
            return "exists-after-write"
        if state["landed"] and op == "get" and key.startswith("_manifests/0"):
            state["reads"] += 1
            return "truncate" if state["reads"] == 1 else "ok"
        return "ok"

    async def main() -> None:
        await seeded_catalog(target)
        catalog = await AsyncCatalog.open_store(
            FaultyStore(raw_store(target), schedule), options=CatalogOptions(retry=SMALL_RETRY)
        )
        oracle = await AsyncCatalog.open_store(raw_store(target))
        before = await oracle.version()
        outcome = await outcome_of(catalog.update("S", {"title": "once"}))
        landed = await oracle.version() == before + 1
        await catalog.close()
        await oracle.close()
        assert outcome is None or isinstance(outcome, CommitStateUnknownError), (
            f"landed={landed} but the commit reported {outcome!r}"
        )

    run(main())


@pytest.mark.parametrize("how", ["write", "batch"])
def test_a_read_failure_after_the_commit_landed_is_not_reported_as_failure(
    target: StoreTarget, how: str
) -> None:
    state = {"landed": False, "reads": 0}

    def schedule(op: str, key: str) -> str:
        if op == "put_if_absent" and key.startswith("_manifests/"):
            state["landed"] = True
        elif state["landed"] and op == "get" and key.startswith("meta/"):
            state["reads"] += 1
            return "fail-before" if state["reads"] == 1 else "ok"
        return "ok"

    async def change(catalog: AsyncCatalog) -> None:
        rows = ([dt.date(2021, 1, 1)], [5.0])
        if how == "write":
            await catalog.write("S", rows, "upsert")
        else:
            async with catalog.batch() as batch:
                await batch.write("S", rows, "upsert")

    async def main() -> None:
        await seeded_catalog(target)
        catalog = await AsyncCatalog.open_store(
            FaultyStore(raw_store(target), schedule),
            options=CatalogOptions(retry=SMALL_RETRY, cache_bytes=1),
        )
        oracle = await AsyncCatalog.open_store(raw_store(target))
        before = await oracle.version()
        outcome = await outcome_of(change(catalog))
        landed = await oracle.version() == before + 1
        await catalog.close()
        await oracle.close()
        assert landed == (outcome is None) or isinstance(outcome, CommitStateUnknownError), (
            f"landed={landed} but the operation reported {outcome!r}"
        )

    run(main())


def test_verify_notices_a_damaged_manifest(target: StoreTarget) -> None:
    async def main() -> None:
        await seeded_catalog(target)
        store = raw_store(target)
        catalog = await AsyncCatalog.open_store(raw_store(target))
        version = await catalog.version()
        key = manifest_key(version)
        data = await store.get(key)
        assert b'"observation_count":5,' in data
        await store.put(key, data.replace(b'"observation_count":5,', b'"observation_count":7,'))
        report = await catalog.verify()
        await catalog.close()
        await store.close()
        assert not report.ok, "verify passed a manifest whose observation count was altered"

    run(main())


class RewritingStore(FaultyStore):
    """A FaultyStore that also returns the first read of one key changed by ``change``."""

    def __init__(self, inner: Store, plan: FaultPlan, pattern: str, change: Any) -> None:
        super().__init__(inner, plan)
        self.pattern = re.compile(pattern)
        self.change = change
        self.pending = True

    async def get(self, key: str) -> bytes:
        data = await super().get(key)
        if self.pending and self.pattern.search(key):
            self.pending = False
            return bytes(self.change(data))
        return data


def test_a_damaged_but_parseable_read_back_does_not_turn_success_into_failure(
    target: StoreTarget,
) -> None:
    def change(data: bytes) -> bytes:
        return re.sub(rb'"commit_id":"(.)', lambda m: b'"commit_id":"' + (b"x" + m[1])[:1], data)

    async def main() -> None:
        await seeded_catalog(target)
        version = await (oracle := await AsyncCatalog.open_store(raw_store(target))).version()
        key = "^" + re.escape(manifest_key(version + 1)) + "$"
        rule = FaultRule(FaultKind.EXISTS_AFTER_WRITE, calls=frozenset({1}), keys=key)
        store = RewritingStore(raw_store(target), FaultPlan([rule]), key, change)
        catalog = await AsyncCatalog.open_store(store, options=CatalogOptions(retry=SMALL_RETRY))
        outcome = await outcome_of(catalog.create({"id": "NEW", "frequency": "annual"}))
        landed = await oracle.version() > version
        await catalog.close()
        await oracle.close()
        assert outcome is None or isinstance(outcome, CommitStateUnknownError), (
            f"landed={landed} but the create reported {outcome!r}"
        )

    run(main())


def test_an_s3_quota_exceeded_is_a_full_storage(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    target = make_target("s3", tmp_path, request)

    async def main() -> BaseException | None:
        rule = FaultRule(FaultKind.FULL, probability=1.0, flavours=("QuotaExceeded",))
        store = FaultyStore(raw_store(target), FaultPlan([rule]))
        outcome = await outcome_of(store.put("obj/x", b"x"))
        await store.close()
        return outcome

    outcome = run(main())
    assert isinstance(outcome, StorageFullError), f"a full quota reported as {outcome!r}"


@pytest.mark.parametrize("flavour", ["TooManyRequests", "Throttling", "SlowDown"])
def test_s3_throttling_is_unavailable_storage_that_a_commit_outlasts(
    tmp_path: Path, request: pytest.FixtureRequest, flavour: str
) -> None:
    """Throttling is transient: the store reports it as unavailable, and a commit that
    meets it once retries and lands (a 429 was taken for a permanent failure)."""
    target = make_target("s3", tmp_path, request)

    async def main() -> tuple[BaseException | None, int]:
        rule = FaultRule(FaultKind.UNAVAILABLE, calls=(1,), flavours=(flavour,))
        store = FaultyStore(raw_store(target), FaultPlan([rule]))
        refused = await outcome_of(store.get("fincat.json"))
        await store.close()
        await (await AsyncCatalog.open_store(raw_store(target), create=True)).close()
        writes = FaultRule(
            FaultKind.UNAVAILABLE,
            operations=frozenset({"put_if_absent"}),
            calls=(1,),
            flavours=(flavour,),
        )
        catalog = await AsyncCatalog.open_store(FaultyStore(raw_store(target), FaultPlan([writes])))
        await catalog.create({"id": "T", "frequency": "daily"})
        version = await catalog.version()
        retries = catalog.stats()["commit_retries"]
        await catalog.close()
        assert retries == 1, retries
        return refused, version

    refused, version = run(main())
    assert isinstance(refused, StorageUnavailableError), f"{flavour} reported as {refused!r}"
    assert version == 1


def test_a_landed_write_whose_base_cannot_be_checked_at_once_is_still_settled(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The response of a manifest write is lost (it landed), and the check that it
    is above the retention floor fails twice: the commit is settled as landed, or
    reported as of unknown outcome, never as a failure that wrote nothing."""
    target = make_target("memory", tmp_path, request)

    async def main() -> tuple[BaseException | None, int]:
        first = await AsyncCatalog.open_store(raw_store(target), create=True)
        await first.create({"id": "S", "frequency": "daily"})  # version 1
        await first.close()
        plan = FaultPlan(
            [
                FaultRule(
                    FaultKind.LOST_RESPONSE,
                    operations=frozenset({"put_if_absent"}),
                    keys=r"_manifests/0+2\.json",
                    calls=(1,),
                ),
                FaultRule(
                    FaultKind.UNAVAILABLE,
                    operations=frozenset({"head"}),
                    keys=r"_manifests/0+1\.json",
                    calls=(1, 2),
                ),
            ]
        )
        catalog = await AsyncCatalog.open_store(FaultyStore(raw_store(target), plan))
        outcome = await outcome_of(catalog.write("S", ([dt.date(2024, 1, 2)], [1.0])))
        version = await catalog.version(refresh=True)
        await catalog.close()
        return outcome, version

    outcome, version = run(main())
    assert version == 2
    assert outcome is None or isinstance(outcome, CommitStateUnknownError), repr(outcome)
