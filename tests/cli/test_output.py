"""What ``fincat`` prints: --json documents, verify and gc reports, text, progress bars."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from rich.progress import Progress

from catalog_store import Catalog
from catalog_store.cli._output import Meter
from tests.cli.helpers import WIDE, as_json, cli, fails, ok, write_file
from tests.conftest import EAGER

# -- text output and the module entry point ------------------------------------------------


def test_text_output_is_not_markup(local: list[str]) -> None:
    with Catalog.open(local[1], create=True) as catalog:
        catalog.create(id="MARKUP", frequency="annual", title="[bold]GDP[/bold] [b]")
    assert "[bold]GDP[/bold] [b]" in ok(cli(*local, "ls")).stdout
    assert "[bold]GDP[/bold] [b]" in ok(cli(*local, "show", "MARKUP")).stdout


def test_module_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "catalog_store.cli",
            "--root",
            str(tmp_path / "c"),
            "init",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["created"] is True
    missing = subprocess.run(
        [sys.executable, "-m", "catalog_store.cli", "--root", str(tmp_path / "c"), "show", "X"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: series not found: 'X' at version 0"


def test_text_the_output_encoding_cannot_hold_is_escaped(tmp_path: Path) -> None:
    """A title with an accent under an ASCII stdout stopped ``ls`` half-printed with
    a UnicodeEncodeError traceback."""
    root = tmp_path / "c"
    with Catalog.open(root, create=True) as catalog:
        catalog.create(id="EUR.px", frequency="monthly", title="Prix à la consommation")
    for module in ("catalog_store.cli", "gateway.cli"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--root", str(root), "ls"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, "PYTHONIOENCODING": "ascii", "COLUMNS": "200"},
        )
        assert done.returncode == 0, done.stderr
        assert "Prix \\xe0 la consommation" in done.stdout, done.stdout


def test_output_that_cannot_be_written_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A disk-full stdout ended every command in a traceback, an import's too after
    its commit had landed; a reader gone before the output (``| true``) too."""
    root = str(tmp_path / "c")
    with Catalog.open(root, create=True) as catalog:
        catalog.create(id="A", frequency="daily")
        catalog.write("A", ([dt.date(2024, 1, 1)], [1.0]))
    wide = "date,A\n2024-01-02,2\n"
    for args in (["read", "A"], ["log"], ["ls", "--json"], ["import", "-", "--format", "wide"]):
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                [sys.executable, "-m", "catalog_store.cli", "--root", root, *args],
                input=wide,
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
                timeout=120,
            )
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.startswith("error: cannot write the output: No space left"), args
        assert "Traceback" not in done.stderr, args
    with Catalog.open(root) as catalog:
        assert catalog.read("A")["value"].to_pylist() == [1.0, 2.0]  # the import landed
    reading, writing = os.pipe()
    os.close(reading)  # the reader is gone before the first byte
    try:
        done = subprocess.run(
            [sys.executable, "-m", "catalog_store.cli", "--root", root, "read", "A"],
            stdout=writing,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        os.close(writing)
    assert (done.returncode, done.stderr) == (141, "")
    # No stdout at all (``>&-``): Python sets sys.stdout to None. As text or JSON.
    for args in ("log", "log --json"):
        command = f"{sys.executable} -m catalog_store.cli --root {root} {args} >&-"
        done = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, check=False, timeout=120
        )
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.startswith("error: cannot write the output: stdout is closed"), args


