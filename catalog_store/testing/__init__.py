"""Tools for testing code that uses fincat: a store that fails the way real storage fails.

See :mod:`catalog_store.testing.faults`.
"""

from __future__ import annotations

from catalog_store.testing.faults import (
    ALL_OPERATIONS,
    READS,
    WRITES,
    Call,
    FaultKind,
    FaultPlan,
    FaultRule,
    FaultyStore,
    Injection,
    Schedule,
)

__all__ = [
    "ALL_OPERATIONS",
    "READS",
    "WRITES",
    "Call",
    "FaultKind",
    "FaultPlan",
    "FaultRule",
    "FaultyStore",
    "Injection",
    "Schedule",
]
