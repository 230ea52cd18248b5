"""What resolvers share: the app's GraphQL runtime and the context of one request.

:class:`Runtime` lives as long as the app (settings, a small cache of catalog
summaries, metrics); :class:`GraphQLContext` lives for one request (who asked, the
catalog version the request reads, its loaders and its observation budget).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar import Request
from strawberry.types import Info

from catalog_store import AsyncCatalog
from gateway.auth import Principal
from gateway.graphql.config import GraphQLSettings
from gateway.graphql.limits import ObservationBudget
from gateway.graphql.loaders import Loaders, make_loaders
from gateway.state import Gateway

if TYPE_CHECKING:
    from gateway.graphql.errors import ApiError
    from gateway.graphql.extensions import GraphQLMetrics
    from gateway.graphql.summary import CatalogSummary

#: Catalog summaries kept, one per catalog version; the newest ones are the ones asked for.
SUMMARY_CACHE = 4


class Runtime:
    """The GraphQL state of one app: its limits, summaries by version, metrics."""

    def __init__(self, config: GraphQLSettings) -> None:
        self.config = config
        self.summaries: OrderedDict[int, CatalogSummary] = OrderedDict()
        from gateway.graphql.summary import ShardSummaries  # it imports this module's types

        self.shard_summaries = ShardSummaries()
        self.metrics: GraphQLMetrics | None = None

    def remember(self, summary: CatalogSummary) -> None:
        self.summaries[summary.version] = summary
        self.summaries.move_to_end(summary.version)
        while len(self.summaries) > SUMMARY_CACHE:
            self.summaries.popitem(last=False)


@dataclass
class GraphQLContext:
    """One request's context (``info.context`` in resolvers)."""

    request: Request[Any, Any, Any] | None
    gateway: Gateway
    runtime: Runtime
    principal: Principal | None = None
    #: Why the request may not run at all (missing key, rate limit), with the HTTP
    #: status and headers to answer with.
    refusal: tuple[ApiError, int, dict[str, str]] | None = None
    budget: ObservationBudget | None = None
    #: Whether the request named the operation to run (set by the schema's execute).
    operation_named: bool = False
    _loaders: Loaders | None = field(default=None, init=False, repr=False)
    _pin: int | None = field(default=None, init=False, repr=False)

    @property
    def catalog(self) -> AsyncCatalog:
        """The open catalog. Raises CatalogNotOpenError outside the app's lifespan."""
        return self.gateway.catalog

    @property
    def config(self) -> GraphQLSettings:
        return self.runtime.config

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = make_loaders(self.catalog)
        return self._loaders

    @property
    def observations(self) -> ObservationBudget:
        if self.budget is None:
            self.budget = ObservationBudget(self.config.max_observations)
        return self.budget

    async def version(self) -> int:
        """The catalog version this request reads when no ``asOf`` is given: the
        latest one as the app's cache TTL sees it, as REST reads it.

        Fixed at its first use, so every field of one response sees the same
        catalog even while writers commit (and a cached result is kept under the
        version its fields read); a mutation's result carries its own version.
        Raises the catalog's errors (StorageUnavailableError ...).
        """
        if self._pin is None:
            latest = await self.catalog.version(refresh=False)
            # Fields that asked at the same time all answer with the first result.
            if self._pin is None:
                self._pin = latest
        return self._pin

    async def history_kept(self) -> int:
        """The oldest catalog version kept, as reads of past versions check it (asked
        of the store at most once a second). gc raises it without making a version,
        so a cached result's key holds it beside the version: reads of versions it
        expired are then answered anew, as NOT_FOUND."""
        return await self.catalog.reader.kept_floor()


def context_of(info: Info[Any, Any]) -> GraphQLContext:
    """The request's context from a resolver's ``info``."""
    context = info.context
    assert isinstance(context, GraphQLContext)
    return context
