"""Revision history: every value a date has had, and when it was current.

Nothing is overwritten, so each earlier state of a series is still readable. A
series record points to the version of its previous state, so the walk reads one
record per change of the series, not every manifest of the catalog. The result is
the ALFRED view: ``realtime_start`` (inclusive) and ``realtime_end`` (exclusive,
null while current) in UTC; the intervals of one date tile time without gaps or
overlaps from its first publication until it was deleted or until now.

Under a retention floor the walk ends at the state the oldest kept version holds:
what the series held before it has expired, so that state's values start at the
floor's commit time, the earliest instant an as-of read can still show them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

import pyarrow as pa

from catalog_store.datafiles import read_record
from catalog_store.errors import (
    IntegrityError,
    ObjectNotFoundError,
    SeriesNotFoundError,
    VersionNotFoundError,
)
from catalog_store.observations import INSTANT_TYPE, bound
from catalog_store.options import SeriesChange, VersionInfo, version_info
from catalog_store.records import Manifest, SeriesRecord, from_ordinal, to_series
from catalog_store.revision_table import RevisionsTooLargeError, revision_table
from catalog_store.snapshot import Snapshot, StoreReader

log = logging.getLogger(__name__)

#: Below this many stored values a revision table is built on the event loop: a
#: trip to a worker thread costs more than the build.
_INLINE_VALUES = 100_000


async def catalog_versions(
    reader: StoreReader, top: int, limit: int, oldest: int
) -> list[VersionInfo]:
    """Up to ``limit`` versions from ``top`` down to ``oldest``, newest first. A
    version whose manifest cannot be read is left out (``verify`` names it) and the
    next one below takes its place, so the list is short only at the oldest kept
    version."""
    out: list[VersionInfo] = []
    for version in range(top, oldest - 1, -1):
        if len(out) == limit:
            break
        try:
            out.append(version_info(await reader.manifest(version)))
        except (IntegrityError, VersionNotFoundError) as exc:
            # Missing between the oldest kept and the newest, a manifest is damage
            # (verify's missing_manifest), as one that does not decode is; or it
            # expired under a gc since ``oldest`` was read, and the list ends there.
            log.warning("history leaves out version %d: %s", version, exc)
    return out


async def previous_state(
    reader: StoreReader, current: SeriesRecord, floor: int = 0
) -> SeriesRecord | None:
    """The state of the series before ``current``, following its ``previous_version``
    link; None when ``current`` is its first (created then), or the first kept at
    ``floor``."""
    version = current.previous_version
    if current.version <= floor or version is None:
        return None
    if version >= current.version:
        # A record that links to itself (a series changed twice in one commit by an
        # older writer): its state before that commit is in the commit's parent.
        parent = (await reader.manifest(current.version)).parent
        if parent is None:
            return None
        version = parent
    # A state from before the floor lasted until ``current``, past the floor, so
    # the floor's manifest holds the same record while the older one has expired.
    version = max(version, floor)
    earlier = await Snapshot(reader, await reader.manifest(version)).record(current.id)
    if earlier is None or earlier.version >= current.version:
        return None  # created in that commit, or a damaged chain: stop rather than loop
    return earlier


async def states_of(reader: StoreReader, record: SeriesRecord, floor: int) -> list[SeriesRecord]:
    """Every state of a series from the one current at version ``floor`` on, oldest
    first, following ``previous_version`` links."""
    states = [record]
    while (earlier := await previous_state(reader, states[-1], floor)) is not None:
        states.append(earlier)
    states.reverse()
    return states


async def series_changes(
    reader: StoreReader, record: SeriesRecord, floor: int, before: int | None, limit: int
) -> list[SeriesChange]:
    """Up to ``limit`` changes of a series from ``record`` back, newest first: each
    state with the commit that made it. Follows ``previous_version``
    links (which a repair sets past the states it could not read) and ends at the
    series' creation, or at the state the oldest kept version ``floor`` holds, or
    earlier where that state's own commit has expired.

    With ``before``: if the series changed at that version (the last change a page
    showed), the changes before that one; otherwise the changes of the series as it
    was at version ``before - 1``. Either takes a read or two, not a walk through
    every newer change.
    """
    current: SeriesRecord | None = record
    if before is not None and record.version >= before:
        current = await _newest_below(reader, record, before, floor)
    out: list[SeriesChange] = []
    while current is not None:
        try:
            manifest = await reader.manifest(current.version)
        except VersionNotFoundError:
            break  # made before the floor: what it did has expired with its commit
        actions = _actions(manifest, current.id)
        out.append(SeriesChange(to_series(current), version_info(manifest), actions))
        if len(out) == limit:
            break  # not a read past the page: the next state may be damaged
        current = await previous_state(reader, current, floor)
    return out


def _actions(manifest: Manifest, series_id: str) -> tuple[str, ...]:
    """What the commit did to the series that it left, in order: its changes after
    the last delete (a commit may delete a series and create it again; what it did
    before was to another series). None where the commit lists none: a repair's
    restore (whose entry names a version, not a series), or past the first changes
    of a large batch."""
    actions = [a for a, sid in manifest.changes if sid == series_id and a != "restore"]
    if "delete" in actions:
        actions = actions[len(actions) - actions[::-1].index("delete") :]
    return tuple(actions)


async def _newest_below(
    reader: StoreReader, record: SeriesRecord, before: int, floor: int
) -> SeriesRecord | None:
    """The newest state to list below ``before`` (see :func:`series_changes`); None
    when there is none of this series (an earlier one of the same id, deleted
    since, is another series)."""
    series_id = record.id
    with contextlib.suppress(VersionNotFoundError, IntegrityError, ObjectNotFoundError):
        shown = await _state_at(reader, series_id, before)
        if shown is not None and shown.version == before:
            if shown.created_at != record.created_at:
                return None
            return await previous_state(reader, shown, floor)
    if before == 0:
        return None
    try:
        then = await _state_at(reader, series_id, before - 1)
    except VersionNotFoundError:
        return None  # expired, and with it every change made until then
    except (IntegrityError, ObjectNotFoundError):
        # That version is damaged: walk from the newest instead.
        current: SeriesRecord | None = record
        while current is not None and current.version >= before:
            current = await previous_state(reader, current, floor)
        return current
    if then is None or then.created_at != record.created_at:
        return None
    return then


async def _state_at(reader: StoreReader, series_id: str, version: int) -> SeriesRecord | None:
    return await Snapshot(reader, await reader.manifest(version)).record(series_id)


async def revisions(
    reader: StoreReader,
    record: SeriesRecord | None,
    series_id: str,
    low: int | None,
    high: int | None,
    first_release_only: bool = False,
    max_values: int | None = None,
) -> pa.Table:
    """The revision table of a series for dates in ``[low, high]`` (ordinals in the
    units of ``record``'s frequency), sorted by date then time.

    With ``max_values``, raises RevisionsTooLargeError rather than compare more
    stored values than that (every state's rows in the range), once the states
    read pass it: the state whose rows take them past it is the last one read."""
    if record is None:
        raise SeriesNotFoundError(series_id)
    floor = await reader.oldest_version()
    states = await states_of(reader, record, floor)
    times = [(await reader.manifest(max(s.version, floor))).committed_at for s in states]
    # A state committed at the same instant as the next (a store an older fincat
    # wrote, whose writers' clocks disagreed) is never what an as-of read shows:
    # at that instant it reads the newer one.
    kept = [i for i in range(len(states)) if i + 1 == len(states) or times[i] < times[i + 1]]
    states, times = [states[i] for i in kept], [times[i] for i in kept]
    # A frequency changes only while a series is empty, so no state mixes dates and
    # instants; a table that must show both shows instants, dates at midnight UTC,
    # which loses nothing. An intraday state without rows has no instant to show.
    intraday = record.frequency == "intraday" or any(
        s.frequency == "intraday" and s.observation_count for s in states
    )
    if max_values is None or sum(s.observation_count for s in states) <= max_values:
        tables = list(
            await asyncio.gather(
                *(_read_state(reader, s, record, low, high, intraday) for s in states)
            )
        )
    else:
        # Possibly too long: one state at a time, stopping once past the limit.
        tables, seen = [], 0
        for state in states:
            tables.append(await _read_state(reader, state, record, low, high, intraday))
            seen += tables[-1].num_rows
            if seen > max_values:
                raise RevisionsTooLargeError(seen, max_values)
    frequency = "intraday" if intraday else record.frequency
    build = functools.partial(revision_table, tables, times, frequency, first_release_only)
    if sum(t.num_rows for t in tables) < _INLINE_VALUES:
        return build()
    return await asyncio.to_thread(build)  # seconds for tens of millions: not on the loop


async def _read_state(
    reader: StoreReader,
    state: SeriesRecord,
    latest: SeriesRecord,
    low: int | None,
    high: int | None,
    instants: bool,
) -> pa.Table:
    """One state's rows in ``[low, high]``, bounds given in ``latest``'s units.

    They are applied in the state's own units, as a read as of that state applies
    them (a day counts when any part of it is in range); with ``instants``, a
    state's dates become instants at midnight UTC.
    """
    if state.frequency != latest.frequency:
        intraday = latest.frequency == "intraday"
        low = bound(None if low is None else from_ordinal(low, intraday), state.frequency, False)
        high = bound(None if high is None else from_ordinal(high, intraday), state.frequency, True)
    table = await read_record(reader, state, low, high)
    if instants and state.frequency != "intraday":
        table = table.set_column(0, "date", table.column("date").cast(INSTANT_TYPE))
    return table
