"""Observations over HTTP: the four read formats, the three write bodies, modes, revisions."""

from __future__ import annotations

import datetime as dt
import io
import struct
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway.state import STATE_KEY
from tests.conftest import StoreTarget
from tests.gateway.conftest import Client, client_for, problem

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


def test_read_json_columns(shared_client: Client) -> None:
    response = shared_client.get("/v1/series/GDP/observations")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == {
        "series_id": "GDP",
        "version": body["version"],
        "dates": ["2023-01-01", "2023-04-01", "2023-07-01", "2023-10-01"],
        "values": [26_000.0, 26_500.0, None, 27_600.0],
    }
    assert response.headers["etag"] == f'W/"{body["version"]}"'
    assert response.headers["vary"] == "Accept"
    ranged = shared_client.get("/v1/series/GDP/observations?start=2023-04-01&end=2023-07-01")
    assert ranged.json()["dates"] == ["2023-04-01", "2023-07-01"]
    cached = shared_client.get(
        "/v1/series/GDP/observations", headers={"If-None-Match": response.headers["etag"]}
    )
    assert cached.status_code == 304


@pytest.mark.parametrize(
    ("how", "media"),
    [
        ({"params": {"format": "csv"}}, "text/csv"),
        ({"headers": {"Accept": "text/csv"}}, "text/csv"),
        ({"params": {"format": "arrow"}}, ARROW),
        ({"headers": {"Accept": f"{ARROW}, application/json;q=0.5"}}, ARROW),
        ({"params": {"format": "parquet"}}, PARQUET),
        ({"headers": {"Accept": PARQUET}}, PARQUET),
        ({"headers": {"Accept": "text/html, */*;q=0.1"}}, "application/json"),
    ],
)
def test_read_formats(client: Client, how: dict[str, dict[str, str]], media: str) -> None:
    response = client.get("/v1/series/UNRATE/observations", **how)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == media
    content = response.content
    if media == "text/csv":
        assert content.decode().splitlines()[:3] == [
            "date,value",
            "2024-01-01,3.7",
            "2024-02-01,3.9",
        ]
        frame = pd.read_csv(io.BytesIO(content), parse_dates=["date"])
    elif media == ARROW:
        frame = pa.ipc.open_stream(content).read_all().to_pandas()
    elif media == PARQUET:
        frame = pq.read_table(io.BytesIO(content)).to_pandas()
    else:
        body = response.json()
        frame = pd.DataFrame({"date": body["dates"], "value": body["values"]})
    assert list(frame["value"]) == [3.7, 3.9, 3.8, 3.9, 4.0, 4.0]
    assert len(frame) == 6


def test_read_negotiation_errors(client: Client) -> None:
    problem(client.get("/v1/series/GDP/observations", headers={"Accept": "text/html"}), 406)
    problem(client.get("/v1/series/GDP/observations", headers={"Accept": "*/*;q=0"}), 406)
    assert (
        problem(client.get("/v1/series/GDP/observations?format=xml"), 422)["errors"][0]["field"]
        == "format"
    )
    problem(client.get("/v1/series/GDP/observations?start=2023-13-01"), 422)
    problem(client.get("/v1/series/GDP/observations?end=2023-01-01T00:00:00"), 422)
    problem(client.get("/v1/series/NOPE/observations"), 404)


def test_start_and_end_are_dates_or_instants_in_one_form(client: Client) -> None:
    url = "/v1/series/UNRATE/observations"
    spaced = client.get(url, params={"start": " 2024-05-01 ", "end": "2024-06-01\t"})
    assert spaced.json()["dates"] == ["2024-05-01", "2024-06-01"]
    instant = client.get(url, params={"start": "2024-05-01T00:00:00Z"})
    assert instant.status_code == 200, instant.text
    for text in (
        "20240103",
        "2024W023",
        "2024-W02-3",
        "2024-1-3",
        "x",
        "2024-01-03T",
        "2024-02-30",
    ):
        refused = problem(client.get(url, params={"start": text}), 422)["errors"]
        assert refused[0]["field"] == "start", text
        if "T" not in text:
            assert "date like 2024-01-31" in refused[0]["message"], (text, refused)
            assert "RFC 3339 instant with an offset" in refused[0]["message"], (text, refused)
    naive = problem(client.get(url, params={"end": "2024-01-03T00:00:00"}), 422)["errors"]
    assert naive[0]["field"] == "end"
    assert "naive" in naive[0]["message"]


