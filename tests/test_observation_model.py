"""Random sequences of writes checked against a dict per series.

The model is the obvious one: a series is a dict from date to value. Every write
mode is applied to it and to the catalog; the latest read and the read as of every
version seen so far must equal the model's state at that version.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import uuid
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from catalog_store import Catalog, CatalogOptions
from catalog_store.errors import AppendOrderError
from catalog_store.storage import drop_memory_store

D = dt.date
Model = dict[dt.date, float | None]


def _days(first: dt.date, last: dt.date, weekdays_only: bool = False) -> list[dt.date]:
    out = []
    day = first
    while day <= last:
        if not weekdays_only or day.weekday() < 5:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


#: Each series' dates straddle a partition boundary (a year, and a decade).
POOLS: dict[str, list[dt.date]] = {
    "D": _days(D(2019, 12, 24), D(2020, 1, 8)),
    "B": _days(D(1999, 12, 20), D(2000, 1, 12), weekdays_only=True),
}
SPECS = {
    "D": {"frequency": "daily", "partitioning": "year"},
    "B": {"frequency": "business_daily", "partitioning": "decade"},
}

series_ids = st.sampled_from(sorted(POOLS))
values = st.one_of(
    st.none(),
    st.sampled_from([0.0, 1.5, -2.25, 1e300]),
    st.floats(allow_nan=False, allow_infinity=False),
)
indices = st.integers(min_value=0, max_value=max(len(p) for p in POOLS.values()) - 1)


def pick(series_id: str, index: int) -> dt.date:
    pool = POOLS[series_id]
    return pool[index % len(pool)]


class ObservationMachine(RuleBasedStateMachine):
    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__()
        if self.backend == "memory":
            self.name = f"model-{uuid.uuid4().hex}"
            url = f"memory://{self.name}"
        else:
            self.name = tempfile.mkdtemp(prefix="fincat-model-")
            url = f"{self.name}/store"
        # A low threshold, so that automatic compaction happens along the way.
        self.cat = Catalog.open(url, create=True, options=CatalogOptions(compact_threshold=3))
        self.model: dict[str, Model] = {sid: {} for sid in POOLS}
        self.states: dict[int, dict[str, Model]] = {}

    @initialize()
    def create_series(self) -> None:
        with self.cat.batch() as batch:
            for series_id, spec in SPECS.items():
                batch.create({"id": series_id, **spec})
        self.record()

    def record(self) -> None:
        """Remember the model for every version committed since the last call."""
        latest = self.cat.version()
        start = max(self.states, default=latest - 1) + 1
        for version in range(start, latest + 1):
            self.states[version] = {sid: dict(m) for sid, m in self.model.items()}

    # -- rules ---------------------------------------------------------------------

    @rule(series_id=series_ids, count=st.integers(0, 3), data=st.data())
    def append(self, series_id: str, count: int, data: st.DataObject) -> None:
        model = self.model[series_id]
        last = max(model, default=None)
        later = [d for d in POOLS[series_id] if last is None or d > last][:count]
        new = {d: data.draw(values) for d in later}
        self.cat.write(series_id, (list(new), list(new.values())))
        model.update(new)
        self.record()

    @precondition(lambda self: any(self.model.values()))
    @rule(series_id=series_ids, index=indices, value=values)
    def append_out_of_order(self, series_id: str, index: int, value: float | None) -> None:
        model = self.model[series_id]
        if not model:
            return
        day = pick(series_id, index)
        day = min(day, max(model))
        before = self.cat.version()
        with pytest.raises(AppendOrderError):
            self.cat.write(series_id, ([day], [value]))
        assert self.cat.version() == before

    @rule(series_id=series_ids, rows=st.dictionaries(indices, values, max_size=5))
    def upsert(self, series_id: str, rows: dict[int, float | None]) -> None:
        new = {pick(series_id, i): v for i, v in rows.items()}
        if not new:
            return
        self.cat.write(series_id, (list(new), list(new.values())), mode="upsert")
        self.model[series_id].update(new)
        self.record()

    @rule(
        series_id=series_ids,
        bounds=st.tuples(st.none() | indices, st.none() | indices),
        rows=st.dictionaries(indices, values, max_size=5),
    )
    def replace_range(
        self,
        series_id: str,
        bounds: tuple[int | None, int | None],
        rows: dict[int, float | None],
    ) -> None:
        start, end = self._range(series_id, bounds)
        new: Model = {}
        for index, value in rows.items():
            day = pick(series_id, index)
            if (start is None or day >= start) and (end is None or day <= end):
                new[day] = value
        self.cat.write(
            series_id, (list(new), list(new.values())), "replace_range", start=start, end=end
        )
        self._drop(series_id, start, end)
        self.model[series_id].update(new)
        self.record()

    @rule(series_id=series_ids, bounds=st.tuples(st.none() | indices, st.none() | indices))
    def delete_range(self, series_id: str, bounds: tuple[int | None, int | None]) -> None:
        start, end = self._range(series_id, bounds)
        self.cat.write(series_id, mode="delete_range", start=start, end=end)
        self._drop(series_id, start, end)
        self.record()

    @rule(scheme=st.sampled_from(["year", "decade", "month", "none"]))
    def repartition(self, scheme: str) -> None:
        self.cat.update("D", {"partitioning": scheme})
        self.record()

    @rule(series_id=series_ids)
    def compact(self, series_id: str) -> None:
        self.cat.compact(series_id)
        self.record()

    def _range(
        self, series_id: str, bounds: tuple[int | None, int | None]
    ) -> tuple[dt.date | None, dt.date | None]:
        start, end = (None if i is None else pick(series_id, i) for i in bounds)
        if start is not None and end is not None and start > end:
            start, end = end, start
        if start is None and end is None:
            # Both ends open is refused; the whole series is covered on purpose by
            # the first date any write can use.
            start = POOLS[series_id][0]
        return start, end

    def _drop(self, series_id: str, start: dt.date | None, end: dt.date | None) -> None:
        model = self.model[series_id]
        for day in list(model):
            if (start is None or day >= start) and (end is None or day <= end):
                del model[day]

    # -- checks --------------------------------------------------------------------

    @invariant()
    def latest_equals_the_model(self) -> None:
        for series_id, model in self.model.items():
            assert self._read(series_id, None) == sorted(model.items())
            series = self.cat.get(series_id)
            assert series.observation_count == len(model)
            assert series.first_date == min(model, default=None)
            assert series.last_date == max(model, default=None)

    @rule()
    def every_version_equals_the_model_then(self) -> None:
        for version, state in self.states.items():
            for series_id, model in state.items():
                assert self._read(series_id, version) == sorted(model.items()), version

    def _read(self, series_id: str, as_of: int | None) -> list[tuple[Any, Any]]:
        table = self.cat.read(series_id, as_of=as_of)
        dates = table.column("date").to_pylist()
        return list(zip(dates, table.column("value").to_pylist(), strict=True))

    def teardown(self) -> None:
        try:
            self.every_version_equals_the_model_then()
        finally:
            self.cat.close()
            if self.backend == "memory":
                drop_memory_store(self.name)
            else:
                shutil.rmtree(self.name, ignore_errors=True)


class LocalObservationMachine(ObservationMachine):
    backend = "local"


_common = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
ObservationMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, **_common)
LocalObservationMachine.TestCase.settings = settings(
    max_examples=8, stateful_step_count=15, **_common
)
TestObservationModelMemory = ObservationMachine.TestCase
TestObservationModelLocal = LocalObservationMachine.TestCase
