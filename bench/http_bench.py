"""HTTP throughput and latency of the gateway, beside a constant Litestar route.

Starts, on loopback, a ``fincat serve`` over a fresh local catalog and a plain
Litestar app whose one route returns a constant JSON body, both under the same
uvicorn setup (one worker, same flags). A load generator in a second process keeps
``--concurrency`` keep-alive connections busy for ``--duration`` seconds per
scenario and reports requests per second and p50/p99 latency:

- ``constant``: the plain route (what Litestar and uvicorn cost by themselves);
- ``series``: ``GET /v1/series/{id}`` with an API key (auth, rate-limit
  bookkeeping, metrics, catalog lookup);
- ``observations``: one year of a business-daily series as columnar JSON.

The ratio ``series / constant`` is the share of the framework's throughput the
gateway keeps (target: at least 60 %). Run from the repository root::

    .venv/bin/python bench/http_bench.py [--duration 10] [--concurrency 16]

The load generator speaks HTTP/1.1 over raw asyncio streams, so that on a small
machine the client costs less than the servers it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
from common import code_version, machine_load, render_table, summary
from litestar import Litestar, get

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "fck_bench-reader"
SERIES = "BENCH"
YEARS = 20
CONSTANT_BODY = {
    "id": "BENCH",
    "frequency": "business_daily",
    "title": "A constant body of about the size of a series",
    "description": "",
    "source": "bench",
    "units": "USD",
    "seasonal_adjustment": "",
    "tags": ["bench", "synthetic"],
    "external_ids": {},
    "attributes": {},
    "partitioning": None,
    "created_at": "2024-01-01T00:00:00Z",
    "updated_at": "2024-01-01T00:00:00Z",
    "version": 2,
    "first_date": "2005-01-03",
    "last_date": "2024-12-31",
    "observation_count": 5218,
}


def constant_app() -> Litestar:
    """The reference: one route returning a constant JSON body (a uvicorn factory)."""

    @get("/constant", sync_to_thread=False)
    def constant() -> dict[str, Any]:
        return CONSTANT_BODY

    return Litestar(route_handlers=[constant], openapi_config=None)


# -- load generation (runs in its own process) -------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _connection(
    host: str, port: int, request: bytes, until: float, warm_until: float
) -> tuple[list[float], int]:
    reader, writer = await asyncio.open_connection(host, port)
    latencies: list[float] = []
    errors = 0
    try:
        while True:
            started = time.perf_counter()
            if started >= until:
                break
            writer.write(request)
            status = await _read_response(reader)
            elapsed = time.perf_counter() - started
            if started >= warm_until:
                latencies.append(elapsed)
                errors += status != 200
    finally:
        writer.close()
    return latencies, errors


async def _load(
    url: str, concurrency: int, duration: float, warmup: float, token: str
) -> dict[str, Any]:
    parsed = httpx.URL(url)
    target = parsed.raw_path.decode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {parsed.host}:{parsed.port}\r\n"
        f"Accept: application/json\r\n{auth}\r\n"
    ).encode()
    start = time.perf_counter()
    warm_until = start + warmup
    until = warm_until + duration
    results = await asyncio.gather(
        *(
            _connection(parsed.host, parsed.port or 80, request, until, warm_until)
            for _ in range(concurrency)
        )
    )
    latencies = [x for lat, _ in results for x in lat]
    errors = sum(e for _, e in results)
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": duration,
        "latencies": latencies,
    }


def load_main(argv: list[str]) -> None:
    """``--load URL CONCURRENCY DURATION WARMUP TOKEN``: print one JSON result line."""
    url, concurrency, duration, warmup, token = argv
    result = asyncio.run(_load(url, int(concurrency), float(duration), float(warmup), token))
    print(json.dumps(result))


# -- orchestration ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready:\n{log.read_text()}")


def seed(store: Path) -> str:
    """A business-daily series of YEARS years; returns the one-year range to read."""
    from catalog_store import Catalog

    days = np.arange(np.datetime64(f"{2025 - YEARS}-01-01"), np.datetime64("2025-01-01"))
    days = days[np.is_busday(days)]
    values = np.round(100 + np.cumsum(np.random.default_rng(42).normal(0, 1, len(days))), 2)
    with Catalog.open(str(store), create=True) as catalog:
        catalog.create(id=SERIES, frequency="business_daily", title="Bench", source="bench")
        catalog.write(SERIES, pa.table({"date": pa.array(days), "value": values}))
    return "start=2024-01-01&end=2024-12-31"


def start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)


def run_scenario(url: str, args: argparse.Namespace, token: str) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--load",
        url,
        str(args.concurrency),
        str(args.duration),
        str(args.warmup),
        token,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not counted")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fincat-http-", dir=args.workdir))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        year = seed(work / "store")
        keys = work / "keys.json"
        from gateway.auth import hash_token

        entry = {"name": "bench", "sha256": hash_token(TOKEN), "scopes": ["read"]}
        keys.write_text(json.dumps({"keys": [entry]}))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "bench")}
        gw_port, const_port = free_port(), free_port()
        gateway = [
            sys.executable, "-m", "gateway.cli", "--root", str(work / "store"), "serve",
            "--host", "127.0.0.1", "--port", str(gw_port), "--api-keys", str(keys),
            "--rate-limit", "0", "--log-level", "warning",
        ]  # fmt: skip
        constant = [
            sys.executable, "-m", "uvicorn", "--factory", "http_bench:constant_app",
            "--host", "127.0.0.1", "--port", str(const_port), "--log-level", "warning",
            "--no-access-log",
        ]  # fmt: skip
        processes.append(start(gateway, work / "gateway.log", env))
        processes.append(start(constant, work / "constant.log", env))
        gw, const = f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{const_port}"
        wait_ready(f"{gw}/health/ready", processes[0], work / "gateway.log")
        wait_ready(f"{const}/constant", processes[1], work / "constant.log")

        scenarios = [
            ("constant", f"{const}/constant", ""),
            ("series", f"{gw}/v1/series/{SERIES}", TOKEN),
            ("observations (1 year)", f"{gw}/v1/series/{SERIES}/observations?{year}", TOKEN),
        ]
        print(
            f"fincat HTTP bench: concurrency {args.concurrency}, {args.duration:.0f} s per "
            f"scenario after {args.warmup:.0f} s warm-up; uvicorn, 1 worker each; "
            f"{machine_load()}; code {code_version()}; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
        )
        rows, rates = [], {}
        for name, url, token in scenarios:
            result = run_scenario(url, args, token)
            stats = summary(result["latencies"])
            rate = result["requests"] / result["seconds"]
            rates[name] = rate
            rows.append(
                [
                    name,
                    str(result["requests"]),
                    f"{rate:.0f}",
                    f"{stats['p50_ms']:.2f}",
                    f"{stats['p99_ms']:.2f}",
                    str(result["errors"]),
                ]
            )
        print(render_table(["scenario", "requests", "req/s", "p50 ms", "p99 ms", "non-200"], rows))
        ratio = rates["series"] / rates["constant"]
        print(f"series GET / constant route throughput: {ratio:.0%} (target >= 60%)")
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        load_main(sys.argv[2:])
    else:
        main()