def test_not_modified_carries_the_vary_of_the_full_answer(client: Client) -> None:
    url = "/v1/series/GDP/observations"
    for how in ({}, {"format": "csv"}):
        full = client.get(url, params=how)
        assert full.headers["vary"] == "Accept"
        current = {"If-None-Match": full.headers["etag"]}
        for method in ("GET", "HEAD"):
            cached = client.request(method, url, params=how, headers=current)
            assert cached.status_code == 304, (method, how)
            assert cached.headers["vary"] == "Accept", (method, how)
            assert cached.headers["etag"] == full.headers["etag"]


def test_read_as_of(client: Client) -> None:
    now = client.get("/v1/series/UNRATE/observations").json()
    before = client.get("/v1/series/UNRATE/observations", params={"as_of": now["version"] - 1})
    assert before.json()["values"][-1] == 4.1
    assert now["values"][-1] == 4.0
    assert before.headers["fincat-catalog-version"] == str(now["version"] - 1)


def test_write_json_modes(shared_client: Client) -> None:
    c = shared_client
    tag = c.get("/v1/series/GDPC1").headers["etag"]
    first = c.post(
        "/v1/series/GDPC1/observations",
        json={"dates": ["2024-01-01", "2024-04-01"], "values": [1, 2.5]},
        headers={"If-Match": tag},
    )
    assert first.status_code == 200, first.text
    assert first.json()["observation_count"] == 2
    assert first.headers["etag"] == f'"{first.json()["version"]}"'
    problem(
        c.post(
            "/v1/series/GDPC1/observations",
            json={"dates": ["2024-07-01"], "values": [3]},
            headers={"If-Match": tag},
        ),
        412,
    )
    order = problem(
        c.post("/v1/series/GDPC1/observations", json={"dates": ["2024-01-01"], "values": [9]}), 409
    )
    assert order["errors"][0]["field"] == "dates"
    c.post(
        "/v1/series/GDPC1/observations",
        json={"mode": "upsert", "dates": ["2024-04-01", "2024-07-01"], "values": [2.0, None]},
    )
    c.post(
        "/v1/series/GDPC1/observations",
        json={
            "mode": "replace_range",
            "start": "2024-01-01",
            "end": "2024-03-31",
            "dates": ["2024-01-01"],
            "values": [1.5],
        },
    )
    values = c.get("/v1/series/GDPC1/observations").json()
    assert values["dates"] == ["2024-01-01", "2024-04-01", "2024-07-01"]
    assert values["values"] == [1.5, 2.0, None]
    deleted = c.post(
        "/v1/series/GDPC1/observations",
        json={"mode": "delete_range", "start": "2024-04-01"},
    )
    assert deleted.json()["observation_count"] == 1
    # An empty mode is no mode: refused, not taken for the default append.
    version = c.get("/v1/series/GDPC1").json()["version"]
    later = {"dates": ["2025-01-01"], "values": [4.0]}
    empty = c.post("/v1/series/GDPC1/observations", json={"mode": ""} | later)
    assert problem(empty, 422)["errors"][0]["field"] == "mode"
    csv = c.post(
        "/v1/series/GDPC1/observations?mode=",
        content=b"date,value\n2025-01-01,4\n",
        headers={"content-type": "text/csv"},
    )
    assert problem(csv, 422)["errors"][0]["field"] == "mode"
    assert c.get("/v1/series/GDPC1").json()["version"] == version


