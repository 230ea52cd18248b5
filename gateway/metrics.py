"""Prometheus metrics of one app, in its own registry.

Requests are counted and timed by route template (``/v1/series/{series_id}``),
never by raw path, so hostile or numerous ids cannot blow up the number of series.
The catalog's own counters (cache, commits, lost races, retries) are read from
:meth:`catalog_store.AsyncCatalog.stats` at scrape time; store call latencies
arrive through :class:`catalog_store.CatalogOptions` ``store_listener``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Route label of requests that matched no route (404/405 before routing).
UNMATCHED = "<unmatched>"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

# stats() key -> (metric name, help); counters only grow, gauges go both ways.
_COUNTERS = {
    "commits": ("fincat_commits", "Commits made by this process."),
    "commit_lost_races": (
        "fincat_commit_conflicts",
        "Commit attempts that lost the race for the next version to another writer.",
    ),
    "commit_retries": (
        "fincat_commit_retries",
        "Commit attempts retried after a lost race or a storage failure.",
    ),
    "commit_unknown_outcomes": (
        "fincat_commit_unknown_outcomes",
        "Commit writes whose outcome had to be read back.",
    ),
    "commit_gave_up": (
        "fincat_commit_gave_up",
        "Commits abandoned when their retry limits ran out (lost races or storage failures).",
    ),
    "cache_hits": ("fincat_cache_hits", "Reads of immutable objects served from the cache."),
    "cache_misses": ("fincat_cache_misses", "Reads of immutable objects that went to the store."),
}
_GAUGES = {
    "cache_bytes": ("fincat_cache_bytes", "Estimated bytes held by the object cache."),
    "cache_max_bytes": ("fincat_cache_max_bytes", "Byte bound of the object cache."),
    "cache_entries": ("fincat_cache_entries", "Objects held by the object cache."),
    "cache_records": ("fincat_cache_records", "Series records held by the object cache."),
    "cache_peak_records": (
        "fincat_cache_peak_records",
        "Most series records held at once, including a shard in use too large to cache.",
    ),
}


class CatalogCollector(Collector):
    """Reads the catalog's counters when Prometheus scrapes."""

    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        values = self.stats()
        for key, (name, text) in _COUNTERS.items():
            if key in values:
                counter = CounterMetricFamily(name, text)
                counter.add_metric([], values[key])
                yield counter
        for key, (name, text) in _GAUGES.items():
            if key in values:
                yield GaugeMetricFamily(name, text, value=values[key])


class GatewayMetrics:
    """The metrics of one app; nothing is registered in prometheus_client's global registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "fincat_http_requests",
            "HTTP requests by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "fincat_http_request_duration_seconds",
            "Time to the end of the response, by method and route template.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store_latency = Histogram(
            "fincat_store_operation_duration_seconds",
            "Storage calls by operation (get, head, put, put_if_absent, list, delete) and outcome.",
            ("operation", "outcome"),
            buckets=STORE_BUCKETS,
            registry=self.registry,
        )
        # Resident memory, CPU and open files of this process, for the memory alert.
        ProcessCollector(registry=self.registry)
        self._catalog: CatalogCollector | None = None
        self._monitor: Collector | None = None
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def store_listener(self, operation: str, seconds: float, succeeded: bool) -> None:
        """For ``CatalogOptions(store_listener=...)``. A "not found" or "already exists"
        answer is a success: the store answered (probes and lost races give them)."""
        outcome = "ok" if succeeded else "error"
        self.store_latency.labels(operation, outcome).observe(seconds)

    def watch_catalog(self, stats: Callable[[], dict[str, int]] | None) -> None:
        """Export ``stats()`` of the open catalog; None stops (at shutdown)."""
        if self._catalog is not None:
            self.registry.unregister(self._catalog)
            self._catalog = None
        if stats is not None:
            self._catalog = CatalogCollector(stats)
            self.registry.register(self._catalog)

    def watch_monitor(self, collector: Collector | None) -> None:
        """Export the background monitor's figures; None stops (at shutdown)."""
        if self._monitor is not None:
            self.registry.unregister(self._monitor)
        self._monitor = collector
        if collector is not None:
            self.registry.register(collector)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        # Label lookups cost more than the update; routes and statuses are few, so
        # the children are kept by key.
        if method not in METHODS:  # any token is a valid method; labels must stay few
            method = "OTHER"
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The text exposition format of every metric of this app."""
        return generate_latest(self.registry)


async def observe_request(
    metrics: GatewayMetrics, app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run ``app`` for one HTTP request, counting and timing it under its route template.

    Called around the whole app, routing included, so a request no route matches
    (404, 405) is counted and timed like any other; its route is ``<unmatched>``.
    """
    started = time.perf_counter()
    status = 500

    async def send_and_note(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    try:
        await app(scope, receive, send_and_note)
    finally:
        route = scope.get("path_template") or UNMATCHED
        method = str(scope.get("method", "GET"))
        metrics.observe(method, route, status, time.perf_counter() - started)
