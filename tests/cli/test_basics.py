"""The ``fincat`` CLI's global options, init, exit statuses and the wording of its errors."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto.core import set_initial_no_auth_action_count

from catalog_store.cli._app import describe, exit_code
from catalog_store.cli._common import parse_storage_options
from catalog_store.errors import (
    AppendOrderError,
    CatalogStoreError,
    CommitRetriesExhaustedError,
    CommitStateUnknownError,
    ExternalIdTakenError,
    SeriesExistsError,
    StorageFullError,
    StorageUnavailableError,
    ValidationError,
    VersionMismatchError,
)
from catalog_store.models import parse_spec
from tests.cli.helpers import as_json, cli, fails, latest_version, ok, roots
from tests.conftest import StoreTarget, new_bucket

# -- global options and init ---------------------------------------------------------------


def test_help_lists_every_command() -> None:
    out = ok(cli("--help")).stdout
    for name in ("init", "ls", "show", "log", "import", "demo", "write", "read"):
        assert name in out
    assert "revisions" in out
    assert "compact" in out


def test_init_creates_once_with_the_shard_count(tmp_path: Path, local: list[str]) -> None:
    first = as_json(cli(*local, "init", "--shards", "4", "--json"))
    assert first == {"root": local[1], "created": True, "version": 0}
    marker = json.loads((tmp_path / "catalog" / "fincat.json").read_text())
    assert marker["shard_count"] == 4
    again = cli(*local, "init", "--shards", "9", "--json")
    assert as_json(again) == {"root": local[1], "created": False, "version": 0}
    assert "note: --shards 9 is not applied" in again.stderr
    assert json.loads((tmp_path / "catalog" / "fincat.json").read_text())["shard_count"] == 4
    plain = ok(cli(*local, "init"))
    assert "already exists" in plain.stdout
    assert plain.stderr == ""


def test_init_that_loses_the_race_to_create_says_so(tmp_path: Path, local: list[str]) -> None:
    """Another init made version 0 first and has not written the marker yet: this one
    did not create the catalog, and its --shards are not the catalog's."""
    ok(cli(*local, "init", "--shards", "4"))
    (tmp_path / "catalog" / "fincat.json").unlink()  # as between the other's two writes
    lost = cli(*local, "init", "--shards", "9", "--json")
    assert as_json(lost) == {"root": local[1], "created": False, "version": 0}
    assert "note: --shards 9 is not applied" in lost.stderr
    assert json.loads((tmp_path / "catalog" / "fincat.json").read_text())["shard_count"] == 4


def test_init_on_shared_store(shared_target: StoreTarget) -> None:
    assert as_json(cli(*roots(shared_target), "init", "--json"))["created"] is True
    with shared_target.open(create=False) as catalog:
        assert catalog.version() == 0


def test_root_comes_from_the_environment(tmp_path: Path) -> None:
    env = {"FINCAT_ROOT": str(tmp_path / "from-env")}
    assert as_json(cli("init", "--json", env=env))["root"] == str(tmp_path / "from-env")
    assert (tmp_path / "from-env" / "fincat.json").exists()


def test_a_missing_catalog_is_a_clear_error(tmp_path: Path) -> None:
    fails(cli("--root", str(tmp_path / "nothing"), "ls"), 1, "error:", "not a fincat store")


def test_a_creation_interrupted_between_its_writes_says_how_to_finish_it(
    tmp_path: Path, local: list[str]
) -> None:
    """init killed after version 0, before fincat.json: every command said "not a
    fincat store", as of a folder that never was one."""
    ok(cli(*local, "init"))
    (tmp_path / "catalog" / "fincat.json").unlink()
    fails(cli(*local, "ls"), 1, "version 0 but no fincat.json", "run fincat init")
    ok(cli(*local, "init"))
    assert ok(cli(*local, "ls")).stderr == ""


def test_malformed_storage_option_is_a_usage_error(local: list[str]) -> None:
    fails(cli(*local, "--storage-option", "novalue", "ls"), 2, "KEY=VALUE")