def test_write_csv_and_arrow(client: Client) -> None:
    csv = b"date,value\n2025-01-01,5.5\n2025-02-01,\n"
    written = client.post(
        "/v1/series/UNRATE/observations", content=csv, headers={"content-type": "text/csv"}
    )
    assert written.status_code == 200, written.text
    assert written.json()["last_date"] == "2025-02-01"
    table = pa.table(
        {"date": pa.array([dt.date(2025, 2, 1)], pa.date32()), "value": pa.array([6.5])}
    )
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    upsert = client.post(
        "/v1/series/UNRATE/observations?mode=upsert",
        content=sink.getvalue(),
        headers={"content-type": ARROW},
    )
    assert upsert.status_code == 200, upsert.text
    body = client.get("/v1/series/UNRATE/observations?start=2025-01-01").json()
    assert body["values"] == [5.5, 6.5]
    # The Arrow IPC file format (what pyarrow's new_file and Feather v2 write) too.
    arrow_file = "application/vnd.apache.arrow.file"
    later = pa.table({"date": pa.array([dt.date(2025, 3, 1)], pa.date32()), "value": [7.5]})
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, later.schema) as writer:
        writer.write_table(later)
    url = "/v1/series/UNRATE/observations"
    appended = client.post(url, content=sink.getvalue(), headers={"content-type": arrow_file})
    assert appended.status_code == 200, appended.text
    assert client.get(f"{url}?start=2025-01-01").json()["values"] == [5.5, 6.5, 7.5]
    torn = client.post(url, content=sink.getvalue()[:-8], headers={"content-type": arrow_file})
    assert "not a readable Arrow IPC file" in problem(torn, 400)["detail"]


def test_delete_range_takes_csv_and_arrow_bodies_of_no_rows(client: Client) -> None:
    url = "/v1/series/UNRATE/observations"
    empty = pa.table({"date": pa.array([], pa.date32()), "value": pa.array([], pa.float64())})
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, empty.schema) as writer:
        writer.write_table(empty)
    bodies = [
        (b"date,value\n", "text/csv"),
        (b"", "text/csv"),
        (sink.getvalue(), ARROW),
        (b"", ARROW),
    ]
    month = 1
    for body, media in bodies:
        day = f"2024-{month:02d}-01"
        deleted = client.post(
            f"{url}?mode=delete_range&start={day}&end={day}",
            content=body,
            headers={"content-type": media},
        )
        assert deleted.status_code == 200, (body, media, deleted.text)
        assert client.get(url).json()["dates"][0] == f"2024-{month + 1:02d}-01"
        month += 1
    version = client.get("/v1/series/UNRATE").json()["version"]
    with_rows = client.post(
        f"{url}?mode=delete_range&start=2024-05-01",
        content=b"date,value\n2024-05-01,1\n",
        headers={"content-type": "text/csv"},
    )
    assert problem(with_rows, 422)["errors"][0]["field"] == "observations"
    # Without delete_range an empty body is still unreadable, and any body must be typed.
    problem(client.post(url, content=b"", headers={"content-type": "text/csv"}), 400)
    problem(client.post(url, content=b"", headers={"content-type": ARROW}), 400)
    untyped = client.post(
        f"{url}?mode=delete_range&start=2024-05-01",
        content=b"",
        headers={"content-type": "text/plain"},
    )
    problem(untyped, 415)
    assert client.get("/v1/series/UNRATE").json()["version"] == version


def test_write_errors_change_nothing(client: Client) -> None:
    version = client.get("/v1/series/UNRATE").json()["version"]
    url = "/v1/series/UNRATE/observations"
    cases = [
        (client.post(url, json={"dates": ["2025-01-15"], "values": [1]}), 422, "dates"),
        (client.post(url, json={"dates": ["2025-01-01"], "values": ["x"]}), 422, "values.0"),
        (client.post(url, json={"dates": ["2025-01-01"], "values": []}), 422, "values"),
        (client.post(url, json={"dates": ["2025-01-01"], "value": [1]}), 422, "value"),
        (client.post(url, json={"mode": "sideways", "dates": [], "values": []}), 422, "mode"),
        (
            client.post(url, json={"mode": "delete_range", "dates": ["2025-01-01"], "values": [1]}),
            422,
            None,
        ),
        (
            client.post(url, json={"start": "2025-01-01", "dates": ["2025-02-01"], "values": [1]}),
            422,
            "start",
        ),
        (
            client.post(url, content=b"[1, 2", headers={"content-type": "application/json"}),
            400,
            None,
        ),
        (
            client.post(
                url, content=b"date,value\n2025-01-01,abc\n", headers={"content-type": "text/csv"}
            ),
            400,
            None,
        ),
        (
            client.post(
                url, content=b"when,value\n2025-01-01,1\n", headers={"content-type": "text/csv"}
            ),
            422,
            "date",
        ),
        *(
            (client.post(url, content=csv, headers={"content-type": "text/csv"}), 422, field)
            for csv, field in [
                (b"date,value,value\n2025-01-01,1,2\n", "observations"),
                (b"value,value\n1,2\n", "date"),
                (b"date,value,\n2025-01-01,1,\n", "observations"),  # a column without a name
            ]
        ),
        (client.post(url, content=b"\x00\x01garbage", headers={"content-type": ARROW}), 400, None),
        (client.post(url, content=b"<x/>", headers={"content-type": "application/xml"}), 415, None),
        (client.post(url, content=b'{"dates": [], "values": []}'), 415, None),
        (client.post("/v1/series/NOPE/observations", json={"dates": [], "values": []}), 404, None),
    ]
    for response, status, field in cases:
        body = problem(response, status)
        if field is not None:
            assert body["errors"][0]["field"] == field, body
    assert client.get("/v1/series/UNRATE").json()["version"] == version


