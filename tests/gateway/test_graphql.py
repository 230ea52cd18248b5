"""GraphQL queries over HTTP (Litestar's TestClient), and the helpers of the GraphQL tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from gateway.graphql.config import GraphQLSettings
from tests.conftest import StoreTarget
from tests.gateway.conftest import Client, client_for, seed

# -- helpers shared by the GraphQL test modules ------------------------------------------


def post(
    client: Client,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    status: int = 200,
) -> dict[str, Any]:
    """POST a GraphQL operation; assert the HTTP status; return the decoded body."""
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    response = client.post("/graphql", json=payload, headers=headers or {})
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def ok(client: Client, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
    """The data of an operation that must succeed without errors."""
    body = post(client, query, variables, **kw)
    assert "errors" not in body, body["errors"]
    return body["data"]


def error(body: dict[str, Any], code: str) -> dict[str, Any]:
    """Assert ``body`` holds exactly one error, with ``code``; return it."""
    errors = body.get("errors")
    assert errors and len(errors) == 1, body
    assert errors[0]["extensions"]["code"] == code, errors[0]
    found: dict[str, Any] = errors[0]
    return found


SERIES_FIELDS = """
    id title description source frequency units seasonalAdjustment tags
    externalIds { provider id } attributes partitioning createdAt updatedAt version
    firstDate lastDate observationCount catalogVersion
