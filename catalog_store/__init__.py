"""fincat's storage engine: a multi-writer catalog of time series in object storage."""

from __future__ import annotations

from catalog_store.asof import AsOf
from catalog_store.batch import Batch
from catalog_store.catalog import AsyncCatalog
from catalog_store.commit import RetryPolicy
from catalog_store.errors import *  # noqa: F403 - the error tree is part of the API
from catalog_store.errors import __doc__ as _errors_doc  # noqa: F401
from catalog_store.listing import Page, SeriesFilter
from catalog_store.models import FREQUENCIES, Series, SeriesSpec
from catalog_store.options import CatalogOptions, SeriesChange, VersionInfo
from catalog_store.snapshot import Snapshot
from catalog_store.sync import Catalog

__all__ = [
    "FREQUENCIES",
    "AsOf",
    "AsyncCatalog",
    "Batch",
    "Catalog",
    "CatalogOptions",
    "Page",
    "RetryPolicy",
    "Series",
    "SeriesChange",
    "SeriesFilter",
    "SeriesSpec",
    "Snapshot",
    "VersionInfo",
]
