"""GraphQL's per-series history over versions that cannot be read: expired by
retention, or lost to damage and passed over by repair."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq

from catalog_store import CatalogOptions
from catalog_store.keys import manifest_key, series_dir
from tests.conftest import StoreTarget
from tests.gateway.conftest import Server, seed, start_server

HISTORY = '{ series(id: "UNRATE") { history(first: 50) { version action } } }'


def graphql(server: Server, query: str) -> dict:
    response = httpx.post(f"{server.url}/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    return response.json()


def test_history_stops_at_the_oldest_version_kept(tmp_path: Path) -> None:
    target = StoreTarget("local", str(tmp_path / "store"))
    seed(target)
    with target.open(create=False) as cat:
        cat.write("UNRATE", ([dt.date(2024, 7, 1)], [4.2]))
        kept = cat.version()
        report = cat.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))
    assert report.oldest_version == kept
    server = start_server(target, tmp_path)
    try:
        body = graphql(server, HISTORY)
        assert "errors" not in body, body["errors"]
        assert body["data"]["series"]["history"] == [{"version": kept, "action": "append"}]
    finally:
        server.stop()


def test_history_passes_over_a_version_repair_left_behind(tmp_path: Path) -> None:
    target = StoreTarget("local", str(tmp_path / "store"))
    seed(target)
    root = tmp_path / "store"
    with target.open(create=False, options=CatalogOptions(inline_rows=0)) as cat:
        before = [change.series.version for change in cat.series_history("UNRATE")]
        cat.write("UNRATE", ([dt.date(2024, 7, 1)], [4.2]))  # its file is damaged below
        cat.update("GDP", {"title": "GDP, retitled"})  # the newest: its manifest is damaged
        newest = cat.version()
    files = (root / series_dir("UNRATE")).rglob("*.parquet")
    data = next(p for p in files if dt.date(2024, 7, 1) in pq.read_table(p)["date"].to_pylist())
    data.write_bytes(data.read_bytes()[:-1])
    manifest = root / manifest_key(newest)
    manifest.write_bytes(manifest.read_bytes()[:-10])
    with target.open(create=False) as cat:
        report = cat.repair()
        assert report.lost_versions == [newest - 1, newest]
        repaired = [change.series.version for change in cat.series_history("UNRATE")]
        paged, last = [], None
        while page := cat.series_history("UNRATE", before=last, limit=1):
            paged.append(last := page[0].series.version)
        assert paged == repaired
        # From the lost version's own state on, the history is the restored one's.
        assert [c.series.version for c in cat.series_history("UNRATE", before=newest - 1)] == (
            before
        )
    assert repaired == [newest + 1, *before]
    server = start_server(target, tmp_path)
    try:
        body = graphql(server, HISTORY)
        assert "errors" not in body, body["errors"]
        history = body["data"]["series"]["history"]
        assert [h["version"] for h in history] == repaired
        assert history[0]["action"] is None  # the repair's own change is "restore"
    finally:
        server.stop()


def test_a_cached_history_does_not_outlive_the_gc_that_expires_it(tmp_path: Path) -> None:
    target = StoreTarget("local", str(tmp_path / "store"))
    seed(target)
    server = start_server(target, tmp_path)
    versions = "{ versions(first: 50) { edges { node { version } } } }"
    try:
        before = graphql(server, HISTORY)["data"]["series"]["history"]
        listed = graphql(server, versions)["data"]["versions"]["edges"]
        assert len(before) == 3 and len(listed) > 3
        with target.open(create=False) as cat:
            kept = cat.version()
            cat.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))
        after = graphql(server, HISTORY)["data"]["series"]["history"]
        assert [h["version"] for h in after] == [kept]
        edges = graphql(server, versions)["data"]["versions"]["edges"]
        assert [e["node"]["version"] for e in edges] == [kept]
    finally:
        server.stop()


def test_a_cached_read_of_a_past_version_does_not_outlive_the_gc_that_expires_it(
    tmp_path: Path,
) -> None:
    """gc makes no new version: a result kept under the latest version alone went on
    answering reads of a version gc had expired, and the same query with one more
    space was NOT_FOUND. The oldest version kept is in the key too; it is read at
    most once a second, as every read of an old version checks it."""
    target = StoreTarget("local", str(tmp_path / "store"))
    seed(target)
    with target.open(create=False) as cat:
        made = cat.series_history("UNRATE")[-1].series.version
    server = start_server(target, tmp_path)
    past = (
        f'{{ series(id: "UNRATE", asOf: {made}) {{ id }} version(number: {made}) {{ version }} }}'
    )
    try:
        cached = graphql(server, past)
        assert cached["data"] == {"series": {"id": "UNRATE"}, "version": {"version": made}}
        assert graphql(server, past) == cached  # from the cache now
        with target.open(create=False) as cat:
            cat.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))
        deadline = time.monotonic() + 10
        while (after := graphql(server, past)) == cached and time.monotonic() < deadline:
            time.sleep(0.2)
        codes = {e["extensions"]["code"] for e in after["errors"]}
        assert codes == {"NOT_FOUND"}, after
        assert after["data"] == {"series": None, "version": None}
    finally:
        server.stop()