@pytest.mark.parametrize("text", ["NaN", "nan", "-nan", "inf", "-inf"])
def test_csv_nan_is_refused_like_json_nan(client: Client, text: str) -> None:
    url = "/v1/series/UNRATE/observations?mode=upsert"
    csv = f"date,value\n2024-01-01,{text}\n".encode()
    refused = problem(client.post(url, content=csv, headers={"content-type": "text/csv"}), 422)
    assert refused["errors"][0]["field"] == "values"
    assert client.get("/v1/series/UNRATE/observations").json()["values"][0] == 3.7


def test_csv_missing_value_is_an_empty_field_only(client: Client) -> None:
    url = "/v1/series/UNRATE/observations"
    for text in ("NA", "N/A", "n/a", "null", "NULL", "#N/A", "None", "-", " "):
        csv = f"date,value\n2024-01-01,{text}\n".encode()
        sent = client.post(f"{url}?mode=upsert", content=csv, headers={"content-type": "text/csv"})
        assert "CSV" in problem(sent, 400)["detail"], text
    assert client.get(url).json()["values"][:2] == [3.7, 3.9]
    csv = b'date,value\n2024-01-01,\n2024-02-01,""\n'
    written = client.post(f"{url}?mode=upsert", content=csv, headers={"content-type": "text/csv"})
    assert written.status_code == 200, written.text
    assert client.get(url).json()["values"][:3] == [None, None, 3.8]


def test_ranged_reads_of_one_representation_encode_it_once(client: Client) -> None:
    # A Parquet reader fetches the footer, then the rest, part by part: each range
    # read, merged and encoded the whole series again.
    bodies = client.app.state[STATE_KEY].ranged_bodies
    url = "/v1/series/UNRATE/observations?format=parquet"
    whole = client.get(url).content
    size = int(client.head(url).headers["content-length"])
    assert size == len(whole)
    parts = [
        client.get(url, headers={"Range": f"bytes={first}-{min(first + 99, size - 1)}"})
        for first in range(0, size, 100)
    ]
    assert all(p.status_code == 206 for p in parts)
    assert b"".join(p.content for p in parts) == whole
    assert (bodies.misses, bodies.hits) == (1, len(parts))
    # A write makes a new state of the series: its ranges come from the new file.
    written = client.post(
        "/v1/series/UNRATE/observations", json={"dates": ["2024-07-01"], "values": [4.3]}
    )
    assert written.status_code == 200
    tail = client.get(url, headers={"Range": "bytes=-8"})
    new_whole = client.get(url).content
    assert tail.content == new_whole[-8:] and new_whole != whole
    assert pq.read_table(pa.BufferReader(new_whole)).num_rows == 7


