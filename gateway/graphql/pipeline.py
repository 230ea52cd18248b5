"""What every operation goes through before graphql-core runs it, as one extension.

In order: the document is parsed through the document cache with the token limit
(strawberry's ``MaxTokensLimiter`` sets the same parse option), validated with the
schema's rules plus those of Float literals, depth, aliases and introspection (the
rules of strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter``, added as its
``AddValidationRules`` would), its input size and cost are checked, and a query
that reads only its pinned catalog version is answered from the result cache when
it can be (and its result kept when it runs).

One extension rather than one per step: strawberry builds a context manager for
every hook of every extension on every request, which cost more than the steps
themselves once their results are cached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence

from graphql import ASTValidationRule, GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from gateway.graphql.config import GraphQLSettings
from gateway.graphql.documents import DocumentCache, Entry, parse_through, validate_through
from gateway.graphql.limits import check_limits
from gateway.graphql.results import ResultCache


def pipeline(
    config: GraphQLSettings,
    rules: Sequence[type[ASTValidationRule]],
    documents: DocumentCache,
    results: ResultCache,
) -> Callable[[], SchemaExtension]:
    """A factory of the extension, one instance per request."""
    extra_rules = tuple(rules)

    class Pipeline(SchemaExtension):
        entry: Entry | None = None

        def on_parse(self) -> Iterator[None]:
            execution = self.execution_context
            execution.parse_options["max_tokens"] = config.max_tokens
            self.entry = parse_through(documents, execution)
            yield

        def on_validate(self) -> Iterator[None]:
            execution = self.execution_context
            execution.validation_rules = execution.validation_rules + extra_rules
            validate_through(self.entry, execution)
            if not execution.pre_execution_errors:
                execution.pre_execution_errors = _unnamed_choice(execution)
            yield

        async def on_execute(self) -> AsyncIterator[None]:
            execution = self.execution_context
            check_limits(execution, config, self.entry)
            key = await results.look_up(execution, self.entry)
            yield
            if key is not None:
                results.keep(key, execution)

    return Pipeline


def _unnamed_choice(execution: ExecutionContext) -> list[GraphQLError]:
    """The error of a document of several operations whose request names none:
    which to run is the client's to say (graphql-core's own message)."""
    context = execution.context
    document = execution.graphql_document
    if getattr(context, "operation_named", True) or document is None:
        return []
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) < 2:
        return []
    return [GraphQLError("Must provide operation name if query contains multiple operations.")]