"""


# -- queries ------------------------------------------------------------------------------


def test_series_metadata_and_observations(shared_target: StoreTarget) -> None:
    seed(shared_target)
    with client_for(shared_target) as client:
        data = ok(
            client,
            f"""{{ series(id: "GDP") {{ {SERIES_FIELDS}
                 observations {{ count dates values instants seriesId version catalogVersion }}
            }} }}""",
        )
        series = data["series"]
        assert series["id"] == "GDP"
        assert series["frequency"] == "QUARTERLY"
        assert series["tags"] == ["macro", "output"]
        assert series["externalIds"] == [{"provider": "fred", "id": "GDP"}]
        assert series["attributes"] == {}
        assert (series["firstDate"], series["lastDate"]) == ("2023-01-01", "2023-10-01")
        assert series["observationCount"] == 4
        observations = series["observations"]
        assert observations["count"] == 4
        assert observations["dates"] == ["2023-01-01", "2023-04-01", "2023-07-01", "2023-10-01"]
        assert observations["values"] == [26000.0, 26500.0, None, 27600.0]
        assert observations["instants"] is None
        assert observations["version"] == series["version"]
        assert observations["catalogVersion"] == series["catalogVersion"]
        ranged = ok(
            client,
            '{ series(id: "GDP") { observations(start: "2023-02-01", end: "2023-07-01") '
            "{ dates values } } }",
        )
        assert ranged["series"]["observations"] == {
            "dates": ["2023-04-01", "2023-07-01"],
            "values": [26500.0, None],
        }
        assert ok(client, '{ series(id: "NOPE") { id } }') == {"series": None}
        body = post(
            client,
            '{ series(id: "GDP") { observations(start: "2024-01-01", end: '
            '"2023-01-01") { count } } }',
        )
        assert error(body, "VALIDATION")["extensions"]["field"] == "start"


def test_as_of_reads_the_past(client: Client) -> None:
    versions = ok(client, "{ versions(first: 50) { edges { node { version message } } } }")
    nodes = [e["node"] for e in versions["versions"]["edges"]]
    upsert = next(n["version"] for n in nodes if n["message"] == "upsert UNRATE")
    query = """query($at: AsOf) { series(id: "UNRATE", asOf: $at) {
        version catalogVersion observations { values } } }"""
    before = ok(client, query, {"at": upsert - 1})["series"]
    after = ok(client, query, {"at": str(upsert)})["series"]
    assert before["observations"]["values"][-1] == 4.1
    assert after["observations"]["values"][-1] == 4.0
    assert (before["catalogVersion"], after["catalogVersion"]) == (upsert - 1, upsert)
    now = dt.datetime.now(dt.UTC).isoformat()
    assert ok(client, query, {"at": now})["series"]["observations"]["values"][-1] == 4.0
    # An observations field may read another version than its series.
    mixed = ok(
        client,
        f'{{ series(id: "UNRATE") {{ observations(asOf: {upsert - 1}) '
        "{ values catalogVersion } } }",
    )
    assert mixed["series"]["observations"]["values"][-1] == 4.1
    bad = post(client, query, {"at": "2024-01-01T00:00:00"})
    assert error(bad, "VALIDATION")["extensions"]["field"] == "asOf"
    missing = post(client, '{ series(id: "GDP", asOf: 100000) { id } }')
    error(missing, "NOT_FOUND")
    early = post(client, '{ series(id: "GDP", asOf: "1990-01-01T00:00:00Z") { id } }')
    error(early, "NOT_FOUND")


def test_series_list_pages_and_filters(client: Client) -> None:
    query = """query($filter: SeriesFilter, $first: Int!, $after: String) {
        seriesList(filter: $filter, first: $first, after: $after) {
            edges { cursor node { id } } pageInfo { hasNextPage endCursor } catalogVersion } }"""
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = ok(client, query, {"first": 2, "after": after})["seriesList"]
        seen += [e["node"]["id"] for e in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    assert sorted(seen) == ["GDP", "GDPC1", "UNRATE"]
    assert pages == 2

    def ids(flt: dict[str, Any]) -> list[str]:
        page = ok(client, query, {"filter": flt, "first": 10})["seriesList"]
        return sorted(e["node"]["id"] for e in page["edges"])

    assert ids({"source": "BEA"}) == ["GDP", "GDPC1"]
    assert ids({"frequency": "MONTHLY"}) == ["UNRATE"]
    assert ids({"tags": ["macro", "output"]}) == ["GDP"]
    assert ids({"text": "real"}) == ["GDPC1"]
    assert ids({"externalProvider": "fred"}) == ["GDP"]
    assert ids({"externalProvider": "fred", "externalId": "GDP"}) == ["GDP"]
    assert ids({"externalProvider": "fred", "externalId": "GDP", "source": "BLS"}) == []
    assert ids({"externalProvider": "fred", "externalId": "NOPE"}) == []
    assert ids({"observedBetween": {"start": "2024-03-01"}}) == ["UNRATE"]
    assert ids({"observedBetween": {"end": "2023-06-30"}}) == ["GDP"]
    assert ids({"observedBetween": {"start": "2023-06-01", "end": "2024-01-31"}}) == [
        "GDP",
        "UNRATE",
    ]
    assert ids({"observedBetween": {"start": "2024-01-31", "end": "2024-01-31"}}) == ["UNRATE"]
    # Unbounded, it still asks for observations: GDPC1 has none.
    assert ids({"observedBetween": {}}) == ["GDP", "UNRATE"]
    assert ids({"observedBetween": {"start": None, "end": None}}) == ["GDP", "UNRATE"]
    reversed_range = {"observedBetween": {"start": "2024-02-01", "end": "2024-01-01"}}
    refused = post(client, query, {"filter": reversed_range, "first": 10})
    assert error(refused, "VALIDATION")["extensions"]["field"] == "filter.observedBetween.start"
    # A filtered listing pages like any other, at the version of its first page.
    page = ok(client, query, {"filter": {"source": "BEA"}, "first": 1})["seriesList"]
    ok(
        client,
        'mutation { createSeries(input: {id: "BEA2", frequency: ANNUAL, source: "BEA"}) { id } }',
    )
    rest = ok(
        client,
        query,
        {"filter": {"source": "BEA"}, "first": 10, "after": page["pageInfo"]["endCursor"]},
    )["seriesList"]
    assert rest["catalogVersion"] == page["catalogVersion"]
    assert len(page["edges"]) + len(rest["edges"]) == 2
    assert ids({"source": "BEA"}) == ["BEA2", "GDP", "GDPC1"]

    error(post(client, query, {"first": 0}), "VALIDATION")
    assert error(post(client, query, {"first": 101}), "VALIDATION")["extensions"]["field"] == (
        "first"
    )
    for cursor in ("not-a-cursor", ""):  # empty is no cursor: it restarted the listing
        bad_cursor = post(client, query, {"first": 1, "after": cursor})
        assert error(bad_cursor, "VALIDATION")["extensions"]["field"] == "after"
    alone = post(client, query, {"first": 1, "filter": {"externalId": "GDP"}})
    assert error(alone, "VALIDATION")["extensions"]["field"] == "filter.externalProvider"


def test_series_by_external_id(client: Client) -> None:
    found = ok(client, '{ seriesByExternalId(provider: "fred", id: "GDP") { id version } }')
    assert found["seriesByExternalId"]["id"] == "GDP"
    none = ok(client, '{ seriesByExternalId(provider: "fred", id: "NOPE") { id } }')
    assert none == {"seriesByExternalId": None}
    # Text beside an external id is matched as a listing matches it: full-width
    # letters and case folded alike.
    listed = ok(
        client,
        '{ seriesList(filter: {text: "\uff24\uff2f\uff2d\uff25\uff33\uff34\uff29\uff23", '
        'externalProvider: "fred", externalId: "GDP"}) { edges { node { id } } } }',
    )
    assert listed["seriesList"]["edges"] == [{"node": {"id": "GDP"}}]


def test_an_empty_external_provider_or_id_is_refused(client: Client) -> None:
    by_id = "query($p: String!, $i: String!) { seriesByExternalId(provider: $p, id: $i) { id } }"
    for provider, ident, field in (("", "GDP", "provider"), ("fred", "", "id")):
        refused = post(client, by_id, {"p": provider, "i": ident})
        assert error(refused, "VALIDATION")["extensions"]["field"] == field
    listing = "query($f: SeriesFilter) { seriesList(filter: $f) { edges { node { id } } } }"
    for given, field in (
        ({"externalProvider": "fred", "externalId": ""}, "filter.externalId"),
        ({"externalProvider": "", "externalId": "GDP"}, "filter.externalProvider"),
        ({"externalProvider": ""}, "filter.externalProvider"),
    ):
        refused = post(client, listing, {"f": given})
        assert error(refused, "VALIDATION")["extensions"]["field"] == field


def test_rest_and_graphql_read_date_text_alike(client: Client) -> None:
    query = 'query($s: Date) { series(id: "UNRATE") { observations(start: $s) { dates } } }'
    for text, taken in (
        ("2024-05-01", True),
        (" 2024-05-01 ", True),
        ("20240501", False),
        ("2024W183", False),
        ("2024-W18-3", False),
        ("2024-5-1", False),
        ("2024-02-30", False),
        ("x", False),
    ):
        rest = client.get("/v1/series/UNRATE/observations", params={"start": text})
        graphql = post(client, query, {"s": text})
        assert (rest.status_code == 200) is taken, (text, rest.text)
        if taken:
            dates = graphql["data"]["series"]["observations"]["dates"]
            assert dates == rest.json()["dates"] == ["2024-05-01", "2024-06-01"]
        else:
            refused = error(graphql, "GRAPHQL_VALIDATION_FAILED")
            assert "date like 2024-01-31" in refused["message"], text
    inline = post(client, '{ series(id: "UNRATE") { observations(start: "20240501") { count } } }')
    error(inline, "GRAPHQL_VALIDATION_FAILED")


def test_revisions_and_history(client: Client) -> None:
    data = ok(
        client,
        """{ series(id: "UNRATE") {
            revisions(start: "2024-06-01") { count dates values realtimeStart realtimeEnd }
            first: revisions(start: "2024-06-01", firstReleaseOnly: true) { values }
            history { version action message committedAt series { version observationCount } }
        } }""",
    )["series"]
    revisions = data["revisions"]
    assert revisions["count"] == 2
    assert revisions["dates"] == ["2024-06-01", "2024-06-01"]
    assert revisions["values"] == [4.1, 4.0]
    assert revisions["realtimeEnd"][0] == revisions["realtimeStart"][1]
    assert revisions["realtimeEnd"][1] is None
    assert data["first"]["values"] == [4.1]
    history = data["history"]
    assert [h["action"] for h in history] == ["upsert", "append", "create"]
    assert [h["series"]["observationCount"] for h in history] == [6, 6, 0]
    assert history[0]["version"] > history[1]["version"] > history[2]["version"]
    assert all(h["series"]["version"] == h["version"] for h in history)
    older = ok(
        client,
        f'{{ series(id: "UNRATE") {{ history(first: 1, before: {history[0]["version"]}) '
        "{ version } } }",
    )["series"]["history"]
    assert older == [{"version": history[1]["version"]}]


def test_revisions_of_a_series_that_was_intraday_are_instants(local_target: StoreTarget) -> None:
    with local_target.open() as cat:
        cat.create(id="F", frequency="intraday")
        cat.write("F", ([dt.datetime(2024, 1, 2, 15, tzinfo=dt.UTC)], [1.0]))
        cat.write("F", None, "delete_range", start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 31))
        cat.update("F", {"frequency": "daily"})
        cat.write("F", ([dt.date(2024, 1, 3)], [3.0]))
    with client_for(local_target) as client:
        query = '{ series(id: "F") { revisions { dates instants values } } }'
        revisions = ok(client, query)["series"]["revisions"]
    assert revisions["values"] == [1.0, 3.0]
    assert revisions["instants"] == ["2024-01-02T15:00:00+00:00", "2024-01-03T00:00:00+00:00"]
    assert revisions["dates"] == ["2024-01-02", "2024-01-03"]


def test_revisions_of_a_series_read_as_of_a_version_are_its_own(
    local_target: StoreTarget,
) -> None:
    """Not the id's latest: a node read as of the first of two series with one id
    showed the second's revisions, and one of a series deleted since failed whole."""
    with local_target.open() as cat:
        cat.create(id="A", frequency="daily", title="first life")
        cat.write("A", ([dt.date(2024, 1, 1)], [1.0]))
        first = cat.version()
        cat.delete("A")
        cat.create(id="A", frequency="monthly", title="second life")
        cat.write("A", ([dt.date(2024, 3, 1)], [99.0]))
        cat.create(id="B", frequency="daily")
        cat.write("B", ([dt.date(2024, 1, 1)], [7.0]))
        written = cat.version()
        cat.delete("B")
    query = "{ series(id: $id, asOf: $v) { title revisions { dates values realtimeEnd } } }"
    with client_for(local_target) as client:
        for series_id, version, title, values in (
            ("A", first, "first life", [1.0]),
            ("A", None, "second life", [99.0]),
            ("B", written, "", [7.0]),
        ):
            as_of = "null" if version is None else str(version)
            text = query.replace("$id", f'"{series_id}"').replace("$v", as_of)
            series = ok(client, text)["series"]
            assert series["title"] == title
            assert series["revisions"]["values"] == values, (series_id, version)
            assert series["revisions"]["realtimeEnd"] == [None]


