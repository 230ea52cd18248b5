"""Plain helpers for the ``fincat`` CLI tests: run a command in-process, check its result."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from catalog_store.cli import app
from tests.conftest import StoreTarget

RUNNER = CliRunner(env={"COLUMNS": "200"})

#: A wide CSV file: two monthly series, one value missing.
WIDE = """date,gdp,cpi
2000-01-01,100.5,170
Feb 1 2000,101.25,
2000-03-01,102,171.5
"""


def cli(
    *args: str, input: str | None = None, env: Mapping[str, str | None] | None = None
) -> Result:
    """Run ``fincat`` in-process; a variable ``env`` sets to None is removed for the run."""
    return RUNNER.invoke(app, list(args), input=input, env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def fails(result: Result, code: int, *fragments: str) -> str:
    """Assert a clean failure: the exit status, a message on stderr, no traceback."""
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result.stderr


def roots(target: StoreTarget) -> list[str]:
    args = ["--root", target.url]
    for key, value in target.options.items():
        args += ["--storage-option", f"{key}={value}"]
    return args


def write_file(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def latest_version(args: list[str]) -> int:
    """The newest catalog version, as ``fincat log`` reports it."""
    return int(as_json(cli(*args, "log", "--limit", "1", "--json"))[0]["version"])
