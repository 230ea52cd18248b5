"""HEAD on every GET route: the GET's status and headers, and no body (RFC 9110 9.3.2)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient
from litestar.types import Message, Receive, Scope, Send

from gateway.app import create_app
from tests.conftest import StoreTarget
from tests.gateway.conftest import (
    KEYS,
    READ_TOKEN,
    Client,
    Server,
    bearer,
    client_for,
    problem,
    settings_for,
)

#: Requests for each GET route of the app, by route path; every GET route must be here.
SAMPLES: dict[str, list[str]] = {
    "/v1/series": [
        "/v1/series",
        "/v1/series?source=BEA&limit=1",
        "/v1/series?external_id=fred:GDP",
    ],
    "/v1/series/{series_id:str}": ["/v1/series/GDP", "/v1/series/GDP?as_of=2"],
    "/v1/series/{series_id:str}/observations": [
        "/v1/series/GDP/observations",
        "/v1/series/GDP/observations?format=csv",
        "/v1/series/GDP/observations?format=arrow",
        "/v1/series/GDP/observations?format=parquet&start=2023-04-01",
    ],
    "/v1/series/{series_id:str}/revisions": [
        "/v1/series/UNRATE/revisions",
        "/v1/series/UNRATE/revisions?format=csv&first_release_only=true",
        "/v1/series/UNRATE/revisions?format=arrow",
        "/v1/series/UNRATE/revisions?format=parquet",
    ],
    "/v1/metadata": [
        "/v1/metadata",
        "/v1/metadata?format=csv&source=BEA",
        "/v1/metadata?format=arrow",
        "/v1/metadata?format=parquet",
    ],
    "/v1/versions": ["/v1/versions", "/v1/versions?limit=2"],
    "/v1/versions/{version:int}": ["/v1/versions/1"],
    "/v1/series/{series_id:str}/history": ["/v1/series/UNRATE/history?limit=2"],
    "/health/live": ["/health/live"],
    "/health/ready": ["/health/ready"],
    "/metrics": ["/metrics"],
    "/graphql": ["/graphql"],
    "/schema": ["/schema"],
    "/schema/scalar": ["/schema/scalar"],
    "/schema/swagger": ["/schema/swagger"],
    "/schema/openapi.json": ["/schema/openapi.json"],
    "/schema/{path:str}": ["/schema/openapi.yaml"],
    "/schema/oauth2-redirect.html": ["/schema/oauth2-redirect.html"],
}
#: The metrics text counts the requests before it, so its length moves between two.
VOLATILE: dict[str, set[str]] = {"/metrics": {"content-length"}}
#: Representations that can take a byte range, for the Range checks.
RANGED = ["/v1/series/GDP/observations?format=parquet", "/v1/metadata?format=parquet"]


@dataclass
class BodyRecorder:
    """The gateway app, noting every body byte it sends.

    A test client (like an HTTP server) drops the body of a HEAD answer on its own,
    so only what the app sends shows that it sends none.
    """

    app: Litestar
    body: bytearray = field(default_factory=bytearray)
    #: The method the server's scope says as each message is sent: a server may
    #: frame the answer to a HEAD by it (uvicorn's httptools protocol does).
    methods: set[str] = field(default_factory=set)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def note(message: Message) -> None:
            if message["type"] == "http.response.body":
                self.body += message.get("body", b"")
            self.methods.add(str(scope.get("method")))
            await send(message)

        await self.app(scope, receive, note)  # type: ignore[arg-type]


@pytest.fixture
def recorded(local_target: StoreTarget) -> Iterator[tuple[TestClient[BodyRecorder], BodyRecorder]]:
    recorder = BodyRecorder(create_app(settings_for(local_target)))
    with TestClient(recorder) as client:
        yield client, recorder


def headers_of(response: httpx.Response, leave_out: Collection[str] = ()) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.multi_items() if k not in leave_out)


def test_head_answers_every_get_route_as_its_get(
    recorded: tuple[TestClient[BodyRecorder], BodyRecorder],
) -> None:
    client, recorder = recorded
    routes = {
        route.path
        for route in recorder.app.routes
        if isinstance(route, HTTPRoute) and "GET" in route.methods
    }
    assert routes == SAMPLES.keys(), "a GET route without a HEAD check"
    for route, urls in SAMPLES.items():
        for url in urls:
            got = client.get(url)
            recorder.body.clear()
            recorder.methods.clear()
            head = client.head(url)
            assert head.status_code == got.status_code, (url, head.text)
            assert head.content == b"" and recorder.body == b"", url
            assert recorder.methods == {"HEAD"}, url
            leave_out = VOLATILE.get(route, set())
            if "content-length" not in got.headers:
                # Streamed (Arrow): a HEAD tells the length of the whole representation,
                # the one byte ranges are taken from, for readers that open URLs as files.
                whole = client.get(url, headers={"Range": "bytes=0-"})
                assert int(head.headers["content-length"]) == len(whole.content), url
                leave_out = leave_out | {"content-length"}
            assert headers_of(head, leave_out) == headers_of(got, leave_out), url


def test_head_of_what_is_missing_is_the_gets_404(client: Client) -> None:
    for url in (
        "/v1/series/NOPE",
        "/v1/series/NOPE/observations?format=csv",
        "/v1/series/NOPE/revisions",
        "/v1/versions/999",
    ):
        got = client.get(url)
        head = client.head(url)
        problem(got, 404)
        assert head.status_code == 404, url
        assert head.content == b""
        assert headers_of(head) == headers_of(got), url


def test_head_needs_the_key_its_get_needs(local_target: StoreTarget) -> None:
    with client_for(local_target, api_keys=KEYS) as client:
        for route, urls in SAMPLES.items():
            if not route.startswith("/v1/"):
                continue
            url = urls[0]
            for headers in ({}, bearer("fck_not-a-key")):
                got, head = client.get(url, headers=headers), client.head(url, headers=headers)
                problem(got, 401)
                assert head.status_code == 401, url
                assert head.headers["www-authenticate"] == got.headers["www-authenticate"]
                assert head.content == b""
            assert client.head(url, headers=bearer(READ_TOKEN)).status_code == 200, url


def test_head_spends_the_rate_limit_of_its_get(local_target: StoreTarget) -> None:
    with client_for(local_target, api_keys=KEYS, rate_limit=0.5, rate_burst=2) as client:
        url, key = "/v1/series/GDP", bearer(READ_TOKEN)
        assert client.head(url, headers=key).status_code == 200
        assert client.get(url, headers=key).status_code == 200
        limited = client.head(url, headers=key)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.content == b""
        problem(client.get(url, headers=key), 429)


def test_conditional_head_is_304_as_get(client: Client) -> None:
    for url in (
        "/v1/series/GDP",
        "/v1/series/GDP/observations",
        "/v1/series/GDP/observations?format=csv",
        "/v1/series/UNRATE/revisions",
        "/v1/series/UNRATE/revisions?format=parquet",
    ):
        tag = client.get(url).headers["etag"]
        for sent in (tag, f'"1", {tag}', "*"):
            current = {"If-None-Match": sent}
            got, head = client.get(url, headers=current), client.head(url, headers=current)
            assert got.status_code == head.status_code == 304, (url, sent)
            assert head.content == b""
            assert headers_of(head) == headers_of(got), url
        stale = client.head(url, headers={"If-None-Match": '"1"'})
        assert stale.status_code == 200, url
        assert stale.headers["etag"] == tag


def test_head_ignores_range(client: Client) -> None:
    # Range handling is defined for GET only (RFC 9110 14.2).
    for url in RANGED:
        size = len(client.get(url).content)
        for asked in ("bytes=0-3", "bytes=-8", f"bytes={size}-"):
            head = client.head(url, headers={"Range": asked})
            assert head.status_code == 200, (url, asked)
            assert int(head.headers["content-length"]) == size
            assert "content-range" not in head.headers
        assert client.get(url, headers={"Range": "bytes=0-3"}).status_code == 206


def test_allow_names_head_wherever_it_names_get(client: Client) -> None:
    for method, url in (("DELETE", "/v1/versions"), ("PUT", "/v1/series/GDP")):
        refused = client.request(method, url)
        problem(refused, 405)
        allowed = [m.strip() for m in refused.headers["allow"].split(",")]
        assert "GET" in allowed and "HEAD" in allowed, (url, allowed)
        assert client.head(url).status_code == 200, url
    assert "HEAD" in client.options("/v1/series/GDP/revisions").headers["allow"]
    # Without a GET there is no HEAD either.
    refused = client.head("/v1/commits")
    assert refused.status_code == 405
    assert "HEAD" not in refused.headers["allow"]


def test_head_is_counted_as_head_under_its_route(client: Client) -> None:
    client.head("/v1/series/GDP")
    client.head("/v1/series/NOPE/revisions")
    text = client.get("/metrics").text
    series = 'method="HEAD",route="/v1/series/{series_id}",status="200"'
    missing = 'method="HEAD",route="/v1/series/{series_id}/revisions",status="404"'
    assert f"fincat_http_requests_total{{{series}}} 1.0" in text
    assert f"fincat_http_requests_total{{{missing}}} 1.0" in text
    assert 'fincat_http_requests_total{method="GET",route="/v1/series/{series_id}"' not in text


def test_head_over_a_real_server(local_target: StoreTarget, servers: Callable[..., Server]) -> None:
    server = servers(local_target)
    for url in (
        "/v1/series",
        "/v1/series/GDP",
        "/v1/series/UNRATE/revisions?format=csv",
        "/v1/metadata?format=parquet",
        "/v1/versions/1",
        "/v1/series/NOPE",
    ):
        got = httpx.get(server.url + url)
        head = httpx.head(server.url + url)
        assert head.status_code == got.status_code, url
        assert head.content == b""
        assert int(head.headers["content-length"]) == len(got.content), url
        assert headers_of(head, {"date"}) == headers_of(got, {"date"}), url


@pytest.mark.parametrize(
    "url",
    [
        "/v1/series",
        "/v1/series/GDP",
        "/v1/series/GDP/observations",
        "/v1/commits",
        "/v1/versions",
        "/graphql",
    ],
)
def test_options_allow_names_the_methods_a_405_names(client: Client, url: str) -> None:
    """Every method the path takes: those of every handler registered for it."""
    allowed = client.options(url)
    assert allowed.status_code == 204
    refused = client.put(url)
    problem(refused, 405)

    def methods(header: str) -> set[str]:
        return {m.strip() for m in header.split(",")}

    assert methods(allowed.headers["allow"]) == methods(refused.headers["allow"]), url
