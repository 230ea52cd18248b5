"""The outcome of the last ``verify``, kept in the store for monitoring.

``verify`` is run by a scheduled job; the gateways that serve the store export
what it found as metrics, so an alert fires on problems and on a verify that has
not passed for too long. The record is advisory (one small object, overwritten),
never part of a version: a lost or stale record changes no data.
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


class VerifyStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the last verify found, and when verify last passed."""

    checked_at: dt.datetime
    latest_version: int
    latest_only: bool
    ok: bool
    problems: int
    last_ok_at: dt.datetime | None = None


_decoder = msgspec.json.Decoder(VerifyStatus)


async def read_verify_status(store: Store) -> VerifyStatus | None:
    """The last recorded verify, or None if none was recorded or it cannot be read."""
    try:
        return _decoder.decode(await store.get(keys.VERIFY_STATUS))
    except ObjectNotFoundError:
        return None
    except DECODE_ERRORS as exc:
        log.warning("ignoring an unreadable %s: %s", keys.VERIFY_STATUS, exc)
        return None


async def record_verify(
    store: Store, report: VerifyReport, latest_only: bool, now: dt.datetime | None = None
) -> VerifyStatus | None:
    """Record ``report``; best effort (a read-only credential may not write it)."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        before = await read_verify_status(store)
        status = VerifyStatus(
            checked_at=now,
            latest_version=report.latest_version,
            latest_only=latest_only,
            ok=report.ok,
            problems=len(report.problems),
            last_ok_at=now if report.ok else (before.last_ok_at if before else None),
        )
        await store.put(keys.VERIFY_STATUS, msgspec.json.encode(status))
    except CatalogStoreError as exc:
        log.warning("could not record the verify outcome: %s", exc)
        return None
    return status