def test_versions_connection(client: Client) -> None:
    query = """query($after: String) { versions(first: 4, after: $after) {
        edges { cursor node { version commitId message committedAt seriesCount
                observationCount changes { action seriesId series { id version } } } }
        pageInfo { hasNextPage endCursor } } }"""
    first = ok(client, query)["versions"]
    numbers = [e["node"]["version"] for e in first["edges"]]
    assert numbers == sorted(numbers, reverse=True)
    assert first["pageInfo"]["hasNextPage"]
    newest = first["edges"][0]["node"]
    assert newest["changes"] == [
        {
            "action": "upsert",
            "seriesId": "UNRATE",
            "series": {"id": "UNRATE", "version": newest["version"]},
        }
    ]
    assert (newest["seriesCount"], newest["observationCount"]) == (3, 10)
    second = ok(client, query, {"after": first["pageInfo"]["endCursor"]})["versions"]
    rest = [e["node"]["version"] for e in second["edges"]]
    assert rest == list(range(numbers[-1] - 1, -1, -1))
    assert not second["pageInfo"]["hasNextPage"]
    assert ok(client, "{ version(number: 0) { version changes { action } } }") == {
        "version": {"version": 0, "changes": []}
    }
    missing = post(client, '{ version(number: 999) { version } series(id: "GDP") { id } }')
    assert error(missing, "NOT_FOUND")["path"] == ["version"]
    # Only the missing version is null: the other fields of the request are answered.
    assert missing["data"] == {"version": None, "series": {"id": "GDP"}}
    error(post(client, "{ version(number: -1) { version } }"), "VALIDATION")
    error(post(client, query, {"after": "x"}), "VALIDATION")


