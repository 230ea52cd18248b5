"""Record a coverage run: the badge in docs/ and a row of docs/coverage-history.csv.

Reads .coverage and coverage.xml from the repository root. The history has one row
per commit (date, commit, total, catalog_store, gateway); recording the same commit
again replaces its row instead of adding one. A working tree with changes beyond
these two files is recorded as "<commit>+dirty".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

import coverage
from coverage.exceptions import NoDataError

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "docs" / "coverage-history.csv"
BADGE = ROOT / "docs" / "coverage-badge.svg"
COLUMNS = ["date", "commit", "total", "catalog_store", "gateway"]


def git(*args: str) -> str | None:
    try:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return run.stdout.strip() if run.returncode == 0 else None


def commit_id() -> str:
    head = git("rev-parse", "--short=12", "HEAD")
    if head is None:
        return "unknown"
    own = {str(p.relative_to(ROOT)) for p in (HISTORY, BADGE)}
    status = git("status", "--porcelain", "--untracked-files=no") or ""
    changed = {entry[3:] for entry in status.splitlines()} - own
    return f"{head}+dirty" if changed else head


def figures() -> tuple[str, str, str]:
    cov = coverage.Coverage()
    cov.load()

    def pct(include: list[str] | None) -> str:
        try:
            return f"{cov.report(include=include, file=io.StringIO()):.2f}"
        except NoDataError:
            return ""

    return pct(None), pct(["catalog_store/*"]), pct(["gateway/*"])


def record_history(row: dict[str, str]) -> str:
    rows: list[dict[str, str]] = []
    if HISTORY.exists():
        with HISTORY.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    replaced = any(r["commit"] == row["commit"] for r in rows)
    rows = [row if r["commit"] == row["commit"] else r for r in rows]
    if not replaced:
        rows.append(row)
    HISTORY.parent.mkdir(parents=True, exist_ok=True)
    with HISTORY.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return "replaced" if replaced else "appended"


def write_badge(xml: Path) -> None:
    genbadge = Path(sys.executable).with_name("genbadge")
    subprocess.run(
        [str(genbadge), "coverage", "--local", "--silent", "-i", str(xml), "-o", str(BADGE)],
        cwd=ROOT,
        check=True,
    )


def main() -> int:
    os.chdir(ROOT)  # coverage's include patterns are relative to the working directory
    xml = ROOT / "coverage.xml"
    try:
        total, core, gateway = figures()
    except NoDataError as exc:
        print(f"coverage record: nothing recorded: {exc}")
        return 1
    if not xml.exists():
        print("coverage record: nothing recorded: coverage.xml is missing")
        return 1
    write_badge(xml)
    row = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit_id(),
        "total": total,
        "catalog_store": core,
        "gateway": gateway,
    }
    how = record_history(row)
    print(
        f"coverage record: {how} {row['commit']} in {HISTORY.relative_to(ROOT)}"
        f" (total {total} %); badge {BADGE.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
