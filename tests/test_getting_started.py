"""docs/getting-started.md, run for real, block by block.

Every fenced block in the page is preceded by an HTML comment that says what to do
with it (the next fenced block after the comment):

    <!-- test: KIND [NAME] [key=value ...] -->

``run``
    A bash block (``bash -euo pipefail``) run to completion in the walkthrough's
    directory; it must exit 0.
``serve``
    A bash block that keeps running (a server). It is started in its own process
    group, the test waits until the ``ready=URL`` answers 200, and the whole group
    is stopped when the test ends, whatever happens.
``env``
    A bash block of ``export`` lines: the variables it leaves set apply to every
    later block (as they would in the reader's terminal).
``python``
    A Python block, run with the venv's ``python``.
``expect``
    Text: output of the block before it (for a ``serve`` block, what it has logged
    by the time it is ready). Its lines must appear in that output in order, with
    runs of whitespace collapsed (so the wrapping of terminal tables does not
    matter).
``skip``
    Not run; the rest of the comment says why.

A fenced block without a comment fails the test, so nothing on the page goes
unchecked. ``NAME`` ties a block to extra assertions on its output (``CHECKS``).

The blocks run as written, with these substitutions: the ports 8000, 8001 and 9000
become free ports; the walkthrough's directory (the clone's root on the page) is a
temporary directory; ``PATH`` starts with the venv's ``bin`` (so ``fincat`` and
``python`` are the venv's), ``PYTHONPATH`` is the repository (for ``python -m
tests.s3server``), and ``FINCAT_*`` and ``AWS_*`` variables from the test's own
environment are removed. Without curl the walkthrough is skipped: its HTTP steps use
it, and later steps read what they wrote.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "getting-started.md"
VENV_BIN = Path(sys.executable).parent
PORTS = ("8000", "8001", "9000")
KINDS = {"run", "serve", "env", "python", "expect", "skip"}

MARKER = re.compile(r"<!--\s*test:\s*(?P<spec>.*?)\s*-->", re.DOTALL)
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


@dataclass
class Block:
    kind: str
    name: str
    options: dict[str, str]
    language: str
    code: str
    line: int

    @property
    def where(self) -> str:
        return f"{PAGE.name}:{self.line} ({self.kind} {self.name})".rstrip()


def parse_page(text: str) -> list[Block]:
    """The fenced blocks of ``text``, each with the marker comment before it."""
    blocks: list[Block] = []
    position = 0
    for fence in FENCE.finditer(text):
        line = text.count("\n", 0, fence.start()) + 1
        between = text[position : fence.start()]
        position = fence.end()
        markers = list(MARKER.finditer(between))
        if not markers:
            raise AssertionError(f"{PAGE.name}:{line}: a fenced block without a test marker")
        words = markers[-1].group("spec").split()
        kind = words[0] if words else ""
        if kind not in KINDS:
            raise AssertionError(f"{PAGE.name}:{line}: unknown test marker {kind!r}")
        name = ""
        options: dict[str, str] = {}
        if kind != "skip":
            for word in words[1:]:
                if "=" in word:
                    key, value = word.split("=", 1)
                    options[key] = value
                elif not name:
                    name = word
                else:
                    raise AssertionError(f"{PAGE.name}:{line}: unexpected {word!r} in marker")
        elif len(words) < 2:
            raise AssertionError(f"{PAGE.name}:{line}: a skipped block must say why")
        blocks.append(
            Block(kind, name, options, fence.group("info").strip(), fence.group("body"), line)
        )
    return blocks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def collapse(text: str) -> str:
    return " ".join(text.split())


def assert_lines_in_order(expected: str, output: str, where: str) -> None:
    haystack = collapse(output)
    position = 0
    for line in expected.splitlines():
        needle = collapse(line)
        if not needle:
            continue
        found = haystack.find(needle, position)
        assert found >= 0, f"{where}: expected {needle!r} in the output:\n{output}"
        position = found + len(needle)


@dataclass
class Walkthrough:
    """Runs the page's blocks in one directory and environment, like a reader would."""

    workdir: Path
    scratch: Path
    env: dict[str, str]
    ports: dict[str, int]
    servers: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def substitute(self, text: str) -> str:
        return re.sub(
            r"(?<![\d.])(8000|8001|9000)(?!\d)", lambda m: str(self.ports[m.group(1)]), text
        )

    def run(self, block: Block) -> str:
        code = self.substitute(block.code)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (
            f"{block.where} exited {result.returncode}\n--- stdout\n{result.stdout}"
            f"\n--- stderr\n{result.stderr}{self.server_logs()}"
        )
        return result.stdout

    def python(self, block: Block) -> str:
        script = self.scratch / f"block-{block.line}.py"
        script.write_text(self.substitute(block.code))
        result = subprocess.run(
            [str(VENV_BIN / "python"), str(script)],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (
            f"{block.where} exited {result.returncode}\n--- stdout\n{result.stdout}"
            f"\n--- stderr\n{result.stderr}{self.server_logs()}"
        )
        return result.stdout

    def export(self, block: Block) -> None:
        code = self.substitute(block.code) + "\nenv -0\n"
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{block.where}: {result.stderr.decode()}"
        pairs = (item.split(b"=", 1) for item in result.stdout.split(b"\0") if b"=" in item)
        exported = {key.decode(): value.decode() for key, value in pairs}
        for key in ("_", "SHLVL", "PWD", "OLDPWD"):
            exported.pop(key, None)
        self.env = exported

    def serve(self, block: Block) -> str:
        ready = block.options.get("ready")
        assert ready, f"{block.where}: a serve block needs ready=URL"
        ready = self.substitute(ready)
        log = self.scratch / f"server-{block.line}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                ["bash", "-c", self.substitute(block.code)],
                cwd=self.workdir,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.servers.append((process, log))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(
                    f"{block.where} exited {process.returncode}:\n{log.read_text()}"
                )
            try:
                if httpx.get(ready, timeout=2).status_code == 200:
                    return log.read_text(errors="replace")
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{block.where}: {ready} not ready in 60 s:\n{log.read_text()}")

    def server_logs(self) -> str:
        return "".join(
            f"\n--- {log.name}\n{log.read_text(errors='replace')[-4000:]}"
            for _, log in self.servers
        )

    def close(self) -> None:
        for process, _ in reversed(self.servers):
            if process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        # Children that outlived their shell are in the same group: make sure.
        for process, _ in self.servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


# -- extra assertions on named blocks ----------------------------------------------------


def check_list(out: str) -> None:
    body = json.loads(out)
    assert {s["id"] for s in body["items"]} == {"MSFT", "AMZN", "IBM", "GOOG", "AAPL"}
    assert {s["source"] for s in body["items"]} == {"market"}
    assert body["next_cursor"] is None


def check_series(out: str) -> None:
    series = json.loads(out)
    assert series["id"] == "US.REALGDP"
    assert series["source"] == "FRED"
    assert series["version"] == 1
    assert series["observation_count"] == 203
    assert (series["first_date"], series["last_date"]) == ("1959-01-01", "2009-07-01")


def check_graphql(out: str) -> None:
    body = json.loads(out)
    assert "errors" not in body, body
    series = body["data"]["series"]
    assert series["title"] == "Real Gross Domestic Product"
    assert series["observations"]["dates"][0] == "1959-01-01"
    assert series["observations"]["values"] == [2710.349, 2778.801, 2775.488, 2785.204]
    assert body["data"]["catalogStats"] == {"seriesCount": 40, "observationCount": 5756}


def check_create(out: str) -> None:
    series = json.loads(out)
    assert series["id"] == "MY.RATE"
    assert series["partitioning"] == "year"
    assert series["observation_count"] == 0


def check_write(out: str) -> None:
    series = json.loads(out)
    assert series["observation_count"] == 4
    assert (series["first_date"], series["last_date"]) == ("2023-12-28", "2024-01-03")


def check_revise(out: str) -> None:
    series = json.loads(out)
    assert series["version"] == 5  # the page says so
    assert series["observation_count"] == 203


def check_revisions(out: str) -> None:
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["date"], float(r["value"])) for r in rows] == [
        ("2009-07-01", 12990.341),
        ("2009-07-01", 12973.2),
    ]
    assert rows[0]["realtime_end"] == rows[1]["realtime_start"] != ""
    assert rows[1]["realtime_end"] == ""


