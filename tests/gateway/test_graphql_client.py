"""A real GraphQL client (gql over HTTP) against ``fincat serve`` on loopback."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport
from graphql import build_schema, lexicographic_sort_schema, print_schema

from gateway.auth import keys_to_json
from gateway.graphql.schema import schema_sdl
from tests.conftest import StoreTarget
from tests.gateway.conftest import (
    ADMIN_TOKEN,
    KEYS,
    READ_TOKEN,
    WRITE_TOKEN,
    Server,
    seed,
    start_server,
)

#: Seconds within which a refusal must come back, client-side encoding included.
QUICK = 8.0
ROWS = 350_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server with keys over the seed plus BIG (350,000 one-minute values)."""
    where = tmp_path_factory.mktemp("gql")
    target = StoreTarget("local", str(where / "store"))
    seed(target)
    start = np.datetime64("2024-01-01T00:00", "us")
    stamps = start + np.arange(ROWS) * np.timedelta64(60_000_000, "us")
    with target.open(create=False) as cat:
        cat.create(id="BIG", frequency="intraday", title="Minute bars", source="EX")
        cat.write(
            "BIG",
            pa.table(
                {
                    "date": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                    "value": np.arange(ROWS, dtype=float),
                }
            ),
        )
    running = start_server(
        target, where, "--rate-limit", "0", env={"FINCAT_API_KEYS": keys_to_json(KEYS)}
    )
    yield running
    running.stop()


def client(server: Server, token: str | None, schema: bool = False) -> Client:
    """A gql client; with ``schema`` it introspects the server and checks documents
    against the schema before sending them."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = HTTPXTransport(url=f"{server.url}/graphql", headers=headers, timeout=60)
    return Client(
        transport=transport,
        fetch_schema_from_transport=schema,
        introspection_args={"specified_by_url": True, "input_object_one_of": True},
    )


def run(gql_client: Client, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    request = GraphQLRequest(query, variable_values=variables)
    result: dict[str, Any] = gql_client.execute(request)
    return result


def refused(
    gql_client: Client, query: str, code: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run an operation that must fail with exactly one error of ``code``; return it."""
    with pytest.raises(TransportQueryError) as caught:
        run(gql_client, query, variables)
    errors = caught.value.errors
    assert errors and len(errors) == 1, errors
    assert errors[0]["extensions"]["code"] == code, errors[0]
    found: dict[str, Any] = errors[0]
    return found


def still_serves(server: Server) -> None:
    assert run(client(server, READ_TOKEN), '{ series(id: "GDP") { id } }') == {
        "series": {"id": "GDP"}
    }


def test_introspected_schema_is_the_published_one(server: Server) -> None:
    gql_client = client(server, READ_TOKEN, schema=True)
    run(gql_client, "{ health { status } }")
    assert gql_client.schema is not None
    remote = print_schema(lexicographic_sort_schema(gql_client.schema))
    assert remote == print_schema(lexicographic_sort_schema(build_schema(schema_sdl())))


def test_queries(server: Server) -> None:
    reader = client(server, READ_TOKEN, schema=True)
    data = run(
        reader,
        """query($id: String!) { series(id: $id) { id frequency tags version
               observations(start: "2023-04-01") { count dates values } } }""",
        {"id": "GDP"},
    )
    assert data["series"]["frequency"] == "QUARTERLY"
    assert data["series"]["observations"] == {
        "count": 3,
        "dates": ["2023-04-01", "2023-07-01", "2023-10-01"],
        "values": [26500.0, None, 27600.0],
    }
    listed: list[str] = []
    after = None
    while True:
        page = run(
            reader,
            """query($after: String) { seriesList(first: 2, after: $after) {
                edges { node { id } } pageInfo { hasNextPage endCursor } } }""",
            {"after": after},
        )["seriesList"]
        listed += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(listed) == ["BIG", "GDP", "GDPC1", "UNRATE"]
    figures = run(
        reader,
        """{ catalogStats { seriesCount observationCount latestObservation }
             dataFreshness { sources { source stale } }
             versions(first: 2) { edges { node { version changes { seriesId } } } }
             seriesByExternalId(provider: "fred", id: "GDP") { id }
             health { status } }""",
    )
    assert figures["catalogStats"]["seriesCount"] == 4
    assert figures["catalogStats"]["observationCount"] == 10 + ROWS
    assert figures["catalogStats"]["latestObservation"] == "2024-08-31"
    assert [s["source"] for s in figures["dataFreshness"]["sources"]] == ["BEA", "BLS", "EX"]
    assert figures["seriesByExternalId"] == {"id": "GDP"}
    assert figures["health"] == {"status": "ready"}


