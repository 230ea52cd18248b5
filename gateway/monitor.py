"""Background watch of what no request measures: data freshness and the last verify.

Every ``interval`` seconds the gateway reads the verify outcomes recorded in the
store (the full run's, and a latest-only run's since), and, when the catalog's
version changed, summarises the series per source (newest change, series count),
reading only the metadata shards that changed since the last pass. A collector
exports both at scrape time, so alerts can fire on a source that stopped updating
and on a verify that found problems or has not passed lately.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from catalog_store import AsyncCatalog
from catalog_store.errors import CatalogStoreError
from catalog_store.status import VerifyStatus, read_verify_outcomes
from gateway.graphql.summary import CatalogSummary, ShardSummaries

log = logging.getLogger(__name__)

#: Series one freshness pass reads at most; past it the figures cover a prefix.
SCAN_LIMIT = 2_000_000


@dataclass
class Observed:
    """The latest figures of the watch; read by the collector, written by the task."""

    summary: CatalogSummary | None = None
    #: The recorded verify outcomes by scope (catalog_store.status.FULL, LATEST).
    verify: dict[str, VerifyStatus] = field(default_factory=dict)
    failures: int = 0
    sources: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: What the passes keep shard by shard between versions.
    passes: ShardSummaries = field(default_factory=ShardSummaries)


async def refresh(catalog: AsyncCatalog, observed: Observed) -> None:
    """One round: the verify records, and the per-source summary if the version moved."""
    verify = await read_verify_outcomes(catalog.store)
    version = await catalog.version()
    if observed.summary is None or observed.summary.version != version:
        summary = await observed.passes.summarize(catalog, version, SCAN_LIMIT)
        observed.summary = summary
        observed.sources = {
            source: (entry.series_count, entry.last_updated_at.timestamp())
            for source, entry in summary.sources.items()
        }
    observed.verify = verify  # last: a scrape that sees it sees this round's sources


async def watch(catalog: AsyncCatalog, observed: Observed, interval: float) -> None:
    """Refresh forever; a failed round is counted and retried next interval."""
    while True:
        try:
            await refresh(catalog, observed)
        except CatalogStoreError as exc:
            observed.failures += 1
            log.warning("monitoring round failed: %s", exc)
        await asyncio.sleep(interval)


class MonitorCollector(Collector):
    """Exports :class:`Observed` at scrape time."""

    def __init__(self, observed: Observed) -> None:
        self.observed = observed

    def collect(self) -> Iterator[Metric]:
        observed = self.observed
        updated = GaugeMetricFamily(
            "fincat_source_last_updated_timestamp_seconds",
            "Newest change to any series of the source (Unix seconds).",
            labels=("source",),
        )
        count = GaugeMetricFamily(
            "fincat_source_series", "Series of the source.", labels=("source",)
        )
        for source, (series, stamp) in sorted(observed.sources.items()):
            updated.add_metric([source], stamp)
            count.add_metric([source], series)
        yield updated
        yield count
        yield GaugeMetricFamily(
            "fincat_monitor_failures",
            "Monitoring rounds that failed to read the store.",
            value=observed.failures,
        )
        if not observed.verify:
            return
        # By scope: a latest-only run must not clear or refresh the full run's figures.
        problems = GaugeMetricFamily(
            "fincat_verify_problems",
            "Problems the last recorded fincat verify of the scope (full, latest) found.",
            labels=("scope",),
        )
        ran = GaugeMetricFamily(
            "fincat_verify_last_run_timestamp_seconds",
            "When fincat verify of the scope last recorded an outcome (Unix seconds).",
            labels=("scope",),
        )
        passed = GaugeMetricFamily(
            "fincat_verify_last_success_timestamp_seconds",
            "When fincat verify of the scope last passed (Unix seconds).",
            labels=("scope",),
        )
        for scope, status in sorted(observed.verify.items()):
            problems.add_metric([scope], status.problems)
            ran.add_metric([scope], status.checked_at.timestamp())
            if status.last_ok_at is not None:
                passed.add_metric([scope], status.last_ok_at.timestamp())
        yield problems
        yield ran
        yield passed