CHECKS: dict[str, Callable[[str], None]] = {
    "curl-list": check_list,
    "curl-series": check_series,
    "curl-graphql": check_graphql,
    "curl-create": check_create,
    "curl-write": check_write,
    "curl-revise": check_revise,
    "curl-revisions": check_revisions,
}


def walkthrough_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FINCAT_", "AWS_")) and key != "PYTHONPATH"
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    env["PYTHONPATH"] = str(ROOT)
    return env


# -- tests -------------------------------------------------------------------------------


def test_every_block_is_marked_and_every_name_is_checked() -> None:
    blocks = parse_page(PAGE.read_text())
    names = [b.name for b in blocks if b.name]
    assert len(names) == len(set(names)), "block names must be unique"
    assert set(CHECKS) <= set(names), set(CHECKS) - set(names)
    for before, block in zip([None, *blocks], blocks, strict=False):
        if block.kind == "expect":
            assert before is not None
            assert before.kind in {"run", "python", "serve"}, f"{block.where}: {before.kind}"
        if block.kind in {"run", "serve", "env"}:
            assert block.language == "bash", block.where
        if block.kind == "python":
            assert block.language == "python", block.where


def test_getting_started_walkthrough(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the walkthrough's HTTP steps use it")
    assert (VENV_BIN / "fincat").exists(), f"fincat is not installed in {VENV_BIN}"
    blocks = parse_page(PAGE.read_text())
    workdir = tmp_path / "clone"
    workdir.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    walk = Walkthrough(workdir, scratch, walkthrough_env(), {p: free_port() for p in PORTS})
    last: str | None = None
    try:
        for block in blocks:
            if block.kind == "skip":
                continue
            if block.kind == "expect":
                assert last is not None, block.where
                assert_lines_in_order(walk.substitute(block.code), last, block.where)
                continue
            last = None
            if block.kind == "run":
                last = walk.run(block)
            elif block.kind == "python":
                last = walk.python(block)
            elif block.kind == "env":
                walk.export(block)
            elif block.kind == "serve":
                last = walk.serve(block)
            if block.name in CHECKS and last is not None:
                try:
                    CHECKS[block.name](last)
                except Exception as exc:
                    raise AssertionError(f"{block.where}: {exc!r}\n{last}") from exc
    finally:
        walk.close()
