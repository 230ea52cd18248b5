"""The ``fincat`` command line of the gateway: ``serve`` and ``api-key``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gateway.auth import KeyRing, hash_token, keys_to_json, parse_keys
from gateway.cli import app as cli_app
from gateway.settings import NUMBERS, Number, Settings, SettingsError
from tests.conftest import StoreTarget
from tests.gateway.conftest import (
    KEYS,
    READ_TOKEN,
    ROOT,
    Server,
    bearer,
    free_port,
    problem,
    start_server,
)


def test_fincat_script_runs_the_gateway_cli() -> None:
    scripts = entry_points(group="console_scripts", name="fincat")
    assert [script.value for script in scripts] == ["gateway.cli:main"]
    result = CliRunner().invoke(cli_app, ["--help"], env={"NO_COLOR": "1", "COLUMNS": "120"})
    assert result.exit_code == 0
    for command in ("serve", "api-key", "init", "ls", "demo"):
        assert command in result.output


def test_serve_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli_app, ["--root", str(tmp_path), "serve", "--host", "0.0.0.0"], env={"NO_COLOR": "1"}
    )
    assert result.exit_code == 2
    assert "loopback" in result.output


def test_serve_given_one_key_file_twice_serves_it_once(
    local_target: StoreTarget, tmp_path: Path
) -> None:
    """Once by FINCAT_API_KEYS_FILE and once by --api-keys: each key once, not a worker
    that refuses its keys as "used twice" after serve has said it is serving."""
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(keys_to_json(KEYS))
    server = start_server(
        local_target,
        tmp_path,
        "--api-keys",
        str(keys_file),
        env={"FINCAT_API_KEYS_FILE": str(keys_file)},
    )
    try:
        assert f"{len(KEYS)} API key(s)" in server.log.read_text()
        assert httpx.get(f"{server.url}/v1/series").status_code == 401
        assert httpx.get(f"{server.url}/v1/series", headers=bearer(READ_TOKEN)).status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_logs_every_line_to_stderr_and_nothing_to_stdout(
    local_target: StoreTarget, tmp_path: Path, workers: str
) -> None:
    """uvicorn's access log went to stdout: ``fincat serve 2>gateway.log`` kept every
    line but the requests'."""
    import time

    port = free_port()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    command = [sys.executable, "-m", "gateway.cli", "--root", local_target.url, "serve"]
    command += ["--port", str(port), "--log-level", "info", "--workers", workers]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/series").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert out.read_bytes() == b""
    assert '"GET /v1/series HTTP/1.1" 200' in err.read_text()


def test_api_key_command_prints_a_usable_entry(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["api-key", "loader", "--scope", "write"])
    assert result.exit_code == 0, result.output
    token = result.output.split("token (give it to the client; it is not stored): ")[1].split()[0]
    entry = json.loads(result.output.split("key file entry: ")[1])
    assert entry == {"name": "loader", "sha256": hash_token(token), "scopes": ["write"]}
    ring = KeyRing(parse_keys([entry], "test"))
    found = ring.authenticate(token)
    assert found is not None and found.allows("read") and not found.allows("admin")
    assert ring.authenticate(token + "x") is None
    bad = CliRunner().invoke(cli_app, ["api-key", "x", "--scope", "root"])
    assert bad.exit_code == 2


def test_api_key_refuses_a_name_serve_would_refuse() -> None:
    for name in ("bad name!", "", "_x", "x" * 65):
        result = CliRunner().invoke(cli_app, ["api-key", name], env={"COLUMNS": "200"})
        assert result.exit_code == 2, result.output
        assert "'name' must be 1-64 letters" in result.stderr
        assert "token" not in result.stdout


def test_serve_refuses_a_directory_that_is_no_catalog(tmp_path: Path) -> None:
    for args in (["--root", str(tmp_path), "serve"], ["serve", "--root", str(tmp_path)]):
        result = CliRunner().invoke(cli_app, args, env={"NO_COLOR": "1", "COLUMNS": "200"})
        assert result.exit_code == 1, result.output
        assert (
            result.stderr.strip()
            == f"error: file://{tmp_path} is not a fincat store (no fincat.json)"
        )
        assert "Traceback" not in result.output