def test_an_interrupt_says_so_and_exits_130(
    local: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C ended a command without a word, whether or not a commit it was making
    had landed: the status and the message now say to read which."""
    ok(cli(*local, "init"))

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(Catalog, "list", interrupted)
    stderr = fails(cli(*local, "ls"), 130, "error: interrupted", "fincat log --limit 1")
    assert stderr.count("\n") == 1


# -- --json on every reporting command -----------------------------------------------------


def test_every_reporting_command_prints_one_json_document(tmp_path: Path) -> None:
    """Each command's --json output parses as JSON, says what happened, and is alone."""
    root = ["--root", str(tmp_path / "catalog")]

    def run(*args: str, input: str | None = None) -> Any:
        result = ok(cli(*root, *args, "--json", input=input))
        assert result.stderr == "", result.stderr
        return json.loads(result.stdout)

    assert run("init") == {"root": root[1], "created": True, "version": 0}
    path = write_file(tmp_path / "wide.csv", WIDE)
    imported = run("import", path, "--format", "wide", "--prefix", "W.", "--source", "test")
    assert (imported["ids"], imported["observations"], imported["version"]) == (
        ["W.gdp", "W.cpi"],
        5,
        1,
    )
    listed = run("ls", "--source", "test")
    assert sorted((s["id"], s["observation_count"]) for s in listed["items"]) == [
        ("W.cpi", 2),
        ("W.gdp", 3),
    ]
    assert (listed["version"], listed["next_cursor"]) == (1, None)
    shown = run("show", "W.gdp")
    assert (shown["first_date"], shown["last_date"], shown["version"]) == (
        "2000-01-01",
        "2000-03-01",
        1,
    )
    written = run("write", "W.gdp", "-", "--mode", "upsert", input="date,value\n2000-02-01,7\n")
    assert (written["version"], written["rows"], written["observation_count"]) == (2, 1, 3)
    assert run("read", "W.gdp", "--start", "2000-02-01", "--end", "2000-02-01") == [
        {"date": "2000-02-01", "value": 7.0}
    ]
    revised = run("revisions", "W.gdp", "--start", "2000-02-01", "--end", "2000-02-01")
    assert [(r["value"], r["realtime_end"] is None) for r in revised] == [
        (101.25, False),
        (7.0, True),
    ]
    assert run("compact", "W.gdp") == {"series_id": "W.gdp", "compacted": True, "version": 3}
    history = run("log", "--limit", "2")
    assert [(h["version"], h["message"]) for h in history] == [
        (3, "compact W.gdp"),
        (2, "upsert W.gdp"),
    ]
    assert [h["changes"] for h in history] == [1, 1]
    verified = run("verify")
    assert (verified["ok"], verified["latest_version"], verified["versions_checked"]) == (
        True,
        3,
        4,
    )
    assert (verified["problems"], verified["problem_counts"]) == ([], {})
    collected = run("gc", "--grace-hours", "0", "--dry-run")
    assert collected["dry_run"] is True
    assert collected["deleted"] == 0
    # Compaction left the two files it merged unreferenced by the newest version only:
    # every version is kept, so nothing is garbage yet.
    assert collected["candidates"] == []
    repaired = run("repair")
    assert (repaired["healthy_version"], repaired["new_version"]) == (3, None)
    assert repaired["lost_versions"] == []
    demo = run("demo")
    assert (demo["created"], demo["series"], demo["version"]) == (40, 40, 4)


def test_read_and_revisions_take_json_as_a_shorthand(series_root: list[str]) -> None:
    ok(cli(*series_root, "write", "EX.SALES", "-", input="date,value\n2020-01-01,1\n2020-02-01,\n"))
    expected = [{"date": "2020-01-01", "value": 1.0}, {"date": "2020-02-01", "value": None}]
    assert as_json(cli(*series_root, "read", "EX.SALES", "--json")) == expected
    assert as_json(cli(*series_root, "read", "EX.SALES", "--json", "--format", "json")) == expected
    rows = as_json(cli(*series_root, "revisions", "EX.SALES", "--json"))
    assert [(r["date"], r["value"], r["realtime_end"]) for r in rows] == [
        ("2020-01-01", 1.0, None),
        ("2020-02-01", None, None),
    ]
    assert ok(cli(*series_root, "read", "EX.SALES", "--format", "csv")).stdout.startswith(
        "date,value\n"
    )
    fails(cli(*series_root, "read", "EX.SALES", "--json", "--format", "csv"), 2, "--json")
    fails(cli(*series_root, "revisions", "EX.SALES", "--json", "--format", "csv"), 2, "--json")


def _damage_new_file(root: Path, before: set[Path]) -> Path:
    """Damage the one data file written since ``before`` was listed."""
    (victim,) = set((root / "data").rglob("*.parquet")) - before
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    return victim


def test_verify_json_reports_damage_and_exits_4(tmp_path: Path, local: list[str]) -> None:
    ok(cli(*local, "init"))
    path = write_file(tmp_path / "wide.csv", WIDE)
    ok(cli(*local, "import", path, "--format", "wide"))
    # Version 2 appends to gdp through an eager catalog, so that it writes a data file
    # of its own to damage (``fincat write`` would hold so small an append in the manifest).
    before = set((Path(local[1]) / "data").rglob("*.parquet"))
    with Catalog.open(local[1], options=EAGER) as catalog:
        catalog.write("gdp", ([dt.date(2000, 4, 1)], [103.0]))
    healthy = as_json(cli(*local, "verify", "--json"))
    # Records in each shard object: gdp and cpi share one id range, so version 1's
    # shard holds both and version 2's holds gdp's new state beside cpi.
    assert (healthy["ok"], healthy["versions_checked"], healthy["series_checked"]) == (True, 3, 4)
    assert healthy["objects_checked"] > 0
    assert as_json(cli(*local, "verify", "--latest", "--json"))["versions_checked"] == 1

    victim = _damage_new_file(Path(local[1]), before)
    damaged = cli(*local, "verify", "--json")
    assert damaged.exit_code == 4, damaged.output
    assert damaged.stderr == ""
    report = json.loads(damaged.stdout)
    assert report["ok"] is False
    assert report["latest_version"] == 2
    assert report["problem_counts"]["corrupt_object"] >= 1
    found = [p for p in report["problems"] if p["key"].endswith(victim.name)]
    assert found
    assert {p["kind"] for p in found} <= {"corrupt_object", "file_mismatch"}
    assert {p["series_id"] for p in found} == {"gdp"}
    assert cli(*local, "verify", "--latest", "--json").exit_code == 4

    text = cli(*local, "verify")
    assert text.exit_code == 4
    assert "PROBLEMS FOUND" in text.stdout
    assert "corrupt_object" in text.stdout
    assert "[red]" not in text.stdout

    repaired = as_json(cli(*local, "repair", "--json"))
    assert repaired["healthy_version"] == 1
    assert (repaired["lost_versions"], repaired["new_version"]) == ([2], 3)
    assert repaired["lost_changes"] == [["append", "gdp"]]
    assert "restore version 1" in repaired["message"]
    assert as_json(cli(*local, "verify", "--latest", "--json"))["ok"] is True
    assert as_json(cli(*local, "show", "gdp", "--json"))["last_date"] == "2000-03-01"


def test_gc_json_lists_and_deletes_old_orphans(tmp_path: Path, local: list[str]) -> None:
    ok(cli(*local, "init"))
    path = write_file(tmp_path / "wide.csv", WIDE)
    ok(cli(*local, "import", path, "--format", "wide"))
    orphan = Path(local[1]) / "data" / "gdp~0000000000000000" / f"part-{'0' * 32}.parquet"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a writer that died")
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).timestamp()
    os.utime(orphan, (old, old))

    kept = as_json(cli(*local, "gc", "--grace-hours", "3", "--json"))
    assert (kept["deleted"], kept["unreferenced_too_young"], kept["candidates"]) == (0, 1, [])
    dry = as_json(cli(*local, "gc", "--grace-hours", "1", "--dry-run", "--json"))
    assert dry["candidates"] == [f"data/gdp~0000000000000000/part-{'0' * 32}.parquet"]
    assert (dry["dry_run"], dry["unreferenced_old_enough"], dry["deleted"]) == (True, 1, 0)
    assert orphan.exists()
    done = as_json(cli(*local, "gc", "--grace-hours", "1", "--json"))
    assert (done["dry_run"], done["deleted"]) == (False, 1)
    assert done["bytes_freed"] >= len(b"left by a writer that died")
    assert done["referenced"] == dry["referenced"] > 0
    assert not orphan.exists()
    assert as_json(cli(*local, "verify", "--json"))["orphans"] == 0


