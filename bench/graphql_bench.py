"""GraphQL beside REST under concurrent load: one series' metadata, one year of observations.

A ``fincat serve`` process (one worker, rate limiting off, no keys) serves a seeded
local catalog on loopback; a load generator in a second process keeps
``--concurrency`` requests in flight for ``--seconds`` per scenario, after a
second of warm-up, and reports requests per second and latency percentiles. Each
GraphQL scenario is measured against the REST call that returns the same data, in
``--rounds`` alternating slices, so that other work on the machine weighs on both
alike; the ratio of their throughputs is printed, overall and per round (the
target: GraphQL at least 50 % of REST). Nothing is asserted.

    .venv/bin/python bench/graphql_bench.py [--seconds 10] [--rounds 5] [--concurrency 16]
                                            [--no-result-cache]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pyarrow as pa
from common import (
    code_version,
    date_grid,
    fmt_ms,
    machine_load,
    render_table,
    series_id,
    series_metadata,
    series_values,
    start_gateway,
    summary,
)

YEARS = 10
YEAR_START, YEAR_END = "2024-01-01", "2024-12-31"
GQL_SERIES = """query($id: String!) { series(id: $id) {
    id title description source frequency units seasonalAdjustment tags
    externalIds { provider id } attributes partitioning createdAt updatedAt version
    firstDate lastDate observationCount } }"""
GQL_YEAR = (
    "query($id: String!) { series(id: $id) { "
    f'observations(start: "{YEAR_START}", end: "{YEAR_END}") {{ dates values }} }} }}'
)
#: Each GraphQL scenario asks for what its REST twin returns.
PAIRS = (("rest_series", "graphql_series"), ("rest_year", "graphql_year"))


# -- the load generator (second process) ------------------------------------------------


def request_for(scenario: str, ident: str) -> tuple[str, str, dict[str, Any] | None]:
    if scenario == "rest_series":
        return "GET", f"/v1/series/{ident}", None
    if scenario == "rest_year":
        return "GET", f"/v1/series/{ident}/observations?start={YEAR_START}&end={YEAR_END}", None
    query = GQL_SERIES if scenario == "graphql_series" else GQL_YEAR
    return "POST", "/graphql", {"query": query, "variables": {"id": ident}}


def check(scenario: str, status: int, body: Any) -> bool:
    if status != 200:
        return False
    if scenario.startswith("graphql"):
        return "errors" not in body and body["data"]["series"] is not None
    return isinstance(body, dict)


async def measure(
    session: aiohttp.ClientSession,
    scenario: str,
    ids: list[str],
    seconds: float,
    concurrency: int,
    rng: random.Random,
) -> tuple[list[float], int, float]:
    """``concurrency`` requests in flight for ``seconds``: latencies, failures, wall time."""
    latencies: list[float] = []
    failures = 0

    async def worker(until: float) -> None:
        nonlocal failures
        while time.perf_counter() < until:
            method, path, payload = request_for(scenario, rng.choice(ids))
            started = time.perf_counter()
            async with session.request(method, path, json=payload) as response:
                body = await response.json(content_type=None)
                status = response.status
            latencies.append(time.perf_counter() - started)
            failures += 0 if check(scenario, status, body) else 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(began + seconds) for _ in range(concurrency)))
    return latencies, failures, time.perf_counter() - began


async def load(
    url: str, pair: tuple[str, str], ids: list[str], seconds: float, concurrency: int, rounds: int
) -> dict[str, Any]:
    """Alternate the two scenarios of ``pair`` for ``rounds`` rounds, ``seconds`` each in
    all, after a second of warm-up each: whatever else the machine does then weighs on
    both alike. aiohttp rather than httpx: it costs the load generator less per request,
    so more of the CPU goes to the server being measured. Every body is decoded."""
    rng = random.Random(42)
    connector = aiohttp.TCPConnector(limit=concurrency)
    figures: dict[str, dict[str, Any]] = {
        name: {"latencies": [], "failures": 0, "seconds": 0.0, "round_rps": []} for name in pair
    }
    async with aiohttp.ClientSession(base_url=url, connector=connector) as session:
        for name in pair:
            await measure(session, name, ids, 1.0, concurrency, rng)
        for _ in range(rounds):
            for name in pair:
                latencies, failures, wall = await measure(
                    session, name, ids, seconds / rounds, concurrency, rng
                )
                entry = figures[name]
                entry["latencies"] += latencies
                entry["failures"] += failures
                entry["seconds"] += wall
                entry["round_rps"].append(len(latencies) / wall)
    out: dict[str, Any] = {}
    for name, entry in figures.items():
        latencies = entry.pop("latencies")
        out[name] = {
            "scenario": name,
            "requests": len(latencies),
            "rps": len(latencies) / entry["seconds"],
            **entry,
            **summary(latencies),
        }
    return out


def load_main(argv: Sequence[str]) -> int:
    url, rest, graphql, seconds, concurrency, n, rounds = argv
    ids = [series_id(i) for i in range(int(n))]
    result = asyncio.run(
        load(url, (rest, graphql), ids, float(seconds), int(concurrency), int(rounds))
    )
    print(json.dumps(result))
    return 0


# -- the driver -------------------------------------------------------------------------


def seed(root: Path, n: int, seed_value: int) -> None:
    from catalog_store import Catalog

    days = date_grid(YEARS, "business_daily")
    with Catalog.open(str(root), create=True) as cat, cat.batch("seed") as batch:
        for index in range(n):
            meta = series_metadata(index, "business_daily")
            batch.create(meta)
            values = series_values(seed_value, index, len(days))
            batch.write(meta["id"], pa.table({"date": pa.array(days), "value": values}))


def start_server(
    root: Path, log: Path, result_cache: bool = True
) -> tuple[subprocess.Popen[bytes], str]:
    env = {} if result_cache else {"FINCAT_GRAPHQL_RESULT_CACHE_BYTES": "0"}
    return start_gateway(root, log, env)


def run_pair(
    url: str, pair: tuple[str, str], seconds: float, concurrency: int, n: int, rounds: int
) -> dict[str, Any]:
    """A REST scenario and its GraphQL twin in a fresh load-generator process."""
    command = [sys.executable, __file__, "--load", url, *pair]
    command += [str(seconds), str(concurrency), str(n), str(rounds)]
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=2 * seconds + 120
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--load"]:
        return load_main(args_list[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scenario")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--n", type=int, default=50, help="series (business daily, 10 years)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternations of REST and GraphQL per pair"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--no-result-cache",
        action="store_true",
        help="turn the GraphQL result cache off: every GraphQL request runs its resolvers",
    )
    parser.add_argument("--workdir", help="parent of the temporary directory (default: TMPDIR)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(args_list)

    work = Path(tempfile.mkdtemp(prefix="graphql-bench-", dir=args.workdir))
    server: subprocess.Popen[bytes] | None = None
    try:
        root = work / "store"
        seed(root, args.n, args.seed)
        server, url = start_server(root, work / "server.log", not args.no_result_cache)
        print(f"fincat {code_version()}; {machine_load()}")
        print(
            f"{args.n} business-daily series x {YEARS} years; one server worker; "
            f"{args.concurrency} requests in flight; {args.seconds:.0f} s per scenario in "
            f"{args.rounds} rounds alternating with its twin; GraphQL result cache "
            f"{'off' if args.no_result_cache else 'on'}\n"
        )
        results: dict[str, Any] = {}
        for pair in PAIRS:
            results.update(run_pair(url, pair, args.seconds, args.concurrency, args.n, args.rounds))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        [
            name,
            str(r["requests"]),
            str(r["failures"]),
            f"{r['rps']:.0f}",
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p99_ms"]),
        ]
        for name, r in results.items()
    ]
    print(render_table(["scenario", "requests", "failed", "req/s", "p50 ms", "p99 ms"], rows))
    print()
    for what in ("series", "year"):
        rest, graphql = results[f"rest_{what}"], results[f"graphql_{what}"]
        ratio = graphql["rps"] / rest["rps"] if rest["rps"] else float("nan")
        rounds = sorted(g / r for g, r in zip(graphql["round_rps"], rest["round_rps"], strict=True))
        print(
            f"{what}: GraphQL throughput is {ratio:.0%} of REST (target >= 50%); "
            f"per round {', '.join(f'{x:.0%}' for x in rounds)}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