def test_export_graphql_schema_outside_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli_app, ["export-graphql-schema"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "error: cannot write docs/schema.graphql" in result.stderr
    assert "-o - for standard output" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    (tmp_path / "docs").mkdir()
    written = CliRunner().invoke(cli_app, ["export-graphql-schema"])
    assert written.exit_code == 0, written.output
    assert "type Query" in (tmp_path / "docs" / "schema.graphql").read_text()


def test_settings_survive_the_trip_through_the_environment() -> None:
    # fincat serve hands its settings to the server's processes as FINCAT_* variables.
    every_setting_changed = Settings(
        root="/srv/catalog",
        storage_options={"endpoint_url": "http://127.0.0.1:9"},
        host="0.0.0.0",
        port=8123,
        cache_ttl=2.5,
        cache_bytes=12345,
        api_keys=KEYS,
        rate_limit=7.5,
        rate_burst=9,
        max_body_bytes=4096,
        max_observations=77,
        create=True,
        hold_writes=False,
        monitor_interval=0.0,
        store_timeout=7.5,
        commit_timeout=3.5,
    )
    assert Settings.from_env(every_setting_changed.to_env()) == every_setting_changed
    # The storage deadline reaches the catalog: a frozen store fails a request as
    # unavailable after it (tests/test_store_deadlines.py), not after 120 s.
    assert every_setting_changed.catalog_options().store_timeout == 7.5
    # And so does the commit's: a write retries for that long, not the catalog's two
    # minutes (tests/test_store_deadlines.py has a commit give up at its limit).
    assert every_setting_changed.catalog_options().retry.max_seconds == 3.5
    with pytest.raises(SettingsError, match=r"^FINCAT_COMMIT_TIMEOUT must be >= 0\.1"):
        Settings.from_env({"FINCAT_ROOT": "x", "FINCAT_COMMIT_TIMEOUT": "0"})
    with pytest.raises(SettingsError, match=r"^FINCAT_STORE_TIMEOUT must be >= 0\.1, not 0\.0"):
        Settings.from_env({"FINCAT_ROOT": "x", "FINCAT_STORE_TIMEOUT": "0"})


def test_serve_takes_settings_from_the_environment_unless_given(
    local_target: StoreTarget, servers: Callable[..., Server]
) -> None:
    env = {
        "FINCAT_MAX_OBSERVATIONS": "2",
        "FINCAT_RATE_LIMIT": "0.001",
        "FINCAT_RATE_BURST": "3",
        "FINCAT_HOLD_WRITES": "0",
    }
    three = {"dates": ["2024-07-01", "2024-08-01", "2024-09-01"], "values": [1.0, 2.0, 3.0]}
    data = Path(local_target.url) / "data"

    def files() -> int:
        return sum(1 for _ in data.rglob("*.parquet"))

    from_env = servers(local_target, env=env)
    url = f"{from_env.url}/v1/series/UNRATE/observations"
    problem(httpx.post(url, json=three), 413)
    before = files()
    written = httpx.post(url, json={"dates": ["2024-07-01"], "values": [4.2]})
    assert written.status_code == 200, written.text
    assert files() > before  # not held in the manifest
    assert httpx.get(url, params={"start": "2024-07-01"}).status_code == 200  # one row
    problem(httpx.get(url), 429)  # a burst of three

    options_win = servers(local_target, "--rate-limit", "100", "--rate-burst", "100", env=env)
    url = f"{options_win.url}/v1/series/UNRATE/observations"
    for _ in range(5):
        problem(httpx.post(url, json=three), 413)


def serve_failing(
    target: StoreTarget, *args: str, program: Sequence[str] = ("-m", "gateway.cli"), **env: str
) -> tuple[int, str]:
    """Run ``fincat serve`` as a supervisor would, expecting it not to start: its exit
    status and stderr. A server that starts after all is killed by the timeout."""
    result = subprocess.run(
        [sys.executable, *program, "--root", target.url, "serve", *args],
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stderr


def test_serve_startup_failures_are_one_line_errors(local_target: StoreTarget) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, stderr = serve_failing(local_target, "--port", str(port))
    assert (status, stderr) == (
        1,
        f"error: cannot listen on 127.0.0.1 port {port}: Address already in use\n",
    )
    status, stderr = serve_failing(
        local_target, "--host", "999.1.1.1", FINCAT_API_KEYS=keys_to_json(KEYS)
    )
    assert status == 1
    assert stderr.startswith("error: cannot listen on 999.1.1.1 port 8000: ")
    assert len(stderr.splitlines()) == 1
    status, stderr = serve_failing(local_target, FINCAT_CACHE_TTL="nan")
    assert (status, stderr) == (2, "error: FINCAT_CACHE_TTL must be >= 0.0, not nan\n")


#: ``fincat`` for ``python -c``, its catalog (the directory after --root) removed once
#: serve has checked it and the address: a change after the checks, which only the
#: server's own start meets.
LOSE_THE_CATALOG = """
import shutil
import sys

import gateway.cli

check_address = gateway.cli._try_listen


def check_address_then_lose_the_catalog(host: str, port: int) -> None:
    check_address(host, port)
    shutil.rmtree(sys.argv[sys.argv.index("--root") + 1])


gateway.cli._try_listen = check_address_then_lose_the_catalog
gateway.cli.main()
"""


@pytest.mark.parametrize(
    ("workers", "message"),
    [
        (1, "error: the server did not start (its log above says why)"),
        (2, "error: a worker did not start, so the server stopped (its log above says why)"),
    ],
)
def test_serve_fails_when_the_server_fails_to_start_after_the_checks(
    local_target: StoreTarget, workers: int, message: str
) -> None:
    # uvicorn's supervisor stops every worker when one fails to start and returns as
    # when it is told to stop: serve must not then exit 0, as if it had been stopped.
    port = str(free_port())
    program = ("-c", LOSE_THE_CATALOG)
    status, stderr = serve_failing(
        local_target, "--workers", str(workers), "--port", port, program=program
    )
    assert status == 1, stderr
    assert "is not a fincat store (no fincat.json)" in stderr  # the server's log
    assert stderr.splitlines()[-1] == message


@pytest.mark.parametrize(
    ("option", "variable", "value"),
    [
        ("--port", "FINCAT_PORT", "65536"),
        ("--cache-ttl", "FINCAT_CACHE_TTL", "-1"),
        ("--cache-bytes", "FINCAT_CACHE_BYTES", "0"),
        ("--rate-limit", "FINCAT_RATE_LIMIT", "nan"),
        ("--rate-burst", "FINCAT_RATE_BURST", "0"),
        ("--cache-ttl", "FINCAT_CACHE_TTL", "inf"),
        ("--rate-limit", "FINCAT_RATE_LIMIT", "1e400"),
    ],
)
def test_a_variable_is_refused_where_its_option_is(
    tmp_path: Path, option: str, variable: str, value: str
) -> None:
    refused = CliRunner().invoke(cli_app, ["--root", str(tmp_path), "serve", option, value])
    assert refused.exit_code == 2, refused.output
    assert option in refused.output
    with pytest.raises(SettingsError, match=f"^{variable} must be "):
        Settings.from_env({"FINCAT_ROOT": "x", variable: value})


@pytest.mark.parametrize(
    "number", [n for n in NUMBERS.values() if n.variable is not None], ids=lambda n: n.variable
)
def test_no_numeric_variable_takes_infinity(number: Number) -> None:
    # None gives infinity a meaning (0 is "off" where there is one); an infinite
    # timeout, interval or time to live would hold for ever.
    variable = str(number.variable)
    for text in ("inf", "-inf", "1e400", "Infinity"):
        with pytest.raises(SettingsError, match=f"^{variable} must be "):
            Settings.from_env({"FINCAT_ROOT": "x", variable: text})
    if number.kind is float:
        with pytest.raises(SettingsError, match=f"^{variable} must be a finite number >= "):
            Settings.from_env({"FINCAT_ROOT": "x", variable: "inf"})


def test_serve_refuses_an_unknown_log_level_before_opening_the_catalog(tmp_path: Path) -> None:
    # tmp_path is no catalog: a level let through would fail on that (exit 1) first.
    refused = CliRunner().invoke(
        cli_app,
        ["--root", str(tmp_path), "serve", "--log-level", "bogus"],
        env={"NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert refused.exit_code == 2, refused.output
    assert "--log-level" in refused.output
    assert "'critical', 'error', 'warning', 'info', 'debug', 'trace'" in refused.output


def test_serve_refuses_a_bad_variable_in_one_line(local_target: StoreTarget) -> None:
    status, stderr = serve_failing(local_target, FINCAT_CACHE_BYTES="0")
    assert (status, stderr) == (2, "error: FINCAT_CACHE_BYTES must be >= 1, not 0\n")
    status, stderr = serve_failing(local_target, FINCAT_HOLD_WRITES="banana")
    assert status == 2
    assert stderr.startswith("error: FINCAT_HOLD_WRITES must be 1, true, yes or on, or 0")


def test_flag_variables_take_the_usual_words_and_nothing_else() -> None:
    words = {"1": True, "TRUE": True, "yes": True, " On ": True}
    words |= {"0": False, "false": False, "NO": False, "off": False}
    flags = {
        "FINCAT_CREATE": lambda s: s.create,
        "FINCAT_HOLD_WRITES": lambda s: s.hold_writes,
        "FINCAT_GRAPHQL_IDE": lambda s: s.graphql.ide,
    }
    for variable, read in flags.items():
        for word, value in words.items():
            assert read(Settings.from_env({"FINCAT_ROOT": "x", variable: word})) is value
        for word in ("maybe", "", "2", "y", "enabled"):
            with pytest.raises(SettingsError, match=f"^{variable} must be 1, true, yes or on"):
                Settings.from_env({"FINCAT_ROOT": "x", variable: word})