# -- progress ------------------------------------------------------------------------------


def _fincat(args: list[str], tty: bool, **extra_env: str) -> tuple[int, str, str]:
    """Run ``python -m catalog_store.cli``; stderr on a pseudo-terminal when ``tty``.

    Returns the exit status, stdout, and what reached stderr.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE", "NO_COLOR")
    }
    env["TERM"] = "xterm-256color"
    env.update(extra_env)
    command = [sys.executable, "-m", "catalog_store.cli", *args]
    if not tty:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=120, check=False
        )
        return done.returncode, done.stdout, done.stderr
    import pty

    master, replica = pty.openpty()
    seen = bytearray()

    def drain() -> None:  # a terminal's buffer is small: read while the command runs
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed with the process
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=replica, env=env
        )
    finally:
        os.close(replica)
    try:
        out, _ = proc.communicate(timeout=120)
        reader.join(timeout=30)
    finally:
        os.close(master)
    return proc.returncode, out.decode(), seen.decode(errors="replace")


@pytest.mark.timeout(300)
def test_progress_is_drawn_on_a_terminal_and_never_on_stdout(tmp_path: Path) -> None:
    root = ["--root", str(tmp_path / "catalog")]
    rows = "\n".join(f"S{i},2000-{m:02d}-01,{i + m}" for i in range(30) for m in range(1, 13))
    path = write_file(tmp_path / "many.csv", "id,date,value\n" + rows + "\n")

    code, out, err = _fincat([*root, "demo", "--json"], tty=True)
    assert code == 0, err
    assert json.loads(out)["created"] == 40
    assert "loading demo series" in err
    assert "committing" in err  # the last phase, drawn as the bar is taken down

    code, out, err = _fincat([*root, "import", path, "--format", "long", "--json"], tty=True)
    assert code == 0, err
    assert (json.loads(out)["series"], json.loads(out)["observations"]) == (30, 360)
    assert "reading many.csv" in err

    code, out, err = _fincat([*root, "verify", "--json"], tty=True)
    assert code == 0, err
    assert json.loads(out)["versions_checked"] == 3
    assert "verifying versions" in err

    code, out, err = _fincat([*root, "gc", "--json"], tty=True)
    assert code == 0, err
    assert json.loads(out)["deleted"] == 0
    assert "collecting garbage" in err

    code, out, err = _fincat([*root, "compact", "S0", "--json"], tty=True)
    assert code == 0, err
    assert json.loads(out) == {"series_id": "S0", "compacted": False, "version": None}
    assert "compacting S0" in err

    # Text output on a terminal too: the bar is gone before the report is printed.
    code, out, err = _fincat([*root, "verify"], tty=True)
    assert code == 0, err
    assert out.rstrip().endswith("OK")
    assert "verifying" not in out

    # Not a terminal (a pipe, a CI log): nothing on stderr at all.
    for args in (
        ["demo", "--json"],
        ["import", path, "--format", "long", "--json"],
        ["verify", "--json"],
        ["gc", "--json"],
        ["compact", "S1", "--json"],
    ):
        code, out, err = _fincat([*root, *args], tty=False)
        assert code == 0, err
        assert err == ""
        json.loads(out)


def test_progress_stays_off_when_told(tmp_path: Path) -> None:
    """TTY_INTERACTIVE=0 turns the bars off even on a terminal."""
    root = ["--root", str(tmp_path / "catalog")]
    code, out, err = _fincat([*root, "demo", "--json"], tty=True, TTY_INTERACTIVE="0")
    assert code == 0, err
    assert json.loads(out)["series"] == 40
    assert "loading" not in err


def test_meter_moves_to_the_next_phase_when_a_count_completes() -> None:
    bar = Progress(disable=True)
    meter = Meter(bar, "importing", 2, then="committing")
    meter.advance()
    assert [(t.description, t.completed, t.total) for t in bar.tasks] == [("importing", 1, 2)]
    meter.advance()
    assert [(t.description, t.completed, t.total) for t in bar.tasks] == [("committing", 0, None)]
    meter.stage("verifying", then="looking for orphans")
    meter(3, 5)
    assert [(t.description, t.completed, t.total) for t in bar.tasks] == [("verifying", 3, 5)]
    meter(5, 5)
    assert [t.description for t in bar.tasks] == ["looking for orphans"]
