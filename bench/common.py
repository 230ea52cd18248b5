"""Shared pieces of the benchmark scripts: seeded data, percentiles, disk usage, tables.

Imported by sibling scripts run as ``python bench/<script>.py`` (the script's own
directory is then first on ``sys.path``).
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Every generated series ends on this date; the first append lands on the next business day.
LAST_DATE = dt.date(2024, 12, 31)
SOURCES = tuple(f"src{k}" for k in range(5))


def series_id(index: int, width: int = 5) -> str:
    """``SER00042`` for index 42."""
    return f"SER{index:0{width}d}"


def id_width(n: int) -> int:
    return max(5, len(str(max(n - 1, 0))))


def date_grid(years: int, frequency: str) -> np.ndarray[Any, np.dtype[np.datetime64]]:
    """Dates of ``years`` whole calendar years ending on LAST_DATE (``datetime64[D]``).

    ``business_daily`` keeps Monday to Friday (no holiday calendar); ``daily`` keeps
    every calendar day.
    """
    first = np.datetime64(f"{LAST_DATE.year - years + 1}-01-01", "D")
    days = np.arange(first, np.datetime64(LAST_DATE, "D") + 1)
    if frequency == "business_daily":
        days = days[np.is_busday(days)]
    elif frequency != "daily":
        raise ValueError(f"unsupported frequency {frequency!r}")
    return days


def series_values(seed: int, index: int, rows: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A seeded random walk around 100, rounded to cents like a price series."""
    rng = np.random.default_rng([seed, index])
    walk = 100.0 + np.cumsum(rng.normal(0.0, 1.0, rows))
    values: np.ndarray[Any, np.dtype[np.float64]] = np.round(walk, 2)
    return values


def series_metadata(
    index: int, frequency: str, width: int = 5, partitioning: str | None = None
) -> dict[str, Any]:
    """The metadata of series ``index``: source ``src{index % 5}``, two tags."""
    meta: dict[str, Any] = {
        "id": series_id(index, width),
        "title": f"Synthetic price index {index}",
        "source": SOURCES[index % len(SOURCES)],
        "frequency": frequency,
        "units": "USD",
        "tags": [f"sector{index % 7}", f"region{index % 3}"],
    }
    if partitioning is not None:
        meta["partitioning"] = partitioning
    return meta


