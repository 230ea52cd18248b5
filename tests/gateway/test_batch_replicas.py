"""Batches through a replica that has not yet seen another replica's commit.

B answers "which version is latest" from memory for an hour (``--cache-ttl``), so
it builds each commit on the newest version it knows; a precondition that fails
there must be judged again on the newest version, for a batch (REST
``/v1/commits``, GraphQL ``commitBatch``) as for a single write.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import StoreTarget
from tests.gateway.conftest import Server, start_server

BATCH = """mutation($ops: [BatchOperation!]!) {
    commitBatch(operations: $ops) { version committed } }"""


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    where = tmp_path_factory.mktemp("replicas")
    target = StoreTarget("local", str(where / "store"))
    target.open().close()
    a = start_server(target, where, "--cache-ttl", "0")
    b = start_server(target, where, "--cache-ttl", "3600")
    yield a, b
    for server in (a, b):
        server.stop()


def fresh_id() -> str:
    return "S" + uuid.uuid4().hex[:8]


def create_unseen(a: Server, b: Server, frequency: str) -> tuple[str, int]:
    """A series created through A after B has learned which version is latest."""
    sid = fresh_id()
    assert httpx.get(f"{b.url}/v1/series", params={"limit": 1}).status_code == 200
    created = httpx.post(f"{a.url}/v1/series", json={"id": sid, "frequency": frequency})
    assert created.status_code == 201, created.text
    return sid, int(created.json()["version"])


def graphql(server: Server, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_batch_writes_through_a_replica_that_has_not_seen_the_series(
    replicas: tuple[Server, Server],
) -> None:
    a, b = replicas
    sid, version = create_unseen(a, b, "daily")
    assert httpx.get(f"{b.url}/v1/series/{sid}").status_code == 404, "B was expected stale"
    write = {"op": "write", "id": sid, "dates": ["2024-01-01"], "values": [1.0]}
    answer = httpx.post(
        f"{b.url}/v1/commits", json={"operations": [write | {"expected_version": version}]}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["version"] == version + 1

    sid, version = create_unseen(a, b, "daily")
    op = {"seriesId": sid, "dates": ["2024-01-02"], "values": [2.0], "expectedVersion": version}
    body = graphql(b, BATCH, {"ops": [{"write": op}]})
    assert "errors" not in body, body
    assert body["data"]["commitBatch"] == {"version": version + 1, "committed": True}
    observations = httpx.get(f"{a.url}/v1/series/{sid}/observations").json()
    assert observations["values"] == [2.0]


def test_a_batch_write_is_judged_on_the_frequency_the_series_has_now(
    replicas: tuple[Server, Server],
) -> None:
    a, b = replicas
    # Created through B, which so knows it as monthly; then A makes it daily.
    sid = fresh_id()
    created = httpx.post(f"{b.url}/v1/series", json={"id": sid, "frequency": "monthly"})
    assert created.status_code == 201, created.text
    changed = httpx.patch(f"{a.url}/v1/series/{sid}", json={"frequency": "daily"})
    version = int(changed.json()["version"])
    assert httpx.get(f"{b.url}/v1/series/{sid}").json()["frequency"] == "monthly", "B is stale"
    mid_month = {"op": "write", "id": sid, "dates": ["2024-02-03"], "values": [1.0]}
    answer = httpx.post(f"{b.url}/v1/commits", json={"operations": [mid_month]})
    assert answer.status_code == 201, answer.text
    op = {"seriesId": sid, "dates": ["2024-02-04"], "values": [2.0], "expectedVersion": version + 1}
    body = graphql(b, BATCH, {"ops": [{"write": op}]})
    assert "errors" not in body, body
    series = httpx.get(f"{a.url}/v1/series/{sid}").json()
    assert (series["frequency"], series["observation_count"]) == ("daily", 2)


def test_a_stale_expected_version_still_fails_and_names_its_operation(
    replicas: tuple[Server, Server],
) -> None:
    a, b = replicas
    sid, _ = create_unseen(a, b, "daily")
    other, version = create_unseen(a, b, "daily")
    assert httpx.patch(f"{a.url}/v1/series/{other}", json={"title": "moved on"}).status_code == 200
    ops = [
        {"op": "update", "id": sid, "changes": {"units": "x"}},
        {"op": "write", "id": sid, "dates": ["2024-01-01"], "values": [1.0]},
        {"op": "delete", "id": other, "expected_version": version},
    ]
    answer = httpx.post(f"{b.url}/v1/commits", json={"operations": ops})
    assert answer.status_code == 409, answer.text
    assert answer.json()["errors"][0]["field"] == "operations.2.expected_version"
    assert httpx.get(f"{a.url}/v1/series/{sid}").json()["observation_count"] == 0
    assert httpx.get(f"{a.url}/v1/series/{other}").status_code == 200