def test_mutations_and_a_stale_expected_version(server: Server) -> None:
    writer = client(server, WRITE_TOKEN)
    created = run(
        writer,
        """mutation($input: SeriesInput!) { createSeries(input: $input) { id version } }""",
        {"input": {"id": "GQL1", "frequency": "MONTHLY", "source": "CLI"}},
    )["createSeries"]
    write = """mutation($d: [Date!], $v: [Float], $at: Int) {
        writeObservations(seriesId: "GQL1", dates: $d, values: $v, expectedVersion: $at) {
            version observationCount } }"""
    written = run(
        writer,
        write,
        {"d": ["2024-01-01", "2024-02-01"], "v": [1.5, 2.5], "at": created["version"]},
    )["writeObservations"]
    assert written["observationCount"] == 2
    stale = refused(
        writer,
        write,
        "PRECONDITION_FAILED",
        {"d": ["2024-03-01"], "v": [3.5], "at": created["version"]},
    )
    assert stale["extensions"]["actualVersion"] == written["version"]
    batch = run(
        writer,
        """mutation($ops: [BatchOperation!]!) { commitBatch(operations: $ops) {
            version operations commit { changes { action seriesId } } } }""",
        {
            "ops": [
                {"create": {"id": "GQL2", "frequency": "ANNUAL"}},
                {"write": {"seriesId": "GQL2", "dates": ["2020-01-01"], "values": [7.0]}},
                {
                    "update": {
                        "id": "GQL1",
                        "changes": {"units": "pct"},
                        "expectedVersion": written["version"],
                    }
                },
                {"delete": {"id": "GQL1"}},
            ]
        },
    )["commitBatch"]
    assert batch["operations"] == 4
    assert [c["action"] for c in batch["commit"]["changes"]] == [
        "create",
        "append",
        "update",
        "delete",
    ]
    after = run(writer, '{ a: series(id: "GQL1") { id } b: series(id: "GQL2") { version } }')
    assert after == {"a": None, "b": {"version": batch["version"]}}
    refused(writer, 'mutation { deleteSeries(id: "GQL1") { version } }', "NOT_FOUND")


def test_auth_failures(server: Server) -> None:
    query = "{ health { status } }"
    missing = refused(client(server, None), query, "UNAUTHENTICATED")
    assert "Bearer" in missing["message"]
    refused(client(server, "fck_wrong"), query, "UNAUTHENTICATED")
    mutation = 'mutation { updateSeries(id: "GDP", input: {units: "x"}) { id } }'
    refused(client(server, READ_TOKEN), mutation, "FORBIDDEN")
    validate = "{ validateCatalog { ok } }"
    refused(client(server, READ_TOKEN), validate, "FORBIDDEN")
    refused(client(server, WRITE_TOKEN), validate, "FORBIDDEN")
    assert run(client(server, ADMIN_TOKEN), validate) == {"validateCatalog": {"ok": True}}
    raw = httpx.post(f"{server.url}/graphql", json={"query": query})
    assert raw.status_code == 401
    assert raw.headers["www-authenticate"].startswith("Bearer")


def timed_refusal(
    server: Server, query: str, code: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    started = time.perf_counter()
    found = refused(client(server, READ_TOKEN), query, code, variables)
    assert time.perf_counter() - started < QUICK
    still_serves(server)
    return found


def test_hostile_queries(server: Server) -> None:
    deep = '{ series(id: "GDP") { ' + "history { series { " * 25 + "id" + " } }" * 25 + " } }"
    assert "maximum operation depth" in timed_refusal(server, deep, "QUERY_TOO_COMPLEX")["message"]
    aliases = "{ " + " ".join(f"a{i}: health {{ status }}" for i in range(1000)) + " }"
    assert "aliases" in timed_refusal(server, aliases, "QUERY_TOO_COMPLEX")["message"]
    day = dt.date(1700, 1, 1)
    dates = [(day + dt.timedelta(days=i % 150_000)).isoformat() for i in range(1_000_000)]
    huge = """mutation($d: [Date!], $v: [Float]) {
        writeObservations(seriesId: "GDP", dates: $d, values: $v) { id } }"""
    timed_refusal(server, huge, "INPUT_TOO_LARGE", {"d": dates, "v": [0.5] * len(dates)})
    many = (
        "{ "
        + " ".join(f'o{i}: series(id: "BIG") {{ observations {{ values }} }}' for i in range(29))
        + " }"
    )
    started = time.perf_counter()
    with pytest.raises(TransportQueryError) as caught:
        run(client(server, READ_TOKEN), many)
    assert time.perf_counter() - started < QUICK
    codes = {e["extensions"]["code"] for e in caught.value.errors or []}
    assert codes == {"RESULT_TOO_LARGE"}
    still_serves(server)
    # gql parses documents itself, so a malformed one goes over plain HTTP.
    started = time.perf_counter()
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": '{ series(id: "GDP" { id } }'},
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
    )
    assert time.perf_counter() - started < QUICK
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    still_serves(server)
