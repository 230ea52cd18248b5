"""Fixtures for the gateway: apps over real stores, test clients, uvicorn servers on loopback."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.auth import ApiKey, hash_token
from gateway.settings import Settings
from tests.conftest import StoreTarget

READ_TOKEN = "fck_test-read-only-key"
WRITE_TOKEN = "fck_test-writer-key"
ADMIN_TOKEN = "fck_test-admin-key"
KEYS = (
    ApiKey("reader", hash_token(READ_TOKEN), frozenset({"read"})),
    ApiKey("writer", hash_token(WRITE_TOKEN), frozenset({"write"})),
    ApiKey("admin", hash_token(ADMIN_TOKEN), frozenset({"admin"})),
)
ROOT = Path(__file__).resolve().parents[2]

Client = TestClient[Litestar]


def seed(target: StoreTarget) -> None:
    """Two quarterly macro series and a monthly one with a revision."""
    cat = target.open()
    try:
        cat.create(
            id="GDP",
            frequency="quarterly",
            title="Gross domestic product",
            source="BEA",
            tags=["macro", "output"],
            external_ids={"fred": "GDP"},
        )
        cat.create(
            id="GDPC1", frequency="quarterly", title="Real GDP", source="BEA", tags=["macro"]
        )
        cat.create(id="UNRATE", frequency="monthly", title="Unemployment rate", source="BLS")
        quarters = [dt.date(2023, m, 1) for m in (1, 4, 7, 10)]
        cat.write("GDP", (quarters, [26_000.0, 26_500.0, None, 27_600.0]))
        months = [dt.date(2024, m, 1) for m in range(1, 7)]
        cat.write("UNRATE", (months, [3.7, 3.9, 3.8, 3.9, 4.0, 4.1]))
        cat.write("UNRATE", ([dt.date(2024, 6, 1)], [4.0]), mode="upsert")
    finally:
        cat.close()


def settings_for(target: StoreTarget, **changes: Any) -> Settings:
    base = Settings(root=target.url, storage_options=dict(target.options), rate_limit=0)
    return base.with_changes(**changes) if changes else base


@contextmanager
def client_for(target: StoreTarget, **changes: Any) -> Iterator[Client]:
    """A TestClient for an app over ``target`` (rate limiting off unless asked)."""
    with TestClient(create_app(settings_for(target, **changes))) as client:
        yield client


@pytest.fixture
def local_target(tmp_path: Path) -> StoreTarget:
    """A seeded catalog on local disk."""
    target = StoreTarget("local", str(tmp_path / "store"))
    seed(target)
    return target


@pytest.fixture
def client(local_target: StoreTarget) -> Iterator[Client]:
    """Development mode (no keys) over a seeded local catalog."""
    with client_for(local_target) as c:
        yield c


@pytest.fixture
def shared_client(shared_target: StoreTarget) -> Iterator[Client]:
    """Development mode over a seeded catalog on local disk, then on the moto S3 server."""
    seed(shared_target)
    with client_for(shared_target) as c:
        yield c


@pytest.fixture
def auth_client(local_target: StoreTarget) -> Iterator[Client]:
    """Keys required: reader (read), writer (write), admin (admin)."""
    with client_for(local_target, api_keys=KEYS) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- uvicorn servers ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A ``fincat serve`` process on loopback."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(
    target: StoreTarget, log_dir: Path, *serve_args: str, env: dict[str, str] | None = None
) -> Server:
    """Run ``fincat serve`` for ``target`` on a free port; return once /health/ready says 200."""
    port = free_port()
    options = [f"--storage-option={k}={v}" for k, v in target.options.items()]
    command = [
        sys.executable,
        "-m",
        "gateway.cli",
        "--root",
        target.url,
        *options,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *serve_args,
    ]
    log = log_dir / f"server-{port}.log"
    environment = {**os.environ, **(env or {})}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health/ready", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not become ready:\n{log.read_text()}")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers with ``servers(target, *args)``; all are stopped at the end."""
    started: list[Server] = []

    def start(target: StoreTarget, *args: str, env: dict[str, str] | None = None) -> Server:
        server = start_server(target, tmp_path, *args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert ``response`` is an RFC 9457 problem with ``status``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body
