"""Which input an error names: GraphQL paths in the schema's names, and forged
listing cursors, which are bad cursors on both surfaces, never a version to look up."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.gateway.conftest import Client, problem
from tests.gateway.test_graphql import error, ok, post

BATCH = "mutation($ops: [BatchOperation!]!) { commitBatch(operations: $ops) { version } }"


def field_of(body: dict[str, Any], code: str) -> str:
    found = error(body, code)["extensions"]
    assert "field" in found, found
    return str(found["field"])


def test_a_bad_expected_version_is_named_where_it_was_given(client: Client) -> None:
    single = [
        'updateSeries(id: "GDP", input: {title: "x"}, expectedVersion: -5) { id }',
        'deleteSeries(id: "GDP", expectedVersion: -5) { version }',
        'writeObservations(seriesId: "GDP", dates: ["2025-01-01"], values: [1], '
        "expectedVersion: -5) { id }",
    ]
    for mutation in single:
        assert field_of(post(client, f"mutation {{ {mutation} }}"), "VALIDATION") == (
            "expectedVersion"
        ), mutation
    ops = {
        "update": {"id": "GDP", "changes": {"title": "x"}, "expectedVersion": -5},
        "delete": {"id": "GDP", "expectedVersion": -5},
        "write": {"seriesId": "GDP", "dates": ["2025-01-01"], "values": [1], "expectedVersion": -5},
    }
    for kind, op in ops.items():
        body = post(client, BATCH, {"ops": [{kind: op}]})
        assert field_of(body, "VALIDATION") == f"operations.0.{kind}.expectedVersion"


def test_what_the_commit_finds_is_named_in_the_schemas_names(client: Client) -> None:
    gdp = ok(client, '{ series(id: "GDP") { version } }')["series"]["version"]
    ok(client, 'mutation { updateSeries(id: "GDP", input: {title: "moved on"}) { id } }')
    stale = post(
        client,
        'mutation($v: Int) { updateSeries(id: "GDP", input: {units: "x"}, expectedVersion: $v) '
        "{ id } }",
        {"v": gdp},
    )
    assert field_of(stale, "PRECONDITION_FAILED") == "expectedVersion"
    title = {"update": {"id": "GDPC1", "changes": {"title": "t"}}}
    stale_ops = [
        title,
        {"update": {"id": "GDP", "changes": {"units": "x"}, "expectedVersion": gdp}},
    ]
    assert field_of(post(client, BATCH, {"ops": stale_ops}), "PRECONDITION_FAILED") == (
        "operations.1.update.expectedVersion"
    )
    # What only the stored series can tell: UNRATE is monthly and has observations.
    mid_month = {"write": {"seriesId": "UNRATE", "dates": ["2025-01-15"], "values": [1.0]}}
    assert field_of(post(client, BATCH, {"ops": [title, mid_month]}), "VALIDATION") == (
        "operations.1.write.dates"
    )
    early = {"write": {"seriesId": "UNRATE", "dates": ["2020-01-01"], "values": [1.0]}}
    assert field_of(post(client, BATCH, {"ops": [title, title, early]}), "CONFLICT") == (
        "operations.2.write.dates"
    )
    daily = {"update": {"id": "UNRATE", "changes": {"frequency": "DAILY"}}}
    assert field_of(post(client, BATCH, {"ops": [daily]}), "VALIDATION") == (
        "operations.0.update.changes.frequency"
    )
    alone = 'mutation { updateSeries(id: "UNRATE", input: {frequency: DAILY}) { id } }'
    assert field_of(post(client, alone), "VALIDATION") == "input.frequency"
    assert ok(client, '{ series(id: "GDPC1") { title } }')["series"]["title"] == "Real GDP"


def encoded(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "version", [2**63, 10**30, True, 1.0, -1], ids=["2^63", "10^30", "true", "float", "negative"]
)
def test_a_forged_cursor_version_is_a_bad_cursor(client: Client, version: Any) -> None:
    listed = problem(client.get("/v1/series", params={"cursor": encoded([version, 0, ""])}), 422)
    assert listed["errors"][0]["field"] == "cursor"
    query = "query($after: String) { seriesList(first: 1, after: $after) { catalogVersion } }"
    for after in ([version, None, 0], [1, encoded([version, 0, ""]), 0]):
        assert field_of(post(client, query, {"after": encoded(after)}), "VALIDATION") == "after"


def test_forged_cursor_positions_are_bad_cursors(client: Client) -> None:
    latest = client.get("/v1/versions?limit=1").json()["items"][0]["version"]
    for position in ([latest, True, ""], [latest, 0, 1]):
        listed = problem(client.get("/v1/series", params={"cursor": encoded(position)}), 422)
        assert listed["errors"][0]["field"] == "cursor"
    query = "query($after: String) { seriesList(first: 1, after: $after) { catalogVersion } }"
    for after in (
        [latest, None, True],
        [latest, encoded([latest - 1, 0, ""]), 0],
        [latest, None, 999_999],  # past any catalog page: a scan the budget never saw
    ):
        assert field_of(post(client, query, {"after": encoded(after)}), "VALIDATION") == "after"
    # A cursor made here goes on as before.
    first = ok(client, "query { seriesList(first: 1) { pageInfo { endCursor } } }")["seriesList"]
    rest = ok(client, query, {"after": first["pageInfo"]["endCursor"]})["seriesList"]
    assert rest["catalogVersion"] == latest


def test_a_cursor_past_the_newest_version_is_a_bad_cursor(client: Client) -> None:
    latest = client.get("/v1/versions?limit=1").json()["items"][0]["version"]
    ahead = latest + 1000  # a version no commit has made: no listing here made the cursor
    refused = [
        client.get("/v1/series", params={"cursor": encoded([ahead, 0, ""])}),
        client.get("/v1/versions", params={"cursor": str(ahead)}),
        client.get("/v1/series/GDP/history", params={"cursor": encoded([ahead, 1])}),
    ]
    for response in refused:
        assert problem(response, 422)["errors"][0]["field"] == "cursor", response.url
    listing = "query($after: String) { seriesList(first: 1, after: $after) { catalogVersion } }"
    assert field_of(post(client, listing, {"after": encoded([ahead, None, 0])}), "VALIDATION") == (
        "after"
    )
    versions = "query($after: String) { versions(first: 1, after: $after) { edges { cursor } } }"
    assert field_of(post(client, versions, {"after": str(ahead)}), "VALIDATION") == "after"
    # The newest version itself is a cursor this server can have made.
    newest = client.get("/v1/series", params={"cursor": encoded([latest, 0, ""]), "limit": 1})
    assert newest.status_code == 200
    page = ok(client, versions, {"after": str(latest)})["versions"]["edges"]
    assert [int(e["cursor"]) for e in page] == [latest - 1]


def test_a_missing_or_taken_series_in_a_batch_names_its_operation(client: Client) -> None:
    title = {"update": {"id": "GDPC1", "changes": {"title": "t"}}}
    missing = post(client, BATCH, {"ops": [title, {"delete": {"id": "NOPE"}}]})
    assert field_of(missing, "NOT_FOUND") == "operations.1.delete.id"
    write = {"write": {"seriesId": "NOPE", "dates": ["2025-01-01"], "values": [1.0]}}
    assert field_of(post(client, BATCH, {"ops": [title, write]}), "NOT_FOUND") == (
        "operations.1.write.seriesId"
    )
    taken = {"create": {"id": "GDP", "frequency": "QUARTERLY"}}
    assert field_of(post(client, BATCH, {"ops": [title, taken]}), "CONFLICT") == (
        "operations.1.create.id"
    )
    assert ok(client, '{ series(id: "GDPC1") { title } }')["series"]["title"] == "Real GDP"