def next_business_day(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def to_date(value: np.datetime64) -> dt.date:
    result: dt.date = value.astype("datetime64[D]").item()
    return result


@dataclass
class Timer:
    """Per-call latencies in seconds."""

    samples: list[float]

    @classmethod
    def new(cls) -> Timer:
        return cls([])

    def time(self, func: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = func()
        self.samples.append(time.perf_counter() - start)
        return result


def summary(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds, plus the count, mean and maximum."""
    if not samples:
        nan = float("nan")
        return {"n": 0, "p50_ms": nan, "p99_ms": nan, "mean_ms": nan, "max_ms": nan}
    arr = np.asarray(samples) * 1e3
    return {
        "n": len(samples),
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
        "max_ms": float(arr.max()),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine_load() -> str:
    """The 1-minute load average against the CPU count: other work skews latencies."""
    one, _five, _fifteen = os.getloadavg()
    return f"load average {one:.2f} on {os.cpu_count()} CPUs"


def durability_floor(directory: str | None = None, samples: int = 50) -> str:
    """What durability costs on this disk (p50 of each step), next to a log's commit.

    A fincat commit on local disk creates its manifest as a new file: create, write
    and fdatasync a temp file, link it to the manifest's name, fsync the directory.
    A single-writer database appends to a log it keeps open and fdatasyncs it. The
    figures show how much of each is the disk, not the code above it; the last,
    fincat's own steps with its unnamed file made ahead (Linux), is the floor under
    a fincat append on this disk.
    """
    import tempfile

    def p50_ms(values: list[float]) -> float:
        return sorted(values)[len(values) // 2] * 1e3

    def fsync_dir(path: str) -> None:
        dfd = os.open(path, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)

    payload = b"x" * 16384
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        created, files, dirs, logs, unnamed = [], [], [], [], []
        log = os.open(os.path.join(tmp, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for i in range(samples):
                started = time.perf_counter()
                fd = os.open(os.path.join(tmp, f"c{i}"), os.O_WRONLY | os.O_CREAT, 0o644)
                os.write(fd, payload)
                os.close(fd)
                created.append(time.perf_counter() - started)
                started = time.perf_counter()
                fd = os.open(os.path.join(tmp, f"f{i}"), os.O_WRONLY | os.O_CREAT, 0o644)
                os.write(fd, payload)
                os.fdatasync(fd)
                os.close(fd)
                files.append(time.perf_counter() - started)
                started = time.perf_counter()
                fsync_dir(tmp)
                dirs.append(time.perf_counter() - started)
                started = time.perf_counter()
                os.write(log, payload[:256])
                os.fdatasync(log)
                logs.append(time.perf_counter() - started)
                if hasattr(os, "O_TMPFILE"):
                    unnamed.append(_unnamed_commit(tmp, f"m{i}", payload[:8192]))
        finally:
            os.close(log)
    return (
        f"disk (p50): a new 16 KiB file {p50_ms(created):.2f} ms unflushed, "
        f"{p50_ms(files):.2f} ms with fdatasync; a directory fsync {p50_ms(dirs):.2f} ms; "
        f"256 bytes appended to an open log with fdatasync {p50_ms(logs):.2f} ms"
        + (
            f"; 8 KiB into an unnamed file made ahead, fdatasync, link, directory fsync "
            f"(a local commit's system calls) {p50_ms(unnamed):.2f} ms"
            if unnamed
            else ""
        )
    )


def _unnamed_commit(directory: str, name: str, payload: bytes) -> float:
    """Seconds of a local manifest commit's system calls: the unnamed file is made
    before the clock starts, as fincat's refill thread makes it ahead."""
    fd = os.open(directory, os.O_WRONLY | os.O_TMPFILE, 0o644)
    started = time.perf_counter()
    os.write(fd, payload)
    os.fdatasync(fd)
    dfd = os.open(directory, os.O_RDONLY)
    os.link(f"/proc/self/fd/{fd}", name, src_dir_fd=dfd, dst_dir_fd=dfd)
    os.fsync(dfd)
    os.close(dfd)
    os.close(fd)
    return time.perf_counter() - started


def code_version() -> str:
    """The commit of the code under test, marked when catalog_store has local changes."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "catalog_store"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} + local changes in catalog_store" if dirty else head


def disk_usage(paths: Iterable[Path]) -> dict[str, int]:
    """Apparent bytes, allocated bytes and file count under each path (files or trees)."""
    total = allocated = files = 0
    for path in paths:
        if path.is_file():
            entries: Iterable[Path] = [path]
        elif path.is_dir():
            entries = (Path(root) / name for root, _dirs, names in os.walk(path) for name in names)
        else:
            continue
        for entry in entries:
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            total += st.st_size
            allocated += st.st_blocks * 512
            files += 1
    return {"bytes": total, "allocated_bytes": allocated, "files": files}


def fmt_ms(value: float | None) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain fixed-width table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for k, row in enumerate([header, *rows]):
        cells = [
            str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_gateway(
    root: Path, log: Path, env: dict[str, str] | None = None, args: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    """``fincat serve`` on a free loopback port (one worker, no rate limit, no keys),
    once it answers ready; its output goes to ``log``."""
    import httpx

    port = free_port()
    command = [
        sys.executable, "-m", "gateway.cli", "--root", str(root), "serve",
        "--host", "127.0.0.1", "--port", str(port), "--rate-limit", "0",
        "--log-level", "warning", *args,
    ]  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FINCAT_")}
    environment.update(env or {})
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not become ready:\n{log.read_text()}")


def create_metadata_catalog(root: str, n: int, batch: int, **options: Any) -> float:
    """Create ``n`` business-daily series, metadata only, in batches of ``batch`` per
    commit (ids in order, as an import would); return the seconds it took."""
    from catalog_store import Catalog, CatalogOptions

    width = max(5, len(str(n - 1)))
    cat = Catalog.open(root, create=True, options=CatalogOptions(**options))
    started = time.perf_counter()
    for first in range(0, n, batch):
        with cat.batch(f"create {first}..") as b:
            for i in range(first, min(first + batch, n)):
                b.create(series_metadata(i, "business_daily", width))
    elapsed = time.perf_counter() - started
    cat.close()
    return elapsed
