"""Where fincat's read_full and append spend their time, on local disk.

Loads N business-daily series (20 years), then for each path runs it once per
series through ``AsyncCatalog`` on this thread (so the profiler sees the engine's
own coroutines) and prints: wall time per call, store calls per call with their
latency, and a profile (pyinstrument if installed, else cProfile)::

    .venv/bin/python bench/profile_fincat.py --n 200
    .venv/bin/python bench/profile_fincat.py --paths append --profiler cprofile

Paths: ``read_full`` (freshly opened catalog, cold cache), ``read_full_warm`` (the
same reads again), ``append`` (one new business day, one commit per series),
``get`` (metadata lookup).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from common import (
    LAST_DATE,
    code_version,
    date_grid,
    id_width,
    machine_load,
    next_business_day,
    series_id,
    series_metadata,
    series_values,
)

from catalog_store import AsyncCatalog, Catalog, CatalogOptions

PATHS = ("read_full", "read_full_warm", "append", "get")
STORE_METHODS = ("get", "head", "put", "put_if_absent", "list", "delete")


def load(url: Path, n: int, seed: int) -> list[str]:
    grid = date_grid(20, "business_daily")
    width = id_width(n)
    ids = [series_id(i, width) for i in range(n)]
    with Catalog.open(url, create=True) as cat:
        for first in range(0, n, 50):
            with cat.batch() as batch:
                for i in range(first, min(first + 50, n)):
                    batch.create(series_metadata(i, "business_daily", width))
                    batch.write(ids[i], (grid, series_values(seed, i, len(grid))))
    return ids


class StoreCalls:
    """A store listener (``CatalogOptions.store_listener``) counting and timing calls
    while ``active``; ``exists`` shows up as ``head``."""

    def __init__(self) -> None:
        self.active = False
        self.calls: dict[str, list[float]] = defaultdict(list)

    def __call__(self, operation: str, seconds: float, ok: bool) -> None:
        if self.active:
            self.calls[operation].append(seconds)


class Profiled:
    """pyinstrument (async-aware: time spent awaiting is charged to the awaiter) or cProfile."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._pyinstrument: Any = None
        self._cprofile: cProfile.Profile | None = None

    def start(self) -> None:
        if self.kind == "none":
            return
        if self.kind == "pyinstrument":
            from pyinstrument import Profiler

            self._pyinstrument = Profiler(interval=0.0002, async_mode="enabled")
            self._pyinstrument.start()
        else:
            self._cprofile = cProfile.Profile()
            self._cprofile.enable()

    def stop(self) -> str:
        if self.kind == "none":
            return ""
        if self._pyinstrument is not None:
            self._pyinstrument.stop()
            text: str = self._pyinstrument.output_text(unicode=False, color=False, show_all=False)
            return text
        assert self._cprofile is not None
        self._cprofile.disable()
        out = io.StringIO()
        stats = pstats.Stats(self._cprofile, stream=out)
        stats.sort_stats("cumulative").print_stats("catalog_store", 30)
        stats.sort_stats("tottime").print_stats(20)
        return out.getvalue()


async def run_path(
    url: Path, ids: list[str], path: str, profiler_kind: str
) -> tuple[float, dict[str, list[float]], str]:
    recorder = StoreCalls()
    catalog = await AsyncCatalog.open(url, options=CatalogOptions(store_listener=recorder))
    day = next_business_day(LAST_DATE)
    try:
        call: Callable[[str], Awaitable[Any]]
        if path == "read_full_warm":
            for sid in ids:  # fill the cache first
                await catalog.read(sid)
        if path in ("read_full", "read_full_warm"):
            call = catalog.read
        elif path == "append":

            async def call(sid: str) -> Any:
                return await catalog.write(sid, ([day], [100.0]))

        else:
            call = catalog.get
        await catalog.version()  # let the first probe's thread pool start outside the figures
        recorder.active = True
        profiler = Profiled(profiler_kind)
        profiler.start()
        started = time.perf_counter()
        for sid in ids:
            await call(sid)
        wall = time.perf_counter() - started
        text = profiler.stop()
        await catalog.committer.drain()
        recorder.active = False
        return wall, recorder.calls, text
    finally:
        await catalog.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--profiler", choices=("pyinstrument", "cprofile"))
    parser.add_argument("--workdir", help="parent of the temporary directory (default: TMPDIR)")
    parser.add_argument("--no-profile", action="store_true", help="only counts and timings")
    args = parser.parse_args(argv)
    kind = "none" if args.no_profile else args.profiler
    if kind is None:
        try:
            import pyinstrument  # noqa: F401

            kind = "pyinstrument"
        except ImportError:
            kind = "cprofile"
    print(f"code {code_version()}; {machine_load()}")
    root = Path(tempfile.mkdtemp(prefix="fincat-profile-", dir=args.workdir))
    try:
        url = root / "catalog"
        ids = load(url, args.n, args.seed)
        for path in [p for p in args.paths.split(",") if p]:
            if path not in PATHS:
                print(f"unknown path {path!r}", file=sys.stderr)
                return 2
            wall, calls, text = asyncio.run(run_path(url, ids, path, kind))
            print(f"== {path}: {len(ids)} calls, {wall / len(ids) * 1e3:.2f} ms per call")
            for name in STORE_METHODS:
                samples = calls.get(name, [])
                if samples:
                    print(
                        f"   store.{name}: {len(samples) / len(ids):.1f} per call, "
                        f"{sum(samples) / len(samples) * 1e3:.3f} ms each "
                        f"(sum {sum(samples) / wall * 100:.0f}% of wall time; calls may overlap)"
                    )
            if text:
                print(text)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
