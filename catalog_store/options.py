"""How an open catalog is tuned, and what its history reports of each version."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from catalog_store.changes import RECORDS_PENDING_MAX
from catalog_store.commit import RetryPolicy
from catalog_store.datafiles import INLINE_MAX_ROWS
from catalog_store.errors import ValidationError
from catalog_store.models import Series, check_count
from catalog_store.records import Manifest
from catalog_store.storage.guarded import StoreListener

DEFAULT_SHARDS = 64
#: A laptop process's share: at 10^6 series a lookup that misses it still takes
#: under a millisecond, and the process stays within 1.5x of its size at 10^4
#: (bench/catalog_scale.py). The gateway, a server, defaults to 128 MiB.
DEFAULT_CACHE_BYTES = 32 * 2**20


@dataclass(frozen=True)
class CatalogOptions:
    """Tuning of one open catalog. Every field has a safe default."""

    #: External-id index shards of a new store (fixed at ``init``); metadata shards
    #: split by id range on their own.
    shard_count: int = DEFAULT_SHARDS
    #: Byte bound of the cache of decoded immutable objects.
    cache_bytes: int = DEFAULT_CACHE_BYTES
    #: How long "which version is latest" may be reused without asking the store.
    #: 0 means every read sees every commit that landed before it started, but for
    #: one case: for up to a second after a gc with a retention and a grace period
    #: both shorter than that expired the version this catalog last saw, a read may
    #: still see that one (docs/architecture.md, commit protocol step 8). Writes are
    #: judged afresh.
    max_staleness: float = 0.0
    #: A partition with more files than this is compacted after a write.
    compact_threshold: int = 16
    #: An append keeps up to this many rows of a series in its record (in the
    #: manifest, then in its shard) instead of writing a file; 0 writes every row
    #: to a Parquet file at once, for engines that read the files directly.
    inline_rows: int = INLINE_MAX_ROWS
    #: A commit leaves up to this many changed series in the manifest instead of
    #: rewriting their metadata shards; 0 rewrites them at every commit.
    pending_records: int = RECORDS_PENDING_MAX
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Told about every storage call: (operation, seconds, succeeded). For metrics.
    store_listener: StoreListener | None = None
    #: Seconds any one storage call may take before it is abandoned as unavailable
    #: (None: no limit). Generous: it bounds a hang, not a slow large read. On a
    #: local folder, what runs on the loop's own thread (small reads, and the
    #: synchronous Catalog's manifest writes) cannot be cut short by it. It also
    #: bounds how long a cancelled commit waits for its manifest's write to settle,
    #: which no further cancellation cuts short: with None, that wait has no end.
    store_timeout: float | None = 120.0

    def __post_init__(self) -> None:
        for name in ("inline_rows", "pending_records", "cache_bytes"):
            check_count(getattr(self, name), name, 0)
        for name in ("shard_count", "compact_threshold"):
            check_count(getattr(self, name), name, 1)
        if not self.max_staleness >= 0:
            raise ValidationError("must not be negative", "max_staleness")
        if self.store_timeout is not None and not self.store_timeout > 0:
            raise ValidationError("must be positive, or None for no limit", "store_timeout")


@dataclass(frozen=True)
class VersionInfo:
    """One entry of the catalog's history."""

    version: int
    committed_at: dt.datetime
    commit_id: str
    message: str
    #: The first changes of the commit (at most MAX_LISTED_CHANGES); see change_count.
    changes: Sequence[tuple[str, str]]
    series_count: int
    observation_count: int
    change_count: int = 0


@dataclass(frozen=True)
class SeriesChange:
    """One change of a series: the series as it left it, the commit, and what the
    commit did to it: ``actions`` in order (create, update, append ...; none where
    the commit does not list them: a repair's restore, or past the first changes of
    a large batch), and ``action`` the first of them."""

    series: Series
    commit: VersionInfo
    actions: tuple[str, ...]

    @property
    def action(self) -> str | None:
        return self.actions[0] if self.actions else None


def version_info(manifest: Manifest) -> VersionInfo:
    return VersionInfo(
        manifest.version,
        manifest.committed_at,
        manifest.commit_id,
        manifest.message,
        manifest.changes,
        manifest.series_count,
        manifest.observation_count,
        max(manifest.change_count, len(manifest.changes)),
    )
