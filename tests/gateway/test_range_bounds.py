"""Over HTTP, replace_range and delete_range without start or end are refused (REST and
GraphQL), as the catalog refuses them: both ends open would be the whole series."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import StoreTarget
from tests.gateway.conftest import Server, problem, seed, start_server

GDP = "/v1/series/GDP/observations"
GDP_VALUES = [26_000.0, 26_500.0, None, 27_600.0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    where = tmp_path_factory.mktemp("bounds")
    target = StoreTarget("local", str(where / "store"))
    seed(target)
    server = start_server(target, where)
    yield server
    server.stop()


def graphql(server: Server, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def unchanged(server: Server, version: int) -> None:
    assert httpx.get(f"{server.url}{GDP}").json()["values"] == GDP_VALUES
    assert httpx.get(f"{server.url}/v1/series/GDP").json()["version"] == version


def test_rest_refuses_a_range_write_without_bounds(server: Server) -> None:
    url = f"{server.url}{GDP}"
    version = httpx.get(f"{server.url}/v1/series/GDP").json()["version"]
    refused = [
        httpx.post(url, json={"mode": "replace_range", "dates": ["2023-04-01"], "values": [20]}),
        httpx.post(url, json={"mode": "delete_range"}),
        httpx.post(f"{url}?mode=delete_range", content=b"", headers={"Content-Type": "text/csv"}),
        httpx.post(
            f"{url}?mode=replace_range",
            content=b"date,value\n2023-04-01,20\n",
            headers={"Content-Type": "text/csv"},
        ),
    ]
    for response in refused:
        body = problem(response, 422)
        assert body["errors"][0]["field"] == "start", body
        assert "needs start or end" in body["errors"][0]["message"], body
        assert "give start as its first date" in body["errors"][0]["message"], body
    ops = [
        {"op": "update", "id": "GDP", "changes": {"units": "USD bn"}},
        {"op": "write", "id": "GDP", "mode": "delete_range"},
    ]
    commit = problem(httpx.post(f"{server.url}/v1/commits", json={"operations": ops}), 422)
    assert commit["errors"][0]["field"] == "operations.1.start"
    unchanged(server, version)


def test_graphql_refuses_a_range_write_without_bounds(server: Server) -> None:
    version = httpx.get(f"{server.url}/v1/series/GDP").json()["version"]
    write = """mutation($mode: WriteMode!, $dates: [Date!], $values: [Float]) {
        writeObservations(seriesId: "GDP", mode: $mode, dates: $dates, values: $values) {
            version } }"""
    for variables in (
        {"mode": "REPLACE_RANGE", "dates": ["2023-04-01"], "values": [20.0]},
        {"mode": "DELETE_RANGE"},
    ):
        errors = graphql(server, write, variables)["errors"]
        assert len(errors) == 1, errors
        assert errors[0]["extensions"]["code"] == "VALIDATION", errors
        assert errors[0]["extensions"]["field"] == "start", errors
        assert "needs start or end" in errors[0]["message"], errors
    batch = "mutation($ops: [BatchOperation!]!) { commitBatch(operations: $ops) { version } }"
    ops = [
        {"update": {"id": "GDP", "changes": {"units": "USD bn"}}},
        {"write": {"seriesId": "GDP", "mode": "DELETE_RANGE"}},
    ]
    errors = graphql(server, batch, {"ops": ops})["errors"]
    assert errors[0]["extensions"]["code"] == "VALIDATION", errors
    assert errors[0]["extensions"]["field"] == "operations.1.write.start", errors
    unchanged(server, version)


def test_one_open_bound_is_still_taken(server: Server) -> None:
    url = f"{server.url}/v1/series/UNRATE/observations"
    deleted = httpx.post(
        f"{url}?mode=delete_range&start=2024-05-01",
        content=b"",
        headers={"Content-Type": "text/csv"},
    )
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["last_date"] == "2024-04-01"
    write = """mutation { writeObservations(seriesId: "UNRATE", mode: REPLACE_RANGE,
        end: "2024-02-01", dates: ["2024-02-01"], values: [4.5]) { firstDate observationCount } }"""
    written = graphql(server, write, {})
    assert written.get("errors") is None, written
    assert written["data"]["writeObservations"] == {
        "firstDate": "2024-02-01",
        "observationCount": 3,
    }
