"""Schema extensions of our own: error codes on every error, and per-operation metrics.

Metrics go into the app's own Prometheus registry beside the REST ones
(:class:`gateway.metrics.GatewayMetrics`); labels are closed sets (operation type,
outcome, error code), never operation names a client chooses.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from strawberry.extensions import SchemaExtension

from gateway.graphql.context import GraphQLContext
from gateway.graphql.errors import INTERNAL, classify, is_client_error


class GraphQLMetrics:
    """The GraphQL counters of one app, registered in its registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.operations = Counter(
            "fincat_graphql_operations",
            "GraphQL operations by type (query, mutation, unknown) and outcome (ok, error).",
            ("operation", "outcome"),
            registry=registry,
        )
        self.errors = Counter(
            "fincat_graphql_errors",
            "GraphQL errors by extensions.code.",
            ("code",),
            registry=registry,
        )

    def observe(self, operation: str, codes: list[str]) -> None:
        self.operations.labels(operation, "error" if codes else "ok").inc()
        for code in codes:
            self.errors.labels(code).inc()


class ErrorCodes(SchemaExtension):
    """Gives every error of the result ``extensions.code`` and counts the operation.

    Listed after :class:`~gateway.graphql.errors.MaskInternalErrors` in the schema, so
    it runs first when the operation ends: codes are set before masking looks at them.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        result = execution.result
        errors = list(getattr(result, "errors", None) or ())
        if errors:
            errors = [classify(error) for error in errors]
            result.errors = errors  # type: ignore[union-attr]
        context = execution.context
        if isinstance(context, GraphQLContext) and context.runtime.metrics is not None:
            try:
                operation = execution.operation_type.value
            except RuntimeError:  # the document did not parse or names no operation
                operation = "unknown"
            codes = [
                str((e.extensions or {}).get("code")) if is_client_error(e) else INTERNAL
                for e in errors
            ]
            context.runtime.metrics.observe(operation, codes)
