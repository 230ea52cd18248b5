"""Over HTTP, an integer value a 64-bit float cannot hold exactly (beyond 2^53) is
refused, never stored rounded: in JSON and CSV bodies as the catalog refuses it from
Python, and in GraphQL as graphql-core refuses such a Float."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import StoreTarget
from tests.gateway.conftest import Server, problem, seed, start_server

BIG = 2**53 + 1  # 9007199254740993: as a float, 9007199254740992.0
CSV = {"Content-Type": "text/csv"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    where = tmp_path_factory.mktemp("precision")
    target = StoreTarget("local", str(where / "store"))
    seed(target)
    with target.open(create=False) as cat:
        cat.create(id="S", frequency="daily")
        cat.write("S", (["2024-01-01"], [1.0]))
    server = start_server(target, where)
    yield server
    server.stop()


def state(server: Server) -> tuple[int, list[Any]]:
    body = httpx.get(f"{server.url}/v1/series/S/observations").json()
    return body["version"], body["values"]


def test_rest_refuses_integers_a_float_would_round(server: Server) -> None:
    url = f"{server.url}/v1/series/S/observations?mode=upsert"
    before = state(server)
    days = ["2024-01-02", "2024-01-03"]
    refused = [
        httpx.post(url, json={"dates": days[: len(values)], "values": values})
        for values in ([BIG], [-BIG], [1.5, BIG], [BIG, None], [10**30])
    ]
    refused += [
        httpx.post(url, content=f"date,value\n2024-01-02,{text}\n".encode(), headers=CSV)
        for text in (str(BIG), str(-BIG), f"+{BIG}", f'"{BIG}"')
    ]
    mixed = f"date,value\n2024-01-02,1.5\n2024-01-03,{BIG}\n"
    refused.append(httpx.post(url, content=mixed.encode(), headers=CSV))
    ops = [{"op": "write", "id": "S", "mode": "upsert", "dates": ["2024-01-02"], "values": [BIG]}]
    refused.append(httpx.post(f"{server.url}/v1/commits", json={"operations": ops}))
    for response in refused:
        body = problem(response, 422)
        assert body["errors"][0]["field"].endswith("values"), body
    assert state(server) == before


def test_rest_keeps_integers_a_float_holds_and_floats_as_written(server: Server) -> None:
    url = f"{server.url}/v1/series/S/observations?mode=upsert"
    exact = httpx.post(url, json={"dates": ["2024-02-01", "2024-02-02"], "values": [2**53, 3]})
    assert exact.status_code == 200, exact.text
    # A float literal is a float, rounded as any float is; only integers are exact.
    csv = f"date,value\n2024-02-03,{2**53}\n2024-02-04,1e20\n2024-02-05,{BIG}.0\n2024-02-06,\n"
    written = httpx.post(url, content=csv.encode(), headers=CSV)
    assert written.status_code == 200, written.text
    values = httpx.get(
        f"{server.url}/v1/series/S/observations?start=2024-02-01&end=2024-02-29"
    ).json()["values"]
    assert values == [2.0**53, 3.0, 2.0**53, 1e20, 2.0**53, None]
    # Beside a float too: 10^16 is a float exactly.
    beside = httpx.post(url, json={"dates": ["2024-03-01", "2024-03-02"], "values": [1.5, 10**16]})
    assert beside.status_code == 200, beside.text
    kept = httpx.get(f"{server.url}/v1/series/S/observations?start=2024-03-01").json()["values"]
    assert kept == [1.5, 1e16]


def test_graphql_refuses_integers_a_float_would_round(server: Server) -> None:
    before = state(server)
    literal = f"""mutation {{ writeObservations(seriesId: "S", mode: UPSERT,
        dates: ["2024-01-02"], values: [{BIG}]) {{ version }} }}"""
    variables = """mutation($values: [Float]) { writeObservations(seriesId: "S", mode: UPSERT,
        dates: ["2024-01-02"], values: $values) { version } }"""
    batch = f"""mutation {{ commitBatch(operations: [{{write: {{seriesId: "S", mode: UPSERT,
        dates: ["2024-01-02"], values: [1.5, {BIG}]}}}}]) {{ version }} }}"""
    for query, given in ((literal, None), (variables, {"values": [BIG]}), (batch, None)):
        payload: dict[str, Any] = {"query": query}
        if given is not None:
            payload["variables"] = given
        response = httpx.post(f"{server.url}/graphql", json=payload)
        assert response.status_code == 200, response.text
        errors = response.json()["errors"]
        assert len(errors) == 1, errors
        assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", errors
        assert f"{BIG} (value would lose precision)" in errors[0]["message"], errors
    assert state(server) == before
