"""catalog_scale (workload W1, operation 9): metadata at 10^4, 10^5, 10^6 series.

For each size: create the series (metadata only) in batches in one process (the
import job); then, in a fresh process (a reader, or a gateway), measure
meta_lookup (1,000 random ids, cache filling as it goes), one listing page of
100, streaming the series of one source as models, then meta_filter on that
source (the metadata table of ``src2``: first call, then p50 of five); and cold
lookups, each in a new process opening the catalog; and, in one more process (a
daily job), appends of one row to 340 random series, one commit each, so 20 of
them write the series held in the manifest out to their shards (p50 and p99);
and, in a last process (a nightly check), ``verify`` of the latest version, with
its time and peak RSS.
Build and read processes report their
peak RSS; the reader's also before the table, which is a result that grows with
the catalog. Usage::

    .venv/bin/python bench/catalog_scale.py --sizes 10000,100000
    .venv/bin/python bench/catalog_scale.py --sizes 10000,100000,1000000

Every size runs with the same object cache bound (``--cache-mb``, default the
library's, 32), so
the peak RSS shows whether that bound holds as the catalog grows.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    LAST_DATE,
    code_version,
    create_metadata_catalog,
    machine_load,
    peak_rss_mb,
    render_table,
    summary,
)

from catalog_store import Catalog, CatalogOptions, SeriesFilter


def build(root: str, n: int, shards: int, batch: int, cache_mb: int) -> dict[str, Any]:
    """Create the catalog in this process: the import job."""
    create_s = create_metadata_catalog(
        root, n, batch, shard_count=shards, cache_bytes=cache_mb * 2**20
    )
    return {"create_s": create_s, "rss_mb": peak_rss_mb()}


def read(root: str, n: int, seed: int, cache_mb: int) -> dict[str, Any]:
    """Open the built catalog in a fresh process and read it: a reader or a gateway."""
    width = max(5, len(str(n - 1)))
    cat = Catalog.open(root, options=CatalogOptions(cache_bytes=cache_mb * 2**20))
    rng = random.Random(seed)
    warm = []
    for _ in range(1000):
        sid = f"SER{rng.randrange(n):0{width}d}"
        t = time.perf_counter()
        cat.get(sid)
        warm.append(time.perf_counter() - t)
    page = []
    for _ in range(20):
        t = time.perf_counter()
        cat.list(limit=100)
        page.append(time.perf_counter() - t)
    t = time.perf_counter()
    streamed = sum(1 for _s in cat.iter_series(SeriesFilter(source="src2")))
    stream_s = time.perf_counter() - t
    # Everything so far holds at most the cache and one page; the table below is a
    # result that grows with the catalog (200,000 rows, ~26 MB at 10^6).
    bounded_rss = peak_rss_mb()
    filt = []
    for _ in range(5):
        t = time.perf_counter()
        found = cat.metadata_table(source="src2").num_rows
        filt.append(time.perf_counter() - t)
    assert streamed == found, (streamed, found)
    cat.close()
    return {
        "warm": summary(warm),
        "page": summary(page),
        "filter_first_ms": filt[0] * 1e3,
        "filter": summary(filt),
        "filter_found": found,
        "stream_s": stream_s,
        "bounded_rss_mb": bounded_rss,
        "rss_mb": peak_rss_mb(),
    }


def cold_lookup(root: str, n: int, seed: int) -> dict[str, Any]:
    width = max(5, len(str(n - 1)))
    sid = f"SER{random.Random(seed).randrange(n):0{width}d}"
    t = time.perf_counter()
    cat = Catalog.open(root)
    cat.get(sid)
    elapsed = time.perf_counter() - t
    cat.close()
    return {"cold_ms": elapsed * 1e3, "rss_mb": peak_rss_mb()}


def append(root: str, n: int, seed: int, count: int = 340) -> dict[str, Any]:
    """One row to each of ``count`` random series, one commit each: every commit
    writes the whole manifest, so its cost shows how a commit grows with the
    catalog; every 17th also writes the held series out to their shards."""
    width = max(5, len(str(n - 1)))
    cat = Catalog.open(root)
    times = []
    for index in random.Random(seed).sample(range(n), min(count, n)):
        t = time.perf_counter()
        cat.write(f"SER{index:0{width}d}", ([LAST_DATE], [1.0]))
        times.append(time.perf_counter() - t)
    cat.close()
    return {"append": summary(times)}


def verify_latest(root: str, n: int) -> dict[str, Any]:
    """What ``fincat verify --latest`` costs: every record, shard and table part."""
    cat = Catalog.open(root)
    t = time.perf_counter()
    report = cat.verify(latest_only=True)
    elapsed = time.perf_counter() - t
    cat.close()
    assert report.ok, report.problems[:5]
    assert report.series_checked >= n, (report.series_checked, n)
    return {"verify_s": elapsed, "rss_mb": peak_rss_mb()}


def child(argv: list[str]) -> None:
    mode, root, n = argv[0], argv[1], int(argv[2])
    rest = [int(a) for a in argv[3:]]
    if mode == "build":
        out = build(root, n, *rest)
    elif mode == "read":
        out = read(root, n, *rest)
    elif mode == "append":
        out = append(root, n, *rest)
    elif mode == "verify":
        out = verify_latest(root, n)
    else:
        out = cold_lookup(root, n, *rest)
    print(json.dumps(out))


def run_child(*args: object) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--shards", type=int, default=64, help="external-id index shards")
    parser.add_argument(
        "--cache-mb",
        type=int,
        default=CatalogOptions().cache_bytes // 2**20,
        help="object cache bound, MiB (default: the library's)",
    )
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", help="parent of the temporary directory (default: TMPDIR)")
    parser.add_argument("--child", nargs="*")
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    print(
        f"catalog_scale: cache={args.cache_mb} MiB batch={args.batch}; "
        f"{machine_load()}; code {code_version()}"
    )
    rows = []
    rss: dict[int, tuple[float, float, float]] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="fincat-scale-", dir=args.workdir) as tmp:
            root = str(Path(tmp) / "store")
            built = run_child("build", root, n, args.shards, args.batch, args.cache_mb)
            got = run_child("read", root, n, args.seed, args.cache_mb)
            cold = [run_child("cold", root, n, args.seed + k)["cold_ms"] for k in range(5)]
            newest = max(Path(root, "_manifests").glob("*.json"))
            manifest = json.loads(newest.read_bytes())
            manifest_kb = newest.stat().st_size / 1024
            appended = run_child("append", root, n, args.seed)["append"]
            checked = run_child("verify", root, n)
        rss[n] = (built["rss_mb"], got["bounded_rss_mb"], got["rss_mb"])
        rows.append(
            [
                f"{n:,}",
                f"{built['create_s']:.1f}",
                f"{got['warm']['p50_ms']:.3f}",
                f"{sorted(cold)[len(cold) // 2]:.1f}",
                f"{got['page']['p50_ms']:.2f}",
                f"{got['filter_first_ms']:.0f} / {got['filter']['p50_ms']:.1f}",
                f"{got['filter_found']:,}",
                f"{got['stream_s']:.2f}",
                f"{built['rss_mb']:.0f}",
                f"{got['bounded_rss_mb']:.0f} / {got['rss_mb']:.0f}",
                f"{len(manifest['shards']):,} / {len(manifest.get('table') or ()):,}",
                f"{manifest_kb:.0f}",
                f"{appended['p50_ms']:.2f} / {appended['p99_ms']:.1f}",
                f"{checked['verify_s']:.1f} / {checked['rss_mb']:.0f}",
            ]
        )
        print(f"  {n:,} done", flush=True)
    header = [
        "series",
        "create s",
        "lookup warm p50 ms",
        "lookup cold ms",
        "page 100 ms",
        "filter src2 first / p50 ms",
        "found",
        "stream src2 s",
        "peak RSS create MB",
        "peak RSS read MB (before / with table)",
        "shards / table parts",
        "manifest KB",
        "append p50 / p99 ms",
        "verify s / peak RSS MB",
    ]
    print(render_table(header, rows))
    print(
        "targets (issue figures): warm < 1 ms, cold < 20 ms, page < 20 ms, "
        "filter < 300 ms at 10^6, create 10^6 < 600 s, RSS at 10^6 <= 1.5x RSS at 10^4"
    )
    if len(rss) > 1:
        small, large = rss[min(rss)], rss[max(rss)]
        ratios = [large[i] / small[i] for i in range(3)]
        print(
            f"peak RSS {max(rss):,} vs {min(rss):,} series: creating {ratios[0]:.2f}x, "
            f"reading {ratios[1]:.2f}x before the table, {ratios[2]:.2f}x with it"
        )


if __name__ == "__main__":
    main()
