"""Liveness, readiness and metrics: open to every client, never rate limited."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST

from catalog_store.errors import CatalogStoreError
from gateway.openapi import TEXT, documented
from gateway.problems import NOT_READY, kind_of, problem_response, problem_specs, retry_headers
from gateway.state import CatalogNotOpenError, gateway_of

#: An empty security requirement: no key needed. Probes and uptime monitors often
#: ask with HEAD, which every GET route answers (gateway.head).
OPEN: list[dict[str, list[str]]] = [{}]


class Health(msgspec.Struct, omit_defaults=True):
    status: str
    version: int | None = None


log = logging.getLogger(__name__)


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
    """200 when the store's marker (``fincat.json``) and the latest manifest read from
    the store, else 503."""
    try:
        version = await gateway_of(request).ready()
    except (CatalogStoreError, CatalogNotOpenError) as exc:
        # What failed, in the words of its problem kind; the error itself, which may
        # name keys and the store's internals, goes to the log.
        log.warning("not ready: %s: %s", type(exc).__name__, exc)
        why = kind_of(exc).title if isinstance(exc, CatalogStoreError) else "not opened yet"
        return problem_response(
            request,
            NOT_READY.status,
            NOT_READY.slug,
            NOT_READY.title,
            f"the catalog cannot be read: {why.lower()}",
            headers=retry_headers(NOT_READY),
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
    # As a header, not a media type: Litestar would add a second charset parameter.
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


ROUTES = [live, ready, metrics]
