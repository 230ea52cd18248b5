"""Audit requirements.lock for known vulnerabilities with pip-audit.

Fails when a locked release has a known vulnerability that scripts/audit-ignore.txt
does not list. Skips, saying so, when the vulnerability database cannot be
reached: pip-audit times out, cannot connect, or could look up none of the
locked releases (it then reports every one as "skipped", which is no audit).

Environment: FINCAT_AUDIT_TIMEOUT (seconds, default 120), FINCAT_AUDIT_SERVICE
(pip-audit's --vulnerability-service: pypi, the default, or osv).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
IGNORE = ROOT / "scripts" / "audit-ignore.txt"
UNREACHABLE = (
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "Max retries exceeded",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "timed out",
)


def ignored() -> list[str]:
    """Vulnerability ids from the ignore file: `ID  reason`, one per line."""
    ids: list[str] = []
    if not IGNORE.exists():
        return ids
    for number, raw in enumerate(IGNORE.read_text().splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        vuln, _, reason = text.partition(" ")
        if not reason.strip():
            sys.exit(f"audit: {IGNORE.name}:{number}: {vuln} needs a reason after its id")
        ids.append(vuln)
    return ids


def skip(why: str) -> int:
    print(f"audit SKIPPED: {why}; no vulnerability check was made")
    return 0


def main() -> int:
    timeout = float(os.environ.get("FINCAT_AUDIT_TIMEOUT", "120"))
    service = os.environ.get("FINCAT_AUDIT_SERVICE", "pypi")
    pip_audit = Path(sys.executable).with_name("pip-audit")
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "audit.json"
        command = [
            str(pip_audit),
            "--requirement",
            str(LOCK),
            "--no-deps",
            "--disable-pip",
            "--progress-spinner=off",
            f"--vulnerability-service={service}",
            "--format=json",
            f"--output={report}",
        ]
        for vuln in ignored():
            command.append(f"--ignore-vuln={vuln}")
        try:
            run = subprocess.run(
                command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return skip(f"pip-audit got no answer from {service} within {timeout:g} s")
        data = json.loads(report.read_text()) if report.exists() else None

    if data is None:
        if any(marker in run.stderr for marker in UNREACHABLE):
            return skip(f"the {service} vulnerability service cannot be reached")
        print(f"audit FAILED: pip-audit exited {run.returncode}")
        print(run.stdout + run.stderr, end="")
        return 1

    deps = data.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    if not audited:
        return skip(
            f"the {service} vulnerability service answered for none of the "
            f"{len(deps)} locked releases"
        )
    unaudited = [d["name"] for d in deps if "skip_reason" in d]
    if unaudited:
        print(f"audit: could not look up {len(unaudited)}: {', '.join(unaudited)}")
    found = [(d, v) for d in audited for v in d.get("vulns", [])]
    for dep, vuln in found:
        fixes = ", ".join(vuln.get("fix_versions", [])) or "none yet"
        aliases = ", ".join(vuln.get("aliases", []))
        print(f"  {dep['name']} {dep['version']}: {vuln['id']} ({aliases}); fixed in {fixes}")
    if found:
        print(
            f"audit FAILED: {len(found)} known vulnerabilities in requirements.lock; upgrade,"
            f" or list them in scripts/{IGNORE.name} with a reason"
        )
        return 1
    print(f"audit: no known vulnerabilities in {len(audited)} locked releases ({service})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
