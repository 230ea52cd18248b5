"""Atomic multi-series commits and the catalog's history over HTTP."""

from __future__ import annotations

from tests.gateway.conftest import Client, problem


def test_commit_is_atomic_and_listed(shared_client: Client) -> None:
    c = shared_client
    before = c.get("/v1/versions?limit=1").json()["items"][0]["version"]
    gdp = c.get("/v1/series/GDP").json()
    response = c.post(
        "/v1/commits",
        json={
            "message": "nightly load",
            "operations": [
                {"op": "create", "series": {"id": "CPI", "frequency": "monthly", "source": "BLS"}},
                {"op": "write", "id": "CPI", "dates": ["2024-01-01"], "values": [308.4]},
                {
                    "op": "update",
                    "id": "GDP",
                    "changes": {"units": "USD bn"},
                    "expected_version": gdp["version"],
                },
                {"op": "delete", "id": "GDPC1"},
                {
                    "op": "write",
                    "id": "UNRATE",
                    "mode": "upsert",
                    "dates": ["2024-06-01"],
                    "values": [4.2],
                },
            ],
        },
    )
    assert response.status_code == 201, response.text
    version = response.json()["version"]
    assert response.json() == {"version": version, "operations": 5}
    assert version == before + 1
    assert response.headers["location"] == f"/v1/versions/{version}"

    detail = c.get(f"/v1/versions/{version}").json()
    assert detail["message"] == "nightly load"
    assert {(ch["action"], ch["series_id"]) for ch in detail["changes"]} >= {
        ("delete", "GDPC1"),
    }
    assert {ch["series_id"] for ch in detail["changes"]} == {"CPI", "GDP", "GDPC1", "UNRATE"}
    assert detail["committed_at"].endswith("Z")
    assert c.get("/v1/series/CPI").json()["observation_count"] == 1
    assert c.get("/v1/series/GDP").json()["units"] == "USD bn"
    problem(c.get("/v1/series/GDPC1"), 404)


def test_a_commit_that_changes_nothing_makes_no_version(client: Client) -> None:
    version = client.get("/v1/versions?limit=1").json()["items"][0]["version"]
    title = client.get("/v1/series/GDP").json()["title"]
    same = {"operations": [{"op": "update", "id": "GDP", "changes": {"title": title}}]}
    answer = client.post("/v1/commits", json=same)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"version": version, "operations": 1}
    assert "location" not in answer.headers
    changed = {"operations": [{"op": "update", "id": "GDP", "changes": {"title": "new"}}]}
    answer = client.post("/v1/commits", json=changed)
    assert answer.status_code == 201
    assert answer.json()["version"] == version + 1
    passing = {
        "operations": [
            {"op": "create", "series": {"id": "TEMP", "frequency": "annual"}},
            {"op": "write", "id": "TEMP", "dates": ["2000-01-01"], "values": [1.0]},
            {"op": "delete", "id": "TEMP"},
        ]
    }
    answer = client.post("/v1/commits", json=passing)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"version": version + 1, "operations": 3}
    assert "location" not in answer.headers