def test_stats_freshness_and_health(local_target: StoreTarget) -> None:
    config = GraphQLSettings(freshness_max_age=3600)
    with client_for(local_target, graphql=config) as client:
        data = ok(
            client,
            """{ catalogStats { version seriesCount observationCount earliestObservation
                   latestObservation lastCommitAt datesComplete }
                 dataFreshness { version maxAgeSeconds complete checkedAt
                   sources { source seriesCount lastUpdatedAt ageSeconds stale } }
                 health { status version } }""",
        )
    stats = data["catalogStats"]
    assert (stats["seriesCount"], stats["observationCount"]) == (3, 10)
    assert (stats["earliestObservation"], stats["latestObservation"]) == (
        "2023-01-01",
        "2024-06-01",
    )
    assert stats["datesComplete"] is True
    assert data["health"] == {"status": "ready", "version": stats["version"]}
    freshness = data["dataFreshness"]
    assert freshness["maxAgeSeconds"] == 3600
    assert [(s["source"], s["seriesCount"], s["stale"]) for s in freshness["sources"]] == [
        ("BEA", 2, False),
        ("BLS", 1, False),
    ]
    # A tiny maximum age makes every source stale; a small scan limit, incomplete figures.
    config = GraphQLSettings(freshness_max_age=0.001, summary_scan_limit=1)
    with client_for(local_target, graphql=config) as client:
        data = ok(
            client,
            "{ catalogStats { datesComplete } dataFreshness { complete sources { stale } } }",
        )
    assert data["catalogStats"]["datesComplete"] is False
    assert data["dataFreshness"]["complete"] is False
    assert all(s["stale"] for s in data["dataFreshness"]["sources"])


