"""The outcome of the last ``verify``, kept in the store for monitoring.

``verify`` is run by a scheduled job; the gateways that serve the store export
what it found as metrics, so an alert fires on problems and on a verify that has
not passed for too long. The record is advisory (one small object, overwritten),
never part of a version: a lost or stale record changes no data.

A full run and a latest-only run (``--latest``) are recorded apart: the quick check
of the newest version, which an operator runs ad hoc or before an upgrade, passes
over damage only older versions reference, so it must neither clear the problems
the full run found nor stand for its last success.
"""

from __future__ import annotations

import datetime as dt
import logging

import msgspec

from catalog_store import keys
from catalog_store.errors import CatalogStoreError, ObjectNotFoundError
from catalog_store.records import DECODE_ERRORS
from catalog_store.storage import Store
from catalog_store.verify_report import VerifyReport

log = logging.getLogger(__name__)


#: The scopes of a verify: every version, or the newest only (``latest_only``).
FULL = "full"
LATEST = "latest"


class VerifyStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the last verify of one scope found, and when one of that scope last passed."""

    checked_at: dt.datetime
    latest_version: int
    latest_only: bool
    ok: bool
    problems: int
    last_ok_at: dt.datetime | None = None


_decoder = msgspec.json.Decoder(VerifyStatus)


def _key(latest_only: bool) -> str:
    return keys.VERIFY_LATEST_STATUS if latest_only else keys.VERIFY_STATUS


async def read_verify_status(store: Store, latest_only: bool = False) -> VerifyStatus | None:
    """The last recorded verify of the scope, or None if none was recorded or it
    cannot be read."""
    key = _key(latest_only)
    try:
        return _decoder.decode(await store.get(key))
    except ObjectNotFoundError:
        return None
    except DECODE_ERRORS as exc:
        log.warning("ignoring an unreadable %s: %s", key, exc)
        return None


async def read_verify_outcomes(store: Store) -> dict[str, VerifyStatus]:
    """The last recorded verify of each scope, by scope (:data:`FULL`, :data:`LATEST`).

    A latest-only outcome recorded before the last full run is left out: that run
    checked the newest version too. A record says its own scope (``latest_only``):
    a fincat from before the two records kept latest-only runs in the full one's.
    """
    outcomes: dict[str, VerifyStatus] = {}
    for latest_only in (False, True):
        status = await read_verify_status(store, latest_only)
        if status is None:
            continue
        scope = LATEST if status.latest_only else FULL
        held = outcomes.get(scope)
        if held is None or status.checked_at > held.checked_at:
            outcomes[scope] = status
    full, latest = outcomes.get(FULL), outcomes.get(LATEST)
    if full is not None and latest is not None and latest.checked_at <= full.checked_at:
        del outcomes[LATEST]
    return outcomes


async def record_verify(
    store: Store, report: VerifyReport, latest_only: bool, now: dt.datetime | None = None
) -> VerifyStatus | None:
    """Record ``report`` as the outcome of its scope; best effort (a read-only
    credential may not write it)."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        before = await read_verify_status(store, latest_only)
        if before is not None and before.latest_only != latest_only:
            before = None  # a latest-only run recorded by an earlier fincat
        status = VerifyStatus(
            checked_at=now,
            latest_version=report.latest_version,
            latest_only=latest_only,
            ok=report.ok,
            problems=len(report.problems),
            last_ok_at=now if report.ok else (before.last_ok_at if before else None),
        )
        await store.put(_key(latest_only), msgspec.json.encode(status))
    except CatalogStoreError as exc:
        log.warning("could not record the verify outcome: %s", exc)
        return None
    return status