def test_failed_commit_changes_nothing(client: Client) -> None:
    version = client.get("/v1/versions?limit=1").json()["items"][0]["version"]
    bad_spec = problem(
        client.post(
            "/v1/commits",
            json={
                "operations": [
                    {"op": "create", "series": {"id": "A1", "frequency": "monthly"}},
                    {"op": "create", "series": {"id": "A2", "frequency": "fortnightly"}},
                ]
            },
        ),
        422,
    )
    assert bad_spec["errors"][0]["field"] == "operations.1.series.frequency"
    bad_values = problem(
        client.post(
            "/v1/commits",
            json={
                "operations": [
                    {"op": "create", "series": {"id": "A1", "frequency": "monthly"}},
                    {"op": "write", "id": "A1", "dates": ["2024-01-15"], "values": [1]},
                ]
            },
        ),
        422,
    )
    assert bad_values["errors"][0]["field"] == "operations.1.dates"
    stale = problem(
        client.post(
            "/v1/commits",
            json={
                "operations": [
                    {"op": "create", "series": {"id": "A1", "frequency": "monthly"}},
                    {"op": "delete", "id": "GDP", "expected_version": 1_000},
                ]
            },
        ),
        409,
    )
    assert stale["type"].endswith("version-mismatch")
    # A version no catalog can reach is bad input, not a stale one: a client that
    # retries conflicts would retry it for good.
    before = client.get("/v1/versions?limit=1").json()["items"][0]["version"]
    for impossible in (10**18 + 1, 2**63, 10**30):
        past = problem(
            client.post(
                "/v1/commits",
                json={
                    "operations": [
                        {"op": "update", "id": "GDP", "changes": {"title": "x"}},
                        {"op": "delete", "id": "GDP", "expected_version": impossible},
                    ]
                },
            ),
            422,
        )
        assert past["errors"][0]["field"] == "operations.1.expected_version", past
    assert client.get("/v1/versions?limit=1").json()["items"][0]["version"] == before
    problem(client.post("/v1/commits", json={"operations": [{"op": "delete", "id": "NOPE"}]}), 404)
    exists = client.post(
        "/v1/commits",
        json={"operations": [{"op": "create", "series": {"id": "GDP", "frequency": "annual"}}]},
    )
    problem(exists, 409)
    assert (
        problem(client.post("/v1/commits", json={"operations": []}), 422)["errors"][0]["field"]
        == "operations"
    )
    assert problem(
        client.post("/v1/commits", json={"operations": [{"op": "rename", "id": "GDP"}]}), 422
    )["errors"][0]["field"].startswith("operations.0")
    problem(client.post("/v1/commits", json={"operations": [{"op": "delete"}]}), 422)
    problem(client.post("/v1/commits", json={"ops": []}), 422)
    problem(
        client.post("/v1/commits", content=b"nope", headers={"content-type": "application/json"}),
        400,
    )
    assert client.get("/v1/versions?limit=1").json()["items"][0]["version"] == version
    problem(client.get("/v1/series/A1"), 404)


def test_update_errors_name_their_operation(client: Client) -> None:
    version = client.get("/v1/versions?limit=1").json()["items"][0]["version"]

    def field_of(*operations: dict[str, object]) -> str:
        response = client.post("/v1/commits", json={"operations": list(operations)})
        return str(problem(response, 422)["errors"][0]["field"])

    create = {"op": "create", "series": {"id": "NEW", "frequency": "monthly"}}
    assert field_of({"op": "update", "id": "GDP", "changes": {"bogus": 1}}) == (
        "operations.0.changes.bogus"
    )
    tags = {"op": "update", "id": "GDP", "changes": {"tags": ["ok", "not ok"]}}
    assert field_of(create, tags) == "operations.1.changes.tags.1"
    assert field_of(create, {"op": "update", "id": "NEW", "changes": {"frequency": "hourly"}}) == (
        "operations.1.changes.frequency"
    )
    renamed = {"op": "update", "id": "GDP", "changes": {"id": "OTHER"}}
    assert field_of(create, create | {"series": {"id": "B", "frequency": "annual"}}, renamed) == (
        "operations.2.changes.id"
    )
    assert field_of({"op": "update", "id": "a b", "changes": {}}) == "operations.0.id"
    assert client.get("/v1/versions?limit=1").json()["items"][0]["version"] == version
    problem(client.get("/v1/series/NEW"), 404)


def test_a_missing_or_taken_series_names_its_operation(client: Client) -> None:
    version = client.get("/v1/versions?limit=1").json()["items"][0]["version"]

    def refused(status: int, *operations: dict[str, object]) -> str:
        body = problem(client.post("/v1/commits", json={"operations": list(operations)}), status)
        assert client.get("/v1/versions?limit=1").json()["items"][0]["version"] == version
        return str(body["errors"][0]["field"])

    units = {"op": "update", "id": "GDP", "changes": {"units": "z"}}
    assert refused(404, units, {"op": "delete", "id": "NOPE"}) == "operations.1.id"
    assert refused(404, {"op": "update", "id": "NOPE", "changes": {"units": "z"}}) == (
        "operations.0.id"
    )
    write = {"op": "write", "id": "NOPE", "dates": ["2024-01-01"], "values": [1.0]}
    assert refused(404, units, write) == "operations.1.id"
    gone = {"op": "delete", "id": "GDP"}
    assert refused(404, gone, write | {"id": "GDP"}) == "operations.1.id"
    create = {"op": "create", "series": {"id": "GDP", "frequency": "quarterly"}}
    assert refused(409, units, create) == "operations.1.series.id"
    twice = create | {"series": {"id": "TWICE", "frequency": "annual"}}
    assert refused(409, twice, twice) == "operations.1.series.id"


