"""Preconditions over HTTP: ``If-Match`` (RFC 9110 13.1.1) on the routes that take it,
and the per-operation ``expected_version`` of ``POST /v1/commits``, which does not
read ``If-Match``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.gateway.conftest import Client, problem

WRITE_ONE = {"dates": ["2025-01-01"], "values": [1.0]}


def conditional(client: Client, method: str, series_id: str, if_match: str) -> httpx.Response:
    """One of the routes that honour If-Match, on ``series_id``."""
    headers = {"If-Match": if_match}
    if method == "PATCH":
        return client.patch(f"/v1/series/{series_id}", json={"units": "x"}, headers=headers)
    if method == "DELETE":
        return client.delete(f"/v1/series/{series_id}", headers=headers)
    path = f"/v1/series/{series_id}/observations"
    return client.post(path, json=WRITE_ONE, headers=headers)


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "POST"])
def test_if_match_compares_strongly_and_needs_the_series(client: Client, method: str) -> None:
    before = client.get("/v1/series/GDP")
    current = before.headers["etag"]
    assert current == f'"{before.json()["version"]}"'
    # The weak form of the current ETag does not match by strong comparison.
    weak = problem(conditional(client, method, "GDP", f"W/{current}"), 412)
    assert weak["type"].endswith("version-mismatch")
    assert client.get("/v1/series/GDP").json() == before.json()
    # No series, no current representation: If-Match fails, "*" too; without it, a 404.
    for if_match in ("*", current):
        missing = problem(conditional(client, method, "NOPE", if_match), 412)
        assert missing["type"].endswith("version-mismatch")
    problem(conditional(client, method, "NOPE", 'W/"x"'), 412)
    # Any well-formed ETag this server never issued matches nothing: a failed
    # precondition (RFC 9110), not invalid input. ETags are text, so the current
    # version with a leading zero is one of them; so is one past any version a
    # catalog reaches, of any length (20 digits were a 400).
    for other in (
        f'"0{before.json()["version"]}"',
        '"1000000000000000001"',
        '"9999999999999999999"',
        '"99999999999999999999"',
        '"' + "9" * 400 + '"',
        '"abc"',
        '""',
    ):
        problem(conditional(client, method, "GDP", other), 412)
    # Not one entity-tag: unreadable, a 400.
    for malformed in ("42", '"4"2"', '"1", "2"', 'W/ "3"'):
        problem(conditional(client, method, "GDP", malformed), 400)
    assert client.get("/v1/series/GDP").json() == before.json()
    assert conditional(client, method, "GDP", "*").status_code == 200
    gone = client.get("/v1/series/GDP")
    if method == "DELETE":
        problem(gone, 404)
    else:
        assert gone.json()["version"] > before.json()["version"]


def stale_commit(client: Client) -> tuple[dict[str, Any], str]:
    """A commit whose third operation expects a version GDP has left, and GDP's ETag."""
    version = client.get("/v1/series/GDP").json()["version"]
    tag = client.patch("/v1/series/GDP", json={"title": "moved on"}).headers["etag"]
    operations = [
        {"op": "update", "id": "UNRATE", "changes": {"units": "x"}},
        {"op": "create", "series": {"id": "NEW", "frequency": "annual"}},
        {"op": "update", "id": "GDP", "changes": {"units": "y"}, "expected_version": version},
    ]
    return {"operations": operations}, tag


def test_a_commit_answers_alike_whatever_if_match_says(client: Client) -> None:
    body, tag = stale_commit(client)
    answers = [client.post("/v1/commits", json=body)]
    for if_match in ("*", tag, f"W/{tag}", '"1"', "nonsense"):
        answers.append(client.post("/v1/commits", json=body, headers={"If-Match": if_match}))
    for answer in answers:
        stale = problem(answer, 409)
        assert stale["type"].endswith("version-mismatch")
        assert stale["errors"] == [
            {"field": "operations.2.expected_version", "message": stale["detail"]}
        ]
    problem(client.get("/v1/series/NEW"), 404)
    # A commit that holds lands whatever the header says.
    body["operations"][2].pop("expected_version")
    landed = client.post("/v1/commits", json=body, headers={"If-Match": '"1"'})
    assert landed.status_code == 201, landed.text


def test_what_the_commit_finds_names_its_operation(client: Client) -> None:
    version = client.get("/v1/versions?limit=1").json()["items"][0]["version"]

    def refused(status: int, *operations: dict[str, Any]) -> dict[str, Any]:
        found = problem(client.post("/v1/commits", json={"operations": list(operations)}), status)
        error: dict[str, Any] = found["errors"][0]
        return error

    title = {"op": "update", "id": "GDPC1", "changes": {"title": "t"}}
    # Dates UNRATE's frequency does not take: only the stored series can tell.
    mid_month = {"op": "write", "id": "UNRATE", "dates": ["2025-01-15"], "values": [1.0]}
    assert refused(422, title, mid_month)["field"] == "operations.1.dates"
    early = {"op": "write", "id": "GDP", "dates": ["2020-01-01"], "values": [1.0]}
    assert refused(409, title, title, early)["field"] == "operations.2.dates"
    daily = {"op": "update", "id": "GDP", "changes": {"frequency": "daily"}}
    assert refused(422, daily)["field"] == "operations.0.changes.frequency"
    assert client.get("/v1/versions?limit=1").json()["items"][0]["version"] == version
