"""Intraday series through GraphQL over HTTP: instant bounds of reads, revisions and
range writes, each compared with what REST answers for the same window."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from gateway.graphql.config import GraphQLSettings
from tests.conftest import StoreTarget
from tests.gateway.conftest import Client, client_for, problem
from tests.gateway.test_graphql import error, ok, post

DAY = "2024-03-01"
#: FX: five values within one UTC day, and one at the next midnight.
FX_INSTANTS = [f"{DAY}T{t}:00Z" for t in ("09:00", "09:30", "10:00", "10:30", "11:00")]
FX_INSTANTS.append("2024-03-02T00:00:00Z")
FX_VALUES = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]

WRITE = """mutation($mode: WriteMode!, $instants: [DateTime!], $values: [Float],
                     $s: Instant, $e: Instant) {
    writeObservations(seriesId: "FX", mode: $mode, instants: $instants, values: $values,
                      startInstant: $s, endInstant: $e) { observationCount } }"""
READ = """query($s: Instant, $e: Instant) { series(id: "FX") {
    observations(startInstant: $s, endInstant: $e) { count dates instants values } } }"""


@pytest.fixture
def fx(client: Client) -> Client:
    """The seeded client, with FX (intraday) created and written through GraphQL."""
    ok(client, 'mutation { createSeries(input: {id: "FX", frequency: INTRADAY}) { id } }')
    append = """mutation($instants: [DateTime!], $values: [Float]) {
        writeObservations(seriesId: "FX", instants: $instants, values: $values) { id } }"""
    ok(client, append, {"instants": FX_INSTANTS, "values": FX_VALUES})
    return client


def rest(client: Client, what: str, series: str = "FX", **params: str) -> dict[str, Any]:
    """REST's JSON answer for ``/v1/series/{series}/{what}``."""
    response = client.get(f"/v1/series/{series}/{what}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def instants(texts: list[str | None]) -> list[dt.datetime | None]:
    """Instants as written by either surface (``+00:00`` or ``Z``), comparable."""
    return [None if t is None else dt.datetime.fromisoformat(t) for t in texts]


def window(start: str | None, end: str | None) -> dict[str, str]:
    return {k: v for k, v in (("start", start), ("end", end)) if v is not None}


def test_a_sub_day_window_reads_as_rest_reads_it(fx: Client) -> None:
    for start, end, values in (
        ("2024-03-01T09:15:00Z", "2024-03-01T10:30:00Z", [2.0, 3.0, 4.0]),  # both inclusive
        ("2024-03-01T10:15:00+01:00", "2024-03-01T10:29:59.999999Z", [2.0, 3.0]),
        ("2024-03-01T10:00:00.000001Z", None, [4.0, 5.0, 6.0]),
        (None, "2024-03-01T09:00:00Z", [1.0]),
        ("2024-03-01T11:00:01Z", "2024-03-01T23:59:59Z", []),
    ):
        got = ok(fx, READ, {"s": start, "e": end})["series"]["observations"]
        want = rest(fx, "observations", **window(start, end))
        assert got["values"] == want["values"] == values, (start, end)
        assert got["count"] == len(values)
        # The keys are instants; dates are their UTC dates.
        assert instants(got["instants"]) == instants(want["dates"])
        assert got["dates"] == [i.date().isoformat() for i in instants(want["dates"]) if i]
    literal = ok(
        fx,
        '{ series(id: "FX") { observations(startInstant: "2024-03-01T10:30:00Z", '
        'endInstant: "2024-03-01T12:00:00+01:00") { values } } }',
    )
    assert literal["series"]["observations"]["values"] == [4.0, 5.0]
    # Dates still bound an intraday series by whole UTC days, typed variables included.
    days = """query($s: Date, $e: Date) { series(id: "FX") {
        observations(start: $s, end: $e) { values } } }"""
    whole = ok(fx, days, {"s": DAY, "e": DAY})["series"]["observations"]["values"]
    assert whole == rest(fx, "observations", start=DAY, end=DAY)["values"] == FX_VALUES[:5]
    mixed = ok(
        fx,
        f'{{ series(id: "FX") {{ observations(start: "{DAY}", '
        'endInstant: "2024-03-01T09:30:00Z") { values } } }',
    )["series"]["observations"]["values"]
    assert mixed == rest(fx, "observations", start=DAY, end="2024-03-01T09:30:00Z")["values"]
    assert mixed == [1.0, 2.0]


def test_an_instant_bounds_a_daily_series_by_its_utc_date_as_in_rest(fx: Client) -> None:
    query = (
        'query($s: Instant) { series(id: "UNRATE") { observations(startInstant: $s) { dates } } }'
    )
    text = "2024-05-01T23:00:00-02:00"  # 2024-05-02 in UTC
    got = ok(fx, query, {"s": text})["series"]["observations"]["dates"]
    assert got == rest(fx, "observations", "UNRATE", start=text)["dates"] == ["2024-06-01"]


def test_revisions_between_instants(fx: Client) -> None:
    ok(fx, WRITE, {"mode": "UPSERT", "instants": ["2024-03-01T10:00:00Z"], "values": [30.0]})
    query = """query($s: Instant, $e: Instant) { series(id: "FX") {
        revisions(startInstant: $s, endInstant: $e) {
            count instants values realtimeStart realtimeEnd } } }"""
    start, end = "2024-03-01T09:45:00Z", "2024-03-01T10:15:00+00:00"
    got = ok(fx, query, {"s": start, "e": end})["series"]["revisions"]
    want = rest(fx, "revisions", start=start, end=end)
    assert got["count"] == 2
    assert got["values"] == want["values"] == [3.0, 30.0]
    assert instants(got["instants"]) == instants(want["dates"])
    assert instants(got["instants"]) == instants(["2024-03-01T10:00:00Z"] * 2)
    assert instants(got["realtimeStart"]) == instants(want["realtime_start"])
    assert instants(got["realtimeEnd"]) == instants(want["realtime_end"])
    assert got["realtimeEnd"][1] is None
    first = ok(
        fx,
        '{ series(id: "FX") { revisions(startInstant: "2024-03-01T10:00:00Z", '
        'endInstant: "2024-03-01T10:00:00Z", firstReleaseOnly: true) { values } } }',
    )
    assert first["series"]["revisions"]["values"] == [3.0]


def test_range_writes_with_instant_bounds(fx: Client) -> None:
    deleted = ok(
        fx,
        WRITE,
        {"mode": "DELETE_RANGE", "s": "2024-03-01T09:15:00Z", "e": "2024-03-01T10:15:00Z"},
    )
    assert deleted["writeObservations"]["observationCount"] == 4
    left = rest(fx, "observations")
    assert left["values"] == [1.0, 4.0, 5.0, 6.0]
    assert instants(left["dates"]) == instants([FX_INSTANTS[0], *FX_INSTANTS[3:]])
    # 10:30 lies in [10:20, 10:40] and goes; the two rows inside come in.
    replace = {
        "mode": "REPLACE_RANGE",
        "instants": ["2024-03-01T10:25:00Z", "2024-03-01T11:35:00+01:00"],
        "values": [7.0, 8.0],
        "s": "2024-03-01T10:20:00Z",
        "e": "2024-03-01T10:40:00Z",
    }
    assert ok(fx, WRITE, replace)["writeObservations"]["observationCount"] == 5
    body = rest(fx, "observations")
    assert body["values"] == [1.0, 7.0, 8.0, 5.0, 6.0]
    assert instants(body["dates"])[1:3] == instants(
        ["2024-03-01T10:25:00Z", "2024-03-01T10:35:00Z"]
    )
    outside = post(fx, WRITE, {**replace, "instants": ["2024-03-01T10:45:00Z"], "values": [9.0]})
    assert error(outside, "VALIDATION")["extensions"]["field"] == "instants"
    # A batch's write takes instant bounds too.
    batch = """mutation($ops: [BatchOperation!]!) { commitBatch(operations: $ops) { committed } }"""
    ops = [
        {
            "write": {
                "seriesId": "FX",
                "mode": "DELETE_RANGE",
                "startInstant": "2024-03-01T10:25:00Z",
                "endInstant": "2024-03-01T10:34:59.999999Z",
            }
        }
    ]
    assert ok(fx, batch, {"ops": ops})["commitBatch"]["committed"] is True
    final = ok(fx, READ, {"s": None, "e": None})["series"]["observations"]
    assert final["values"] == rest(fx, "observations")["values"] == [1.0, 8.0, 5.0, 6.0]


def test_instant_bounds_are_read_as_rest_reads_them(fx: Client) -> None:
    query = 'query($s: Instant) { series(id: "FX") { observations(startInstant: $s) { values } } }'
    for text, taken in (
        ("2024-03-01T10:00:00Z", True),
        (" 2024-03-01T10:00:00Z\t", True),
        ("2024-03-01t10:00:00z", True),
        ("2024-03-01 10:00:00Z", True),
        ("2024-03-01T10:00Z", True),
        ("2024-03-01T11:00:00+01:00", True),
        ("2024-03-01T10:00:00", False),  # naive
        ("2024-03-01T10:00:00+0100", False),
        ("2024-03-01T10:00:00.1234567Z", False),
        ("2024-03-01T25:00:00Z", False),
        ("2024-03-01T", False),
        ("0001-01-01T00:00:00+14:00", False),  # before the year 1 in UTC
    ):
        response = fx.get("/v1/series/FX/observations", params={"start": text})
        graphql = post(fx, query, {"s": text})
        if taken:
            assert response.status_code == 200, (text, response.text)
            values = graphql["data"]["series"]["observations"]["values"]
            assert values == response.json()["values"] == [3.0, 4.0, 5.0, 6.0], text
        else:
            refused = error(graphql, "VALIDATION")
            assert refused["extensions"]["field"] == "startInstant", text
            assert refused["message"] == problem(response, 422)["errors"][0]["message"], text
    # Neither a date nor blank text is an instant (REST reads one as a date, ignores the other).
    for text in ("2024-03-01", "", "x", "20240301T100000Z", "2024-W09-5T10:00:00Z"):
        refused = error(post(fx, query, {"s": text}), "VALIDATION")
        assert refused["extensions"]["field"] == "startInstant", text
        assert "RFC 3339 instant with an offset" in refused["message"], text


def test_bound_errors_name_the_argument(fx: Client) -> None:
    cases: list[tuple[str, str, str]] = [
        (
            'observations(start: "2024-03-01", startInstant: "2024-03-01T10:00:00Z")',
            "startInstant",
            "not both",
        ),
        (
            'observations(end: "2024-03-01", endInstant: "2024-03-01T10:00:00Z")',
            "endInstant",
            "not both",
        ),
        ('observations(endInstant: "2024-03-01T10:00:00")', "endInstant", "naive"),
        (
            'observations(startInstant: "2024-03-01T11:00:00Z", '
            'endInstant: "2024-03-01T10:00:00Z")',
            "startInstant",
            "start is after end",
        ),
        ('observations(start: "2024-03-02", endInstant: "2024-03-01T10:00:00Z")', "start", "after"),
        ('revisions(endInstant: "2024-03-01")', "endInstant", "RFC 3339"),
        (
            'revisions(startInstant: "2024-03-01T10:00:01Z", endInstant: "2024-03-01T10:00:00Z")',
            "startInstant",
            "start is after end",
        ),
    ]
    for field, name, words in cases:
        refused = error(post(fx, f'{{ series(id: "FX") {{ {field} {{ count }} }} }}'), "VALIDATION")
        assert refused["extensions"]["field"] == name, field
        assert words in refused["message"], (field, refused)
    not_text = post(fx, '{ series(id: "FX") { observations(startInstant: 5) { count } } }')
    error(not_text, "GRAPHQL_VALIDATION_FAILED")
    # Writes: a bound given to a mode that takes none, a malformed one, a batch's.
    append = post(fx, WRITE, {"mode": "APPEND", "e": "2024-03-01T10:00:00Z"})
    assert error(append, "VALIDATION")["extensions"]["field"] == "endInstant"
    bad = post(fx, WRITE, {"mode": "DELETE_RANGE", "s": "2024-03-01T10:00:00+0100"})
    assert error(bad, "VALIDATION")["extensions"]["field"] == "startInstant"
    batch = "mutation($ops: [BatchOperation!]!) { commitBatch(operations: $ops) { version } }"
    for write, name in (
        ({"startInstant": "2024-03-01"}, "operations.1.write.startInstant"),
        (
            {"end": "2024-03-01", "endInstant": "2024-03-01T10:00:00Z"},
            "operations.1.write.endInstant",
        ),
        (
            {"startInstant": "2024-03-01T10:00:00Z", "endInstant": "2024-03-01T09:00:00Z"},
            "operations.1.write.startInstant",
        ),
    ):
        ops = [
            {"update": {"id": "FX", "changes": {"units": "EUR"}}},
            {"write": {"seriesId": "FX", "mode": "DELETE_RANGE", **write}},
        ]
        refused = post(fx, batch, {"ops": ops})
        assert error(refused, "VALIDATION")["extensions"]["field"] == name, write
    # Nothing was written.
    assert rest(fx, "observations")["values"] == FX_VALUES
    assert ok(fx, '{ series(id: "FX") { units } }')["series"]["units"] == ""


def test_instants_of_a_write_are_read_as_rest_reads_them(fx: Client) -> None:
    write = """mutation($i: [DateTime!]) {
        writeObservations(seriesId: "FX", mode: UPSERT, instants: $i, values: [9]) { id } }"""
    for text, taken in (
        ("2024-03-01T09:00:00+00:00", True),
        ("2024-03-01T09:00:00.5Z", True),
        ("2024-03-01T09:00:00+0000", False),
        ("20240301T090000Z", False),
        ("2024-W09-5T09:00:00Z", False),
        ("2024-03-01T09:00:00.1234567Z", False),
        ("2024-03-01", False),
    ):
        response = fx.post(
            "/v1/series/FX/observations", json={"mode": "upsert", "dates": [text], "values": [9]}
        )
        graphql = post(fx, write, {"i": [text]})
        assert (response.status_code == 200) is taken, (text, response.text)
        if taken:
            assert "errors" not in graphql, (text, graphql)
        else:
            assert "RFC 3339" in error(graphql, "GRAPHQL_VALIDATION_FAILED")["message"], text
    # A naive instant has the form; it is refused naming the argument, at midnight
    # too, and into a series of calendar dates too (which would take it for a date).
    naive = post(fx, write, {"i": ["2024-03-01T09:00:00"]})
    assert error(naive, "VALIDATION")["extensions"]["field"] == "instants"
    ok(fx, 'mutation { createSeries(input: {id: "QD1", frequency: DAILY}) { version } }')
    for series_id in ("FX", "QD1"):
        midnight = post(
            fx,
            "mutation($i: [DateTime!]) { writeObservations(seriesId: "
            f'"{series_id}", mode: UPSERT, instants: $i, values: [5]) {{ version }} }}',
            {"i": ["2024-01-02T00:00:00"]},
        )
        assert error(midnight, "VALIDATION")["extensions"]["field"] == "instants", series_id
    assert ok(fx, '{ series(id: "QD1") { observationCount } }')["series"] == {"observationCount": 0}


def test_a_sub_day_window_is_budgeted_by_its_own_span(local_target: StoreTarget) -> None:
    """Three days of minute values (4,320 rows); a budget of 1,000 rows serves an hour,
    which a whole-day estimate (1,440) would refuse, and refuses a day before reading it."""
    start = np.datetime64("2024-01-01T00:00", "us")
    stamps = start + np.arange(3 * 1440) * np.timedelta64(60_000_000, "us")
    with local_target.open() as cat:
        cat.create(id="BARS", frequency="intraday")
        table = pa.table(
            {
                "date": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                "value": np.arange(len(stamps), dtype=float),
            }
        )
        cat.write("BARS", table)
    config = GraphQLSettings(max_observations=1000)
    with client_for(local_target, graphql=config) as client:
        hour = ok(
            client,
            '{ series(id: "BARS") { observations(startInstant: "2024-01-02T12:00:00Z", '
            'endInstant: "2024-01-02T13:00:00Z") { count values } } }',
        )["series"]["observations"]
        assert hour["count"] == 61
        assert hour["values"][0] == 1440 + 720
        day = post(
            client,
            '{ series(id: "BARS") { observations(startInstant: "2024-01-02T00:00:00Z", '
            'endInstant: "2024-01-02T23:59:59Z") { count } } }',
        )
        assert error(day, "RESULT_TOO_LARGE")["extensions"]["requested"] >= 1440


def test_a_range_of_few_rows_beside_a_burst_of_many_is_read(local_target: StoreTarget) -> None:
    """1,500 ticks in one minute-by-minute burst, then one tick years later: the
    count scaled by the span's share put ~1,125 rows in a range that holds 1, and
    refused it. The files' own counts tell it is fewer."""
    burst = [dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=m) for m in range(1500)]
    with local_target.open() as cat:
        cat.create(id="TICKS", frequency="intraday")
        stamps = [*burst, dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]
        cat.write("TICKS", (stamps, [1.0] * len(stamps)))
    config = GraphQLSettings(max_observations=1000)
    with client_for(local_target, graphql=config) as client:
        late = ok(client, '{ series(id: "TICKS") { observations(start: "2021-01-01") { count } } }')
        assert late["series"]["observations"]["count"] == 1
        whole = post(client, '{ series(id: "TICKS") { observations { count } } }')
        assert error(whole, "RESULT_TOO_LARGE")["extensions"]["requested"] == 1501


def test_first_and_last_instants_are_rests_first_and_last_dates(fx: Client) -> None:
    query = """{ fx: series(id: "FX") { firstDate lastDate firstInstant lastInstant }
                 gdp: series(id: "GDP") { firstDate firstInstant lastInstant } }"""
    got = ok(fx, query)
    want = fx.get("/v1/series/FX").json()
    assert instants([got["fx"]["firstInstant"], got["fx"]["lastInstant"]]) == instants(
        [want["first_date"], want["last_date"]]
    )
    assert got["fx"]["firstInstant"] != got["fx"]["lastInstant"]
    first = instants([want["first_date"]])[0]
    assert first is not None and got["fx"]["firstDate"] == first.date().isoformat()
    assert got["gdp"]["firstDate"] is not None
    assert (got["gdp"]["firstInstant"], got["gdp"]["lastInstant"]) == (None, None)