def test_a_commit_message_with_control_characters_is_refused(client: Client) -> None:
    version = client.get("/v1/versions?limit=1").json()["items"][0]["version"]
    ops = [{"op": "update", "id": "GDP", "changes": {"units": "z"}}]
    body = {"operations": ops, "message": "clear \u001b[2J"}
    assert problem(client.post("/v1/commits", json=body), 422)["errors"][0]["field"] == "message"
    assert client.get("/v1/versions?limit=1").json()["items"][0]["version"] == version


def test_versions_paging(client: Client) -> None:
    latest = client.get("/v1/versions?limit=1").json()
    top = latest["items"][0]["version"]
    seen = [top]
    cursor = latest["next_cursor"]
    while cursor is not None:
        page = client.get("/v1/versions", params={"limit": 2, "cursor": cursor}).json()
        seen += [v["version"] for v in page["items"]]
        cursor = page["next_cursor"]
    assert seen == list(range(top, -1, -1))
    assert client.get("/v1/versions/0").json()["changes"] == []
    problem(client.get(f"/v1/versions/{top + 1}"), 404)
    problem(client.get("/v1/versions/-1"), 422)
    problem(client.get("/v1/versions/abc"), 404)  # matches no route
    problem(client.get(f"/v1/versions/{10**23}"), 422)
    problem(client.get("/v1/versions?cursor=x"), 422)
    problem(client.get("/v1/versions?limit=0"), 422)
    # No listing made a cursor past the newest version: a bad cursor, not a lookup.
    ahead = problem(client.get(f"/v1/versions?cursor={top + 5}"), 422)
    assert ahead["errors"][0]["field"] == "cursor"


def test_a_series_history_pages_through_its_changes(client: Client) -> None:
    whole = client.get("/v1/series/UNRATE/history").json()
    assert whole["next_cursor"] is None
    items = whole["items"]
    assert [i["action"] for i in items] == ["upsert", "append", "create"]
    assert [i["actions"] for i in items] == [["upsert"], ["append"], ["create"]]
    assert [i["series"]["observation_count"] for i in items] == [6, 6, 0]
    assert all(i["series"]["version"] == i["version"] for i in items)
    assert items[0]["message"] and items[0]["committed_at"].endswith("Z")
    versions = [i["version"] for i in items]
    seen, cursor = [], None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/series/UNRATE/history", params=params).json()
        assert len(page["items"]) == 1, "a page with nothing on it"
        seen += [i["version"] for i in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == versions
    then = client.get("/v1/series/UNRATE/history", params={"as_of": versions[1]}).json()
    assert [i["version"] for i in then["items"]] == versions[1:]
    # The cursor pins the version the listing started at: the series deleted and
    # created again meanwhile, the next page goes on with the history it began.
    first = client.get("/v1/series/UNRATE/history", params={"limit": 1}).json()
    assert client.delete("/v1/series/UNRATE").status_code == 200
    created = client.post("/v1/series", json={"id": "UNRATE", "frequency": "monthly"})
    assert created.status_code == 201
    rest = client.get("/v1/series/UNRATE/history", params={"cursor": first["next_cursor"]})
    assert [i["version"] for i in rest.json()["items"]] == versions[1:]
    now = client.get("/v1/series/UNRATE/history").json()["items"]
    assert [i["action"] for i in now] == ["create"]
    for made_up in ("999", "0", first["next_cursor"][:-2], "WzEsMl0"):  # WzEsMl0: [1,2]
        assert (
            problem(client.get("/v1/series/UNRATE/history", params={"cursor": made_up}), 422)[
                "errors"
            ][0]["field"]
            == "cursor"
        )
    assert problem(client.get("/v1/series/NOPE/history"), 404)
    assert (
        problem(client.get("/v1/series/UNRATE/history?cursor=x"), 422)["errors"][0]["field"]
        == "cursor"
    )
    problem(client.get("/v1/series/UNRATE/history?limit=0"), 422)
    problem(client.get("/v1/series/UNRATE/history?as_of=2024-01-01T00:00:00"), 422)
