"""Gateway memory: one ``fincat serve`` worker while a client pages through a listing.

Builds a catalog of ``--n`` series (metadata only, default 10^6), starts the
gateway on it with its default settings, and pages through the whole listing
(``GET /v1/series?limit=1000``, following ``next_cursor``) while sampling the
server's resident memory after every page. Prints the RSS when ready, the peak
(the kernel's high-water mark), pages, series and time; checks every series came
once, in id order. The target is under 300 MiB at 10^6 series::

    .venv/bin/python bench/gateway_memory.py                 # about 2 minutes
    .venv/bin/python bench/gateway_memory.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import httpx
from common import code_version, create_metadata_catalog, machine_load, start_gateway


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory (or, with VmHWM, its peak) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def page_through(url: str, limit: int, pid: int) -> dict[str, float]:
    seen, pages, last, peak_sampled = 0, 0, "", 0.0
    cursor: str | None = None
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60) as client:
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            response = client.get("/v1/series", params=params)
            response.raise_for_status()
            body = response.json()
            for item in body["items"]:
                if item["id"] <= last:
                    raise RuntimeError(f"listing out of order at {item['id']!r}")
                last = item["id"]
            seen += len(body["items"])
            pages += 1
            peak_sampled = max(peak_sampled, rss_mb(pid))
            cursor = body["next_cursor"]
            if cursor is None:
                break
    return {
        "series": seen,
        "pages": pages,
        "seconds": time.perf_counter() - started,
        "rss_sampled_peak_mb": peak_sampled,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=1000, help="series per page")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the server (repeatable)"
    )
    args = parser.parse_args()
    print(
        f"gateway_memory: n={args.n:,} page={args.page} server env {args.env or 'default'}; "
        f"{machine_load()}; code {code_version()}"
    )
    work = Path(tempfile.mkdtemp(prefix="fincat-gw-", dir=args.workdir))
    try:
        root = work / "store"
        create_s = create_metadata_catalog(str(root), args.n, args.batch)
        print(f"  created {args.n:,} series in {create_s:.1f} s", flush=True)
        env = dict(item.split("=", 1) for item in args.env)
        server, url = start_gateway(root, work / "server.log", env)
        try:
            ready = rss_mb(server.pid)
            result = page_through(url, args.page, server.pid)
            peak = rss_mb(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if result["series"] != args.n:
        raise RuntimeError(f"listed {result['series']:,} series, expected {args.n:,}")
    figures = {"n": args.n, "create_s": create_s, "rss_ready_mb": ready, "rss_peak_mb": peak}
    figures.update(result)
    print(
        f"  listed {result['series']:,} series in {result['pages']:,} pages, "
        f"{result['seconds']:.1f} s ({result['pages'] / result['seconds']:.0f} pages/s)\n"
        f"  server RSS: {ready:.0f} MiB when ready, peak {peak:.0f} MiB "
        f"(highest sampled after a page: {result['rss_sampled_peak_mb']:.0f} MiB)\n"
        f"  target: peak under 300 MiB at 10^6 series"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
