"""The HTTP routes, one module per resource."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from gateway.routes import commits, health, metadata, observations, series, versions


def all_routes() -> list[ControllerRouterHandler]:
    """Every route handler of the gateway."""
    return [
        *series.ROUTES,
        *observations.ROUTES,
        *metadata.ROUTES,
        commits.commit,
        *versions.ROUTES,
        *health.ROUTES,
    ]
