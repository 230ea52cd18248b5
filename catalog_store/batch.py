"""A batch: changes to many series gathered in one block and committed as one version
(:meth:`catalog_store.catalog.AsyncCatalog.batch`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from catalog_store.errors import BatchEndedError
from catalog_store.models import (
    FREQUENCIES,
    SeriesSpec,
    as_changes,
    check_series_id,
    parse_spec,
)
from catalog_store.operations import (
    CreateSeries,
    DeleteSeries,
    Operation,
    UpdateSeries,
    write_operation,
)

if TYPE_CHECKING:
    from catalog_store.catalog import AsyncCatalog


class Batch:
    """Changes gathered by :meth:`AsyncCatalog.batch`.

    Each is checked as it is added as far as the batch alone can tell; what depends
    on the stored series (that it exists, its version, its frequency) is judged by
    the commit, on the version it builds on, as for a single change. An
    ``expected_version`` is the series' version before the commit: several changes
    to one series may all name the version that was read.
    """

    def __init__(self, catalog: AsyncCatalog) -> None:
        self._catalog = catalog
        self.operations: list[Operation] = []
        #: The frequency this batch gives a series (by create or update), which its
        #: later writes are checked against when they are added.
        self._frequency: dict[str, str] = {}
        #: The version the batch committed as; None until then, and after a batch
        #: whose changes change nothing.
        self.version: int | None = None
        #: After a commit that failed: the index in :attr:`operations` of the one
        #: that refused it (a stale expected version, values the stored series does
        #: not take); None when none did (an external id two series carry once the
        #: batch is applied, a storage failure).
        self.failed_operation: int | None = None
        #: Set when the block ends: a change added after it would be dropped unseen.
        self.ended = False

    def _check_open(self) -> None:
        if self.ended:
            raise BatchEndedError(
                "this batch's block has ended, so a change added now would never be "
                "committed; start a new batch"
            )

    def create(self, spec: SeriesSpec | Mapping[str, Any]) -> None:
        self._check_open()
        op = CreateSeries(parse_spec(spec))
        self._frequency[op.series_id] = op.spec.frequency
        self.operations.append(op)

    def update(
        self, series_id: str, changes: Mapping[str, Any], expected_version: int | None = None
    ) -> None:
        self._check_open()
        check_series_id(series_id)
        changed = as_changes(changes)
        self.operations.append(UpdateSeries(series_id, changed, expected_version))
        if changed.get("frequency") in FREQUENCIES:  # a bad one is refused at commit
            self._frequency[series_id] = changed["frequency"]

    def delete(self, series_id: str, expected_version: int | None = None) -> None:
        self._check_open()
        check_series_id(series_id)
        self.operations.append(DeleteSeries(series_id, expected_version))

    async def write(
        self,
        series_id: str,
        observations: Any = None,
        mode: str = "append",
        *,
        start: dt.date | dt.datetime | None = None,
        end: dt.date | dt.datetime | None = None,
        expected_version: int | None = None,
    ) -> None:
        self._check_open()
        check_series_id(series_id)
        op = write_operation(series_id, observations, mode, start, end, expected_version)
        frequency = self._frequency.get(series_id)
        if frequency is not None:
            # Checked now, so a crawler learns which write is bad at the line that
            # added it. A series in the store is checked by the commit instead: the
            # newest version this process knows may predate the series or its
            # frequency, and the commit judges again on the newest what it judged
            # on an older version.
            op.prepare(frequency)
        self.operations.append(op)
