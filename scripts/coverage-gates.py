"""Coverage gates: the whole project, catalog_store, and the lines changed against main.

Reads the coverage data (.coverage) and the XML report (coverage.xml) that
``pytest --cov`` leaves in the repository root, prints each figure beside its
threshold and exits 1 when any is missed.

The changed-lines gate runs diff-cover against FINCAT_COMPARE_BRANCH when it is
set (a missing branch is then an error), else against origin/main when it exists,
else main. With no git repository or no such branch it is skipped, saying so.
Besides the commits on HEAD that the compare branch lacks, it counts staged,
unstaged and untracked changes: what a commit would bring is what it checks.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import coverage
from coverage.exceptions import NoDataError

ROOT = Path(__file__).resolve().parent.parent
TOTAL_MIN = 85.0
CATALOG_STORE_MIN = 90.0
DIFF_MIN = 90.0


def line(name: str, figure: str, gate: float | None, ok: bool | None) -> None:
    verdict = {True: "ok", False: "FAILED", None: ""}[ok]
    wanted = f"(gate >= {gate:g} %)" if gate is not None else ""
    print(f"{name:<16} {figure:>9}  {wanted:<16} {verdict}".rstrip())


def percent(cov: coverage.Coverage, include: list[str] | None = None) -> float:
    return float(cov.report(include=include, file=io.StringIO()))


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def has_commit(ref: str) -> bool:
    return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode == 0


def compare_branch() -> tuple[str | None, str]:
    """The branch to diff against, or None with the reason to skip (or fail)."""
    if shutil.which("git") is None or git("rev-parse", "--git-dir").returncode != 0:
        return None, "skipped: not a git repository"
    wanted = os.environ.get("FINCAT_COMPARE_BRANCH", "").strip()
    if wanted:
        if has_commit(wanted):
            return wanted, ""
        return None, f"FAILED: FINCAT_COMPARE_BRANCH={wanted} is not a commit here"
    for candidate in ("origin/main", "main"):
        if has_commit(candidate):
            return candidate, ""
    return None, "skipped: neither origin/main nor main exists"


def diff_gate(xml: Path, minimum: float, report_dir: Path) -> bool:
    branch, reason = compare_branch()
    if branch is None:
        print(f"changed lines    {reason}")
        return not reason.startswith("FAILED")
    if not xml.exists():
        print(f"changed lines    FAILED: {xml.name} is missing (run pytest --cov first)")
        return False
    report_dir.mkdir(parents=True, exist_ok=True)
    json_report = report_dir / "diff-cover.json"
    formats = ",".join(
        [
            f"json:{json_report}",
            f"markdown:{report_dir / 'diff-cover.md'}",
            f"html:{report_dir / 'diff-cover.html'}",
        ]
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "diff_cover.diff_cover_tool",
            str(xml),
            f"--compare-branch={branch}",
            "--include-untracked",
            f"--format={formats}",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0 or not json_report.exists():
        print(f"changed lines    FAILED: diff-cover exited {run.returncode}")
        print(run.stdout + run.stderr, end="")
        return False
    result = json.loads(json_report.read_text())
    lines = int(result.get("total_num_lines", 0))
    missed = int(result.get("total_num_violations", 0))
    if lines == 0:
        line("changed lines", "-", minimum, True)
        print(f"                 no changed line that coverage measures (vs {branch})")
        return True
    figure = 100.0 * (lines - missed) / lines
    ok = figure >= minimum
    line("changed lines", f"{figure:.2f} %", minimum, ok)
    print(f"                 {lines - missed} of {lines} changed lines covered (vs {branch})")
    if not ok:
        for path, stats in sorted(result.get("src_stats", {}).items()):
            uncovered = stats.get("violation_lines", [])
            if uncovered:
                numbers = ", ".join(str(n) for n in uncovered)
                print(f"                 {path}: not covered: {numbers}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total", type=float, default=TOTAL_MIN)
    parser.add_argument("--catalog-store", type=float, default=CATALOG_STORE_MIN)
    parser.add_argument("--diff", type=float, default=DIFF_MIN)
    parser.add_argument("--xml", type=Path, default=ROOT / "coverage.xml")
    parser.add_argument("--reports", type=Path, default=ROOT / "htmlcov", help="for diff-cover.*")
    args = parser.parse_args()

    os.chdir(ROOT)  # coverage's include patterns are relative to the working directory
    cov = coverage.Coverage()
    try:
        cov.load()
        total = percent(cov)
        core = percent(cov, ["catalog_store/*"])
    except NoDataError as exc:
        print(f"coverage gates FAILED: {exc} (run pytest --cov first)")
        return 1
    try:
        gateway: float | None = percent(cov, ["gateway/*"])
    except NoDataError:
        gateway = None

    results = [total >= args.total, core >= args.catalog_store]
    line("whole project", f"{total:.2f} %", args.total, results[0])
    line("catalog_store", f"{core:.2f} %", args.catalog_store, results[1])
    line("gateway", "-" if gateway is None else f"{gateway:.2f} %", None, None)
    results.append(diff_gate(args.xml, args.diff, args.reports))
    if all(results):
        print("coverage gates passed")
        return 0
    print("coverage gates FAILED")
    return 1


if __name__ == "__main__":
    sys.exit(main())
