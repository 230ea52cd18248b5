"""One metadata shard as a commit leaves it: its stored records, the records the
base version holds for it in the manifest, and the commit's edits
(:class:`~catalog_store.changes.ChangeSet` keeps one per shard it touches)."""

from __future__ import annotations

import msgspec

from catalog_store.records import PendingRecord, SeriesRecord, ShardRecords


class ShardEdit:
    """One shard as a change set leaves it: its stored records, the records the base
    version holds in its manifest for the shard's range, and the edits.

    Records the commit does not change keep their encoded bytes, so rewriting a
    shard re-encodes only what changed.
    """

    def __init__(self, base: ShardRecords, held: list[PendingRecord]) -> None:
        self.base = base
        self.held: dict[str, SeriesRecord | None] = {entry.id: entry.record for entry in held}
        self.edits: dict[str, SeriesRecord | None] = {}

    def get(self, series_id: str) -> SeriesRecord | None:
        if series_id in self.edits:
            return self.edits[series_id]
        if series_id in self.held:
            return self.held[series_id]
        return self.base.get(series_id)

    def __setitem__(self, series_id: str, record: SeriesRecord | None) -> None:
        self.edits[series_id] = record  # None: removed

    def _changes(self) -> dict[str, SeriesRecord | None]:
        return {**self.held, **self.edits}

    def at_tail(self) -> bool:
        """Whether every change adds a record after the stored last id (ids in order)."""
        last = self.base.last_id()
        return all(r is not None and k > last for k, r in self._changes().items())

    def holding_counts(
        self, stored_holding: int, ids: list[str], spans: list[tuple[int, int]]
    ) -> list[int]:
        """How many records of each span of ``ids`` (this shard as it is left, in
        order) hold rows (``inline``); ``stored_holding``: how many of the stored
        records do, as the shard's entry in the manifest counts them (verify checks
        it). A shard left whole is counted from the changes alone: its stored
        records, hundreds, are not decoded."""
        changes = self._changes()
        now = {k for k, r in changes.items() if r is not None and r.inline is not None}
        if not stored_holding:
            return [sum(k in now for k in ids[start:end]) for start, end in spans]
        if len(spans) == 1:
            held_before = sum(k in self.base and self.base[k].inline is not None for k in changes)
            return [stored_holding - held_before + len(now)]
        now.update(k for k, r in self.base.items() if k not in changes and r.inline is not None)
        return [sum(k in now for k in ids[start:end]) for start, end in spans]

    def merged(self) -> tuple[list[str], list[msgspec.Raw]]:
        """Ids in order and their encoded records, held records and edits applied."""
        changes = [PendingRecord(id=k, record=r) for k, r in sorted(self._changes().items())]
        return self.base.overlaid(changes).encoded()
