"""Workload W1: fincat beside raw pyarrow, DuckDB and ArcticDB on local disk.

Run from the repository root::

    .venv/bin/python bench/w1.py                      # N=1000, 20 years, all systems
    .venv/bin/python bench/w1.py --n 200 --systems fincat,pyarrow --json w1.json

Each system runs in its own fresh process (so peak RSS is its own) on its own
temporary directory, which is removed afterwards. A system whose package is not
installed is skipped, with the reason printed. The systems are in w1_systems.py;
bench/README.md explains every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    LAST_DATE,
    Timer,
    code_version,
    date_grid,
    durability_floor,
    fmt_ms,
    id_width,
    machine_load,
    next_business_day,
    peak_rss_mb,
    render_table,
    series_id,
    series_metadata,
    series_values,
    summary,
    to_date,
)
from w1_systems import OPTIONAL_MODULES, PEERS, SYSTEMS, System, make_system

FREQUENCY = "business_daily"
#: Operations in the order they run and are printed.
TIMED_OPS = (
    "load",
    "read_full",
    "read_full_again",
    "read_range",
    "append",
    "meta_lookup",
    "meta_filter",
)
#: The operations of W1 itself (read_full_again is an extra view of read_full).
W1_OPS = ("load", "read_full", "read_range", "append", "meta_lookup", "meta_filter")
#: Operations whose fincat/pyarrow ratio is printed (the others have no comparable floor).
RATIO_OPS = ("read_full", "read_full_again", "read_range")
#: Targets: reads within this factor of raw pyarrow, every W1 operation at or below
#: the best peer, and an append under this many milliseconds.
READ_RATIO_TARGET = 1.3
APPEND_TARGET_MS = 3.0


@dataclass(frozen=True)
class Config:
    n: int = 1000
    years: int = 20
    seed: int = 42
    partitioning: str | None = None
    reads: int = 200
    appends: int = 500
    lookups: int = 1000
    filter_repeats: int = 20
    filter_source: str = "src2"
    workdir: str | None = None


@dataclass(frozen=True)
class Plan:
    """Which series each phase touches; the same for every system."""

    read_full: list[int]
    read_range: list[tuple[int, dt.date, dt.date, int]]  # index, start, end, expected rows
    append: list[tuple[int, float]]
    append_day: dt.date
    lookup: list[int]
    rows: int
    filter_expected: int


def make_plan(cfg: Config) -> Plan:
    """Seeded samples. Reads are without replacement, and the read_range series are
    disjoint from the read_full ones when N allows, so no read starts from a cache
    a previous read of the same series filled."""
    rng = np.random.default_rng(cfg.seed)
    grid = date_grid(cfg.years, FREQUENCY)
    n = cfg.n
    full = rng.choice(n, size=min(cfg.reads, n), replace=False)
    rest = np.setdiff1d(np.arange(n), full)
    if len(rest) >= cfg.reads:
        ranged = rng.choice(rest, size=cfg.reads, replace=False)
    else:
        ranged = rng.choice(n, size=min(cfg.reads, n), replace=False)
    windows = []
    year_days = int(np.searchsorted(grid, grid[0] + np.timedelta64(365, "D")))
    for index in ranged.tolist():
        k = int(rng.integers(0, max(len(grid) - year_days, 0) + 1))
        start = to_date(grid[k])
        end = start + dt.timedelta(days=364)
        expected = int(
            np.count_nonzero((grid >= np.datetime64(start)) & (grid <= np.datetime64(end)))
        )
        windows.append((index, start, end, expected))
    appended = rng.choice(n, size=min(cfg.appends, n), replace=False).tolist()
    values = np.round(100.0 + rng.normal(0.0, 1.0, len(appended)), 2).tolist()
    source_index = int(cfg.filter_source.removeprefix("src"))
    return Plan(
        read_full=full.tolist(),
        read_range=windows,
        append=list(zip(appended, values, strict=True)),
        append_day=next_business_day(LAST_DATE),
        lookup=rng.integers(0, n, size=cfg.lookups).tolist(),
        rows=len(grid),
        filter_expected=sum(1 for i in range(n) if i % 5 == source_index),
    )


# -- the driver --------------------------------------------------------------------------


@dataclass
class Result:
    system: str
    ops: dict[str, dict[str, float]] = field(default_factory=dict)
    load_total_s: float = 0.0
    read_mismatches: int = 0
    append_mismatches: int = 0
    filter_mismatches: int = 0
    peak_rss_mb: float = 0.0
    #: Peak RSS (MB) at the end of each phase: where the peak was reached.
    rss_after: dict[str, float] = field(default_factory=dict)
    disk_after_load: dict[str, Any] = field(default_factory=dict)
    disk_after_append: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def run_system(name: str, cfg: Config) -> Result:
    """Run every W1 phase against one system in a fresh temporary directory."""
    plan = make_plan(cfg)
    width = id_width(cfg.n)
    ids = [series_id(i, width) for i in range(cfg.n)]
    grid = date_grid(cfg.years, FREQUENCY)
    root = Path(tempfile.mkdtemp(prefix=f"w1-{name}-", dir=cfg.workdir))
    out = Result(name)
    try:
        system = make_system(name, root)
        try:
            _run_phases(system, cfg, plan, ids, grid, out)
        finally:
            system.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out.peak_rss_mb = peak_rss_mb()
    return out


def _run_phases(
    system: System,
    cfg: Config,
    plan: Plan,
    ids: list[str],
    grid: np.ndarray[Any, Any],
    out: Result,
) -> None:
    width = id_width(cfg.n)

    # load: one call per series (metadata and observations), as a crawler would.
    timer = Timer.new()
    started = time.perf_counter()
    for i in range(cfg.n):
        meta = series_metadata(i, FREQUENCY, width, cfg.partitioning)
        values = series_values(cfg.seed, i, len(grid))
        timer.time(lambda m=meta, v=values: system.load_one(m, grid, v))
    system.finish_load()
    out.load_total_s = time.perf_counter() - started
    out.ops["load"] = summary(timer.samples)
    out.rss_after["load"] = peak_rss_mb()
    out.disk_after_load = system.disk()

    # read_full on a freshly opened system (cold catalog cache, warm OS page cache),
    # then the same series again (read_full_again: warm catalog cache).
    system.reopen()
    for op in ("read_full", "read_full_again"):
        timer = Timer.new()
        for index in plan.read_full:
            rows = timer.time(lambda s=ids[index]: system.read_full(s))
            out.read_mismatches += rows != plan.rows
        out.ops[op] = summary(timer.samples)
        out.rss_after[op] = peak_rss_mb()

    system.reopen()
    timer = Timer.new()
    for index, start, end, expected in plan.read_range:
        rows = timer.time(lambda s=ids[index], a=start, b=end: system.read_range(s, a, b))
        out.read_mismatches += rows != expected
    out.ops["read_range"] = summary(timer.samples)
    out.rss_after["read_range"] = peak_rss_mb()

    # append: one new business day to each sampled series, one commit each.
    system.reopen()
    timer = Timer.new()
    for index, value in plan.append:
        timer.time(lambda s=ids[index], v=value: system.append(s, plan.append_day, v))
    out.ops["append"] = summary(timer.samples)
    out.rss_after["append"] = peak_rss_mb()
    appended = {ids[index] for index, _value in plan.append}
    counts = system.row_counts(ids)
    out.rss_after["append_check"] = peak_rss_mb()  # every series read once
    out.append_mismatches = sum(
        counts[sid] != plan.rows + (1 if sid in appended else 0) for sid in ids
    )
    out.disk_after_append = system.disk()

    system.reopen()
    timer = Timer.new()
    for index in plan.lookup:
        timer.time(lambda s=ids[index]: system.lookup(s))
    out.ops["meta_lookup"] = summary(timer.samples)
    out.rss_after["meta_lookup"] = peak_rss_mb()

    timer = Timer.new()
    for _ in range(cfg.filter_repeats):
        found = timer.time(lambda: system.filter_source(cfg.filter_source))
        out.filter_mismatches += found != plan.filter_expected
    out.ops["meta_filter"] = summary(timer.samples)
    out.rss_after["meta_filter"] = peak_rss_mb()

    out.extra = system.details()


def run_isolated(name: str, cfg: Config, same_process: bool) -> Result:
    if same_process:
        return run_system(name, cfg)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(run_system, name, cfg).result()


# -- report ------------------------------------------------------------------------------


def _mb(value: int) -> str:
    return f"{value / 2**20:.1f}"


def _ratio(results: dict[str, Result], op: str) -> float | None:
    """fincat's p50 over raw pyarrow's."""
    if "fincat" not in results or "pyarrow" not in results:
        return None
    ours = results["fincat"].ops[op]["p50_ms"]
    floor = results["pyarrow"].ops[op]["p50_ms"]
    return ours / floor if floor > 0 else None


def _best_peer(results: dict[str, Result], op: str) -> tuple[float, str] | None:
    """fincat's p50 over the lowest p50 of the peers that ran, and that peer."""
    peers = [(results[p].ops[op]["p50_ms"], p) for p in PEERS if p in results]
    if "fincat" not in results or not peers:
        return None
    best, name = min(peers)
    if not best > 0:
        return None
    return results["fincat"].ops[op]["p50_ms"] / best, name


