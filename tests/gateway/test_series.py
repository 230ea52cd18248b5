"""Series metadata over HTTP: listing, creation, reads, conditional updates and deletes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from catalog_store import Catalog
from gateway.app import create_app
from tests.conftest import StoreTarget
from tests.gateway.conftest import Client, client_for, problem, seed, settings_for


def test_crud_round_trip(shared_client: Client) -> None:
    created = shared_client.post(
        "/v1/series",
        json={"id": "DGS10", "frequency": "business_daily", "title": "10Y", "tags": ["rates"]},
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/series/DGS10"
    body = created.json()
    assert created.headers["etag"] == f'"{body["version"]}"'
    assert (body["id"], body["title"], body["observation_count"]) == ("DGS10", "10Y", 0)
    assert body["first_date"] is None

    got = shared_client.get("/v1/series/DGS10")
    assert got.status_code == 200
    assert got.json() == body
    assert got.headers["etag"] == created.headers["etag"]

    patched = shared_client.patch(
        "/v1/series/DGS10",
        json={"units": "percent"},
        headers={"If-Match": created.headers["etag"]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["units"] == "percent"
    assert patched.headers["etag"] == f'"{patched.json()["version"]}"'
    assert patched.json()["version"] > body["version"]

    deleted = shared_client.delete(
        "/v1/series/DGS10", headers={"If-Match": patched.headers["etag"]}
    )
    assert deleted.status_code == 200
    assert deleted.json()["series_id"] == "DGS10"
    assert deleted.headers["etag"] == f'"{deleted.json()["version"]}"'
    problem(shared_client.get("/v1/series/DGS10"), 404)
    # The history stays readable.
    old = shared_client.get("/v1/series/DGS10", params={"as_of": patched.json()["version"]})
    assert old.json()["units"] == "percent"


def test_create_errors(client: Client) -> None:
    body = problem(client.post("/v1/series", json={"id": "GDP", "frequency": "quarterly"}), 409)
    assert body["type"].endswith("series-exists")
    assert body["errors"][0]["field"] == "id"
    bad = problem(
        client.post("/v1/series", json={"id": "X1", "frequency": "monthly", "tags": ["ok", "a b"]}),
        422,
    )
    assert bad["errors"][0]["field"] == "tags.1"
    assert problem(client.post("/v1/series", json={"id": "X1"}), 422)["errors"][0]["field"] == (
        "frequency"
    )
    derived = problem(
        client.post("/v1/series", json={"id": "X1", "frequency": "monthly", "version": 3}), 422
    )
    assert derived["errors"][0]["field"] == "version"
    taken = problem(
        client.post(
            "/v1/series",
            json={"id": "X2", "frequency": "quarterly", "external_ids": {"fred": "GDP"}},
        ),
        409,
    )
    assert taken["errors"][0]["field"] == "external_ids.fred"
    problem(
        client.post(
            "/v1/series", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
    )
    problem(client.post("/v1/series", json=["a list"]), 422)
    problem(
        client.post("/v1/series", content=b"", headers={"content-type": "application/json"}), 400
    )
    # Nothing was created by any of these.
    assert {s["id"] for s in client.get("/v1/series").json()["items"]} == {"GDP", "GDPC1", "UNRATE"}


def test_list_filters_and_paging(client: Client) -> None:
    everything = client.get("/v1/series").json()
    assert {s["id"] for s in everything["items"]} == {"GDP", "GDPC1", "UNRATE"}
    assert everything["next_cursor"] is None
    assert {s["id"] for s in client.get("/v1/series?source=BEA").json()["items"]} == {
        "GDP",
        "GDPC1",
    }
    tagged = client.get("/v1/series", params=[("tag", "macro"), ("tag", "output")]).json()
    assert [s["id"] for s in tagged["items"]] == ["GDP"]
    assert [s["id"] for s in client.get("/v1/series?q=unemploy").json()["items"]] == ["UNRATE"]
    assert {s["id"] for s in client.get("/v1/series?frequency=quarterly").json()["items"]} == {
        "GDP",
        "GDPC1",
    }
    by_xid = client.get("/v1/series?external_id=fred:GDP").json()
    assert [s["id"] for s in by_xid["items"]] == ["GDP"]
    assert client.get("/v1/series?external_id=fred:NOPE").json() == {
        "items": [],
        "next_cursor": None,
    }

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/series", params=params).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # A commit between pages does not change what the listing sees.
        client.post("/v1/series", json={"id": f"NEW{len(seen)}", "frequency": "annual"})
    assert sorted(seen) == ["GDP", "GDPC1", "UNRATE"]


def test_an_external_id_whose_provider_name_holds_a_colon(client: Client) -> None:
    created = client.post(
        "/v1/series",
        json={"id": "EXR", "frequency": "daily", "external_ids": {"ecb:sdw": "D:USD:EUR"}},
    )
    assert created.status_code == 201, created.text
    found = client.get("/v1/series", params={"provider": "ecb:sdw", "external_id": "D:USD:EUR"})
    assert [s["id"] for s in found.json()["items"]] == ["EXR"]
    # Without provider the first ':' ends the provider's name: another question.
    assert client.get("/v1/series?external_id=ecb:sdw:D:USD:EUR").json()["items"] == []
    assert problem(client.get("/v1/series?provider=ecb"), 422)["errors"][0]["field"] == "provider"
    empty = client.get("/v1/series", params={"provider": "", "external_id": "x"})
    assert problem(empty, 422)["errors"][0]["field"] == "external_id"


def test_list_errors(client: Client) -> None:
    assert problem(client.get("/v1/series?frequency=hourly"), 422)["errors"][0]["field"] == (
        "frequency"
    )
    assert problem(client.get("/v1/series?cursor=garbage"), 422)["errors"][0]["field"] == "cursor"
    # A bad limit is invalid input naming its field, as a bad cursor is.
    for limit in ("0", "1001", "ten"):
        body = problem(client.get(f"/v1/series?limit={limit}"), 422)
        assert [e["field"] for e in body["errors"]] == ["limit"], body
        assert body["detail"].startswith("limit: "), body
    problem(client.get("/v1/series?external_id=nocolon"), 422)
    problem(client.get("/v1/series?external_id=fred:GDP&source=BEA"), 422)
    # A value validated alone named no field at all.
    for query, field in (
        ("external_id=fred:%20x", "external_id"),
        ("external_id=fred:a%00b", "external_id"),
        ("external_id=x&provider=%20fred", "provider"),
    ):
        body = problem(client.get(f"/v1/series?{query}"), 422)
        assert [e["field"] for e in body["errors"]] == [field], body
        assert body["detail"].startswith(f"{field}: "), body


def test_integers_and_points_in_time_are_read_strictly(client: Client) -> None:
    """Read leniently, each would answer another question than the one asked: 1e2
    a page of 100, an empty as_of or cursor the newest version, an empty end of a
    range delete everything after its start."""
    for url in (
        "/v1/series?limit=1e2",
        "/v1/series?limit=5.0",
        "/v1/versions?limit=1e1",
        "/v1/series/UNRATE/history?limit=2.0",
        "/v1/versions?limit=01",  # msgspec's own words, "Expected `int`, got `str`"
        "/v1/versions?limit=%2B5",
    ):
        body = problem(client.get(url), 422)
        assert body["errors"] == [
            {
                "field": "limit",
                "message": "must be an integer written in digits, with no leading zero",
            }
        ], url
    # A path's integer is read by int(): each of these was version 0.
    for number in ("%200", "+0", "0_0", "%EF%BC%90", "0%0A", "00"):
        body = problem(client.get(f"/v1/versions/{number}"), 422)
        assert [e["field"] for e in body["errors"]] == ["version"], number
    assert client.get("/v1/versions/0").status_code == 200
    body = problem(client.get("/v1/versions/0?version=1"), 422)
    assert [e["field"] for e in body["errors"]] == ["version"]
    # The query parameters an operation takes, not its path's.
    body = problem(client.get("/v1/versions/0?foo=1"), 422)
    assert body["errors"][0]["message"].endswith("this operation takes none"), body
    for url, field in [
        ("/v1/series/UNRATE?as_of=", "as_of"),
        ("/v1/series/UNRATE/observations?as_of=%20", "as_of"),
        ("/v1/series?as_of=", "as_of"),
        ("/v1/series?cursor=", "cursor"),
        ("/v1/series/UNRATE/observations?start=", "start"),
        ("/v1/series/UNRATE/observations?end=", "end"),
    ]:
        body = problem(client.get(url), 422)
        assert [e["field"] for e in body["errors"]] == [field], url
    before = client.get("/v1/series/UNRATE").json()
    emptied = client.post(
        "/v1/series/UNRATE/observations?mode=delete_range&start=2024-01-01&end=",
        content=b"",
        headers={"content-type": "text/csv"},
    )
    assert problem(emptied, 422)["errors"][0]["field"] == "end"
    assert client.get("/v1/series/UNRATE").json() == before


def test_a_query_parameter_an_operation_does_not_take_is_refused(client: Client) -> None:
    # Ignored, each would answer another question than the one asked.
    for url, name in [
        ("/v1/series/UNRATE/revisions?as_of=1", "as_of"),
        ("/v1/series/UNRATE/observations?fromat=csv", "fromat"),
        ("/v1/metadata?limit=5", "limit"),
        ("/v1/series?tags=jobs", "tags"),
        ("/v1/versions/1?as_of=1", "as_of"),
    ]:
        body = problem(client.get(url), 422)
        assert body["errors"] == [{"field": name, "message": body["errors"][0]["message"]}], url
        assert "unknown query parameter" in body["detail"]
    assert client.head("/v1/series/UNRATE/observations?bogus=1").status_code == 422
    # What an operation takes is still taken, repeated where it may be.
    assert (
        client.get("/v1/series/UNRATE/observations?format=csv&start=2024-01-01").status_code == 200
    )
    assert client.get("/v1/series?tag=jobs&tag=usa&limit=5").status_code == 200


def test_a_query_parameter_that_takes_one_value_is_refused_when_repeated(client: Client) -> None:
    # Else the last would win unseen: JSON for a client that asked for CSV first.
    for url, name in [
        ("/v1/series/UNRATE/observations?format=csv&format=json", "format"),
        ("/v1/series/UNRATE/observations?start=2024-01-01&start=2020-01-01", "start"),
        ("/v1/series?limit=5&limit=6", "limit"),
        ("/v1/series/GDP/history?as_of=1&as_of=2", "as_of"),
    ]:
        body = problem(client.get(url), 422)
        assert body["errors"] == [
            {"field": name, "message": "given more than once; it takes one value"}
        ], url
    assert client.head("/v1/series?limit=5&limit=6").status_code == 422


def test_get_conditional_and_as_of(client: Client) -> None:
    first = client.get("/v1/series/GDP")
    tag = first.headers["etag"]
    cached = client.get("/v1/series/GDP", headers={"If-None-Match": tag})
    assert cached.status_code == 304
    assert cached.headers["etag"] == tag
    assert cached.content == b""
    assert (
        client.get("/v1/series/GDP", headers={"If-None-Match": '"1", W/' + tag}).status_code == 304
    )
    assert client.get("/v1/series/GDP", headers={"If-None-Match": '"999"'}).status_code == 200

    version = first.json()["version"]
    client.patch("/v1/series/GDP", json={"title": "changed"})
    assert client.get("/v1/series/GDP", headers={"If-None-Match": tag}).status_code == 200
    assert client.get(f"/v1/series/GDP?as_of={version}").json()["title"] == "Gross domestic product"
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    assert client.get("/v1/series/GDP", params={"as_of": now}).json()["title"] == "changed"
    naive = problem(client.get("/v1/series/GDP?as_of=2024-01-01T00:00:00"), 422)
    assert naive["errors"][0]["field"] == "as_of"
    problem(client.get("/v1/series/GDP?as_of=yesterday"), 422)
    # An offset's + written as is: the query string makes it a space.
    plus = problem(client.get("/v1/series/GDP?as_of=2024-05-01T12:00:00+02:00"), 422)
    assert plus["errors"][0]["field"] == "as_of" and "write it %2B" in plus["detail"]
    encoded = client.get("/v1/series/GDP?as_of=2099-05-01T12:00:00%2B02:00")
    assert encoded.json()["title"] == "changed"
    # Instants whose UTC time falls outside the years 1-9999, as as_of and as bounds.
    for url, field in [
        ("/v1/series/GDP", "as_of"),
        ("/v1/series/GDP/observations", "as_of"),
        ("/v1/series/GDP/observations", "start"),
    ]:
        for instant in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
            outside = problem(client.get(url, params={field: instant}), 422)
            assert outside["errors"][0]["field"] == field, (url, instant)
    problem(client.get("/v1/series/GDP?as_of=1900-01-01T00:00:00Z"), 404)
    problem(client.get("/v1/series/GDP?as_of=999999"), 404)
    problem(client.get("/v1/series/GDP?as_of=0"), 404)  # before GDP existed
    problem(client.get("/v1/series/NOPE"), 404)


def test_conditional_update_and_delete(client: Client) -> None:
    tag = client.get("/v1/series/UNRATE").headers["etag"]
    assert client.patch("/v1/series/UNRATE", json={"units": "%"}).status_code == 200
    stale = problem(
        client.patch("/v1/series/UNRATE", json={"units": "x"}, headers={"If-Match": tag}), 412
    )
    assert stale["type"].endswith("version-mismatch")
    problem(client.delete("/v1/series/UNRATE", headers={"If-Match": tag}), 412)
    assert client.get("/v1/series/UNRATE").json()["units"] == "%"
    problem(client.patch("/v1/series/UNRATE", json={"units": "x"}, headers={"If-Match": "42"}), 400)
    assert (
        client.patch(
            "/v1/series/UNRATE", json={"units": "y"}, headers={"If-Match": "*"}
        ).status_code
        == 200
    )
    assert (
        problem(client.patch("/v1/series/UNRATE", json={"id": "OTHER"}), 422)["errors"][0]["field"]
        == "id"
    )
    assert (
        problem(client.patch("/v1/series/UNRATE", json={"tags": "macro"}), 422)["errors"][0][
            "field"
        ]
        == "tags"
    )
    problem(client.patch("/v1/series/NOPE", json={"title": "x"}), 404)
    problem(client.delete("/v1/series/NOPE"), 404)
    problem(client.patch("/v1/series/UNRATE", json=[1, 2]), 422)


def test_two_clients_same_if_match_exactly_one_wins(tmp_path: Path) -> None:
    target = StoreTarget("local", str(tmp_path / "store"))
    seed(target)

    async def race() -> list[tuple[int, str]]:
        app_a = create_app(settings_for(target))
        app_b = create_app(settings_for(target))
        async with AsyncTestClient(app_a) as a, AsyncTestClient(app_b) as b:
            tag = (await a.get("/v1/series/GDP")).headers["etag"]
            responses = await asyncio.gather(
                a.patch("/v1/series/GDP", json={"title": "from A"}, headers={"If-Match": tag}),
                b.patch("/v1/series/GDP", json={"title": "from B"}, headers={"If-Match": tag}),
            )
            final = (await a.get("/v1/series/GDP")).json()["title"]
            return [(r.status_code, final) for r in responses]

    outcome = asyncio.run(race())
    statuses = sorted(status for status, _ in outcome)
    assert statuses == [200, 412]
    winner = "from A" if outcome[0][0] == 200 else "from B"
    assert outcome[0][1] == winner


NOT_JSON = [
    {"content-type": "text/plain"},
    {"content-type": "application/x-www-form-urlencoded"},
    {"content-type": "multipart/form-data; boundary=x"},
    {"content-type": "application/xml"},
    {"content-type": "text/json"},
    {},
]


def test_json_bodies_must_be_declared_json(client: Client) -> None:
    # A web page can send any of these to any origin without a CORS preflight.
    writes = [
        ("POST", "/v1/series", {"id": "CSRF", "frequency": "annual"}),
        ("PATCH", "/v1/series/GDP", {"title": "changed"}),
        ("POST", "/v1/commits", {"operations": [{"op": "delete", "id": "GDP"}]}),
        ("POST", "/v1/series/GDP/observations", {"dates": ["2024-01-01"], "values": [1.0]}),
    ]
    version = client.get("/v1/versions?limit=1").json()["items"][0]["version"]
    for method, url, body in writes:
        for headers in NOT_JSON:
            refused = client.request(method, url, content=json.dumps(body), headers=headers)
            assert problem(refused, 415)["type"].endswith("unsupported-media-type"), headers
    assert client.get("/v1/versions?limit=1").json()["items"][0]["version"] == version

    declared = ("application/json; charset=utf-8", "application/merge-patch+json")
    for number, media in enumerate(declared):
        created = client.post(
            "/v1/series",
            content=json.dumps({"id": f"OK{number}", "frequency": "annual"}),
            headers={"content-type": media},
        )
        assert created.status_code == 201, created.text
        patched = client.patch(
            f"/v1/series/OK{number}", content=b'{"units": "x"}', headers={"content-type": media}
        )
        assert patched.status_code == 200, patched.text
    committed = client.post(
        "/v1/commits",
        content=b'{"operations": [{"op": "delete", "id": "OK0"}]}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert committed.status_code == 201, committed.text


def test_deeply_nested_json_is_a_bad_request(client: Client) -> None:
    deep_list = b"[" * 2000 + b"]" * 2000
    deep_attributes = (
        '{"id": "DEEP", "frequency": "annual", "attributes": {"a": '
        + '{"a": ' * 1000
        + "1"
        + "}" * 1000
        + "}}"
    ).encode()
    for method, url, body in [
        ("POST", "/v1/series", deep_list),
        ("POST", "/v1/series", deep_attributes),
        ("PATCH", "/v1/series/GDP", deep_list),
        ("POST", "/v1/commits", deep_list),
        ("POST", "/v1/series/GDP/observations", deep_list),
    ]:
        response = client.request(
            method, url, content=body, headers={"content-type": "application/json"}
        )
        assert "deeply" in problem(response, 400)["detail"], (method, url)
    problem(client.get("/v1/series/DEEP"), 404)


def test_json_that_is_not_utf8_is_a_bad_request(client: Client) -> None:
    bodies = [
        b'{"id": "X7", "frequency": "monthly", "title": "\xff"}',
        b'{"id": "X7", "frequency": "monthly", "\xff": 1}',
        b"\xff",
    ]
    for method, url in [
        ("POST", "/v1/series"),
        ("PATCH", "/v1/series/GDP"),
        ("POST", "/v1/commits"),
        ("POST", "/v1/series/GDP/observations"),
    ]:
        for body in bodies:
            response = client.request(
                method, url, content=body, headers={"content-type": "application/json"}
            )
            refused = problem(response, 400)
            assert refused["type"] == "urn:fincat:problem:bad-request", (method, url, body)
    problem(client.get("/v1/series/X7"), 404)


def test_misfit_bodies_name_a_field(client: Client) -> None:
    def field_of(method: str, url: str, body: bytes) -> str:
        response = client.request(
            method, url, content=body, headers={"content-type": "application/json"}
        )
        errors = problem(response, 422)["errors"]
        assert len(errors) == 1, errors
        return str(errors[0]["field"])

    for body in (b"[]", b"null", b'"GDP"', b"42"):
        assert field_of("POST", "/v1/series", body) == "body"
        assert field_of("PATCH", "/v1/series/GDP", body) == "body"
        assert field_of("POST", "/v1/commits", body) == "body"
        assert field_of("POST", "/v1/series/GDP/observations", body) == "body"
    assert field_of("POST", "/v1/commits", b"{}") == "operations"
    assert field_of("POST", "/v1/commits", b'{"operations": [], "extra": 1}') == "extra"
    assert field_of("POST", "/v1/commits", b'{"operations": [{"op": "delete"}]}') == (
        "operations.0.id"
    )
    assert field_of("POST", "/v1/commits", b'{"operations": [{"id": "GDP"}]}') == (
        "operations.0.op"
    )
    unknown = b'{"operations": [{"op": "delete", "id": "GDP", "x": 1}]}'
    assert field_of("POST", "/v1/commits", unknown) == "operations.0.x"
    observations = b'{"dates": [], "values": [], "extra": 1}'
    assert field_of("POST", "/v1/series/GDP/observations", observations) == "extra"


def test_a_null_in_a_patch_resets_the_field_as_a_merge_patch_does(client: Client) -> None:
    full = {
        "id": "RESET",
        "frequency": "annual",
        "title": "T",
        "units": "USD",
        "tags": ["a"],
        "external_ids": {"fred": "RESET1"},
        "attributes": {"k": 1},
        "partitioning": "decade",
    }
    assert client.post("/v1/series", json=full).status_code == 201
    merge = {"content-type": "application/merge-patch+json"}
    before = client.get("/v1/versions?limit=1").json()["items"][0]["version"]
    refused = client.patch("/v1/series/RESET", content=b'{"frequency": null}', headers=merge)
    assert problem(refused, 422)["errors"][0]["field"] == "frequency"
    assert client.get("/v1/versions?limit=1").json()["items"][0]["version"] == before

    nulls = {name: None for name in full if name not in ("id", "frequency", "units")}
    patched = client.patch("/v1/series/RESET", content=json.dumps(nulls), headers=merge)
    assert patched.status_code == 200, patched.text
    after = client.get("/v1/series/RESET").json()
    assert (after["title"], after["tags"], after["external_ids"]) == ("", [], {})
    assert (after["attributes"], after["partitioning"], after["units"]) == ({}, None, "USD")
    # The external id went with it: another series may claim it now.
    taken = {"id": "CLAIM", "frequency": "annual", "external_ids": {"fred": "RESET1"}}
    assert client.post("/v1/series", json=taken).status_code == 201

    update = {"op": "update", "id": "RESET", "changes": {"units": None}}
    committed = client.post("/v1/commits", json={"operations": [update]})
    assert committed.status_code == 201, committed.text
    assert client.get("/v1/series/RESET").json()["units"] == ""


def test_the_series_views_a_process_keeps_are_bounded_in_bytes(
    local_target: StoreTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 4,096 views of any size were kept: long descriptions and attributes made that
    # a couple of hundred MB outside --cache-bytes.
    from gateway import state

    monkeypatch.setattr(state, "SERIES_VIEW_BYTES", 200_000)
    catalog = Catalog.open(local_target.url)
    with catalog.batch() as batch:
        for i in range(40):
            batch.create({"id": f"LONG{i}", "frequency": "annual", "description": "x" * 5000})
    catalog.close()
    with client_for(local_target) as client:
        for i in range(40):
            assert client.get(f"/v1/series/LONG{i}").json()["description"] == "x" * 5000
        views = client.app.state[state.STATE_KEY].series_views
        assert 0 < views.currsize <= 200_000 and 0 < len(views) < 40
