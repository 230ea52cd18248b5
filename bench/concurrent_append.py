"""W1's concurrent_append: P writer processes append at once; none may be lost.

For each P (``--writers``, default 2,4,8) on a fresh local catalog, P processes
start together; each makes ``--appends`` commits (default 100), alternating one
day on a business-daily series of its own and one day on a shared hot series.
The hot series' next day is whoever gets there first: a writer that finds its day
taken (AppendOrderError) reads the new last day and tries again. Prints commits
per second, the commit retries (races for the next manifest) and the append
retries, then checks every series: each writer's own appends all there, and the
hot series holding exactly the values of every append reported as landed::

    .venv/bin/python bench/concurrent_append.py
    .venv/bin/python bench/concurrent_append.py --writers 4 --eager

``--eager`` opens the writers with ``CatalogOptions(inline_rows=0,
pending_records=0)``: every commit writes files and shards, as before series
could be held in the manifest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from common import code_version, machine_load, next_business_day

from catalog_store import Catalog, CatalogOptions
from catalog_store.errors import AppendOrderError

HOT = "HOT"
START = dt.date(2024, 1, 1)  # a Monday


def own(writer: int) -> str:
    return f"W{writer:02d}"


def options(eager: bool) -> CatalogOptions:
    return CatalogOptions(inline_rows=0, pending_records=0) if eager else CatalogOptions()


def writer(root: str, index: int, appends: int, eager: bool, start: Any) -> dict[str, Any]:
    """One writer process: ``appends`` commits, alternating its own series and HOT."""
    with Catalog.open(root, options=options(eager)) as cat:
        start.wait()
        began = time.perf_counter()
        day = START
        landed: list[float] = []
        append_retries = 0
        for k in range(appends):
            if k % 2 == 0:
                day = next_business_day(day)
                cat.write(own(index), ([day], [float(k)]))
                continue
            value = index * 1_000_000 + k
            while True:
                last = cat.get(HOT).last_date
                assert isinstance(last, dt.date)
                try:
                    cat.write(HOT, ([next_business_day(last)], [float(value)]))
                except AppendOrderError:
                    append_retries += 1
                    continue
                landed.append(float(value))
                break
        stats = cat.inner.committer.stats
        return {
            "seconds": time.perf_counter() - began,
            "own": (appends + 1) // 2,
            "hot": landed,
            "append_retries": append_retries,
            "commit_retries": stats.lost_races + stats.retries,
        }


def run(writers: int, appends: int, eager: bool, workdir: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fincat-concurrent-", dir=workdir) as tmp:
        return run_in(str(Path(tmp) / "catalog"), writers, appends, eager)


def run_in(root: str, writers: int, appends: int, eager: bool) -> dict[str, Any]:
    with Catalog.open(root, create=True) as cat, cat.batch("seed") as batch:
        for index in range(writers):
            batch.create({"id": own(index), "frequency": "business_daily"})
        batch.create({"id": HOT, "frequency": "business_daily"})
        batch.write(HOT, ([START], [0.0]))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(writers) as pool:
            pending = [
                pool.apply_async(writer, (root, i, appends, eager, start)) for i in range(writers)
            ]
            time.sleep(1.0)  # every process has opened its catalog and waits
            began = time.perf_counter()
            start.set()
            results = [p.get() for p in pending]
            wall = time.perf_counter() - began
            pool.close()  # let the workers exit on their own: terminate() aborts them
            pool.join()
    with Catalog.open(root) as cat:
        lost = sum(cat.get(own(i)).observation_count != results[i]["own"] for i in range(writers))
        hot = cat.read(HOT).column("value").to_pylist()[1:]
        reported = sorted(v for r in results for v in r["hot"])
        lost += len(set(reported) - set(hot)) + (len(hot) != len(reported))
        healthy = cat.verify(latest_only=True).ok
    commits = sum(r["own"] + len(r["hot"]) for r in results)
    return {
        "writers": writers,
        "commits": commits,
        "seconds": wall,
        "commits_per_s": commits / wall,
        "commit_retries": sum(r["commit_retries"] for r in results),
        "append_retries": sum(r["append_retries"] for r in results),
        "lost": lost,
        "verify_ok": healthy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="2,4,8")
    parser.add_argument("--appends", type=int, default=100, help="commits per writer")
    parser.add_argument("--eager", action="store_true", help="hold nothing in the manifest")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--workdir", help="parent of the temporary directory (default: TMPDIR)")
    args = parser.parse_args()
    mode = "eager (inline_rows=0, pending_records=0)" if args.eager else "default options"
    print(f"concurrent_append: {args.appends} commits per writer, {mode}; {machine_load()}")
    print(f"code {code_version()}")
    rows = [run(int(p), args.appends, args.eager, args.workdir) for p in args.writers.split(",")]
    header = ("writers", "commits", "seconds", "commits/s", "commit retries", "append retries")
    print("  ".join(f"{h:>14}" for h in (*header, "lost", "verify")))
    for row in rows:
        cells = (
            row["writers"],
            row["commits"],
            f"{row['seconds']:.2f}",
            f"{row['commits_per_s']:.0f}",
            row["commit_retries"],
            row["append_retries"],
            row["lost"],
            "ok" if row["verify_ok"] else "FAILED",
        )
        print("  ".join(f"{c:>14}" for c in cells))
    print("target: no append lost (lost = 0) and the catalog verifies, at every P")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