def targets(results: dict[str, Result]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for op in W1_OPS:
        peer = _best_peer(results, op)
        checks.append(
            {
                "target": f"{op} p50 at or below the best peer",
                "value": None if peer is None else peer[0],
                "display": "n/a" if peer is None else f"{peer[0]:.2f}x {peer[1]}",
                "met": None if peer is None else peer[0] <= 1.0,
                "peer": None if peer is None else peer[1],
            }
        )
    for op in ("read_full", "read_range"):
        ratio = _ratio(results, op)
        checks.append(
            {
                "target": f"{op} p50 within {READ_RATIO_TARGET}x of raw pyarrow",
                "value": ratio,
                "display": "n/a" if ratio is None else f"{ratio:.2f}x",
                "met": None if ratio is None else ratio <= READ_RATIO_TARGET,
            }
        )
    if "fincat" in results:
        p50 = results["fincat"].ops["append"]["p50_ms"]
        checks.append(
            {
                "target": f"append p50 under {APPEND_TARGET_MS:g} ms",
                "value": p50,
                "display": f"{fmt_ms(p50)} ms",
                "met": p50 < APPEND_TARGET_MS,
            }
        )
    return checks


def _split(label: str, parts: dict[str, dict[str, float]]) -> str:
    """One line of p50/p99 per named part of an operation."""
    text = ", ".join(
        f"{name} p50 {fmt_ms(s['p50_ms'])} / p99 {fmt_ms(s['p99_ms'])} ms"
        for name, s in parts.items()
    )
    return f"{label}: {text}"


def report(
    cfg: Config, results: dict[str, Result], skipped: dict[str, str], load_before: str
) -> str:
    names = list(results)
    header = ["operation"]
    for name in names:
        header += [f"{name} p50", f"{name} p99"]
    with_floor = "fincat" in results and "pyarrow" in results
    with_peer = "fincat" in results and any(p in results for p in PEERS)
    if with_floor:
        header.append("fincat/pyarrow p50")
    if with_peer:
        header.append("fincat/best peer p50")
    rows: list[list[str]] = []
    for op in TIMED_OPS:
        unit = "ms/series" if op == "load" else "ms"
        row = [f"{op} ({unit})"]
        for name in names:
            stats = results[name].ops[op]
            row += [fmt_ms(stats["p50_ms"]), fmt_ms(stats["p99_ms"])]
        if with_floor:
            ratio = _ratio(results, op) if op in RATIO_OPS else None
            row.append("" if ratio is None else f"{ratio:.2f}x")
        if with_peer:
            peer = _best_peer(results, op)
            row.append("" if peer is None else f"{peer[0]:.2f}x {peer[1]}")
        rows.append(row)

    def single(label: str, values: list[str]) -> list[str]:
        row = [label]
        for value in values:
            row += [value, ""]
        return row + [""] * (with_floor + with_peer)

    rows.append(single("load total (s)", [f"{results[n].load_total_s:.1f}" for n in names]))
    rows.append(single("append mismatches", [str(results[n].append_mismatches) for n in names]))
    rows.append(single("read mismatches", [str(results[n].read_mismatches) for n in names]))
    rows.append(single("filter mismatches", [str(results[n].filter_mismatches) for n in names]))
    rows.append(single("peak RSS (MB)", [f"{results[n].peak_rss_mb:.0f}" for n in names]))
    rows.append(
        single("disk after load (MB)", [_mb(results[n].disk_after_load["bytes"]) for n in names])
    )
    rows.append(
        single(
            "disk after append (MB)", [_mb(results[n].disk_after_append["bytes"]) for n in names]
        )
    )
    rows.append(
        single("files after append", [str(results[n].disk_after_append["files"]) for n in names])
    )

    rows_per_series = len(date_grid(cfg.years, FREQUENCY))
    lines = [
        f"W1: N={cfg.n} series x {cfg.years} years business-daily ({rows_per_series} rows each), "
        f"partitioning={cfg.partitioning or 'default'}, seed={cfg.seed}",
        f"reads={cfg.reads} appends={cfg.appends} lookups={cfg.lookups} "
        f"filter repeats={cfg.filter_repeats} (source == {cfg.filter_source!r})",
        f"machine: {load_before} before, {machine_load()} after; code {code_version()}",
        durability_floor(cfg.workdir),
        "",
        render_table(header, rows),
        "",
        "targets (best peer: the lower p50 of " + " and ".join(PEERS) + ", of those run):",
    ]
    for check in targets(results):
        verdict = {True: "MET", False: "MISSED", None: "n/a"}[check["met"]]
        lines.append(f"  {check['target']:<45} {check['display']:>14}  {verdict}")
    lines.append("")
    if "fincat" in results:
        fin = results["fincat"]
        extra = fin.extra
        for label, usage in (("load", fin.disk_after_load), ("append", fin.disk_after_append)):
            parts = ", ".join(
                f"{d} {_mb(u['bytes'])} MB / {u['files']} files"
                for d, u in usage.get("by_dir", {}).items()
            )
            lines.append(f"fincat disk after {label}: {parts}")
        lines.append(
            f"fincat observation_count disagreeing with rows read: {extra['count_disagreements']}"
        )
    if "arcticdb" in results:
        extra = results["arcticdb"].extra
        parts = {"read_metadata": extra["append_metadata"], "append": extra["append_write"]}
        lines.append(_split("arcticdb append split", parts))
    lines.append("")
    for name in names:
        steps = ", ".join(f"{op} {mb:.0f}" for op, mb in results[name].rss_after.items())
        lines.append(f"peak RSS (MB) after each phase, {name}: {steps}")
    for name, reason in skipped.items():
        lines.append(f"skipped {name}: {reason}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="number of series (default 1000)")
    parser.add_argument("--years", type=int, default=20, help="years of history (default 20)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--partitioning",
        choices=("none", "decade", "year", "month"),
        help="force this partitioning on every fincat series (default: per frequency)",
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help="comma-separated subset of " + ",".join(SYSTEMS),
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--workdir", help="parent of the temporary directories (default: TMPDIR)")
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--filter-repeats", type=int, default=20)
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="run every system in this process (peak RSS is then cumulative)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in names if s not in SYSTEMS]
    if unknown:
        print(f"unknown system(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    cfg = Config(
        n=args.n,
        years=args.years,
        seed=args.seed,
        partitioning=args.partitioning,
        reads=args.reads,
        appends=args.appends,
        lookups=args.lookups,
        filter_repeats=args.filter_repeats,
        workdir=args.workdir,
    )
    # Found, not imported: a module imported here would count in every child's peak
    # RSS (a spawned process starts from its parent's high-water mark on Linux).
    skipped: dict[str, str] = {}
    for name, module in OPTIONAL_MODULES.items():
        if name in names and importlib.util.find_spec(module) is None:
            skipped[name] = f"{module} is not installed (pip install -e '.[bench]')"
            names.remove(name)
    results: dict[str, Result] = {}
    load_before = machine_load()
    for name in names:
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = run_isolated(name, cfg, args.same_process)
        print(f"  {name} done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    print(report(cfg, results, skipped, load_before))
    if args.json:
        payload = {
            "workload": "W1",
            "code": code_version(),
            "config": asdict(cfg),
            "systems": {name: asdict(result) for name, result in results.items()},
            "targets": [
                {k: v for k, v in check.items() if k != "display"} for check in targets(results)
            ],
            "skipped": skipped,
        }
        text = json.dumps(_clean(payload), indent=2, allow_nan=False)
        args.json.write_text(text + "\n")
    return 0


def _clean(value: Any) -> Any:
    """JSON-ready: NaN becomes null, dates ISO strings, tuples lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


if __name__ == "__main__":
    sys.exit(main())
