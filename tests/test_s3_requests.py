"""What each everyday operation costs in S3 requests, counted by the moto server.

The server logs every HTTP request it answers, so these counts are the real
traffic of the S3 backend, deterministic on any machine. The budgets: a
single-series append at most 4 requests (a small one costs 3: it is held in the
manifest), opening a catalog at most 3, a cached
read of one partition one GET per file it reads, and no everyday operation lists
a prefix (a listing's cost grows with the catalog).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import boto3
import pytest

from catalog_store import AsyncCatalog
from tests.conftest import new_bucket
from tests.s3server import LoopbackS3Server

pytestmark = pytest.mark.s3


class Meter:
    """Requests to one bucket since the last :meth:`take`."""

    def __init__(self, server: LoopbackS3Server, bucket: str) -> None:
        self.server = server
        self.bucket = bucket
        self.seen = 0

    def take(self) -> list[tuple[str, str, str]]:
        requests = self.server.requests(self.bucket)
        new, self.seen = requests[self.seen :], len(requests)
        return new


def kinds(requests: list[tuple[str, str, str]]) -> Counter[str]:
    """Requests by kind; a GET of the bucket itself is a listing."""
    out: Counter[str] = Counter()
    for method, path, query in requests:
        listing = "list-type" in query or (
            method == "GET" and path.strip("/") == path.split("/")[1]
        )
        out["LIST" if listing else method] += 1
    return out


def test_request_budgets_of_everyday_operations(s3_server: LoopbackS3Server) -> None:
    bucket = new_bucket(s3_server.endpoint)
    url = f"s3://{bucket}/catalog"
    options = {"endpoint_url": s3_server.endpoint, "key": "testing", "secret": "testing"}
    meter = Meter(s3_server, bucket)
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(400)]
    days = [d for d in days if d.weekday() < 5]

    async def main() -> dict[str, Counter[str]]:
        setup = await AsyncCatalog.open(url, options, create=True)
        for i in range(20):
            await setup.create({"id": f"S{i}", "frequency": "business_daily", "source": "fed"})
            await setup.write(f"S{i}", (days[:200], [float(v) for v in range(200)]))
        await setup.close()
        costs: dict[str, Counter[str]] = {}

        meter.take()
        catalog = await AsyncCatalog.open(url, options)
        costs["open"] = kinds(meter.take())

        await catalog.get("S3")  # warm: the manifest and the series' shard
        # The first look for a newer version: one HEAD past the manifest open read,
        # not a second one asking whether that manifest is still there.
        costs["first lookup"] = kinds(meter.take())
        await catalog.write("S3", ([days[200]], [1.0]))
        await catalog.committer.drain()
        meter.take()
        for n in range(201, 204):
            await catalog.write("S3", ([days[n]], [float(n)]))
            await catalog.committer.drain()  # the background hint write counts too
        costs["append x3"] = kinds(meter.take())

        await catalog.get("S5")  # metadata cached, the file not yet
        meter.take()
        table = await catalog.read("S5", start=days[10], end=days[60])
        costs["read, metadata cached"] = kinds(meter.take())
        assert table.num_rows == 51
        await catalog.read("S5", start=days[10], end=days[60])
        costs["read again"] = kinds(meter.take())

        await catalog.get("S7")
        costs["lookup"] = kinds(meter.take())
        catalog.reader.max_staleness = 0.05
        await asyncio.sleep(0.1)
        await asyncio.gather(*(catalog.get(f"S{i}") for i in range(8)))
        costs["8 lookups at once, the newest version stale"] = kinds(meter.take())
        catalog.reader.max_staleness = 3600.0
        await catalog.list(source="fed", limit=10)
        costs["listing page"] = kinds(meter.take())
        await catalog.collect_garbage(dry_run=True)
        gc = kinds(meter.take())
        assert gc["LIST"] > 0, f"the meter cannot see listings: {gc}"
        await catalog.close()
        return costs

    costs = asyncio.run(main())
    print({op: dict(c) for op, c in costs.items()})
    assert sum(costs["open"].values()) <= 3, costs["open"]
    assert sum(costs["append x3"].values()) <= 3 * 4, costs["append x3"]
    # A day's append is held in the manifest: its PUT and the hint's, and a HEAD
    # proving, after the write, that the version it built on is still in the store
    # (so gc under retention freed no name it could have taken).
    assert costs["append x3"] == {"PUT": 3 * 2, "HEAD": 3}, costs["append x3"]
    # One file per business-daily series: one GET, and none once it is cached.
    assert costs["read, metadata cached"]["GET"] == 1, costs["read, metadata cached"]
    assert costs["read again"]["GET"] == 0, costs["read again"]
    assert costs["first lookup"]["HEAD"] == 1, costs["first lookup"]
    # They share one look for a newer version (two HEADs at most: past the newest,
    # and whether it is still there), not one each.
    herd = costs["8 lookups at once, the newest version stale"]
    assert herd["HEAD"] <= 2, herd
    for op, counted in costs.items():
        assert counted["LIST"] == 0, f"{op} listed a prefix: {counted}"


def test_finding_the_newest_version_without_the_hint_costs_a_logarithm_of_the_versions(
    s3_server: LoopbackS3Server,
) -> None:
    """A store restored without its "latest" hint (operations.md leaves it out of
    backups), or a replica that only reads, found the newest version with a HEAD per
    version, on every open: 200 versions cost 208 requests."""
    bucket = new_bucket(s3_server.endpoint)
    url = f"s3://{bucket}/catalog"
    options = {"endpoint_url": s3_server.endpoint, "key": "testing", "secret": "testing"}
    meter = Meter(s3_server, bucket)

    async def main() -> tuple[int, int, Counter[str]]:
        setup = await AsyncCatalog.open(url, options, create=True)
        await setup.create({"id": "S", "frequency": "annual"})
        for year in range(2000, 2199):
            await setup.write("S", ([dt.date(year, 1, 1)], [float(year)]))
        newest = await setup.version()
        await setup.close()
        boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1").delete_object(
            Bucket=bucket, Key="catalog/_manifests/_latest"
        )
        meter.take()
        catalog = await AsyncCatalog.open(url, options)
        found = await catalog.version()
        cost = kinds(meter.take())
        await catalog.close()
        return newest, found, cost

    newest, found, cost = asyncio.run(main())
    print({"open and find the newest of 200 versions, without the hint": dict(cost)})
    assert found == newest == 200
    # The marker, the missing hint, the oldest manifest, a few steps of one, a
    # gallop and a bisection (~2 log2 n heads), and the newest manifest read.
    assert sum(cost.values()) <= 30, cost
    assert cost["LIST"] == 0, cost
