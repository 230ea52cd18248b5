"""Real ``fincat serve`` processes on loopback: streaming, DataFrame readers, replicas, races."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from tests.conftest import StoreTarget, new_bucket
from tests.gateway.conftest import Server, seed, start_server
from tests.gateway.test_health_metrics import metric

ROWS = 150_000


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the read-only tests: the seed plus BIG, 150,000 daily values."""
    where = tmp_path_factory.mktemp("big")
    target = StoreTarget("local", str(where / "store"))
    seed(target)
    with target.open(create=False) as cat:
        cat.create(id="BIG", frequency="daily", title="A long daily series")
        days = np.arange(np.datetime64("1700-01-01"), np.datetime64("1700-01-01") + ROWS)
        values = np.arange(ROWS, dtype=float)
        cat.write("BIG", pa.table({"date": pa.array(days), "value": values}))
    # Two workers: the app factory builds one app per process from the environment.
    server = start_server(target, where, "--workers", "2")
    yield server
    server.stop()


def test_arrow_is_streamed_in_record_batches(big_server: Server) -> None:
    url = f"{big_server.url}/v1/series/BIG/observations?format=arrow"
    with httpx.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        data = b"".join(response.iter_raw())
    reader = pa.ipc.open_stream(data)
    batches = list(reader)
    assert len(batches) >= 3
    table = pa.Table.from_batches(batches)
    assert table.num_rows == ROWS
    assert table.column("value")[ROWS - 1].as_py() == ROWS - 1
    with urllib.request.urlopen(url) as stream:
        assert pa.ipc.open_stream(stream).read_all().num_rows == ROWS


def test_pandas_and_polars_read_every_format_from_the_url(big_server: Server) -> None:
    base = f"{big_server.url}/v1/series/BIG/observations"
    year = f"{base}?start=1701-01-01&end=1701-12-31"
    frames = {
        "csv": pd.read_csv(f"{base}?format=csv", parse_dates=["date"]),
        "parquet": pd.read_parquet(f"{base}?format=parquet"),
        "arrow": pa.ipc.open_stream(urllib.request.urlopen(f"{base}?format=arrow")).read_pandas(),
        "json": pd.DataFrame(httpx.get(year).json()),
    }
    for name, frame in frames.items():
        expected = 365 if name == "json" else ROWS
        assert len(frame) == expected, name
    assert frames["parquet"]["value"].iloc[-1] == ROWS - 1
    assert str(frames["csv"]["date"].iloc[0].date()) == "1700-01-01"

    polars_frames = {
        "csv": pl.read_csv(f"{year}&format=csv"),
        "parquet": pl.read_parquet(f"{base}?format=parquet"),
        "arrow": pl.read_ipc_stream(f"{base}?format=arrow"),
    }
    assert polars_frames["csv"].height == 365
    assert polars_frames["parquet"].height == ROWS
    assert polars_frames["arrow"]["value"][-1] == ROWS - 1
    assert polars_frames["parquet"].schema["date"] == pl.Date


def test_head_and_byte_ranges(big_server: Server) -> None:
    url = f"{big_server.url}/v1/series/BIG/observations?format=parquet"
    whole = httpx.get(url)
    size = len(whole.content)
    head = httpx.head(url)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == size
    assert head.headers["accept-ranges"] == "bytes"
    assert head.content == b""
    tail = httpx.get(url, headers={"Range": "bytes=-8"})
    assert tail.status_code == 206
    assert tail.content == whole.content[-8:] and tail.content.endswith(b"PAR1")
    assert tail.headers["content-range"] == f"bytes {size - 8}-{size - 1}/{size}"
    middle = httpx.get(url, headers={"Range": "bytes=4-9"})
    assert middle.content == whole.content[4:10]
    assert httpx.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
    assert httpx.head(f"{big_server.url}/v1/series/NOPE/observations").status_code == 404


def test_hostile_raw_paths_get_4xx(big_server: Server) -> None:
    where = urlsplit(big_server.url)
    paths = [
        "/v1/series/..",
        "/v1/series/../../etc/passwd",
        "/v1/series/%2e%2e/observations",
        "/v1/series/GDP%2Fobservations",
        "/v1/series/GDP%2fobservations",
        "/v1/series/%2F",
        "/v1/series/a%5Cb",
        "/v1/series/%00",
        "/v1/series/GDP%00/observations",
        "/v1/series/" + "A" * 200,
        "/v1/series/" + "A" * 5000 + "/revisions",
        "/v1/series/%ff%fe",
        "/v1/series/GDP;x=1",
        "/v1/versions/-1",
        "/v1/versions/99999999999999999999999999",
    ]
    for path in paths:
        for method in ("GET", "DELETE", "PATCH"):
            connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
            try:
                connection.putrequest(method, path, skip_accept_encoding=True)
                connection.putheader("Content-Type", "application/json")
                connection.putheader("Content-Length", "2")
                connection.endheaders(b"{}")
                status = connection.getresponse().status
            finally:
                connection.close()
            assert 400 <= status < 500, (method, path, status)
            if "%2f" in path.lower() or "%5c" in path.lower():
                assert status == 400, (method, path, status)
    assert httpx.get(f"{big_server.url}/health/ready").status_code == 200


