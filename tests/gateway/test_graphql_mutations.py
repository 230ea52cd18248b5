"""GraphQL mutations over HTTP (Litestar's TestClient), the schema file and the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.graphql.config import GraphQLSettings
from gateway.graphql.schema import schema_sdl
from gateway.settings import Settings, SettingsError
from tests.conftest import StoreTarget
from tests.gateway.conftest import ROOT, Client, client_for, seed
from tests.gateway.test_graphql import error, ok, post

SCHEMA_FILE = ROOT / "docs" / "schema.graphql"


def test_create_update_write_delete(shared_target: StoreTarget) -> None:
    with client_for(shared_target, create=True) as client:
        created = ok(
            client,
            """mutation($input: SeriesInput!) { createSeries(input: $input, message: "new") {
                id title tags externalIds { provider id } attributes partitioning version } }""",
            {
                "input": {
                    "id": "DGS10",
                    "frequency": "BUSINESS_DAILY",
                    "title": "10Y",
                    "tags": ["rates"],
                    "externalIds": [{"provider": "fred", "id": "DGS10"}],
                    "attributes": {"maturity": 10},
                    "partitioning": "DECADE",
                }
            },
        )["createSeries"]
        assert created["attributes"] == {"maturity": 10}
        assert created["partitioning"] == "DECADE"
        version = created["version"]
        update = """mutation($v: Int, $input: SeriesChanges!) {
            updateSeries(id: "DGS10", input: $input, expectedVersion: $v) {
                version title units tags partitioning } }"""
        updated = ok(client, update, {"v": version, "input": {"units": "%", "tags": None}})
        updated = updated["updateSeries"]
        assert (updated["units"], updated["title"], updated["tags"]) == ("%", "10Y", [])
        assert updated["version"] > version
        stale = post(client, update, {"v": version, "input": {"units": "bp"}})
        extensions = error(stale, "PRECONDITION_FAILED")["extensions"]
        assert extensions["expectedVersion"] == version
        assert extensions["actualVersion"] == updated["version"]

        write = """mutation($dates: [Date!], $values: [Float], $mode: WriteMode!, $v: Int,
                            $start: Date, $end: Date) {
            writeObservations(seriesId: "DGS10", mode: $mode, dates: $dates, values: $values,
                              start: $start, end: $end, expectedVersion: $v) {
                version observationCount lastDate observations { dates values } } }"""
        days = ["2024-01-02", "2024-01-03", "2024-01-04"]
        written = ok(client, write, {"dates": days, "values": [4.0, None, 4.1], "mode": "APPEND"})
        written = written["writeObservations"]
        assert written["observations"] == {"dates": days, "values": [4.0, None, 4.1]}
        upserted = ok(
            client,
            write,
            {"dates": ["2024-01-03"], "values": [4.05], "mode": "UPSERT", "v": written["version"]},
        )["writeObservations"]
        assert upserted["observations"]["values"] == [4.0, 4.05, 4.1]
        replaced = ok(
            client,
            write,
            {
                "dates": ["2024-01-03"],
                "values": [3.9],
                "mode": "REPLACE_RANGE",
                "start": "2024-01-03",
                "end": "2024-01-04",
            },
        )["writeObservations"]
        assert replaced["observations"]["values"] == [4.0, 3.9]
        removed = ok(
            client, write, {"mode": "DELETE_RANGE", "start": "2024-01-03", "end": "2024-01-31"}
        )["writeObservations"]
        assert removed["observationCount"] == 1
        stale = post(
            client,
            write,
            {"dates": ["2024-02-01"], "values": [1.0], "mode": "APPEND", "v": written["version"]},
        )
        error(stale, "PRECONDITION_FAILED")

        deleted = ok(client, 'mutation { deleteSeries(id: "DGS10") { seriesId version } }')
        assert deleted["deleteSeries"]["seriesId"] == "DGS10"
        assert ok(client, '{ series(id: "DGS10") { id } }') == {"series": None}
        past = ok(client, f'{{ series(id: "DGS10", asOf: {removed["version"]}) {{ units }} }}')
        assert past == {"series": {"units": "%"}}
        gone = post(client, 'mutation { deleteSeries(id: "DGS10") { version } }')
        assert error(gone, "NOT_FOUND")["extensions"]["field"] == "id"


def test_mutation_errors_name_the_argument(client: Client) -> None:
    create = "mutation($input: SeriesInput!) { createSeries(input: $input) { id } }"
    dup = post(client, create, {"input": {"id": "GDP", "frequency": "QUARTERLY"}})
    assert error(dup, "CONFLICT")["extensions"]["field"] == "input.id"
    bad = post(client, create, {"input": {"id": "X1", "frequency": "MONTHLY", "tags": ["a b"]}})
    assert error(bad, "VALIDATION")["extensions"]["field"] == "input.tags.0"
    long = post(
        client,
        create,
        {"input": {"id": "X1", "frequency": "MONTHLY", "seasonalAdjustment": "x" * 65}},
    )
    assert error(long, "VALIDATION")["extensions"]["field"] == "input.seasonalAdjustment"
    taken = post(
        client,
        create,
        {
            "input": {
                "id": "X2",
                "frequency": "QUARTERLY",
                "externalIds": [{"provider": "fred", "id": "GDP"}],
            }
        },
    )
    assert error(taken, "CONFLICT")["extensions"]["owner"] == "GDP"
    assert error(taken, "CONFLICT")["extensions"]["field"] == "input.externalIds"
    # An item of the list is named by its place in it, and its part.
    for items, field in (
        ([{"provider": "ok", "id": "1"}, {"provider": "bad provider", "id": "1"}], "1.provider"),
        ([{"provider": "", "id": "1"}], "0.provider"),
        ([{"provider": "ok", "id": ""}], "0.id"),
    ):
        bad = post(
            client, create, {"input": {"id": "X4", "frequency": "DAILY", "externalIds": items}}
        )
        assert error(bad, "VALIDATION")["extensions"]["field"] == f"input.externalIds.{field}"
    twice = post(
        client,
        create,
        {
            "input": {
                "id": "X3",
                "frequency": "ANNUAL",
                "externalIds": [{"provider": "a", "id": "1"}, {"provider": "a", "id": "2"}],
            }
        },
    )
    assert error(twice, "VALIDATION")["extensions"]["field"] == "input.externalIds.1"
    bad_id = post(client, 'mutation { updateSeries(id: "a b", input: {units: "x"}) { id } }')
    assert error(bad_id, "VALIDATION")["extensions"]["field"] == "id"
    no_freq = post(client, 'mutation { updateSeries(id: "GDP", input: {frequency: null}) { id } }')
    assert error(no_freq, "VALIDATION")["extensions"]["field"] == "input.frequency"
    # The commit message is the mutation's own argument, beside its input.
    for mutation in (
        'createSeries(input: {id: "X5", frequency: DAILY}, message: $m) { id }',
        'updateSeries(id: "GDP", input: {units: "x"}, message: $m) { id }',
        'deleteSeries(id: "GDP", message: $m) { seriesId }',
    ):
        bad = post(client, f"mutation($m: String) {{ {mutation} }}", {"m": "a\u0000b"})
        assert error(bad, "VALIDATION")["extensions"]["field"] == "message", mutation
    write = (
        'mutation($d: [Date!], $v: [Float]) { writeObservations(seriesId: "GDP", '
        "dates: $d, values: $v) { id } }"
    )
    short = post(client, write, {"d": ["2025-01-01", "2025-04-01"], "v": [1.0]})
    assert error(short, "VALIDATION")["extensions"]["field"] == "values"
    monthly = post(client, write, {"d": ["2025-02-01"], "v": [1.0]})
    assert error(monthly, "VALIDATION")["extensions"]["field"] == "dates"
    order = post(client, write, {"d": ["2020-01-01"], "v": [1.0]})
    assert error(order, "CONFLICT")["extensions"]["field"] == "dates"
    missing = post(
        client,
        'mutation { writeObservations(seriesId: "NOPE", dates: ["2020-01-01"], '
        "values: [1]) { id } }",
    )
    error(missing, "NOT_FOUND")
    both = post(
        client,
        'mutation { writeObservations(seriesId: "GDP", dates: ["2025-01-01"], '
        'instants: ["2025-01-01T00:00:00Z"], values: [1]) { id } }',
    )
    assert error(both, "VALIDATION")["extensions"]["field"] == "instants"
    bad_date = post(client, write, {"d": ["2025-13-01"], "v": [1.0]})
    error(bad_date, "GRAPHQL_VALIDATION_FAILED")


def test_a_failed_mutation_leaves_the_results_of_those_that_committed(client: Client) -> None:
    body = post(
        client,
        """mutation {
            a: createSeries(input: {id: "TWO1", frequency: DAILY}) { id version }
            b: createSeries(input: {id: "TWO1", frequency: DAILY}) { id }
            c: deleteSeries(id: "TWO1") { seriesId }
        }""",
    )
    assert body["data"]["a"]["id"] == "TWO1"
    assert body["data"]["b"] is None
    assert body["data"]["c"] == {"seriesId": "TWO1"}
    assert error(body, "CONFLICT")["path"] == ["b"]
    assert client.get("/v1/series/TWO1").status_code == 404


def test_commit_batch_is_one_atomic_commit(shared_target: StoreTarget) -> None:
    seed(shared_target)
    batch = """mutation($ops: [BatchOperation!]!) { commitBatch(operations: $ops, message: "b") {
        version operations committed
        commit { message changes { action seriesId series { version } } } } }"""
    with client_for(shared_target) as client:
        gdp = ok(client, '{ series(id: "GDP") { version } }')["series"]["version"]
        ops = [
            {"create": {"id": "CPI", "frequency": "MONTHLY", "source": "BLS"}},
            {
                "write": {
                    "seriesId": "CPI",
                    "dates": ["2024-01-01", "2024-02-01"],
                    "values": [300.1, 300.9],
                }
            },
            {"update": {"id": "GDP", "changes": {"units": "USD bn"}, "expectedVersion": gdp}},
            {
                "write": {
                    "seriesId": "UNRATE",
                    "mode": "UPSERT",
                    "dates": ["2024-06-01"],
                    "values": [4.2],
                }
            },
            {"delete": {"id": "GDPC1"}},
        ]
        result = ok(client, batch, {"ops": ops})["commitBatch"]
        assert result["operations"] == 5 and result["committed"] is True
        commit = result["commit"]
        assert commit["message"] == "b"
        assert [c["action"] for c in commit["changes"]] == [
            "create",
            "append",
            "update",
            "upsert",
            "delete",
        ]
        assert all(
            c["series"] is None
            if c["action"] == "delete"
            else c["series"]["version"] == result["version"]
            for c in commit["changes"]
        )
        after = ok(
            client,
            """{ cpi: series(id: "CPI") { observationCount }
            gdp: series(id: "GDP") { units version } gone: series(id: "GDPC1") { id } }""",
        )
        assert after == {
            "cpi": {"observationCount": 2},
            "gdp": {"units": "USD bn", "version": result["version"]},
            "gone": None,
        }

        # Changes to what the series already hold make no version: the answer is
        # the current one.
        same = [{"update": {"id": "GDP", "changes": {"units": "USD bn"}}}]
        idle = ok(client, batch, {"ops": same})["commitBatch"]
        # No commit to show: the current version may be another writer's.
        assert (idle["version"], idle["committed"], idle["commit"]) == (
            result["version"],
            False,
            None,
        )
        # A stale expected version fails the whole batch: nothing of it lands.
        stale = [
            {"create": {"id": "PPI", "frequency": "MONTHLY"}},
            {"update": {"id": "GDP", "changes": {"units": "x"}, "expectedVersion": gdp}},
        ]
        extensions = error(post(client, batch, {"ops": stale}), "PRECONDITION_FAILED")
        assert extensions["extensions"]["expectedVersion"] == gdp
        assert ok(client, '{ series(id: "PPI") { id } }') == {"series": None}
        # A bad operation is named by its index, and nothing is committed either.
        bad = [
            {"create": {"id": "PPI", "frequency": "MONTHLY"}},
            {"write": {"seriesId": "PPI", "dates": ["2024-01-15"], "values": [1.0]}},
        ]
        body = post(client, batch, {"ops": bad})
        assert error(body, "VALIDATION")["extensions"]["field"] == "operations.1.write.dates"
        assert ok(client, '{ series(id: "PPI") { id } }') == {"series": None}
        two = post(
            client,
            batch,
            {"ops": [{"create": {"id": "A", "frequency": "ANNUAL"}, "delete": {"id": "GDP"}}]},
        )
        error(two, "GRAPHQL_VALIDATION_FAILED")
        error(post(client, batch, {"ops": []}), "VALIDATION")
        bad_update = [
            {"create": {"id": "PPI", "frequency": "MONTHLY"}},
            {"update": {"id": "GDP", "changes": {"tags": ["ok", "not ok"]}}},
            {"update": {"id": "GDP", "changes": {"seasonalAdjustment": "x" * 65}}},
        ]
        body = post(client, batch, {"ops": bad_update})
        assert (
            error(body, "VALIDATION")["extensions"]["field"] == "operations.1.update.changes.tags.1"
        )
        body = post(client, batch, {"ops": [bad_update[0], bad_update[2]]})
        assert error(body, "VALIDATION")["extensions"]["field"] == (
            "operations.1.update.changes.seasonalAdjustment"
        )
        bad_id = [{"update": {"id": "a b", "changes": {"units": "x"}}}]
        body = post(client, batch, {"ops": bad_id})
        assert error(body, "VALIDATION")["extensions"]["field"] == "operations.0.update.id"
        assert ok(client, '{ series(id: "PPI") { id } }') == {"series": None}


# -- the schema file and settings ---------------------------------------------------------


def test_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_sdl(), (
        "docs/schema.graphql is out of date: run `fincat export-graphql-schema`"
    )


def test_export_command(tmp_path: Path) -> None:
    out = tmp_path / "schema.graphql"
    result = CliRunner().invoke(cli_app, ["export-graphql-schema", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == schema_sdl()
    printed = CliRunner().invoke(cli_app, ["export-graphql-schema", "-o", "-"])
    assert printed.stdout == schema_sdl()


def test_graphql_settings_from_the_environment() -> None:
    env = {
        "FINCAT_ROOT": "x",
        "FINCAT_GRAPHQL_MAX_DEPTH": "7",
        "FINCAT_GRAPHQL_INTROSPECTION": "false",
        "FINCAT_GRAPHQL_FRESHNESS_MAX_AGE": "60",
    }
    settings = Settings.from_env(env)
    assert settings.graphql == GraphQLSettings(
        max_depth=7, introspection=False, freshness_max_age=60.0
    )
    assert Settings.from_env(settings.to_env()).graphql == settings.graphql
    with pytest.raises(SettingsError, match="FINCAT_GRAPHQL_MAX_DEPTH"):
        Settings.from_env({"FINCAT_ROOT": "x", "FINCAT_GRAPHQL_MAX_DEPTH": "deep"})
    with pytest.raises(SettingsError, match="FINCAT_GRAPHQL_IDE"):
        Settings.from_env({"FINCAT_ROOT": "x", "FINCAT_GRAPHQL_IDE": "maybe"})
    with pytest.raises(ValueError, match="max_cost"):
        GraphQLSettings(max_cost=0)
    # A GraphQL Float cannot hold infinity: once let through, every dataFreshness failed.
    refused = r"^FINCAT_GRAPHQL_FRESHNESS_MAX_AGE must be finite"
    for text in ("inf", "1e400"):
        with pytest.raises(SettingsError, match=refused):
            Settings.from_env({"FINCAT_ROOT": "x", "FINCAT_GRAPHQL_FRESHNESS_MAX_AGE": text})
    with pytest.raises(ValueError, match="freshness_max_age must be finite"):
        GraphQLSettings(freshness_max_age=float("inf"))
    # Below the default page, every query that gives no first failed on one it never sent.
    message = "FINCAT_GRAPHQL_MAX_PAGE must be at least 20, the page of a query that gives no first"
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"FINCAT_ROOT": "x", "FINCAT_GRAPHQL_MAX_PAGE": "19"})
    assert GraphQLSettings.from_env({"FINCAT_GRAPHQL_MAX_PAGE": "20"}).max_page == 20
