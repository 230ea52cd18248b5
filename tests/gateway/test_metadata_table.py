"""The metadata table over HTTP: the same rows as the catalog's, in four formats."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import ipc

from gateway.routes import metadata
from tests.gateway.conftest import Client, problem


def add_awkward_series(client: Client) -> None:
    created = client.post(
        "/v1/series",
        json={
            "id": "CPI",
            "frequency": "monthly",
            "title": 'Consumer prices, "all items"',
            "source": "BLS",
            "tags": ["macro", "prices"],
            "external_ids": {"fred": "CPIAUCSL"},
            "attributes": {"base": 1982, "sa": True},
        },
    )
    assert created.status_code == 201, created.text


def test_every_format_holds_the_same_rows(client: Client) -> None:
    add_awkward_series(client)
    arrow = client.get("/v1/metadata", params={"source": "BLS", "format": "arrow"})
    assert arrow.status_code == 200, arrow.text
    assert arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"
    version = int(arrow.headers["fincat-catalog-version"])
    table = ipc.open_stream(pa.py_buffer(arrow.content)).read_all()
    assert table["id"].to_pylist() == ["CPI", "UNRATE"]
    assert table["tags"].to_pylist() == [["macro", "prices"], []]

    parquet = client.get("/v1/metadata", params={"source": "BLS", "format": "parquet"})
    assert pq.read_table(io.BytesIO(parquet.content)).equals(table)

    body = client.get("/v1/metadata", params={"source": "BLS"}).json()
    assert (body["version"], body["count"], body["id"]) == (version, 2, ["CPI", "UNRATE"])
    assert body["external_ids"] == [{"fred": "CPIAUCSL"}, {}]
    assert body["attributes"] == [{"base": 1982, "sa": True}, {}]
    assert body["created_at"][0].endswith("Z")

    text = client.get("/v1/metadata", params={"source": "BLS"}, headers={"Accept": "text/csv"})
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert [r["id"] for r in rows] == ["CPI", "UNRATE"]
    assert rows[0]["title"] == 'Consumer prices, "all items"'
    assert rows[0]["tags"] == "macro|prices"
    assert json.loads(rows[0]["external_ids"]) == {"fred": "CPIAUCSL"}


def test_filters_and_as_of_select_like_the_listing(client: Client) -> None:
    before = int(client.get("/v1/versions", params={"limit": 1}).json()["items"][0]["version"])
    add_awkward_series(client)
    for params in ({"tag": "macro"}, {"tag": ["macro", "output"]}, {"q": "gdp"}, {}):
        listed = [s["id"] for s in client.get("/v1/series", params=params).json()["items"]]
        assert client.get("/v1/metadata", params=params).json()["id"] == listed, params
    old = client.get("/v1/metadata", params={"as_of": str(before)}).json()
    assert old["id"] == ["GDP", "GDPC1", "UNRATE"]


def test_bad_input_is_a_problem_naming_the_field(client: Client) -> None:
    for query, field in (("frequency=hourly", "frequency"), ("format=xml", "format")):
        body = problem(client.get(f"/v1/metadata?{query}"), 422)
        assert [e["field"] for e in body["errors"]] == [field]
    problem(client.get("/v1/metadata", headers={"Accept": "image/png"}), 406)


def test_text_formats_refuse_more_rows_than_their_limit(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The production limit (100,000 rows) would need that many series.
    monkeypatch.setattr(metadata, "TEXT_ROWS_MAX", 2)
    for fmt in ("json", "csv"):
        body = problem(client.get("/v1/metadata", params={"format": fmt}), 422)
        assert [e["field"] for e in body["errors"]] == ["format"]
        assert "at most 2" in body["detail"]
        assert client.get("/v1/metadata", params={"format": fmt, "source": "BEA"}).is_success
    whole = client.get("/v1/metadata", params={"format": "arrow"})
    assert ipc.open_stream(pa.py_buffer(whole.content)).read_all().num_rows == 3
