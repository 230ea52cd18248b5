"""Operations applied to the newest version as one commit.

Each attempt of the commit loop (:class:`catalog_store.commit.Committer`) applies
every operation to a fresh :class:`~catalog_store.changes.ChangeSet` on the newest
version; an operation that no longer fits refuses the whole commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from catalog_store.changes import ChangeSet, Staged
from catalog_store.commit import Committer, Draft
from catalog_store.errors import (
    AlreadyExistsError,
    CatalogStoreError,
    ConflictError,
    NotFoundError,
    SeriesNotFoundError,
    ValidationError,
)
from catalog_store.models import Series, check_message
from catalog_store.operations import CompactSeries, Operation
from catalog_store.options import CatalogOptions
from catalog_store.records import (
    Manifest,
    SeriesRecord,
    encode_record,
    has_held_writes,
    to_series,
)
from catalog_store.snapshot import Snapshot

if TYPE_CHECKING:
    from catalog_store.batch import Batch

#: What an operation raises when it does not fit the state it is applied to: its
#: own refusal, unlike a storage failure met while applying it.
_REFUSALS = (SeriesNotFoundError, AlreadyExistsError, ValidationError, ConflictError)


async def commit_operations(
    committer: Committer,
    options: CatalogOptions,
    operations: Sequence[Operation],
    message: str,
    *,
    allow_empty: bool = True,
    checkpoint: bool = False,
    batch: Batch | None = None,
) -> Committed:
    """Commit ``operations``; with ``checkpoint``, write everything held out (see
    :meth:`~catalog_store.catalog.AsyncCatalog.checkpoint`; nothing to commit if
    nothing is held). The ``batch`` they come from learns which of them refused
    the commit (``failed_operation``)."""
    check_message(message)
    staged = Staged()
    attempts: dict[int, ChangeSet] = {}
    # Each operation's refusal in an attempt, and its index.
    refusals: list[tuple[CatalogStoreError, int]] = []

    async def build(base: Snapshot, commit_id: str, at: dt.datetime) -> Draft:
        if checkpoint and not has_held_writes(base.manifest):
            raise _NothingToCommit(base.manifest, {})
        changes = ChangeSet(
            base,
            commit_id,
            at,
            staged,
            pending_max=0 if checkpoint else options.pending_records,
            inline_max=options.inline_rows,
            settle_rows=options.inline_rows == 0,
            checkpoint=checkpoint,
        )
        for index, op in enumerate(operations):
            try:
                await op.apply(changes)
            except _REFUSALS as exc:
                refusals.append((exc, index))
                raise
        await changes.check_claims()
        if not allow_empty and (not changes.changes or await _cancels_out(base, changes)):
            raise _NothingToCommit(base.manifest, changes.touched())
        attempts[changes.version] = changes
        return await changes.finish(message)

    try:
        manifest = await committer.commit(build)
    except _NothingToCommit as idle:
        return Committed(idle.manifest, idle.records, landed=False)
    except CatalogStoreError as exc:
        if batch is not None:
            # The refusal the commit stands by, if it is one: not an earlier
            # attempt's, judged on a version that was not the newest.
            batch.failed_operation = next((i for e, i in refusals if e is exc), None)
        raise
    # The attempt that built the landed version knows what it wrote.
    return Committed(manifest, attempts[manifest.version].touched())


@dataclass(frozen=True)
class Committed:
    """A landed commit and the series it changed, as it left them; or, not
    ``landed``, the newest version, on which the operations changed nothing."""

    manifest: Manifest
    records: dict[str, SeriesRecord | None]
    landed: bool = True

    def series(self, series_id: str) -> Series:
        record = self.records.get(series_id)
        if record is None:
            raise NotFoundError(series_id)
        return to_series(record)


async def _cancels_out(base: Snapshot, changes: ChangeSet) -> bool:
    """Whether every series the operations changed ends as it began: a batch that
    created a series and deleted it again, or set a field and set it back, changes
    nothing (the series it only looked at, with operations that changed nothing, do
    not count)."""
    touched = changes.touched()
    kinds: dict[str, set[str]] = {}
    for operation, series_id in changes.changes:
        kinds.setdefault(series_id, set()).add(operation)
    for series_id, operations in kinds.items():
        after = touched.get(series_id)
        if after is not None and operations != {"update"}:
            return False  # created, or rows written: a change (a write of none is none)
        if not _same_state(await base.record(series_id), after):
            return False
    return True


def _same_state(before: SeriesRecord | None, after: SeriesRecord | None) -> bool:
    """Whether two records are one state of a series, whatever change stamped them."""
    if before is None or after is None:
        return before is after
    stamp = {"version": 0, "updated_at": before.updated_at, "previous_version": None}
    # As stored: 1, 1.0 and True are equal in Python, and three values in a record.
    unstamped = [encode_record(msgspec.structs.replace(r, **stamp)) for r in (before, after)]
    return unstamped[0] == unstamped[1]


class _NothingToCommit(CatalogStoreError):
    """The operations change nothing on ``manifest``. A CatalogStoreError, so that the
    commit loop re-judges it on the newest version when it was judged on an older one."""

    def __init__(self, manifest: Manifest, records: dict[str, SeriesRecord | None]) -> None:
        super().__init__("nothing to commit")
        self.manifest = manifest
        self.records = records


def crowded_partitions(committed: Committed, threshold: int) -> list[CompactSeries]:
    """A compaction of each series the commit left with a partition of more than
    ``threshold`` files."""
    crowded = []
    for series_id, record in committed.records.items():
        if record is None or not record.files:
            continue
        counts: dict[str, int] = {}
        for f in record.files:
            counts[f.partition] = counts.get(f.partition, 0) + 1
        if counts and max(counts.values()) > threshold:
            crowded.append(CompactSeries(series_id, threshold))
    return crowded
