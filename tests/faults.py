"""The fault-injecting store wrapper, re-exported for the protocol tests.

See :mod:`catalog_store.testing.faults`: a schedule ``(operation, key) -> verdict``
("ok", "fail-before", "fail-after", ...) may stand in for a plan.
"""

from __future__ import annotations

from catalog_store.testing.faults import FaultKind, FaultPlan, FaultRule, FaultyStore, Schedule

__all__ = ["FaultKind", "FaultPlan", "FaultRule", "FaultyStore", "Schedule"]