def test_a_streamed_arrow_answer_is_the_representation_ranges_are_cut_from(
    client: Client,
) -> None:
    """Past one record batch (65,536 rows) the stream and the encoding that HEAD and
    ranges measure were batched apart: a download resumed with a range spliced into
    a stream that read whole, 4,464 rows short."""
    created = client.post("/v1/series", json={"id": "LONG", "frequency": "daily"})
    assert created.status_code == 201, created.text
    days = pa.array(range(-60_000, 10_000), pa.int32()).cast(pa.date32())
    body = io.BytesIO()
    table = pa.table({"date": days, "value": pa.array(range(70_000), pa.float64())})
    with pa.ipc.new_stream(body, table.schema) as writer:
        writer.write_table(table)
    written = client.post(
        "/v1/series/LONG/observations",
        content=body.getvalue(),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    assert written.status_code == 200, written.text
    for url in ("/v1/series/LONG/observations", "/v1/series/LONG/revisions"):
        whole = client.get(f"{url}?format=arrow").content
        size = int(client.head(f"{url}?format=arrow").headers["content-length"])
        assert size == len(whole), url
        cut = len(whole) // 2
        rest = client.get(f"{url}?format=arrow", headers={"Range": f"bytes={cut}-"})
        assert rest.status_code == 206, url
        resumed = whole[:cut] + rest.content
        assert resumed == whole, url
        assert pa.ipc.open_stream(resumed).read_all().num_rows == 70_000, url


def test_if_range_serves_the_range_only_for_the_current_strong_etag(client: Client) -> None:
    url = "/v1/series/UNRATE/observations?format=parquet"
    whole = client.get(url)
    tag = whole.headers["etag"]
    assert tag.startswith('W/"')
    part = client.get(url, headers={"Range": "bytes=0-10"})
    assert (part.status_code, part.content) == (206, whole.content[:11])
    for if_range in (
        tag,  # weak: never matches
        tag.removeprefix("W/"),  # the current version, but this representation is weak
        '"1"',  # an older version
        "Sat, 01 Jan 2000 00:00:00 GMT",
    ):
        full = client.get(url, headers={"Range": "bytes=0-10", "If-Range": if_range})
        assert full.status_code == 200, if_range
        assert full.content == whole.content
        assert "content-range" not in full.headers
    arrow = client.get(
        "/v1/series/UNRATE/observations?format=arrow",
        headers={"Range": "bytes=0-10", "If-Range": '"1"'},
    )
    assert arrow.status_code == 200
    assert pa.ipc.open_stream(arrow.content).read_all().num_rows == 6


def test_observation_limit(local_target: StoreTarget) -> None:
    with client_for(local_target, max_observations=3) as client:
        url = "/v1/series/UNRATE/observations"
        dates = [f"2025-0{m}-01" for m in range(1, 5)]
        problem(client.post(url, json={"dates": dates, "values": [1, 2, 3, 4]}), 413)
        csv = "date,value\n" + "".join(f"{d},1\n" for d in dates)
        problem(client.post(url, content=csv.encode(), headers={"content-type": "text/csv"}), 413)
        assert client.post(url, json={"dates": dates[:3], "values": [1, 2, 3]}).status_code == 200


def test_a_revisions_read_compares_at_most_five_values_per_writable_observation(
    local_target: StoreTarget,
) -> None:
    # UNRATE: six months, then all six again with June revised: twelve stored values.
    with client_for(local_target, max_observations=2) as client:
        url = "/v1/series/UNRATE/revisions"
        refused = problem(client.get(url), 422)
        assert refused["errors"][0]["field"] == "start", refused
        assert "narrow the range" in refused["detail"]
        narrow = client.get(url, params={"start": "2024-05-01", "format": "arrow"})
        assert narrow.status_code == 200
        values = pa.ipc.open_stream(narrow.content).read_all().column("value").to_pylist()
        assert values == [4.0, 4.1, 4.0]
    with client_for(local_target, max_observations=3) as client:
        whole = client.get(url, params={"format": "arrow"})
        assert pa.ipc.open_stream(whole.content).read_all().num_rows == 7


def test_a_json_or_csv_read_holds_at_most_max_observations_rows(
    local_target: StoreTarget,
) -> None:
    # JSON and CSV build Python objects per row: 10^7 rows took a replica to 2.5 GB.
    with client_for(local_target, max_observations=5) as client:
        url = "/v1/series/UNRATE/observations"  # six months
        for fmt in ("json", "csv"):
            refused = problem(client.get(url, params={"format": fmt}), 422)
            assert refused["errors"][0]["field"] == "format"
            assert "ask for format=arrow or parquet" in refused["detail"]
        arrow = client.get(url, params={"format": "arrow"})
        assert pa.ipc.open_stream(arrow.content).read_all().num_rows == 6
        assert len(client.get(url, params={"start": "2024-02-01"}).json()["values"]) == 5
        revisions = problem(client.get("/v1/series/UNRATE/revisions?format=csv"), 422)
        assert revisions["errors"][0]["field"] == "format"


def test_body_size_limit(local_target: StoreTarget) -> None:
    with client_for(local_target, max_body_bytes=1000) as client:
        dates = [f"{y}-01-01" for y in range(2025, 2125)]
        big = {"dates": dates, "values": [1.0] * len(dates)}
        problem(client.post("/v1/series/UNRATE/observations", json=big), 413)
        problem(
            client.post(
                "/v1/series", json={"id": "BIG", "frequency": "annual", "description": "x" * 2000}
            ),
            413,
        )
        assert client.get("/v1/series/BIG").status_code == 404
        assert client.get("/v1/series/UNRATE").json()["last_date"] == "2024-06-01"


def test_revisions(client: Client) -> None:
    response = client.get("/v1/series/UNRATE/revisions?start=2024-05-01")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dates"] == ["2024-05-01", "2024-06-01", "2024-06-01"]
    assert body["values"] == [4.0, 4.1, 4.0]
    assert body["realtime_end"][0] is None
    assert body["realtime_end"][1] == body["realtime_start"][2]
    assert body["realtime_start"][1].endswith("Z")
    first = client.get("/v1/series/UNRATE/revisions?start=2024-06-01&first_release_only=true")
    assert first.json()["values"] == [4.1]
    csv = client.get("/v1/series/UNRATE/revisions?start=2024-06-01&format=csv").text.splitlines()
    assert csv[0] == "date,value,realtime_start,realtime_end"
    assert csv[1].startswith("2024-06-01,4.1,")
    assert csv[2].endswith(",")  # the current value has no realtime_end
    arrow = client.get("/v1/series/UNRATE/revisions", headers={"Accept": ARROW})
    assert pa.ipc.open_stream(arrow.content).read_all().num_rows == 7
    problem(client.get("/v1/series/NOPE/revisions"), 404)
    problem(client.get("/v1/series/UNRATE/revisions?first_release_only=maybe"), 422)


def test_revisions_carry_the_series_version_as_etag(client: Client) -> None:
    url = "/v1/series/UNRATE/revisions"
    version = client.get("/v1/series/UNRATE").json()["version"]
    for how in ({}, {"format": "csv"}, {"format": "arrow"}):
        full = client.get(url, params=how)
        assert full.headers["etag"] == f'W/"{version}"', how
        assert full.headers["vary"] == "Accept"
        cached = client.get(url, params=how, headers={"If-None-Match": full.headers["etag"]})
        assert cached.status_code == 304, how
        assert cached.content == b""
        assert cached.headers["etag"] == full.headers["etag"]
        assert cached.headers["vary"] == "Accept"
    old = {"If-None-Match": f'W/"{version}"'}
    # Another series' commit leaves this history, and so its ETag, as it was.
    client.post("/v1/series/GDP/observations", json={"dates": ["2024-01-01"], "values": [1.0]})
    assert client.get(url, headers=old).status_code == 304
    revised = client.post(
        "/v1/series/UNRATE/observations",
        json={"mode": "upsert", "dates": ["2024-06-01"], "values": [4.2]},
    ).json()["version"]
    fresh = client.get(url, params={"start": "2024-06-01"}, headers=old)
    assert fresh.status_code == 200
    assert fresh.headers["etag"] == f'W/"{revised}"'
    assert fresh.json()["values"] == [4.1, 4.0, 4.2]


def test_intraday_instants_round_trip(client: Client) -> None:
    created = client.post("/v1/series", json={"id": "FX.TICK", "frequency": "intraday"})
    assert created.status_code == 201
    url = "/v1/series/FX.TICK/observations"
    written = client.post(
        url,
        json={
            "dates": ["2024-02-29T23:59:59.5+01:00", "2024-03-01T00:00:00Z"],
            "values": [1.1, 1.2],
        },
    )
    assert written.status_code == 200, written.text
    assert written.json()["first_date"] == "2024-02-29T22:59:59.500000Z"
    body = client.get(url).json()
    assert body["dates"] == ["2024-02-29T22:59:59.500000Z", "2024-03-01T00:00:00.000000Z"]
    naive = problem(client.post(url, json={"dates": ["2024-03-02T00:00:00"], "values": [1]}), 422)
    assert naive["errors"][0]["field"] == "dates"
    ranged = client.get(url, params={"start": "2024-03-01T00:00:00Z"}).json()
    assert ranged["values"] == [1.2]
    csv = client.get(url, params={"format": "csv"}).text.splitlines()
    assert csv[1] == "2024-02-29T22:59:59.500000Z,1.1"


def test_held_writes_can_be_turned_off(local_target: StoreTarget) -> None:
    data = Path(local_target.url) / "data"

    def files() -> int:
        return sum(1 for _ in data.rglob("*.parquet"))

    url = "/v1/series/UNRATE/observations"
    with client_for(local_target) as client:
        before = files()
        held = client.post(url, json={"dates": ["2024-07-01"], "values": [4.2]})
        assert held.status_code == 200, held.text
        assert files() == before  # held in the manifest
    with client_for(local_target, hold_writes=False) as client:
        written = client.post(url, json={"dates": ["2024-08-01"], "values": [4.3]})
        assert written.status_code == 200, written.text
        # Every held row goes to a file (GDP's seed and UNRATE's July), and the new one.
        assert files() == before + 3
        assert client.get(url).json()["values"][-2:] == [4.2, 4.3]


def test_if_none_match_compares_etags_as_text(shared_client: Client) -> None:
    # An ETag is opaque: "074" and "74.0" name no representation this server issued.
    response = shared_client.get("/v1/series/GDP/observations")
    version = response.json()["version"]
    for sent, status in [
        (f'"{version}"', 304),
        (f'W/"{version}"', 304),
        (f'"0{version}", W/"{version}"', 304),
        (f'"0{version}"', 200),
        (f'"{version}.0"', 200),
        (f'W/"{version}.0"', 200),
        (f'"{version + 1}"', 200),
        ("*", 304),
    ]:
        again = shared_client.get("/v1/series/GDP/observations", headers={"If-None-Match": sent})
        assert again.status_code == status, sent


def test_large_encodings_take_turns() -> None:
    # Each holds its rows as Python objects while it runs: four 100,000-row JSON
    # metadata answers at once took a replica past 1 GiB.
    import asyncio
    import threading
    import time

    from gateway.routes.observations import LARGE_AT_ONCE, THREAD_ROWS, off_loop

    lock = threading.Lock()
    running, most = [0], [0]

    def work() -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)  # long enough for the others to start, were they let in
        with lock:
            running[0] -= 1
        return 1

    async def main() -> list[int]:
        return list(await asyncio.gather(*(off_loop(THREAD_ROWS + 1, work) for _ in range(6))))

    assert asyncio.run(main()) == [1] * 6
    assert most[0] == LARGE_AT_ONCE == 2

    async def clients_that_hang_up() -> None:
        # The turn used to end with the wait, while the thread encoded on.
        waits = []
        for _ in range(6):
            waits.append(asyncio.create_task(off_loop(THREAD_ROWS + 1, work)))
            await asyncio.sleep(0.005)
            waits[-1].cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        # asyncio.run then waits for the threads still encoding.

    most[0] = 0
    asyncio.run(clients_that_hang_up())
    assert most[0] == LARGE_AT_ONCE


