"""The GraphQL result cache: answers at one catalog version are reused, never past it.

Every test reads a value through GraphQL until it is answered from the cache, then
changes it (through REST, a GraphQL mutation, or another catalog instance standing
for another replica) and reads it again.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from gateway.graphql.config import GraphQLSettings, GraphQLSettingsError
from gateway.graphql.results import PINNED_FIELDS, UNPINNED_FIELDS, schema_fields
from gateway.graphql.schema import build_schema
from tests.conftest import StoreTarget
from tests.gateway.conftest import KEYS, READ_TOKEN, Client, bearer, client_for
from tests.gateway.test_graphql import error, ok, post
from tests.gateway.test_health_metrics import metric

TITLE = "query($id: String!) { series(id: $id) { id title version catalogVersion } }"
JSON = {"Content-Type": "application/json"}
LAST = """query($id: String!) { series(id: $id) {
    observations(start: "2024-01-01") { dates values } } }"""


def hits(client: Client) -> float:
    return metric(client.get("/metrics").text, "fincat_graphql_result_cache_hits_total")


def cached(client: Client, query: str, variables: dict[str, Any] | None = None) -> Any:
    """The data of ``query``, asked until the answer came from the result cache."""
    first = ok(client, query, variables)
    before = hits(client)
    again = ok(client, query, variables)
    assert hits(client) == before + 1, "the second request was not answered from the cache"
    assert again == first
    return again


def test_a_write_through_rest_is_seen_at_once(local_target: StoreTarget) -> None:
    with client_for(local_target) as client:
        gdp = cached(client, TITLE, {"id": "GDP"})["series"]
        assert gdp["title"] == "Gross domestic product"
        response = client.patch("/v1/series/GDP", json={"title": "GDP, nominal"})
        assert response.status_code == 200, response.text
        after = ok(client, TITLE, {"id": "GDP"})["series"]
        assert after["title"] == "GDP, nominal"
        assert after["catalogVersion"] > gdp["catalogVersion"]

        values = cached(client, LAST, {"id": "UNRATE"})["series"]["observations"]["values"]
        assert values == [3.7, 3.9, 3.8, 3.9, 4.0, 4.0]
        written = client.post(
            "/v1/series/UNRATE/observations",
            json={"mode": "upsert", "dates": ["2024-06-01"], "values": [4.4]},
        )
        assert written.status_code == 200, written.text
        observations = ok(client, LAST, {"id": "UNRATE"})["series"]["observations"]
        assert observations["values"][-1] == 4.4


def test_a_mutation_is_seen_by_the_next_query(local_target: StoreTarget) -> None:
    with client_for(local_target) as client:
        cached(client, TITLE, {"id": "UNRATE"})
        changed = ok(
            client, 'mutation { updateSeries(id: "UNRATE", input: {title: "Jobless"}) { id } }'
        )
        assert changed == {"updateSeries": {"id": "UNRATE"}}
        assert ok(client, TITLE, {"id": "UNRATE"})["series"]["title"] == "Jobless"


def test_a_write_by_another_replica_is_seen(local_target: StoreTarget) -> None:
    # cache_ttl=0: the app asks the store for the latest version on every request, so
    # another replica's commit is seen by the next request (with a TTL, after it).
    with client_for(local_target, cache_ttl=0) as client:
        cached(client, TITLE, {"id": "GDPC1"})
        cached(client, LAST, {"id": "UNRATE"})
        other = local_target.open()
        try:
            other.update("GDPC1", {"title": "Real gross domestic product"})
            other.write("UNRATE", ([dt.date(2024, 7, 1)], [4.3]))
            other.delete("GDP")
        finally:
            other.close()
        assert ok(client, TITLE, {"id": "GDPC1"})["series"]["title"] == (
            "Real gross domestic product"
        )
        observations = ok(client, LAST, {"id": "UNRATE"})["series"]["observations"]
        assert observations["dates"][-1] == "2024-07-01"
        assert observations["values"][-1] == 4.3
        assert ok(client, TITLE, {"id": "GDP"}) == {"series": None}


def test_each_request_reads_its_own_variables_and_version(local_target: StoreTarget) -> None:
    with client_for(local_target) as client:
        gdp = cached(client, TITLE, {"id": "GDP"})["series"]
        unrate = cached(client, TITLE, {"id": "UNRATE"})["series"]
        assert (gdp["id"], unrate["id"]) == ("GDP", "UNRATE")
        # The past is immutable, and an explicit version is part of the key.
        past = 'query($v: AsOf) { series(id: "GDP", asOf: $v) { title version } }'
        at_create = cached(client, past, {"v": gdp["version"]})["series"]
        client.patch("/v1/series/GDP", json={"title": "Changed"})
        assert ok(client, past, {"v": gdp["version"]})["series"] == at_create
        assert ok(client, past, {"v": None})["series"]["title"] == "Changed"


def test_get_requests_and_requests_strawberry_refuses(local_target: StoreTarget) -> None:
    with client_for(local_target) as client:
        params = {"query": TITLE, "variables": json.dumps({"id": "GDP"})}
        first = client.get("/graphql", params=params).json()
        before = hits(client)
        assert client.get("/graphql", params=params).json() == first
        assert hits(client) == before + 1
        assert first["data"]["series"]["id"] == "GDP"
        # The same query, cached, in requests strawberry does not take.
        cached(client, TITLE, {"id": "GDP"})
        body = json.dumps({"query": TITLE, "variables": {"id": "GDP"}})
        plain = client.post("/graphql", content=body, headers={"Content-Type": "text/plain"})
        assert plain.status_code == 400
        error(plain.json(), "BAD_REQUEST")
        batch = client.post("/graphql", content=f"[{body}]", headers=JSON)
        assert batch.status_code == 400
        error(batch.json(), "BAD_REQUEST")
        wrong = json.dumps({"query": TITLE, "variables": ["GDP"]})
        assert client.post("/graphql", content=wrong, headers=JSON).status_code == 400


def test_answers_that_may_change_within_a_version_are_not_kept(
    local_target: StoreTarget,
) -> None:
    with client_for(local_target) as client:
        before = hits(client)
        for query in (
            "{ health { status version } }",
            "{ dataFreshness { checkedAt sources { source ageSeconds } } }",
            '{ series(id: "UNRATE") { revisions { count values } } }',
            "{ validateCatalog { ok } }",
            '{ series(id: "GDP") { title } health { status } }',
        ):
            for _ in range(3):
                ok(client, query)
        freshness = "{ dataFreshness { checkedAt } }"
        first = ok(client, freshness)["dataFreshness"]["checkedAt"]
        assert ok(client, freshness)["dataFreshness"]["checkedAt"] != first
        # Errors are not kept: a version that does not exist yet may be committed.
        missing = "{ version(number: 99) { version } }"
        for _ in range(3):
            error(post(client, missing), "NOT_FOUND")
        # Mutations are never answered from the cache: the third repeats the first,
        # and changes the units back, so it makes a version of its own.
        mutation = (
            'mutation($u: String!) { updateSeries(id: "GDPC1", input: {units: $u}) { version } }'
        )
        versions = [ok(client, mutation, {"u": u})["updateSeries"]["version"] for u in "xyx"]
        assert len(set(versions)) == 3
        assert hits(client) == before


def test_hits_are_still_authenticated_rate_limited_and_counted(
    local_target: StoreTarget,
) -> None:
    with client_for(local_target, api_keys=KEYS, rate_limit=0.01, rate_burst=4) as client:
        reader = bearer(READ_TOKEN)
        operations = "fincat_graphql_operations_total"
        first = ok(client, TITLE, {"id": "GDP"}, headers=reader)
        counted = metric(client.get("/metrics").text, operations, operation="query")
        assert ok(client, TITLE, {"id": "GDP"}, headers=reader) == first
        text = client.get("/metrics").text
        assert metric(text, "fincat_graphql_result_cache_hits_total") == 1
        assert metric(text, operations, operation="query", outcome="ok") == counted + 1
        missing = post(client, TITLE, {"id": "GDP"}, status=401)
        error(missing, "UNAUTHENTICATED")
        ok(client, TITLE, {"id": "GDP"}, headers=reader)
        ok(client, TITLE, {"id": "GDP"}, headers=reader)
        limited = post(client, TITLE, {"id": "GDP"}, headers=reader, status=429)
        error(limited, "RATE_LIMITED")


def test_the_cache_can_be_turned_off(local_target: StoreTarget) -> None:
    off = GraphQLSettings.from_env({"FINCAT_GRAPHQL_RESULT_CACHE_BYTES": "0"})
    assert off.result_cache_bytes == 0
    with pytest.raises(GraphQLSettingsError, match="result_cache_bytes"):
        GraphQLSettings(result_cache_bytes=-1)
    with client_for(local_target, graphql=off) as client:
        for _ in range(3):
            assert ok(client, TITLE, {"id": "GDP"})["series"]["id"] == "GDP"
        assert hits(client) == 0


def test_every_field_with_a_resolver_is_classified() -> None:
    """A new field with a resolver must be declared as reading only the pinned version
    or not, before any result holding it can be kept."""
    fields = schema_fields(build_schema())
    queries = {f for f in fields.resolved if not f.startswith("Mutation.")}
    assert not PINNED_FIELDS & UNPINNED_FIELDS
    assert queries == (PINNED_FIELDS | UNPINNED_FIELDS)
