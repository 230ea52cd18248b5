"""The changes a commit can make, each a small object that applies itself to a ChangeSet.

An operation re-checks its own preconditions every time it is applied, so when a
commit loses a race and is rebuilt on the newer state, an operation that no longer
fits raises a typed error (and nothing lands), while one that still fits is
rebased. Operations that never depend on the prior state (upsert, metadata changes
without an expected version) therefore always rebase: the result equals running
the commits one after the other in the order they landed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import numpy as np
import pyarrow as pa

from catalog_store.changes import ChangeSet
from catalog_store.datafiles import read_files, write_partitions
from catalog_store.errors import (
    AppendOrderError,
    ConflictError,
    ExternalIdTakenError,
    SeriesExistsError,
    SeriesNotFoundError,
    ValidationError,
    VersionMismatchError,
)
from catalog_store.models import SPEC_FIELDS, SeriesSpec, apply_changes
from catalog_store.observations import (
    DEFAULT_PARTITIONING,
    date_ints,
    drop_range,
    split_by_partition,
)
from catalog_store.records import DataFile, SeriesRecord, from_ordinal


class Operation(Protocol):
    @property
    def series_id(self) -> str: ...

    async def apply(self, changes: ChangeSet) -> None: ...


def spec_of(record: SeriesRecord) -> SeriesSpec:
    return SeriesSpec.model_construct(**{name: getattr(record, name) for name in SPEC_FIELDS})


def scheme_of(record: SeriesRecord) -> str:
    return record.partitioning or DEFAULT_PARTITIONING[record.frequency]


async def _existing(changes: ChangeSet, series_id: str, expected: int | None) -> SeriesRecord:
    record = await changes.get(series_id)
    if record is None:
        raise SeriesNotFoundError(series_id, changes.base.version)
    if expected is not None and record.version != expected:
        raise VersionMismatchError(series_id, expected, record.version)
    return record


async def _claim_external_ids(
    changes: ChangeSet, series_id: str, old: dict[str, str], new: dict[str, str]
) -> None:
    for provider, value in old.items():
        if new.get(provider) != value:
            await changes.set_xid(provider, value, None)
    for provider, value in new.items():
        owner = await changes.xid_owner(provider, value)
        if owner is not None and owner != series_id:
            raise ExternalIdTakenError(provider, value, owner)
        await changes.set_xid(provider, value, series_id)


@dataclass(frozen=True)
class CreateSeries:
    spec: SeriesSpec

    @property
    def series_id(self) -> str:
        return self.spec.id

    async def apply(self, changes: ChangeSet) -> None:
        if await changes.get(self.spec.id) is not None:
            raise SeriesExistsError(self.spec.id)
        await _claim_external_ids(changes, self.spec.id, {}, self.spec.external_ids)
        record = SeriesRecord(
            **self.spec.model_dump(),
            created_at=changes.committed_at,
            updated_at=changes.committed_at,
            version=changes.version,
        )
        await changes.put(record, "create", None)


@dataclass(frozen=True)
class UpdateSeries:
    series_id: str
    changes: dict[str, Any]
    expected_version: int | None = None

    async def apply(self, changes: ChangeSet) -> None:
        record = await _existing(changes, self.series_id, self.expected_version)
        spec = apply_changes(spec_of(record), self.changes)
        if spec.frequency != record.frequency and record.observation_count:
            raise ValidationError(
                "cannot change the frequency of a series that has observations", "frequency"
            )
        await _claim_external_ids(changes, record.id, record.external_ids, spec.external_ids)
        fields = spec.model_dump(exclude={"id"})
        new_scheme = spec.partitioning or DEFAULT_PARTITIONING[spec.frequency]
        if record.files and new_scheme != scheme_of(record):
            # Rewrite the files into the new partitions. Files of two schemes would
            # overlap in dates, and compaction or a range rewrite of one partition
            # would then reorder writes and let an older value win.
            table = await read_files(changes.reader, record.files, record.frequency)
            parts = split_by_partition(table, new_scheme, record.frequency == "intraday")
            fields["files"] = tuple(await write_partitions(changes.store, record.id, parts))
        new = changes.stamp(record, **fields)
        await changes.put(new, "update", record)


@dataclass(frozen=True)
class DeleteSeries:
    series_id: str
    expected_version: int | None = None

    async def apply(self, changes: ChangeSet) -> None:
        record = await _existing(changes, self.series_id, self.expected_version)
        await _claim_external_ids(changes, record.id, record.external_ids, {})
        await changes.remove(record, "delete")


def _bounds(files: tuple[DataFile, ...]) -> dict[str, int | None]:
    if not files:
        return {"first": None, "last": None}
    return {"first": min(f.lo for f in files), "last": max(f.hi for f in files)}


@dataclass
class WriteObservations:
    """Append, upsert, replace or delete a range of one series' observations.

    ``table`` is already normalised for ``frequency``. Files for append and upsert
    are written once and reused by every attempt of the commit.
    """

    series_id: str
    mode: str
    table: pa.Table
    frequency: str
    low: int | None = None
    high: int | None = None
    expected_version: int | None = None
    _written: dict[str, list[DataFile]] = field(default_factory=dict, repr=False)

    async def _files(self, changes: ChangeSet, scheme: str) -> list[DataFile]:
        if scheme not in self._written:
            parts = split_by_partition(self.table, scheme, self.frequency == "intraday")
            self._written[scheme] = await write_partitions(changes.store, self.series_id, parts)
        return self._written[scheme]

    async def apply(self, changes: ChangeSet) -> None:
        record = await _existing(changes, self.series_id, self.expected_version)
        if record.frequency != self.frequency:
            raise ConflictError(f"series {self.series_id!r} changed frequency during the write")
        if self.mode in ("replace_range", "delete_range"):
            new = await self._rewrite_range(changes, record)
        elif self.table.num_rows == 0:
            return
        elif self.mode == "append":
            new = await self._append(changes, record)
        else:
            new = await self._upsert(changes, record)
        await changes.put(new, self.mode, record)

    async def _append(self, changes: ChangeSet, record: SeriesRecord) -> SeriesRecord:
        ints = date_ints(self.table)
        if record.last is not None and int(ints[0]) <= record.last:
            first_new = self.table.column("date")[0].as_py()
            raise AppendOrderError(self.series_id, first_new, _show(record.last, record))
        files = record.files + tuple(await self._files(changes, scheme_of(record)))
        return changes.stamp(
            record,
            files=files,
            observation_count=record.observation_count + len(ints),
            **_bounds(files),
        )

    async def _upsert(self, changes: ChangeSet, record: SeriesRecord) -> SeriesRecord:
        ints = date_ints(self.table)
        low, high = int(ints[0]), int(ints[-1])
        touched = [f for f in record.files if f.hi >= low and f.lo <= high]
        overlap = 0
        if touched:
            existing = await read_files(changes.reader, touched, record.frequency)
            overlap = int(np.isin(ints, date_ints(existing), assume_unique=True).sum())
        files = record.files + tuple(await self._files(changes, scheme_of(record)))
        count = record.observation_count + len(ints) - overlap
        return changes.stamp(record, files=files, observation_count=count, **_bounds(files))

    async def _rewrite_range(self, changes: ChangeSet, record: SeriesRecord) -> SeriesRecord:
        """Copy-on-write of every partition the range or the new rows touch."""
        intraday = record.frequency == "intraday"
        new_parts = split_by_partition(self.table, scheme_of(record), intraday)
        touched = {
            f.partition
            for f in record.files
            if (self.low is None or f.hi >= self.low) and (self.high is None or f.lo <= self.high)
        } | set(new_parts)
        rewritten: dict[str, pa.Table] = {}
        removed = 0
        for partition in sorted(touched):
            in_partition = [f for f in record.files if f.partition == partition]
            current = await read_files(changes.reader, in_partition, record.frequency)
            kept = drop_range(current, self.low, self.high)
            removed += current.num_rows - kept.num_rows
            addition = new_parts.get(partition)
            if addition is not None and addition.num_rows:
                kept = pa.concat_tables([kept, addition]).sort_by("date")
            rewritten[partition] = kept.combine_chunks()
        added = await write_partitions(changes.store, self.series_id, rewritten)
        files = tuple(f for f in record.files if f.partition not in touched) + tuple(added)
        count = record.observation_count - removed + self.table.num_rows
        return changes.stamp(record, files=files, observation_count=count, **_bounds(files))


@dataclass(frozen=True)
class CompactSeries:
    """Rewrite each partition holding at least ``min_files`` files into one file.

    Changes no value: the series keeps its version, and earlier versions keep
    their files, so history stays readable.
    """

    series_id: str
    min_files: int = 2

    async def apply(self, changes: ChangeSet) -> None:
        record = await changes.get(self.series_id)
        if record is None:
            return
        counts: dict[str, int] = {}
        for f in record.files:
            counts[f.partition] = counts.get(f.partition, 0) + 1
        crowded = sorted(p for p, n in counts.items() if n >= self.min_files)
        if not crowded:
            return
        merged: dict[str, pa.Table] = {}
        for partition in crowded:
            in_partition = [f for f in record.files if f.partition == partition]
            merged[partition] = await read_files(changes.reader, in_partition, record.frequency)
        added = await write_partitions(changes.store, self.series_id, merged)
        files = tuple(f for f in record.files if f.partition not in merged) + tuple(added)
        await changes.put(msgspec.structs.replace(record, files=files), "compact", record)


def _show(ordinal_value: int, record: SeriesRecord) -> object:
    return from_ordinal(ordinal_value, record.frequency == "intraday")
