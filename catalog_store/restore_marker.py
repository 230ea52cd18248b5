"""Restores in progress: what keeps gc from deleting the objects a repair restores.

A repair's restore names old objects, which no grace period protects. gc under a
retention period deletes what only expired versions name, so a restore of a
version gc expires meanwhile would be a newest version that cannot be read. repair
refuses a version below the floor, but it reads the floor before its manifest is
written, and a whole gc can run in between.

So repair writes a marker under ``_restoring/`` before it reads the floor, and
removes it once its restore has landed (or failed); gc, once it has raised the
floor, lists the markers and deletes no object while a fresh one is there. One of
the two reads sees the other's write: either repair's read of the floor finds the
floor gc raised, and it restores nothing, or gc's listing finds the marker, and
it deletes nothing. A marker older than :data:`MARKER_LIFETIME` is one a repair
left when it died: gc passes over it and removes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid

import msgspec

from catalog_store.errors import CatalogStoreError
from catalog_store.storage.base import ObjectInfo, Store

RESTORING_DIR = "_restoring"

#: How long gc honours a marker: far longer than a restore's commit may take (its
#: commit policy's time limit), with room for clocks that disagree.
MARKER_LIFETIME = dt.timedelta(hours=1)


class _Marker(msgspec.Struct, frozen=True):
    restores: int
    started_at: str


class RestoreMarker:
    """The marker of one restore; :meth:`write` before the floor is read."""

    def __init__(self, store: Store, version: int) -> None:
        self.store = store
        self.version = version
        self.key = f"{RESTORING_DIR}/{uuid.uuid4().hex}.json"
        self._written_at: float | None = None

    async def write(self) -> None:
        started = dt.datetime.now(dt.UTC).isoformat()
        await self.store.put(self.key, msgspec.json.encode(_Marker(self.version, started)))
        self._written_at = time.monotonic()

    def outlived(self) -> bool:
        """Whether gc may have stopped honouring the marker: the restore took longer
        than half the marker's lifetime (the other half for clocks that disagree)."""
        assert self._written_at is not None
        return time.monotonic() - self._written_at > MARKER_LIFETIME.total_seconds() / 2

    async def remove(self) -> None:
        """Remove the marker; one that cannot be removed expires."""
        with contextlib.suppress(CatalogStoreError):
            await self.store.delete(self.key)


async def restore_markers(store: Store, now: dt.datetime) -> tuple[list[str], list[str]]:
    """The keys of the markers under ``_restoring/``, in one listing: those of
    restores that may be in progress (oldest first), and those repairs that died
    left behind, older than :data:`MARKER_LIFETIME`."""
    fresh: list[ObjectInfo] = []
    stale: list[str] = []
    async for info in store.list(f"{RESTORING_DIR}/"):
        if info.modified is None or info.modified > now - MARKER_LIFETIME:
            fresh.append(info)
        else:
            stale.append(info.key)
    fresh.sort(key=lambda info: (info.modified or now, info.key))
    return [info.key for info in fresh], stale
