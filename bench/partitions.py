"""Time partitioning of observation files: none, decade or year, per kind of series.

For each variant (20-year business-daily series and 60-year daily series) and each
partitioning, this loads N series into a fresh fincat catalog on local disk and
measures read_full, read_range (a random one-year window), read_last_year (the
most recent 365 days), append (one new day, one commit per series) and an append
run (20 successive days on 20 series, which passes the compaction threshold), plus
how many files each read touches. Run from the repository root::

    .venv/bin/python bench/partitions.py
    .venv/bin/python bench/partitions.py --n 100 --schemes none,decade,year,month --json p.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from common import (
    LAST_DATE,
    Timer,
    code_version,
    date_grid,
    disk_usage,
    fmt_ms,
    id_width,
    machine_load,
    next_business_day,
    render_table,
    series_id,
    series_metadata,
    series_values,
    summary,
    to_date,
)

from catalog_store import Catalog

#: name -> (frequency, years)
VARIANTS: dict[str, tuple[str, int]] = {
    "business_daily_20y": ("business_daily", 20),
    "daily_60y": ("daily", 60),
}
SCHEMES = ("none", "decade", "year")
LOAD_BATCH = 50
READ_OPS = ("read_full", "read_range", "read_last_year", "append")
#: The append run: this many successive days on this many series (passes the
#: default compaction threshold of 16 files per partition once).
RUN_DAYS = 20
RUN_SERIES = 20


@dataclass
class SchemeResult:
    variant: str
    scheme: str
    frequency: str
    years: int
    n: int
    rows_per_series: int
    load_s: float = 0.0
    ops: dict[str, dict[str, float]] = field(default_factory=dict)
    files_per_series: float = 0.0
    files_per_read_range: float = 0.0
    files_per_read_last_year: float = 0.0
    read_mismatches: int = 0
    append_mismatches: int = 0
    disk: dict[str, int] = field(default_factory=dict)


def _file_ranges(catalog_dir: Path, sid: str) -> list[tuple[dt.date, dt.date]]:
    """(first, last) date of each observation file of one series, from Parquet footers."""
    ranges = []
    for path in catalog_dir.glob(f"data/{sid}~*/**/*.parquet"):
        stats = pq.read_metadata(path).row_group(0).column(0).statistics
        ranges.append((stats.min, stats.max))
    return ranges


def _touched(ranges: list[tuple[dt.date, dt.date]], start: dt.date, end: dt.date) -> int:
    return sum(1 for lo, hi in ranges if hi >= start and lo <= end)


def run_scheme(variant: str, scheme: str, n: int, seed: int, workdir: str | None) -> SchemeResult:
    frequency, years = VARIANTS[variant]
    grid = date_grid(years, frequency)
    width = id_width(n)
    ids = [series_id(i, width) for i in range(n)]
    rng = np.random.default_rng(seed)
    year_days = int(np.searchsorted(grid, grid[0] + np.timedelta64(365, "D")))
    windows = []
    for _ in ids:
        k = int(rng.integers(0, max(len(grid) - year_days, 0) + 1))
        start = to_date(grid[k])
        end = start + dt.timedelta(days=364)
        expected = int(
            np.count_nonzero((grid >= np.datetime64(start)) & (grid <= np.datetime64(end)))
        )
        windows.append((start, end, expected))
    last_start = LAST_DATE - dt.timedelta(days=364)
    last_expected = int(np.count_nonzero(grid >= np.datetime64(last_start)))

    def following(day: dt.date) -> dt.date:
        if frequency == "business_daily":
            return next_business_day(day)
        return day + dt.timedelta(days=1)

    day = following(LAST_DATE)
    out = SchemeResult(variant, scheme, frequency, years, n, len(grid))

    root = Path(tempfile.mkdtemp(prefix=f"partitions-{variant}-{scheme}-", dir=workdir))
    url = root / "catalog"
    try:
        cat = Catalog.open(url, create=True)
        started = time.perf_counter()
        for first in range(0, n, LOAD_BATCH):
            with cat.batch() as batch:
                for i in range(first, min(first + LOAD_BATCH, n)):
                    batch.create(series_metadata(i, frequency, width, scheme))
                    batch.write(ids[i], (grid, series_values(seed, i, len(grid))))
        out.load_s = time.perf_counter() - started

        ranges = {sid: _file_ranges(url, sid) for sid in ids}
        out.files_per_series = float(np.mean([len(r) for r in ranges.values()]))
        out.files_per_read_range = float(
            np.mean(
                [_touched(ranges[sid], a, b) for sid, (a, b, _e) in zip(ids, windows, strict=True)]
            )
        )
        out.files_per_read_last_year = float(
            np.mean([_touched(ranges[sid], last_start, LAST_DATE) for sid in ids])
        )

        order = rng.permutation(n).tolist()

        def phase(name: str, call: Any) -> None:
            nonlocal cat
            cat.close()  # every phase starts with a cold catalog cache
            cat = Catalog.open(url)
            timer = Timer.new()
            for index in order:
                timer.time(lambda i=index: call(i))
            out.ops[name] = summary(timer.samples)

        def read_full(i: int) -> None:
            out.read_mismatches += cat.read(ids[i]).num_rows != len(grid)

        def read_range(i: int) -> None:
            start, end, expected = windows[i]
            out.read_mismatches += cat.read(ids[i], start, end).num_rows != expected

        def read_last_year(i: int) -> None:
            rows = cat.read(ids[i], last_start, LAST_DATE).num_rows
            out.read_mismatches += rows != last_expected

        def append(i: int) -> None:
            cat.write(ids[i], ([day], [100.0]))

        phase("read_full", read_full)
        phase("read_range", read_range)
        phase("read_last_year", read_last_year)
        phase("append", append)
        expected_rows = {sid: len(grid) + 1 for sid in ids}

        # append_run: RUN_DAYS successive days on RUN_SERIES series, every series
        # each day, as a daily crawler would; the run passes the compaction threshold.
        run = [ids[i] for i in order[:RUN_SERIES]]
        timer = Timer.new()
        run_day = day
        for _ in range(RUN_DAYS):
            run_day = following(run_day)
            for sid in run:
                timer.time(lambda s=sid, d=run_day: cat.write(s, ([d], [100.0])))
                expected_rows[sid] += 1
        out.ops["append_run"] = summary(timer.samples)
        out.append_mismatches = sum(cat.read(s).num_rows != expected_rows[s] for s in ids)
        cat.close()
        out.disk = disk_usage([url])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def _best(results: list[SchemeResult], key: Any) -> str:
    return min(results, key=key).scheme


def report(variant: str, results: list[SchemeResult]) -> str:
    first = results[0]
    header = [
        "partitioning",
        "files/series",
        "files/range",
        "files/last yr",
        "full p50",
        "full p99",
        "range p50",
        "range p99",
        "last yr p50",
        "append p50",
        "append p99",
        "run mean",
        "run max",
        "load s",
        "disk MB",
    ]
    rows = []
    for r in results:
        rows.append(
            [
                r.scheme,
                f"{r.files_per_series:.1f}",
                f"{r.files_per_read_range:.2f}",
                f"{r.files_per_read_last_year:.2f}",
                fmt_ms(r.ops["read_full"]["p50_ms"]),
                fmt_ms(r.ops["read_full"]["p99_ms"]),
                fmt_ms(r.ops["read_range"]["p50_ms"]),
                fmt_ms(r.ops["read_range"]["p99_ms"]),
                fmt_ms(r.ops["read_last_year"]["p50_ms"]),
                fmt_ms(r.ops["append"]["p50_ms"]),
                fmt_ms(r.ops["append"]["p99_ms"]),
                fmt_ms(r.ops["append_run"]["mean_ms"]),
                fmt_ms(r.ops["append_run"]["max_ms"]),
                f"{r.load_s:.1f}",
                f"{r.disk['bytes'] / 2**20:.1f}",
            ]
        )
    lines = [
        f"{variant}: {first.n} series, {first.frequency}, {first.years} years "
        f"({first.rows_per_series} rows each); latencies in ms",
        render_table(header, rows),
    ]
    mismatches = sum(r.read_mismatches + r.append_mismatches for r in results)
    if mismatches:
        lines.append(f"  WARNING: {mismatches} row-count mismatches")

    def p50(op: str) -> Any:
        return lambda r: r.ops[op]["p50_ms"]

    fewest = _best(results, lambda r: (r.files_per_read_range, r.files_per_series))
    overall = _best(results, lambda r: sum(r.ops[op]["p50_ms"] for op in READ_OPS))
    lines += [
        f"  fewest files per typical read (one-year window): {fewest}",
        "  best p50: read_full {}, read_range {}, read_last_year {}, append {}".format(
            *(_best(results, p50(op)) for op in READ_OPS)
        ),
        f"  best sum of the four p50s: {overall}",
        "  best amortised append (run mean, compaction included): "
        + _best(results, lambda r: r.ops["append_run"]["mean_ms"]),
    ]
    try:
        from catalog_store.observations import DEFAULT_PARTITIONING

        lines.append(
            f"  current default for {first.frequency}: {DEFAULT_PARTITIONING[first.frequency]}"
        )
    except (ImportError, KeyError):
        pass
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="series per variant (default 200)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--schemes", default=",".join(SCHEMES), help="of none,decade,year,month")
    parser.add_argument("--workdir", help="parent of the temporary directories (default: TMPDIR)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    schemes = [s for s in args.schemes.split(",") if s]
    bad = [v for v in variants if v not in VARIANTS] + [
        s for s in schemes if s not in ("none", "decade", "year", "month")
    ]
    if bad:
        print(f"unknown variant or scheme: {', '.join(bad)}", file=sys.stderr)
        return 2
    everything: dict[str, list[SchemeResult]] = {}
    print(f"machine: {machine_load()} at the start; code {code_version()}")
    for variant in variants:
        results = []
        for scheme in schemes:
            started = time.perf_counter()
            print(f"running {variant} / {scheme} ...", file=sys.stderr, flush=True)
            results.append(run_scheme(variant, scheme, args.n, args.seed, args.workdir))
            print(f"  done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        everything[variant] = results
        print(report(variant, results))
        print(f"  machine: {machine_load()} after this variant")
        print()
    if args.json:
        payload = {v: [asdict(r) for r in rs] for v, rs in everything.items()}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
