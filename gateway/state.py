"""What one app instance holds: its settings, the open catalog, keys, limits, metrics.

One :class:`Gateway` per app, stored in the app's state by
:func:`gateway.app.create_app`; nothing lives at module level, so several apps
(tests, benchmarks) coexist in one process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cachetools
import msgspec
from litestar.connection import ASGIConnection

from catalog_store.cache import ObjectCache

if TYPE_CHECKING:
    from catalog_store import AsyncCatalog
    from gateway.auth import KeyRing
    from gateway.metrics import GatewayMetrics
    from gateway.ratelimit import TokenBuckets
    from gateway.settings import Settings

STATE_KEY = "fincat_gateway"
#: Bytes of series views kept (their JSON size, plus what a decoded one holds besides):
#: a view is ~1 KB, but a series may carry up to tens of KB of description and
#: attributes, so a count alone did not bound the memory.
SERIES_VIEW_BYTES = 16 * 2**20
#: Bytes of encoded representations kept for readers that fetch them by byte ranges.
RANGED_BYTES = 64 * 2**20


class CatalogNotOpenError(RuntimeError):
    """A request arrived before the app's startup opened the catalog, or after shutdown."""


@dataclass
class Gateway:
    """The per-app context shared by every request of one process."""

    settings: Settings
    keyring: KeyRing
    limiter: TokenBuckets
    metrics: GatewayMetrics
    #: Series views by (catalog version, id). Entries never go stale: a commit makes
    #: a new version, hence new keys. Bounded, least recently used first out.
    series_views: cachetools.LRUCache[tuple[int, str], Any] = field(
        default_factory=lambda: cachetools.LRUCache(
            maxsize=SERIES_VIEW_BYTES, getsizeof=_view_bytes
        ),
        repr=False,
    )
    #: Encoded observation representations by series state, range and format, for
    #: ranged readers (a Parquet reader asks for the footer, then for parts): each
    #: range request would otherwise read, merge and encode the whole series again,
    #: and concurrent ones each a copy. Bounded in bytes; concurrent misses share one
    #: encoding.
    ranged_bodies: ObjectCache = field(default_factory=lambda: ObjectCache(RANGED_BYTES))
    _catalog: AsyncCatalog | None = field(default=None, repr=False)

    @property
    def catalog(self) -> AsyncCatalog:
        """The open catalog. Raises CatalogNotOpenError outside the app's lifespan."""
        if self._catalog is None:
            raise CatalogNotOpenError("the catalog is not open")
        return self._catalog

    async def ready(self) -> int:
        """The latest version, once the store's marker and that version's manifest
        are read from the store and decode.

        Both are read from the store each time, never from the cache: a probe for a
        newer version answers "none" when the manifests (or the whole root) are gone,
        and a cached manifest outlives its file. Raises CatalogStoreError when the
        store cannot be read, CatalogNotOpenError outside the lifespan.
        """
        catalog = self.catalog
        reader = catalog.reader
        await reader.read_marker()
        version = await catalog.version(refresh=True)
        await reader.manifest(version, cached=False)
        return version

    def attach(self, catalog: AsyncCatalog | None) -> None:
        """Serve ``catalog`` from now on (at startup); None detaches it (at shutdown)."""
        self._catalog = catalog


def gateway_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Gateway:
    """The Gateway of the app serving ``connection``."""
    gateway: Gateway = connection.app.state[STATE_KEY]
    return gateway


def _view_bytes(view: Any) -> int:
    """A series view's size in the cache: its JSON, twice (the decoded strings and
    containers take about as much again)."""
    return 2 * len(msgspec.json.encode(view))