@pytest.mark.parametrize(
    "option", ["endpoint_url=notaurl", "endpoint_url=localhost:9000", "bogus=1", "client_kwargs=5"]
)
def test_s3_options_that_cannot_make_a_client_are_one_line_errors(option: str) -> None:
    fails(
        cli("--root", "s3://bucket/catalog", "--storage-option", option, "ls"),
        1,
        "error: storage_options: the S3 storage options cannot make a client",
    )


def test_storage_options_keep_secrets_as_strings() -> None:
    options = parse_storage_options(
        ["key=12345", "anon=false", 'client_kwargs={"region_name": "eu-west-1"}', "a=b=c"]
    )
    assert options == {
        "key": "12345",
        "anon": False,
        "client_kwargs": {"region_name": "eu-west-1"},
        "a": "b=c",
    }


# -- exit statuses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AppendOrderError("S", "2000-01-01", "2000-02-01"), 1),
        (VersionMismatchError("S", 3, 4), 1),
        (ExternalIdTakenError("fred", "GDP", "S"), 1),
        (CommitRetriesExhaustedError("lost 10 races"), 3),
        (SeriesExistsError("S"), 3),
        (StorageUnavailableError("timed out"), 5),
        (CommitStateUnknownError("version 7 unknown", "c1", [7]), 5),
        (StorageFullError("no space left"), 1),
    ],
)
def test_exit_3_means_running_again_may_succeed(error: CatalogStoreError, code: int) -> None:
    assert exit_code(error) == code


def test_an_unreachable_store_exits_5() -> None:
    # Nothing listens on the discard port; one attempt, so that it fails quickly.
    options = {
        "endpoint_url": "http://127.0.0.1:9",
        "key": "k",
        "secret": "s",
        "config_kwargs": '{"retries": {"max_attempts": 1}, "connect_timeout": 1}',
    }
    args = [arg for key, value in options.items() for arg in ("--storage-option", f"{key}={value}")]
    fails(cli("--root", "s3://fincat-nowhere/x", *args, "ls"), 5, "Could not connect")


def without_credentials(tmp_path: Path, **variables: str) -> dict[str, str | None]:
    """An environment holding no AWS credentials but ``variables``: the machine's own
    files are swapped for empty ones, and no instance role is asked for."""
    empty = tmp_path / "empty-aws-file"
    empty.write_text("")
    names = (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    )
    env: dict[str, str | None] = dict.fromkeys(names)
    env |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_CONFIG_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return env | variables


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({}, "Unable to locate credentials"),
        ({"AWS_ACCESS_KEY_ID": "testing"}, "missing: AWS_SECRET_ACCESS_KEY"),
        ({"AWS_PROFILE": "fincat-nobody"}, "profile (fincat-nobody) could not be found"),
    ],
)
def test_missing_s3_credentials_exit_1_saying_so(
    s3_endpoint: str, tmp_path: Path, variables: dict[str, str], reason: str
) -> None:
    # Running again finds no credentials either: not 5, "the storage may come back".
    args = ["--root", f"s3://{new_bucket(s3_endpoint)}/catalog"]
    args += ["--storage-option", f"endpoint_url={s3_endpoint}"]
    env = without_credentials(tmp_path, **variables)
    for command in (["init"], ["ls", "--json"]):
        stderr = fails(cli(*args, *command, env=env), 1, "error: no S3 credentials: ", reason)
        assert len(stderr.splitlines()) == 1
        assert "AWS_ACCESS_KEY_ID" in stderr


def test_refused_s3_credentials_exit_1_saying_so(s3_endpoint: str, tmp_path: Path) -> None:
    # moto takes any key unless asked to check them, as S3 does, against its IAM users.
    aws = {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}
    user = f"fincat-{tmp_path.name}"[:64]
    boto3.client("iam", **aws).create_user(UserName=user)
    key = boto3.client("iam", **aws).create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    root = ["--root", f"s3://{new_bucket(s3_endpoint)}/catalog"]
    root += ["--storage-option", f"endpoint_url={s3_endpoint}"]
    env = without_credentials(tmp_path)
    checked = set_initial_no_auth_action_count(0)(cli)
    refused = {
        ("AKIAFINCATNOSUCHKEY", "secret"): "The AWS Access Key Id you provided does not exist",
        (key, "not-its-secret"): "The request signature we calculated does not match",
    }
    for (key_id, secret), reason in refused.items():
        args = [*root, "--storage-option", f"key={key_id}", "--storage-option", f"secret={secret}"]
        stderr = fails(checked(*args, "ls", env=env), 1, "error: fincat.json: ", reason)
        assert len(stderr.splitlines()) == 1


