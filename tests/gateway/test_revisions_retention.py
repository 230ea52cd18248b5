"""Over HTTP, a revision history's ETag, and a series history page's, changes when
retention expires part of it, so a client's copy taken before is not confirmed by a
304 (and stays stable otherwise)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import StoreTarget
from tests.gateway.conftest import Server, seed, start_server


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[StoreTarget, Server]]:
    """A gateway on a seeded local store, and the store, which the tests gc directly."""
    target = StoreTarget("local", str(tmp_path / "store"))
    seed(target)
    server = start_server(target, tmp_path)
    try:
        yield target, server
    finally:
        server.stop()


def test_retention_changes_the_revisions_etag(served: tuple[StoreTarget, Server]) -> None:
    target, server = served
    url = f"{server.url}/v1/series/UNRATE/revisions"
    before = httpx.get(url, params={"start": "2024-06-01"})
    version = httpx.get(f"{server.url}/v1/series/UNRATE").json()["version"]
    assert before.headers["etag"] == f'W/"{version}"'
    assert before.json()["values"] == [4.1, 4.0]  # the first release, then the revision
    old = {"If-None-Match": before.headers["etag"]}
    assert httpx.get(url, params={"start": "2024-06-01"}, headers=old).status_code == 304

    with target.open(create=False) as cat:
        report = cat.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))
    assert report.oldest_version == version  # the revision's own commit: 4.1 expired

    after = httpx.get(url, params={"start": "2024-06-01"}, headers=old)
    assert after.status_code == 200
    assert after.json()["values"] == [4.0]
    assert after.headers["etag"] == f'W/"{version}.{report.oldest_version}"'
    for how in ({}, {"format": "csv"}):
        again = {"If-None-Match": after.headers["etag"]}
        cached = httpx.get(url, params={"start": "2024-06-01", **how}, headers=again)
        assert cached.status_code == 304, how
        assert cached.headers["etag"] == after.headers["etag"]
    # Observations do not depend on expired history: their ETag is the version alone.
    observed = httpx.get(f"{server.url}/v1/series/UNRATE/observations")
    assert observed.headers["etag"] == f'W/"{version}"'


def test_a_series_history_page_is_validated_by_the_series_and_retention(
    served: tuple[StoreTarget, Server],
) -> None:
    target, server = served
    url = f"{server.url}/v1/series/UNRATE/history"
    first = httpx.get(url)
    items = first.json()["items"]
    version = items[0]["version"]
    assert first.headers["etag"] == f'W/"{version}"'
    current = {"If-None-Match": first.headers["etag"]}
    cached = httpx.get(url, headers=current)
    assert (cached.status_code, cached.content) == (304, b"")
    assert cached.headers["etag"] == first.headers["etag"]
    assert httpx.head(url, headers=current).status_code == 304
    # A page further on is pinned to the version the listing started at.
    page = httpx.get(url, params={"limit": 1})
    rest = httpx.get(url, params={"cursor": page.json()["next_cursor"]}, headers=current)
    assert rest.status_code == 304

    written = httpx.post(
        f"{server.url}/v1/series/UNRATE/observations",
        json={"dates": ["2031-01-01"], "values": [3.5]},
    )
    assert written.status_code == 200, written.text
    changed = httpx.get(url, headers=current)
    assert changed.status_code == 200
    assert [i["version"] for i in changed.json()["items"]][1:] == [i["version"] for i in items]
    assert changed.headers["etag"] == f'W/"{changed.json()["items"][0]["version"]}"'
    # The earlier page, pinned by its cursor, has not changed.
    assert (
        httpx.get(url, params={"cursor": page.json()["next_cursor"]}, headers=current).status_code
        == 304
    )

    with target.open(create=False) as cat:
        report = cat.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))
    newest = changed.json()["items"][0]["version"]
    assert report.oldest_version == newest
    after = httpx.get(url, headers={"If-None-Match": changed.headers["etag"]})
    assert after.status_code == 200
    assert [i["version"] for i in after.json()["items"]] == [newest]
    assert after.headers["etag"] == f'W/"{newest}.{newest}"'
    again = httpx.get(url, headers={"If-None-Match": after.headers["etag"]})
    assert again.status_code == 304


def test_paging_catalog_versions_across_retention(served: tuple[StoreTarget, Server]) -> None:
    """The version listing ends at the oldest kept version without a cursor to
    follow, and a cursor below which everything has expired since is a 404: the
    history did not end there, it was expired under the client."""
    target, server = served
    url = f"{server.url}/v1/versions"
    first = httpx.get(url, params={"limit": 2}).json()
    cursor = first["next_cursor"]
    with target.open(create=False) as cat:
        latest = cat.version()
        report = cat.collect_garbage(grace=dt.timedelta(0), retain=dt.timedelta(0))
    assert report.oldest_version == latest > int(cursor)
    gone = httpx.get(url, params={"cursor": cursor})
    assert gone.status_code == 404, gone.text
    assert "expired" in gone.json()["detail"]
    graphql = httpx.post(
        f"{server.url}/graphql",
        json={"query": f'{{ versions(after: "{cursor}") {{ edges {{ cursor }} }} }}'},
    ).json()
    assert graphql["errors"][0]["extensions"]["code"] == "NOT_FOUND", graphql
    # What is kept is one version: one page, and nothing after it to ask for.
    kept = httpx.get(url, params={"limit": 1}).json()
    assert ([v["version"] for v in kept["items"]], kept["next_cursor"]) == ([latest], None)
    query = "{ versions(first: 1) { edges { cursor } pageInfo { hasNextPage endCursor } } }"
    page = httpx.post(f"{server.url}/graphql", json={"query": query}).json()["data"]["versions"]
    assert page == {
        "edges": [{"cursor": str(latest)}],
        "pageInfo": {"hasNextPage": False, "endCursor": str(latest)},
    }
