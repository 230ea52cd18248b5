"""The systems workload W1 (``w1.py``) runs: fincat and its reference systems.

Each class does the same W1 operations its own way; bench/README.md says exactly
how. The optional ones (DuckDB, ArcticDB) import their package when constructed,
so this module imports without them.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from common import disk_usage, summary

#: Every system, in the order they run and are printed.
SYSTEMS = ("fincat", "pyarrow", "duckdb", "arcticdb")
#: The peers fincat's targets compare with (pyarrow is the floor, not a peer).
PEERS = ("arcticdb", "duckdb")
#: Systems whose package is optional, and the module each needs.
OPTIONAL_MODULES = {"duckdb": "duckdb", "arcticdb": "arcticdb"}


class System(Protocol):
    """What the driver needs from each system under test."""

    root: Path
    extra: dict[str, Any]

    def load_one(self, meta: dict[str, Any], dates: np.ndarray[Any, Any], values: Any) -> None: ...
    def finish_load(self) -> None: ...
    def reopen(self) -> None: ...
    def read_full(self, sid: str) -> int: ...
    def read_range(self, sid: str, start: dt.date, end: dt.date) -> int: ...
    def append(self, sid: str, day: dt.date, value: float) -> None: ...
    def row_counts(self, ids: Sequence[str]) -> dict[str, int]: ...
    def lookup(self, sid: str) -> Any: ...
    def filter_source(self, source: str) -> int: ...
    def disk(self) -> dict[str, Any]: ...
    def details(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


# -- fincat ---------------------------------------------------------------------------


class FincatSystem:
    """fincat through its public synchronous API, default CatalogOptions."""

    def __init__(self, root: Path) -> None:
        from catalog_store import Catalog

        self._open = Catalog.open
        self.root = root
        self.url = root / "catalog"
        self.cat = Catalog.open(self.url, create=True)
        self.extra: dict[str, Any] = {}

    def load_one(self, meta: dict[str, Any], dates: np.ndarray[Any, Any], values: Any) -> None:
        # The series and its observations in one commit, as DuckDB's one transaction
        # and ArcticDB's one write with metadata do: nobody sees it without its data.
        with self.cat.batch() as batch:
            batch.create(meta)
            batch.write(meta["id"], (dates, values))

    def finish_load(self) -> None:
        pass

    def reopen(self) -> None:
        self.cat.close()
        self.cat = self._open(self.url)

    def read_full(self, sid: str) -> int:
        return int(self.cat.read(sid).num_rows)

    def read_range(self, sid: str, start: dt.date, end: dt.date) -> int:
        return int(self.cat.read(sid, start, end).num_rows)

    def append(self, sid: str, day: dt.date, value: float) -> None:
        self.cat.write(sid, ([day], [value]))

    def row_counts(self, ids: Sequence[str]) -> dict[str, int]:
        """Rows each series reads back; disagreements with ``observation_count`` are
        counted in ``extra["count_disagreements"]``."""
        out = {}
        disagreements = 0
        for sid in ids:
            out[sid] = int(self.cat.read(sid).num_rows)
            disagreements += self.cat.get(sid).observation_count != out[sid]
        self.extra["count_disagreements"] = disagreements
        return out

    def lookup(self, sid: str) -> Any:
        return self.cat.get(sid)

    def filter_source(self, source: str) -> int:
        # The metadata table: every matching row as one Arrow table, as DuckDB's
        # Arrow result below (catalog_scale also times streaming them as models).
        return int(self.cat.metadata_table(source=source).num_rows)

    def disk(self) -> dict[str, Any]:
        usage: dict[str, Any] = disk_usage([self.url])
        usage["by_dir"] = {
            child.name: disk_usage([child])
            for child in sorted(self.url.iterdir())
            if child.is_dir()
        }
        return usage

    def details(self) -> dict[str, Any]:
        """The observation_count disagreements."""
        return {"count_disagreements": self.extra.get("count_disagreements")}

    def close(self) -> None:
        self.cat.close()


# -- raw pyarrow -------------------------------------------------------------------------

#: The same Parquet encoding fincat writes, so the comparison isolates the catalog.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "use_dictionary": False,
}
SCHEMA = pa.schema([pa.field("date", pa.date32(), nullable=False), ("value", pa.float64())])


def slice_dates(table: pa.Table, start: dt.date, end: dt.date) -> pa.Table:
    """Rows of a date-sorted table in ``[start, end]`` (binary search, zero copy)."""
    days = table.column("date").cast(pa.int32()).to_numpy()
    epoch = dt.date(1970, 1, 1)
    lo = int(np.searchsorted(days, (start - epoch).days, side="left"))
    hi = int(np.searchsorted(days, (end - epoch).days, side="right"))
    return table.slice(lo, hi - lo)


class PyarrowSystem:
    """One Parquet file per series, no catalog, no atomicity, no fsync: the floor.

    Metadata is a dict in memory, written once to ``meta.json`` at the end of the
    load and read back on reopen; meta_lookup is a dict lookup and meta_filter a
    scan of the dict. An append reads the file, concatenates one row and rewrites it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "series"
        self.dir.mkdir()
        self.meta_path = root / "meta.json"
        self.meta: dict[str, dict[str, Any]] = {}
        self.extra: dict[str, Any] = {}

    def _path(self, sid: str) -> Path:
        return self.dir / f"{sid}.parquet"

    def load_one(self, meta: dict[str, Any], dates: np.ndarray[Any, Any], values: Any) -> None:
        table = pa.table({"date": pa.array(dates), "value": pa.array(values)}, schema=SCHEMA)
        pq.write_table(table, self._path(meta["id"]), **PARQUET_OPTIONS)
        self.meta[meta["id"]] = meta

    def finish_load(self) -> None:
        self.meta_path.write_text(json.dumps(self.meta))

    def reopen(self) -> None:
        self.meta = json.loads(self.meta_path.read_text())

    def read_full(self, sid: str) -> int:
        return int(pq.read_table(self._path(sid)).num_rows)

    def read_range(self, sid: str, start: dt.date, end: dt.date) -> int:
        return int(slice_dates(pq.read_table(self._path(sid)), start, end).num_rows)

    def append(self, sid: str, day: dt.date, value: float) -> None:
        path = self._path(sid)
        row = pa.table({"date": [day], "value": [value]}, schema=SCHEMA)
        table = pa.concat_tables([pq.read_table(path), row])
        pq.write_table(table, path, **PARQUET_OPTIONS)

    def row_counts(self, ids: Sequence[str]) -> dict[str, int]:
        return {sid: int(pq.read_metadata(self._path(sid)).num_rows) for sid in ids}

    def lookup(self, sid: str) -> Any:
        return self.meta[sid]

    def filter_source(self, source: str) -> int:
        return len([m for m in self.meta.values() if m["source"] == source])

    def disk(self) -> dict[str, Any]:
        return dict(disk_usage([self.dir, self.meta_path]))

    def details(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


# -- DuckDB ------------------------------------------------------------------------------


def _query_arrow(con: Any, query: str, params: list[Any]) -> pa.Table:
    """A query's result as an Arrow table, without the DB-API result's extra copy."""
    relation = con.sql(query, params=params)
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        method = getattr(relation, name, None)
        if method is not None:
            table: pa.Table = method()
            return table
    raise RuntimeError("this duckdb has no Arrow result method")


class DuckdbSystem:
    """One DuckDB file: ``obs(series_id, date, value)`` and ``meta``; no index on obs.

    A series loads in one transaction (metadata row and observations); an append
    is one auto-committed INSERT. Series are loaded in order, so each row group's
    min/max statistics on ``series_id`` let a point query skip most of the table.
    """

    def __init__(self, root: Path) -> None:
        import duckdb

        self._connect = duckdb.connect
        self.root = root
        self.path = root / "w1.duckdb"
        self.con = duckdb.connect(str(self.path))
        self.con.execute(
            "CREATE TABLE meta (id VARCHAR PRIMARY KEY, title VARCHAR, source VARCHAR, "
            "frequency VARCHAR, units VARCHAR, tags VARCHAR[])"
        )
        self.con.execute(
            "CREATE TABLE obs (series_id VARCHAR NOT NULL, date DATE NOT NULL, value DOUBLE)"
        )
        self.extra: dict[str, Any] = {}

    def load_one(self, meta: dict[str, Any], dates: np.ndarray[Any, Any], values: Any) -> None:
        incoming = pa.table({"date": pa.array(dates), "value": pa.array(values)})
        con = self.con
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "INSERT INTO meta VALUES (?, ?, ?, ?, ?, ?)",
            [
                meta["id"],
                meta["title"],
                meta["source"],
                meta["frequency"],
                meta["units"],
                meta["tags"],
            ],
        )
        con.register("incoming", incoming)
        con.execute("INSERT INTO obs SELECT ?, date, value FROM incoming", [meta["id"]])
        con.unregister("incoming")
        con.execute("COMMIT")

    def finish_load(self) -> None:
        self.con.execute("CHECKPOINT")

    def reopen(self) -> None:
        self.con.close()
        self.con = self._connect(str(self.path))

    def read_full(self, sid: str) -> int:
        query = "SELECT date, value FROM obs WHERE series_id = ? ORDER BY date"
        return int(_query_arrow(self.con, query, [sid]).num_rows)

    def read_range(self, sid: str, start: dt.date, end: dt.date) -> int:
        query = (
            "SELECT date, value FROM obs WHERE series_id = ? AND date BETWEEN ? AND ? ORDER BY date"
        )
        return int(_query_arrow(self.con, query, [sid, start, end]).num_rows)

    def append(self, sid: str, day: dt.date, value: float) -> None:
        self.con.execute("INSERT INTO obs VALUES (?, ?, ?)", [sid, day, value])

    def row_counts(self, ids: Sequence[str]) -> dict[str, int]:
        rows = self.con.execute("SELECT series_id, count(*) FROM obs GROUP BY series_id").fetchall()
        counts = {str(sid): int(count) for sid, count in rows}
        return {sid: counts.get(sid, 0) for sid in ids}

    def lookup(self, sid: str) -> Any:
        # fetchall, not fetchone: a half-read result would block the next query.
        rows = self.con.execute("SELECT * FROM meta WHERE id = ?", [sid]).fetchall()
        return rows[0] if rows else None

    def filter_source(self, source: str) -> int:
        query = "SELECT * FROM meta WHERE source = ?"
        return int(_query_arrow(self.con, query, [source]).num_rows)

    def disk(self) -> dict[str, Any]:
        self.con.execute("CHECKPOINT")
        wal = self.path.with_name(self.path.name + ".wal")
        return dict(disk_usage([self.path, wal]))

    def details(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.con.close()


# -- ArcticDB ----------------------------------------------------------------------------


class ArcticdbSystem:
    """ArcticDB on its LMDB backend: one library (default options), one symbol per
    series, the metadata dict stored with each version through ``metadata=``.

    Reads ask for Arrow output, the kind of table fincat returns. ArcticDB keeps
    metadata per version and an append does not carry it over, so an append reads
    the series' metadata and stores it again with the appended day. ArcticDB has no
    index on metadata: meta_filter lists the symbols and reads every symbol's
    metadata in one ``read_metadata_batch`` call, then keeps the matching ones.
    """

    LIBRARY = "w1"

    def __init__(self, root: Path) -> None:
        import arcticdb
        import pandas as pd

        self._arctic = arcticdb.Arctic
        self._pd = pd
        self.root = root
        self.dir = root / "arctic"
        self.uri = f"lmdb://{self.dir}"
        self.arctic: Any = None
        self.lib: Any = None
        self._connect(create=True)
        self.extra: dict[str, Any] = {"append_metadata_s": [], "append_write_s": []}

    def _connect(self, create: bool = False) -> None:
        self.arctic = self._arctic(self.uri, output_format="PYARROW")
        self.lib = self.arctic.get_library(self.LIBRARY, create_if_missing=create)

    def _frame(self, dates: Any, values: Any) -> Any:
        return self._pd.DataFrame({"value": values}, index=self._pd.DatetimeIndex(dates))

    def load_one(self, meta: dict[str, Any], dates: np.ndarray[Any, Any], values: Any) -> None:
        self.lib.write(meta["id"], self._frame(dates, values), metadata=meta)

    def finish_load(self) -> None:
        pass

    def reopen(self) -> None:
        self.close()
        self._connect()

    def read_full(self, sid: str) -> int:
        return int(self.lib.read(sid).data.num_rows)

    def read_range(self, sid: str, start: dt.date, end: dt.date) -> int:
        return int(self.lib.read(sid, date_range=(start, end)).data.num_rows)

    def append(self, sid: str, day: dt.date, value: float) -> None:
        t0 = time.perf_counter()
        meta = self.lib.read_metadata(sid).metadata
        t1 = time.perf_counter()
        self.lib.append(sid, self._frame([day], [value]), metadata=meta)
        t2 = time.perf_counter()
        self.extra["append_metadata_s"].append(t1 - t0)
        self.extra["append_write_s"].append(t2 - t1)

    def row_counts(self, ids: Sequence[str]) -> dict[str, int]:
        return {sid: int(self.lib.read(sid).data.num_rows) for sid in ids}

    def lookup(self, sid: str) -> Any:
        return self.lib.read_metadata(sid).metadata

    def filter_source(self, source: str) -> int:
        items = self.lib.read_metadata_batch(self.lib.list_symbols())
        return sum(1 for item in items if item.metadata["source"] == source)

    def disk(self) -> dict[str, Any]:
        return dict(disk_usage([self.dir]))

    def details(self) -> dict[str, Any]:
        """The append's split: reading the metadata, then the append itself."""
        return {
            "append_metadata": summary(self.extra["append_metadata_s"]),
            "append_write": summary(self.extra["append_write_s"]),
        }

    def close(self) -> None:
        self.lib = None
        self.arctic = None


def make_system(name: str, root: Path) -> System:
    if name == "fincat":
        return FincatSystem(root)
    if name == "pyarrow":
        return PyarrowSystem(root)
    if name == "duckdb":
        return DuckdbSystem(root)
    if name == "arcticdb":
        return ArcticdbSystem(root)
    raise ValueError(f"unknown system {name!r}")
