"""The changes a commit can make, each a small object that applies itself to a ChangeSet.

An operation re-checks its own preconditions every time it is applied, so when a
commit loses a race and is rebuilt on the newer state, an operation that no longer
fits raises a typed error (and nothing lands), while one that still fits is
rebased. Operations that never depend on the prior state (upsert, metadata changes
without an expected version) therefore always rebase: the result equals running
the commits one after the other in the order they landed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import numpy as np
import pyarrow as pa

from catalog_store.asof import MAX_VERSION
from catalog_store.changes import ChangeSet
from catalog_store.datafiles import EncodedFile, encode_partitions, inline_rows, scheme_of
from catalog_store.errors import (
    AppendOrderError,
    SeriesExistsError,
    SeriesNotFoundError,
    ValidationError,
    VersionMismatchError,
)
from catalog_store.intake import as_table
from catalog_store.models import SPEC_FIELDS, SeriesSpec, apply_changes, check_count
from catalog_store.normalize import normalize, owned
from catalog_store.observations import (
    DEFAULT_PARTITIONING,
    check_mode,
    date_ints,
    drop_range,
    range_bounds,
    same_rows,
    split_by_partition,
    unchanged_rows,
)
from catalog_store.records import DataFile, SeriesRecord, from_ordinal

#: Rows of a write validated on the event loop; more are validated in a worker thread.
PREPARE_INLINE_ROWS = 100_000

_json = msgspec.json.Encoder()


class Operation(Protocol):
    @property
    def series_id(self) -> str: ...

    async def apply(self, changes: ChangeSet) -> None: ...


def spec_of(record: SeriesRecord) -> SeriesSpec:
    return SeriesSpec.model_construct(**{name: getattr(record, name) for name in SPEC_FIELDS})


def _check_expected(expected: int | None) -> None:
    """An expected version is a version number: anything else is bad input, not a
    conflict (which would tell the caller it lost a race, and one who retries
    conflicts would retry a version past any a catalog can reach for good)."""
    if expected is not None:
        check_count(expected, "expected_version", 0, MAX_VERSION)


async def _existing(changes: ChangeSet, series_id: str, expected: int | None) -> SeriesRecord:
    record = await changes.get(series_id)
    if record is None:
        if changes.removed_here(series_id):
            raise SeriesNotFoundError(series_id, detail=", deleted earlier in this batch")
        raise SeriesNotFoundError(series_id, changes.base.version)
    if expected is not None:
        actual = changes.version_before(series_id, record)
        if actual != expected:
            raise VersionMismatchError(series_id, expected, actual)
    return record


async def _claim_external_ids(
    changes: ChangeSet, series_id: str, old: dict[str, str], new: dict[str, str]
) -> None:
    for provider, value in old.items():
        if new.get(provider) != value:
            await changes.release_xid(provider, value, series_id)
    for provider, value in new.items():
        await changes.claim_xid(provider, value, series_id)


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

    def __post_init__(self) -> None:
        _check_expected(self.expected_version)

    async def apply(self, changes: ChangeSet) -> None:
        record = await _existing(changes, self.series_id, self.expected_version)
        spec = apply_changes(spec_of(record), self.changes)
        if spec.frequency != record.frequency and record.observation_count:
            raise ValidationError(
                "cannot change the frequency of a series that has observations", "frequency"
            )
        await _claim_external_ids(changes, record.id, record.external_ids, spec.external_ids)
        fields = spec.model_dump(exclude={"id"})
        if all(_same(getattr(record, name), value) for name, value in fields.items()):
            return  # no new version of the series, and none of the catalog for it alone
        new_scheme = spec.partitioning or DEFAULT_PARTITIONING[spec.frequency]
        if (record.files or record.inline) and new_scheme != scheme_of(record):
            # Rewrite the files into the new partitions. Files of two schemes would
            # overlap in dates, and compaction or a range rewrite of one partition
            # would then reorder writes and let an older value win.
            record = await changes.settle(record)
            table = await changes.read_files(record.files, record.frequency)
            parts = split_by_partition(table, new_scheme, record.frequency == "intraday")
            fields["files"] = tuple(changes.stage(await encode_partitions(record.id, parts)))
        new = changes.stamp(record, **fields)
        await changes.put(new, "update", record)


def _same(stored: Any, given: Any) -> bool:
    """Equal as stored: as JSON, where 1, 1.0 and true differ though Python's == does not."""
    return bool(_json.encode(stored) == _json.encode(given))