# -- error wording -------------------------------------------------------------------------


def test_a_naive_instant_is_asked_for_an_offset(local: list[str]) -> None:
    ok(cli(*local, "init"))
    intraday = ["import", "-", "--format", "wide", "--frequency", "intraday", "--prefix", "I."]
    naive = fails(cli(*local, *intraday, input="date,a\n2024-05-02T10:00:00,1\n"), 1)
    assert "no UTC offset" in naive and "2024-05-02T10:00:00Z" in naive, naive
    fails(cli(*local, "read", "X", "--start", "2024-05-02T10:00:00"), 2, "no UTC offset")


def test_a_frequency_takes_its_article(local: list[str]) -> None:
    ok(cli(*local, "init"))
    intraday = ["import", "-", "--format", "wide", "--frequency", "intraday", "--prefix", "I."]
    fails(
        cli(*local, *intraday, input="date,a\n2024-05-02,1\n"),
        1,
        "not an instant with a UTC offset, as an intraday series needs",
    )
    annual = ["import", "-", "--format", "wide", "--frequency", "annual", "--prefix", "A."]
    fails(
        cli(*local, *annual, input="date,a\n2024-05-02T10:00:00Z,1\n"),
        1,
        "is not a calendar date, as an annual series needs",
    )


def test_a_duplicate_date_is_named_before_a_frequency_is_inferred(local: list[str]) -> None:
    ok(cli(*local, "init"))
    fails(
        cli(*local, "import", "-", "--format", "wide", input="date,a\n2000-01-01,1\n2000-01,2\n"),
        1,
        "error: date: line 3: duplicate date 2000-01-01, also on line 2",
    )
    long = "id,date,value\nX,2000,1\nY,2000,5\nX,2000,2\n"
    fails(
        cli(*local, "import", "-", "--format", "long", input=long),
        1,
        "line 4: duplicate date 2000-01-01, also on line 2",
    )
    assert latest_version(local) == 0


def test_a_bad_source_is_explained_in_words(local: list[str]) -> None:
    ok(cli(*local, "init"))
    text = "date,a\n2000-01-01,1\n2000-02-01,2\n"
    bad = fails(
        cli(*local, "import", "-", "--format", "wide", "--source", "bad source!", input=text),
        2,
        "'bad source!' is not a source name",
        "starting with a letter or digit",
    )
    assert "pattern" not in bad
    assert latest_version(local) == 0


def test_engine_reports_name_each_field_once() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_spec({"id": "X", "frequency": "annual", "source": "bad source!"})
    assert describe(caught.value).startswith("source: must be empty or 1-64 ASCII letters")
    assert describe(ValidationError("must be positive", "limit")) == "limit: must be positive"


def test_an_existing_series_of_another_source_is_refused_by_source(local: list[str]) -> None:
    ok(cli(*local, "init"))
    first = "date,a\n2000-01-01,1\n2000-02-01,2\n"
    wide = ["import", "-", "--format", "wide", "--prefix", "S."]
    ok(cli(*local, *wide, "--source", "FRED", input=first))
    version = latest_version(local)
    more = "date,a,b\n2000-03-01,3,1\n2000-04-01,4,2\n"
    fails(
        cli(*local, *wide, "--source", "BLS", input=more),
        1,
        "series 'S.a' exists with source 'FRED', not 'BLS'",
    )
    assert latest_version(local) == version  # nothing imported, S.b not created
    ok(cli(*local, *wide, "--source", "FRED", input=more))  # the same source: imported
    ok(cli(*local, *wide, input="date,a\n2000-05-01,5\n2000-06-01,6\n"))  # no --source
    assert latest_version(local) == version + 2
