"""What ``fincat verify`` reports: each problem found, and the counts of what it checked.

Its own module, so that what reads a report (the CLI, the gateway, the status
object monitoring reads) need not import the checks (:mod:`catalog_store.verify`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from catalog_store import verify_index

#: Problem kinds, from the worst down.
KINDS = (
    "missing_manifest",
    "bad_manifest",
    "broken_chain",
    "missing_object",
    "corrupt_object",
    "unreadable_object",
    "file_mismatch",
    "derived_mismatch",
    "table_mismatch",
    *verify_index.KINDS,
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong, with where it was found."""

    kind: str
    key: str
    detail: str
    version: int | None = None
    series_id: str | None = None


@dataclass
class VerifyReport:
    """What ``verify`` checked and found. ``ok`` is False if any problem was found."""

    latest_version: int = 0
    versions_checked: int = 0
    objects_checked: int = 0
    series_checked: int = 0
    #: External ids the series carry at the latest version, compared with the index.
    external_ids_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: Problems in versions a later ``repair`` superseded: damage that stays in the
    #: history (as-of reads of those versions fail) but no longer in the catalog.
    superseded: list[Problem] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    #: Versions a gc under retention expired while this verify ran: not checked.
    expired: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for problem in self.problems:
            out[problem.kind] = out.get(problem.kind, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "latest_version": self.latest_version,
            "versions_checked": self.versions_checked,
            "objects_checked": self.objects_checked,
            "series_checked": self.series_checked,
            "external_ids_checked": self.external_ids_checked,
            "problem_counts": self.counts(),
            "problems": [asdict(p) for p in self.problems],
            "superseded_problems": [asdict(p) for p in self.superseded],
            "orphans": len(self.orphans),
            "expired_meanwhile": self.expired,
        }
