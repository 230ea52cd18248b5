"""Health checks, Prometheus metrics, the OpenAPI document and hostile paths."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from litestar.testing import TestClient

from catalog_store import keys
from catalog_store.status import LATEST, VerifyStatus, read_verify_outcomes, read_verify_status
from catalog_store.storage import open_store
from gateway.app import create_app
from tests.conftest import StoreTarget, new_bucket
from tests.gateway.conftest import Client, client_for, problem, seed, settings_for
from tests.s3server import LoopbackS3Server


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def test_health(client: Client) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready").json()
    assert ready["status"] == "ready"
    assert ready["version"] == client.get("/v1/versions?limit=1").json()["items"][0]["version"]


def test_not_ready_when_the_store_stops_answering() -> None:
    server = LoopbackS3Server().start()
    try:
        bucket = new_bucket(server.endpoint)
        fail_fast = {"retries": {"max_attempts": 1}, "connect_timeout": 1}
        options = {"endpoint_url": server.endpoint, "config_kwargs": fail_fast}
        target = StoreTarget("s3", f"s3://{bucket}/catalog", options)
        seed(target)
        with TestClient(create_app(settings_for(target))) as client:
            assert client.get("/health/ready").status_code == 200
            server.stop()
            body = problem(client.get("/health/ready"), 503)
            assert body["type"].endswith("not-ready")
            assert client.get("/health/live").status_code == 200
            unavailable = problem(client.get("/v1/series/GDP?as_of=2"), 503)
            assert unavailable["type"].endswith("storage-unavailable")
            assert "Retry-After" in client.get("/v1/series/GDP?as_of=2").headers
    finally:
        with contextlib.suppress(Exception):
            server.stop()


def test_a_write_the_store_went_away_under_names_no_storage_internals() -> None:
    """The commit's outcome is unknown: the client is told which commit and versions,
    not the storage error behind it, which named the endpoint, bucket and keys."""
    server = LoopbackS3Server().start()
    try:
        bucket = new_bucket(server.endpoint)
        target = StoreTarget("s3", f"s3://{bucket}/catalog", {"endpoint_url": server.endpoint})
        seed(target)
        settings = settings_for(target, commit_timeout=1.0, store_timeout=60.0)
        with TestClient(create_app(settings)) as client:
            assert client.get("/health/ready").status_code == 200
            server.stop()
            body = problem(client.post("/v1/series", json={"id": "S1", "frequency": "daily"}), 503)
            for internal in ("127.0.0.1", bucket, "_manifests", "Endpoint"):
                assert internal not in body["detail"], body
            if body["type"].endswith("commit-state-unknown"):
                assert body["detail"].startswith("commit "), body
    finally:
        with contextlib.suppress(Exception):
            server.stop()


def test_not_ready_when_the_store_is_gone(local_target: StoreTarget) -> None:
    store = Path(local_target.url)
    health = {"query": "{ health { status } }"}
    with client_for(local_target, cache_ttl=0.0) as client:
        assert client.get("/v1/series/GDP").status_code == 200  # its objects are cached now
        assert client.get("/health/ready").status_code == 200
        store.rename(store.with_name("moved"))
        assert problem(client.get("/health/ready"), 503)["type"].endswith("not-ready")
        # The store is unusable, as it would be to open: no checksum failed here.
        write = {"dates": ["2031-01-01"], "values": [1.0]}
        written = client.post("/v1/series/GDP/observations", json=write)
        assert problem(written, 500)["type"].endswith("store-format"), written.text
        assert not store.exists(), "the write made the store's directory again"
        assert client.post("/graphql", json=health).json()["data"]["health"] == {
            "status": "not-ready"
        }
        assert client.get("/health/live").status_code == 200
        store.with_name("moved").rename(store)
        assert client.get("/health/ready").status_code == 200
        assert client.post("/graphql", json=health).json()["data"]["health"] == {"status": "ready"}


def test_not_ready_when_the_newest_manifest_is_damaged(local_target: StoreTarget) -> None:
    newest = max((Path(local_target.url) / "_manifests").glob("0*.json"))
    newest.write_bytes(newest.read_bytes()[:-10])
    with client_for(local_target, cache_ttl=0.0) as client:
        body = problem(client.get("/health/ready"), 503)
        assert body["type"].endswith("not-ready")
        # The kind of failure, not the error's class or the key it names.
        assert body["detail"] == "the catalog cannot be read: stored data failed verification"


def test_not_ready_when_the_newest_manifest_is_gone(local_target: StoreTarget) -> None:
    manifests = Path(local_target.url) / "_manifests"
    moved = manifests.with_name("moved")
    # A long TTL: the probe must ask the store all the same, and not find its
    # answer in the manifest the cache holds.
    with client_for(local_target, cache_ttl=60.0) as client:
        assert client.get("/health/ready").status_code == 200
        manifests.rename(moved)
        assert problem(client.get("/health/ready"), 503)["type"].endswith("not-ready")
        moved.rename(manifests)
        assert client.get("/health/ready").status_code == 200
        newest = max(manifests.glob("0*.json"))
        newest.rename(moved)
        assert problem(client.get("/health/ready"), 503)["type"].endswith("not-ready")
        moved.rename(newest)
        assert client.get("/health/ready").status_code == 200


def test_not_ready_says_when_to_retry(local_target: StoreTarget) -> None:
    store = Path(local_target.url)
    with client_for(local_target) as client:
        store.rename(store.with_name("moved"))
        for method in ("GET", "HEAD"):
            response = client.request(method, "/health/ready")
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
        store.with_name("moved").rename(store)


def test_health_and_metrics_answer_head(client: Client) -> None:
    for path in ("/health/live", "/health/ready", "/metrics"):
        got = client.get(path)
        head = client.head(path)
        assert head.status_code == 200, (path, head.text)
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.content == b""


def test_metrics_content_type_names_one_charset(client: Client) -> None:
    content_type = client.get("/metrics").headers["content-type"]
    assert content_type.startswith("text/plain; version=")
    assert content_type.count("charset") == 1


def test_every_counted_request_is_timed(client: Client) -> None:
    client.get("/no/such/route")
    client.delete("/health/live")  # a route, but not this method
    client.get("/v1/series/NOPE")
    text = client.get("/metrics").text
    for route in ("<unmatched>", "/v1/series/{series_id}"):
        counted = metric(text, "fincat_http_requests_total", route=route)
        assert counted >= 1, route
        timed = metric(text, "fincat_http_request_duration_seconds_count", route=route)
        assert timed == counted, route
    assert metric(text, "fincat_http_requests_total", route="<unmatched>", status="404") == 1
    assert metric(text, "fincat_http_requests_total", route="<unmatched>", status="405") == 1


def test_metrics_by_route_template_with_catalog_counters(local_target: StoreTarget) -> None:
    # A long TTL keeps B's idea of the latest version stale, so its commit loses a race.
    slow = settings_for(local_target, cache_ttl=60.0)
    with TestClient(create_app(slow)) as a, TestClient(create_app(slow)) as b:
        for series_id in ("GDP", "UNRATE", "GDP", "NOPE"):
            b.get(f"/v1/series/{series_id}")
        b.get("/no/such/route")
        assert a.patch("/v1/series/GDP", json={"units": "USD"}).status_code == 200
        assert b.patch("/v1/series/UNRATE", json={"units": "%"}).status_code == 200
        text = b.get("/metrics").text

    route = "/v1/series/{series_id}"
    assert metric(text, "fincat_http_requests_total", route=route, status="200", method="GET") == 3
    assert metric(text, "fincat_http_requests_total", route=route, status="404") == 1
    assert metric(text, "fincat_http_requests_total", route="<unmatched>", status="404") == 1
    assert "/v1/series/GDP" not in text and "NOPE" not in text
    assert (
        metric(text, "fincat_http_request_duration_seconds_count", route=route, method="GET") == 4
    )
    assert metric(text, "fincat_commit_conflicts_total") >= 1
    assert metric(text, "fincat_commit_retries_total") >= 1
    assert metric(text, "fincat_commits_total") == 1
    assert metric(text, "fincat_cache_hits_total") > 0
    assert metric(text, "fincat_cache_misses_total") > 0
    assert metric(text, "fincat_cache_bytes") > 0
    assert (
        metric(text, "fincat_store_operation_duration_seconds_count", operation="get", outcome="ok")
        > 0
    )
    assert (
        metric(text, "fincat_store_operation_duration_seconds_count", operation="put_if_absent")
        >= 2
    )


def test_metrics_registries_are_per_app(local_target: StoreTarget) -> None:
    with TestClient(create_app(settings_for(local_target))) as one:
        one.get("/v1/series")
        with TestClient(create_app(settings_for(local_target))) as two:
            text = two.get("/metrics").text
    assert metric(text, "fincat_http_requests_total", route="/v1/series") == 0


def test_openapi_document(client: Client) -> None:
    doc = client.get("/schema/openapi.json").json()
    paths = doc["paths"]
    for path, method in [
        ("/v1/series", "get"),
        ("/v1/series", "post"),
        ("/v1/series/{series_id}", "patch"),
        ("/v1/series/{series_id}/observations", "post"),
        ("/v1/commits", "post"),
        ("/v1/versions/{version}", "get"),
    ]:
        operation = paths[path][method]
        assert "application/problem+json" in operation["responses"]["422"]["content"]
    read = paths["/v1/series/{series_id}/observations"]["get"]["responses"]["200"]["content"]
    assert set(read) == {
        "application/json",
        "text/csv",
        "application/vnd.apache.arrow.stream",
        "application/vnd.apache.parquet",
    }
    # Every answer a client may get is there: a ranged read's 206, a commit's 200.
    for path in (
        "/v1/series/{series_id}/observations",
        "/v1/series/{series_id}/revisions",
        "/v1/metadata",
    ):
        assert "Content-Range" in paths[path]["get"]["responses"]["206"]["headers"], path
    commit = paths["/v1/commits"]["post"]["responses"]
    assert {"200", "201"} <= set(commit)
    assert "version" in commit["200"]["content"]["application/json"]["schema"]["properties"]
    write = paths["/v1/series/{series_id}/observations"]["post"]["requestBody"]["content"]
    assert set(write) == {
        "application/json",
        "text/csv",
        "application/vnd.apache.arrow.stream",
        "application/vnd.apache.arrow.file",
    }
    assert client.get("/schema").status_code == 200
    assert client.get("/schema/swagger").status_code == 200


HOSTILE = [
    "..",
    "%2E%2E",
    "..%2F..%2Fetc",
    "a%2Fb",
    "%2F",
    "GDP%2F..%2F..",
    "%00",
    "GDP%00",
    "x" * 200,
    "%E2%80%AEGDP",
    "%D0%93%D0%94%D0%9F",
    "a%20b",
    "-GDP",
    ".hidden",
    "%25",
    "GDP%3Fformat=csv",
    "GDP~0123",
]


@pytest.mark.parametrize("segment", HOSTILE)
def test_hostile_series_ids_get_4xx(client: Client, segment: str) -> None:
    for method, suffix in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("GET", "/observations"),
        ("POST", "/observations"),
        ("GET", "/revisions"),
    ]:
        response = client.request(
            method,
            f"/v1/series/{segment}{suffix}",
            json={"title": "x"} if method != "GET" else None,
        )
        assert 400 <= response.status_code < 500, (method, segment, suffix, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_an_encoded_separator_in_the_path_is_a_bad_request(client: Client) -> None:
    # The server decodes the path before routing: these would match another route or none.
    for method, path in [
        ("GET", "/v1/series/a%2Fb"),
        ("GET", "/v1/series/GDP%2fobservations"),
        ("DELETE", "/v1/series/GDP%2F"),
        ("POST", "/v1/series/a%5Cb/observations"),
        ("GET", "/v1/series/%2F%2F/revisions"),
        ("POST", "/graphql%2F"),
    ]:
        refused = problem(client.request(method, path), 400)
        assert refused["type"] == "urn:fincat:problem:bad-request", (method, path)
    assert client.get("/v1/series?q=a%2Fb%5Cc").status_code == 200  # the query may hold them
    text = client.get("/metrics").text
    assert metric(text, "fincat_http_requests_total", route="<unmatched>", status="400") == 6


def scrape_until(client: Client, ready: Callable[[str], bool]) -> str:
    """Scrape /metrics until ``ready`` holds (the monitor refreshes in the background)."""
    for _ in range(200):
        text = client.get("/metrics").text
        if ready(text):
            return text
        time.sleep(0.05)
    raise AssertionError(f"the monitor never produced the expected figures:\n{text}")


def test_monitor_exports_source_freshness_and_the_recorded_verify(
    local_target: StoreTarget,
) -> None:
    cat = local_target.open()
    cat.checkpoint()  # every observation into a data file, to delete GDP's below
    passed = cat.verify(record=True)
    assert passed.ok
    bea = max(cat.get(s).updated_at for s in ("GDP", "GDPC1")).timestamp()
    cat.close()
    status = asyncio.run(stored_verify_status(local_target))
    assert status is not None and status.ok and status.last_ok_at == status.checked_at

    with client_for(local_target, monitor_interval=0.05) as client:
        text = scrape_until(client, lambda t: "fincat_verify_problems " in t)
        assert metric(text, "fincat_verify_problems") == 0
        assert metric(text, "fincat_verify_last_success_timestamp_seconds") == (
            status.checked_at.timestamp()
        )
        assert metric(text, "fincat_source_series", source="BEA") == 2
        assert metric(text, "fincat_source_last_updated_timestamp_seconds", source="BEA") == bea
        bls_before = metric(text, "fincat_source_last_updated_timestamp_seconds", source="BLS")
        assert metric(text, "process_resident_memory_bytes") > 0

        # A damaged file, a verify that records it, and a fresh change to a BLS series.
        (gdp_file,) = Path(local_target.url, "data").glob("GDP~*/**/*.parquet")
        gdp_file.unlink()
        cat = local_target.open()
        assert not cat.verify(record=True).ok
        cat.close()
        assert client.patch("/v1/series/UNRATE", json={"units": "%"}).status_code == 200
        text = scrape_until(
            client,
            lambda t: (
                metric(t, "fincat_verify_problems") > 0
                and metric(t, "fincat_source_last_updated_timestamp_seconds", source="BLS")
                > bls_before
            ),
        )
        # The last success stays the earlier passing run.
        assert metric(text, "fincat_verify_last_success_timestamp_seconds") == (
            status.checked_at.timestamp()
        )


def test_a_latest_only_verify_leaves_the_full_verify_figures_standing(
    local_target: StoreTarget,
) -> None:
    # Damage only older versions reference: GDP's file, once GDP is deleted.
    cat = local_target.open()
    cat.checkpoint()
    cat.delete("GDP")
    cat.checkpoint()  # the deletion into the shards: the newest version lists no GDP
    (gdp_file,) = Path(local_target.url, "data").glob("GDP~*/**/*.parquet")
    gdp_file.unlink()
    assert not cat.verify(record=True).ok  # the nightly job
    full = asyncio.run(stored_verify_status(local_target))
    assert full is not None and full.problems == 1 and full.last_ok_at is None
    # The runbook's ad hoc check, and an upgrade's: the newest version is sound.
    assert cat.verify(latest_only=True, record=True).ok
    cat.close()
    assert asyncio.run(stored_verify_status(local_target)) == full
    latest = asyncio.run(stored_verify_status(local_target, latest_only=True))
    assert latest is not None and latest.ok and latest.latest_only

    def full_figure(text: str, name: str) -> float:
        return metric(text, name, scope="full")

    with client_for(local_target, monitor_interval=0.05) as client:
        text = scrape_until(client, lambda t: 'scope="latest"' in t)
        # FincatVerifyFailed keeps firing; FincatVerifyOverdue is not silenced.
        assert full_figure(text, "fincat_verify_problems") == 1
        assert metric(text, "fincat_verify_problems", scope="latest") == 0
        assert full_figure(text, "fincat_verify_last_run_timestamp_seconds") == (
            full.checked_at.timestamp()
        )
        assert 'fincat_verify_last_success_timestamp_seconds{scope="full"}' not in text
        assert metric(text, "fincat_verify_last_success_timestamp_seconds", scope="latest") == (
            latest.checked_at.timestamp()
        )

        # A full run after it checked the newest version too: the latest-only figures go.
        cat = local_target.open()
        assert not cat.verify(record=True).ok
        cat.close()
        text = scrape_until(client, lambda t: 'scope="latest"' not in t)
        assert full_figure(text, "fincat_verify_problems") == 1
        assert full_figure(text, "fincat_verify_last_run_timestamp_seconds") > (
            full.checked_at.timestamp()
        )


def test_a_latest_only_record_of_an_earlier_fincat_counts_as_latest_only(
    local_target: StoreTarget,
) -> None:
    # Before the two records, a --latest run overwrote _status/verify.json.
    checked = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    earlier = VerifyStatus(
        checked_at=checked,
        latest_version=3,
        latest_only=True,
        ok=True,
        problems=0,
        last_ok_at=checked,
    )

    async def outcomes() -> dict[str, VerifyStatus]:
        store = open_store(local_target.url)
        try:
            await store.put(keys.VERIFY_STATUS, msgspec.json.encode(earlier))
            return await read_verify_outcomes(store)
        finally:
            await store.close()

    assert asyncio.run(outcomes()) == {LATEST: earlier}


async def stored_verify_status(
    target: StoreTarget, latest_only: bool = False
) -> VerifyStatus | None:
    store = open_store(target.url, target.options or None)
    try:
        return await read_verify_status(store, latest_only)
    finally:
        await store.close()