@dataclass(frozen=True)
class DeleteSeries:
    series_id: str
    expected_version: int | None = None

    def __post_init__(self) -> None:
        _check_expected(self.expected_version)

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

    ``observations`` is the caller's table, validated against the series'
    frequency when the commit first sees the series (a series created in the same
    batch included). Files are encoded once and written once, however many
    attempts the commit takes.
    """

    series_id: str
    mode: str
    observations: pa.Table
    start: dt.date | dt.datetime | None = None
    end: dt.date | dt.datetime | None = None
    expected_version: int | None = None
    _prepared: dict[str, tuple[pa.Table, int | None, int | None]] = field(
        default_factory=dict, repr=False
    )
    _encoded: dict[tuple[str, str], list[EncodedFile]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        _check_expected(self.expected_version)

    def prepare(self, frequency: str) -> tuple[pa.Table, int | None, int | None]:
        """The validated table and range bounds for a series of ``frequency``.

        Raises ValidationError naming the field at fault; nothing is written.
        """
        if frequency not in self._prepared:
            low, high = range_bounds(self.start, self.end, frequency)
            table = normalize(self.observations, frequency)
            if self.mode == "replace_range" and table.num_rows:
                ints = date_ints(table)
                if (low is not None and ints[0] < low) or (high is not None and ints[-1] > high):
                    raise ValidationError(
                        "every date of a replace_range must lie in [start, end]", "dates"
                    )
            self._prepared[frequency] = (table, low, high)
        return self._prepared[frequency]

    async def _validated(self, frequency: str) -> tuple[pa.Table, int | None, int | None]:
        """:meth:`prepare`, in a worker thread for a large table: validating a million
        rows (instants parsed from text, integers checked one by one) takes seconds,
        which on the event loop would stall every other call a gateway serves."""
        if frequency in self._prepared or self.observations.num_rows < PREPARE_INLINE_ROWS:
            return self.prepare(frequency)
        return await asyncio.to_thread(self.prepare, frequency)

    async def _files(self, table: pa.Table, record: SeriesRecord) -> list[EncodedFile]:
        key = (record.frequency, scheme_of(record))
        if key not in self._encoded:
            parts = split_by_partition(table, key[1], record.frequency == "intraday")
            self._encoded[key] = await encode_partitions(self.series_id, parts)
        return self._encoded[key]

    async def apply(self, changes: ChangeSet) -> None:
        before = await _existing(changes, self.series_id, self.expected_version)
        table, low, high = await self._validated(before.frequency)
        if table.num_rows == 0 and self.mode not in ("replace_range", "delete_range"):
            return
        new: SeriesRecord | None
        if self.mode == "append":
            new = await self._append(changes, before, table)
        else:
            # Inline rows are newer than every file: they go to a file before this
            # write adds any, so that files stay in order of writing.
            record = await changes.settle(before)
            if self.mode == "upsert":
                new = await self._upsert(changes, record, table)
            else:
                new = await self._rewrite_range(changes, record, table, low, high)
            if new is None:
                return  # every row as it is already: no new version of the series
        await changes.put(new, self.mode, before)

    async def _append(
        self, changes: ChangeSet, record: SeriesRecord, table: pa.Table
    ) -> SeriesRecord:
        ints = date_ints(table)
        if record.last is not None and int(ints[0]) <= record.last:
            first_new = table.column("date")[0].as_py()
            raise AppendOrderError(self.series_id, first_new, _show(record.last, record))
        count = record.observation_count + len(ints)
        inline = inline_rows(record, table, changes.inline_max)
        if inline is not None:
            # A few rows ride in the record; a commit that changes only a few
            # series then writes nothing but its manifest.
            first = int(ints[0]) if record.first is None else record.first
            return changes.stamp(
                record, inline=inline, observation_count=count, first=first, last=int(ints[-1])
            )
        record = await changes.settle(record)
        files = record.files + tuple(changes.stage(await self._files(table, record)))
        return changes.stamp(record, files=files, observation_count=count, **_bounds(files))

    async def _upsert(
        self, changes: ChangeSet, record: SeriesRecord, table: pa.Table
    ) -> SeriesRecord | None:
        """Only the rows that differ from the series are written: a source synced
        whole every day adds its revisions, not another copy of its history."""
        ints = date_ints(table)
        low, high = int(ints[0]), int(ints[-1])
        touched = [f for f in record.files if f.hi >= low and f.lo <= high]
        overlap = 0
        encoded = None
        if touched:
            existing = await changes.read_files(touched, record.frequency)
            unchanged = unchanged_rows(table, existing)
            if unchanged.all():
                return None
            if unchanged.any():
                # Depends on the base, so encoded afresh by each attempt.
                table = table.filter(pa.array(~unchanged))
                ints = date_ints(table)
                parts = split_by_partition(table, scheme_of(record), record.frequency == "intraday")
                encoded = await encode_partitions(self.series_id, parts)
            overlap = int(np.isin(ints, date_ints(existing), assume_unique=True).sum())
        if encoded is None:
            encoded = await self._files(table, record)
        files = record.files + tuple(changes.stage(encoded))
        count = record.observation_count + len(ints) - overlap
        return changes.stamp(record, files=files, observation_count=count, **_bounds(files))

    async def _rewrite_range(
        self,
        changes: ChangeSet,
        record: SeriesRecord,
        table: pa.Table,
        low: int | None,
        high: int | None,
    ) -> SeriesRecord | None:
        """Copy-on-write of every partition the range or the new rows change; None
        if they change none."""
        intraday = record.frequency == "intraday"
        new_parts = split_by_partition(table, scheme_of(record), intraday)
        touched = {
            f.partition
            for f in record.files
            if (low is None or f.hi >= low) and (high is None or f.lo <= high)
        } | set(new_parts)
        rewritten: dict[str, pa.Table] = {}
        count = record.observation_count
        for partition in sorted(touched):
            in_partition = [f for f in record.files if f.partition == partition]
            current = await changes.read_files(in_partition, record.frequency)
            kept = drop_range(current, low, high)
            addition = new_parts.get(partition)
            if addition is not None and addition.num_rows:
                kept = pa.concat_tables([kept, addition]).sort_by("date")
            if same_rows(kept, current):
                continue  # its files stay: the same rows, already written
            rewritten[partition] = kept.combine_chunks()
            count += kept.num_rows - current.num_rows
        if not rewritten:
            return None
        added = changes.stage(await encode_partitions(self.series_id, rewritten))
        files = tuple(f for f in record.files if f.partition not in rewritten) + tuple(added)
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
        before = record
        record = await changes.settle(record)
        counts: dict[str, int] = {}
        for f in record.files:
            counts[f.partition] = counts.get(f.partition, 0) + 1
        # One file has one row per date already: rewriting it would change nothing.
        crowded = sorted(p for p, n in counts.items() if n >= max(self.min_files, 2))
        if not crowded:
            if record is not before:
                await changes.put(record, "compact", before)
            return
        merged: dict[str, pa.Table] = {}
        for partition in crowded:
            in_partition = [f for f in record.files if f.partition == partition]
            merged[partition] = await changes.read_files(in_partition, record.frequency)
        added = changes.stage(await encode_partitions(self.series_id, merged))
        files = tuple(f for f in record.files if f.partition not in merged) + tuple(added)
        await changes.put(msgspec.structs.replace(record, files=files), "compact", before)


def _show(ordinal_value: int, record: SeriesRecord) -> object:
    return from_ordinal(ordinal_value, record.frequency == "intraday")


def write_operation(
    series_id: str,
    observations: Any,
    mode: str,
    start: dt.date | dt.datetime | None,
    end: dt.date | dt.datetime | None,
    expected_version: int | None,
) -> WriteObservations:
    """A write of one series' observations, as the catalog's ``write`` and a batch's
    take it: what can be checked without the series is checked here (ValidationError),
    the rest in the commit."""
    check_mode(mode)
    ranged = mode in ("replace_range", "delete_range")
    if not ranged and (start is not None or end is not None):
        raise ValidationError(
            f"start and end apply to replace_range and delete_range, not {mode}",
            "start" if start is not None else "end",
        )
    if mode == "delete_range" and observations is not None:
        raise ValidationError("delete_range takes no observations", "observations")
    if mode != "delete_range" and observations is None:
        raise ValidationError("observations are required", "observations")
    if ranged and start is None and end is None:
        # Both ends open is the whole series: a bound a caller forgot (an option, a
        # JSON key, a GraphQL argument) must not empty it.
        raise ValidationError(
            f"{mode} needs start or end (a missing one is open); to cover the whole "
            "series, give start as its first date or earlier",
            "start",
        )
    table = as_table(([], []) if observations is None else observations)
    if not _from_python_lists(observations):
        table = owned(table)  # may be a view of the caller's arrays: see owned
    return WriteObservations(series_id, mode, table, start, end, expected_version)


def _from_python_lists(observations: Any) -> bool:
    """Whether ``observations`` are (dates, values) as Python lists or tuples, from
    which Arrow builds arrays of its own: no copy is needed to own them."""
    return (
        isinstance(observations, tuple | list)
        and len(observations) == 2
        and all(type(part) in (list, tuple) for part in observations)
    )
