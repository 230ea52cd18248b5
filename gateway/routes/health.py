"""Liveness, readiness and metrics: open to every client, never rate limited."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST

from catalog_store.errors import CatalogStoreError
from gateway.openapi import TEXT, documented
from gateway.problems import problem_response, problem_specs
from gateway.state import CatalogNotOpenError, gateway_of

OPEN: list[dict[str, list[str]]] = [{}]  # an empty security requirement: no key needed


class Health(msgspec.Struct, omit_defaults=True):
    status: str
    version: int | None = None


@get("/health/live", summary="Liveness", security=OPEN, tags=["health"])
async def live() -> Health:
    """200 while the process serves requests; it checks nothing else."""
    return Health("ok")


@get(
    "/health/ready",
    summary="Readiness",
    security=OPEN,
    tags=["health"],
    responses=problem_specs(503),
)
async def ready(request: Request[Any, Any, Any]) -> Response[Any]:
    """200 when the store answers and the latest manifest loads, else 503."""
    try:
        catalog = gateway_of(request).catalog
        version = await catalog.version(refresh=True)
        await catalog.history(limit=1)
    except (CatalogStoreError, CatalogNotOpenError) as exc:
        return problem_response(
            request,
            503,
            "not-ready",
            "Not ready",
            f"the catalog cannot be read ({type(exc).__name__})",
        )
    return Response(Health("ready", version))


@get(
    "/metrics",
    summary="Prometheus metrics",
    security=OPEN,
    tags=["health"],
    operation_class=documented(responses={200: {"text/plain": TEXT}}),
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Request counts and latencies by route, cache and commit counters, store latencies."""
    body = gateway_of(request).metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = [live, ready, metrics]
