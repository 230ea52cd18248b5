"""Shared fixtures: one store URL per backend, the S3 one on a real moto server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from catalog_store import Catalog, CatalogOptions
from catalog_store.storage import drop_memory_store
from tests.s3server import LoopbackS3Server

# Credentials for the loopback server only; subprocesses inherit them.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)

BACKENDS = ["memory", "local", "s3"]

#: Every commit writes its rows into Parquet files and its series into their
#: shards at once, instead of holding a few in the manifest: for tests of the
#: file and shard layout (damaging a file, counting shard rewrites).
EAGER = CatalogOptions(inline_rows=0, pending_records=0)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", help="run the long campaigns too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="long campaign: run with --long")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@dataclass(frozen=True)
class StoreTarget:
    """Where a test's catalog lives: URL plus storage options, picklable for subprocesses."""

    backend: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)

    def open(self, create: bool = True, **kwargs: Any) -> Catalog:
        return Catalog.open(self.url, self.options or None, create=create, **kwargs)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LoopbackS3Server]:
    server = LoopbackS3Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_endpoint(s3_server: LoopbackS3Server) -> str:
    return s3_server.endpoint


def new_bucket(endpoint: str) -> str:
    name = f"fincat-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def make_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreTarget:
    if backend == "memory":
        name = f"t{uuid.uuid4().hex}"
        request.addfinalizer(lambda: drop_memory_store(name))
        return StoreTarget(backend, f"memory://{name}")
    if backend == "local":
        return StoreTarget(backend, str(tmp_path / "store"))
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = new_bucket(endpoint)
    options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
    return StoreTarget(backend, f"s3://{bucket}/catalog", options)


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> StoreTarget:
    """A fresh, empty store location on each backend in turn."""
    return make_target(request.param, tmp_path, request)


@pytest.fixture(params=["local", "s3"])
def shared_target(request: pytest.FixtureRequest, tmp_path: Path) -> StoreTarget:
    """A store several processes can share: local disk and the moto server."""
    return make_target(request.param, tmp_path, request)


@pytest.fixture
def catalog(target: StoreTarget) -> Iterator[Catalog]:
    """An initialised, empty catalog on each backend."""
    cat = target.open()
    yield cat
    cat.close()