def _stream(table: pa.Table) -> bytearray:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytearray(sink.getvalue())


def test_an_arrow_body_inconsistent_inside_is_a_bad_request(client: Client) -> None:
    """Streams pyarrow opens without complaint but whose insides contradict
    themselves were 500s (with a traceback), met by the catalog's own reads."""
    offsets = _stream(pa.table({"date": ["2024-01-01", "2024-01-02"], "value": [1.0, 2.0]}))
    at = offsets.find(struct.pack("<iii", 0, 10, 20))
    offsets[at + 4 : at + 12] = struct.pack("<ii", 100_000_000, 2_000_000_000)
    utf8 = _stream(pa.table({"date": ["2024-01-01"], "value": [1.0]}))
    utf8[utf8.find(b"2024-01-01") + 1] = 0xFF
    dates = pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2)], pa.date32())
    nulls = _stream(pa.table({"date": dates, "value": [1.0, None]}))
    at = nulls.find(struct.pack("<qq", 2, 1))  # the value column's length and null count
    nulls[at + 8 : at + 16] = struct.pack("<q", 7)
    url = "/v1/series/UNRATE/observations"
    before = client.get("/v1/series/UNRATE").json()["version"]
    for body in (offsets, utf8, nulls):
        answer = client.post(url, content=bytes(body), headers={"content-type": ARROW})
        assert "not a readable Arrow IPC stream" in problem(answer, 400)["detail"]
    assert client.get("/v1/series/UNRATE").json()["version"] == before