def test_two_gateways_on_one_bucket(
    s3_endpoint: str, tmp_path: Path, servers: Callable[..., Server]
) -> None:
    bucket = new_bucket(s3_endpoint)
    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    target = StoreTarget("s3", f"s3://{bucket}/catalog", options)
    seed(target)
    a = servers(target, "--cache-ttl", "1")
    b = servers(target, "--cache-ttl", "1")

    # B has the latest version cached; a write through A shows through B within the TTL.
    for _ in range(4):
        assert httpx.get(f"{b.url}/v1/series/GDP").json()["title"] == "Gross domestic product"
    written = httpx.patch(f"{a.url}/v1/series/GDP", json={"title": "via A"})
    assert written.status_code == 200
    started = time.monotonic()
    seen = None
    while time.monotonic() - started < 2.5:
        seen = httpx.get(f"{b.url}/v1/series/GDP").json()["title"]
        if seen == "via A":
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    assert seen == "via A"
    assert elapsed <= 2.0, elapsed

    # The same If-Match through both at once: exactly one wins, and its change is kept.
    tag = written.headers["etag"]

    def patch(server: Server, title: str) -> int:
        response = httpx.patch(
            f"{server.url}/v1/series/GDP", json={"title": title}, headers={"If-Match": tag}
        )
        return response.status_code

    for round_ in range(3):
        # New titles each round: setting the title a series has already is no change.
        mine, theirs = f"A wins {round_}", f"B wins {round_}"
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = {pool.submit(patch, a, mine): mine, pool.submit(patch, b, theirs): theirs}
            results = {futures[f]: f.result() for f in futures}
        assert sorted(results.values()) == [200, 412], results
        winner = next(title for title, status in results.items() if status == 200)
        # Read the store itself: either gateway may still serve its cached version.
        with target.open(create=False) as catalog:
            final = catalog.get("GDP")
        assert final.title == winner
        tag = f'"{final.version}"'


def test_a_client_gone_before_its_body_ended_is_no_server_error(
    servers: Callable[..., Server], tmp_path: Path
) -> None:
    """Litestar reports a body cut short by its client as a 500: it was logged with a
    traceback and counted among the 5xx the error-rate alert watches, so clients on
    a poor network could page the operator. Nothing is written either way."""
    target = StoreTarget("local", str(tmp_path / "store"))
    seed(target)
    server = servers(target)
    where = urlsplit(server.url)
    before = httpx.get(f"{server.url}/v1/versions?limit=1").json()["items"][0]["version"]
    uploads = [
        ("/v1/series/GDP/observations?mode=upsert", "text/csv", b"date,value\n2024-01-01,1\n"),
        ("/v1/commits", "application/json", b'{"operations": [{"op": "delete", '),
    ]
    for path, kind, start in uploads:
        for _ in range(3):
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {where.hostname}\r\nContent-Type: {kind}\r\n"
                "Content-Length: 100000\r\n\r\n"
            )
            with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
                sock.sendall(head.encode() + start)
                time.sleep(0.05)
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(f"{server.url}/metrics").text
        cut = metric(text, "fincat_http_requests_total", method="POST", status="400")
        if cut >= 6 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert cut == 6
    assert metric(text, "fincat_http_requests_total", status="500") == 0
    assert "Traceback" not in server.log.read_text()
    after = httpx.get(f"{server.url}/v1/versions?limit=1").json()["items"][0]["version"]
    assert after == before


def test_a_stop_cuts_off_a_stalled_client_after_the_shutdown_timeout(
    servers: Callable[..., Server], tmp_path: Path
) -> None:
    """One client that never finishes its body held a stopping gateway for good, so
    every rollout ended in the platform's kill. Cut off, it is answered as every
    error is, not by the server's plain-text 500 (and its traceback in the log)."""
    target = StoreTarget("local", str(tmp_path / "store"))
    seed(target)
    server = servers(target, env={"FINCAT_SHUTDOWN_TIMEOUT": "1"})
    where = urlsplit(server.url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        sock.sendall(
            f"POST /v1/series/GDP/observations HTTP/1.1\r\nHost: {where.hostname}\r\n"
            "Content-Type: text/csv\r\nContent-Length: 100000\r\n\r\ndate,value\n".encode()
        )
        time.sleep(0.3)
        started = time.monotonic()
        server.process.terminate()
        server.process.wait(timeout=10)
        assert time.monotonic() - started < 8
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().lower().splitlines()
    assert lines[0] == "http/1.1 503 service unavailable", answer
    assert "content-type: application/problem+json" in lines
    assert "retry-after: 1" in lines
    assert json.loads(body)["type"] == "urn:fincat:problem:shutting-down"
    assert "Traceback" not in server.log.read_text()
