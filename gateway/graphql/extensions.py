"""The extension that ends every operation: error codes, masking, per-operation metrics.

Metrics go into the app's own Prometheus registry beside the REST ones
(:class:`gateway.metrics.GatewayMetrics`); labels are closed sets (operation type,
outcome, error code), never operation names a client chooses.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter

from gateway.graphql.context import GraphQLContext
from gateway.graphql.errors import SERVER_CODES, MaskInternalErrors, classify


class GraphQLMetrics:
    """The GraphQL counters of one app, registered in its registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.operations = Counter(
            "fincat_graphql_operations",
            "GraphQL operations by type (query, mutation, unknown) and outcome (ok; "
            "error: the client's errors only; server_error: at least one INTERNAL, "
            "UNAVAILABLE or COMMIT_STATE_UNKNOWN).",
            ("operation", "outcome"),
            registry=registry,
        )
        self.errors = Counter(
            "fincat_graphql_errors",
            "GraphQL errors by extensions.code.",
            ("code",),
            registry=registry,
        )
        self.cached = Counter(
            "fincat_graphql_result_cache_hits",
            "GraphQL queries answered from the result cache (also counted as operations).",
            registry=registry,
        )
        self._query_ok = self.operations.labels("query", "ok")

    def observe(self, operation: str, codes: list[str]) -> None:
        """One operation, once whatever its errors; each error by its code.

        The outcome marks an operation that failed on the server's side, so that
        alerts take the share of operations, not of errors (one query of five
        aliased fields on a damaged series has five)."""
        failed = "server_error" if SERVER_CODES.intersection(codes) else "error"
        self.operations.labels(operation, failed if codes else "ok").inc()
        for code in codes:
            self.errors.labels(code).inc()

    def observe_cached(self) -> None:
        """A query answered from the result cache: an operation without error."""
        self._query_ok.inc()
        self.cached.inc()


class ErrorCodes(MaskInternalErrors):
    """When the operation ends: gives every error of the result ``extensions.code``,
    masks the internal ones (strawberry's MaskErrors, through
    :class:`~gateway.graphql.errors.MaskInternalErrors`), and counts the operation,
    in that order, in one hook."""

    def on_operation(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        result = execution.result
        errors = list(getattr(result, "errors", None) or ())
        if errors:
            errors = [
                self.anonymise_error(error) if self.should_mask_error(error) else error
                for error in map(classify, errors)
            ]
            result.errors = errors  # type: ignore[union-attr]
        context = execution.context
        if isinstance(context, GraphQLContext) and context.runtime.metrics is not None:
            try:
                operation = execution.operation_type.value
            except RuntimeError:  # the document did not parse or names no operation
                operation = "unknown"
            codes = [str((e.extensions or {}).get("code")) for e in errors]
            context.runtime.metrics.observe(operation, codes)