def test_filtered_pages_span_the_catalog_pages(tmp_path: Path) -> None:
    target = StoreTarget("local", str(tmp_path / "store"))
    with target.open() as cat, cat.batch() as batch:
        for i in range(450):
            ids = {"x": f"X{i}"} if i % 3 == 0 else {}
            batch.create({"id": f"S{i:03d}", "frequency": "annual", "external_ids": ids})
    query = """query($filter: SeriesFilter, $after: String, $first: Int!) {
        seriesList(filter: $filter, first: $first, after: $after) {
            edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"""

    def walk(flt: dict[str, Any] | None, first: int) -> list[str]:
        seen: list[str] = []
        after = None
        for _ in range(100):
            page = ok(client, query, {"filter": flt, "after": after, "first": first})
            page = page["seriesList"]
            seen += [e["node"]["id"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return seen
            after = page["pageInfo"]["endCursor"]
        raise AssertionError("the listing did not end")

    with client_for(target) as client:
        every = walk(None, 100)
        assert sorted(every) == [f"S{i:03d}" for i in range(450)]
        assert len(set(every)) == 450
        provider = walk({"externalProvider": "x"}, 40)
        assert sorted(provider) == [f"S{i:03d}" for i in range(0, 450, 3)]
        assert provider == [s for s in every if int(s[1:]) % 3 == 0]


def test_a_series_version_lists_everything_its_commit_did(client: Client) -> None:
    batch = "mutation($ops: [BatchOperation!]!) { commitBatch(operations: $ops) { version } }"
    ops = [
        {"create": {"id": "NEWS", "frequency": "MONTHLY"}},
        {"write": {"seriesId": "NEWS", "dates": ["2024-01-01"], "values": [1.0]}},
        {"update": {"id": "NEWS", "changes": {"title": "news"}}},
    ]
    ok(client, batch, {"ops": ops})
    query = '{ series(id: "NEWS") { history { action actions } } }'
    history = ok(client, query)["series"]["history"]
    assert history == [{"action": "create", "actions": ["create", "append", "update"]}]
