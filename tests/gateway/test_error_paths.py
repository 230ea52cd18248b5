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
    for after in ([latest, None, True], [latest, encoded([latest - 1, 0, ""]), 0]):
        assert field_of(post(client, query, {"after": encoded(after)}), "VALIDATION") == "after"
    # A cursor made here goes on as before.
    first = ok(client, "query { seriesList(first: 1) { pageInfo { endCursor } } }")["seriesList"]
    rest = ok(client, query, {"after": first["pageInfo"]["endCursor"]})["seriesList"]
    assert rest["catalogVersion"] == latest
