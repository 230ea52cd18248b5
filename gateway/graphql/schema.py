"""The schema and its two extensions, built once per app from its GraphQL settings.

:mod:`~gateway.graphql.pipeline` runs the steps before execution (document cache,
token, depth and alias limits, input and cost limits, result cache);
:class:`~gateway.graphql.extensions.ErrorCodes` ends every operation (codes, masking,
metrics). The validation rules of Float literals, depth, aliases and introspection
are built once per schema, as the document cache (:mod:`gateway.graphql.documents`)
assumes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.graphql.config import GraphQLSettings
from gateway.graphql.context import GraphQLContext
from gateway.graphql.documents import DocumentCache
from gateway.graphql.errors import log_internal
from gateway.graphql.execution import ColumnExecutionContext
from gateway.graphql.extensions import ErrorCodes
from gateway.graphql.mutations import Mutation
from gateway.graphql.pipeline import pipeline
from gateway.graphql.queries import Query
from gateway.graphql.results import ResultCache
from gateway.graphql.scalars import SCALARS, ExactFloatLiterals


class FincatSchema(strawberry.Schema):
    """The schema, logging only the errors that are masked (client errors are the
    client's to read, not the operator's), with the caches of its extensions."""

    documents: DocumentCache
    results: ResultCache
    #: Whether error messages drop graphql-core's "Did you mean ...?" (introspection off).
    hide_suggestions = False

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # strawberry names the first operation when the request names none, so a
        # document of several operations would run its first; the pipeline refuses
        # it instead (as the GraphQL spec asks) and needs to know what was asked.
        if isinstance(context_value, GraphQLContext):
            context_value.operation_named = operation_name is not None
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        if self.hide_suggestions:
            # strawberry's disable_field_suggestions drops only a field's; graphql-core
            # also suggests arguments, types, input fields and enum values (in
            # validation and in coercing variables), each naming the schema.
            for error in errors:
                error.message = _SUGGESTION.sub("", error.message)
        log_internal(errors)


#: The hint graphql-core's ``did_you_mean`` puts in a message (not always at its end):
#: " Did you mean 'a', 'b', or 'c'?", names quoted, maybe after "the enum value".
#: Only that shape, so that a caller's own text echoed in a message stays whole.
_NAME = r"'[_A-Za-z][_0-9A-Za-z]*'"
_SUGGESTION = re.compile(rf" Did you mean (?:the [a-z ]+ )?{_NAME}(?:(?:, or |, | or ){_NAME})*\?")


def extensions(
    config: GraphQLSettings, documents: DocumentCache, results: ResultCache
) -> list[Callable[[], SchemaExtension]]:
    """Extension factories, one instance of each per request."""
    rules: list[type[ASTValidationRule]] = [
        ExactFloatLiterals,
        *QueryDepthLimiter(max_depth=config.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=config.max_aliases).validation_rules,
    ]
    if not config.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [ErrorCodes, pipeline(config, rules, documents, results)]


def build_schema(config: GraphQLSettings | None = None) -> FincatSchema:
    """The schema with the limits of ``config`` (defaults if None)."""
    config = config or GraphQLSettings()
    documents = DocumentCache()
    results = ResultCache(config.result_cache_bytes, documents)
    schema = FincatSchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions(config, documents, results),
        execution_context_class=ColumnExecutionContext,
        config=StrawberryConfig(
            scalar_map=SCALARS,
            # Suggestions ("did you mean ...") would reveal a schema that is not public.
            disable_field_suggestions=not config.introspection,
        ),
    )
    schema.documents, schema.results = documents, results
    schema.hide_suggestions = not config.introspection
    return schema


def schema_sdl() -> str:
    """The schema in SDL, as ``fincat export-graphql-schema`` writes it."""
    return str(build_schema()) + "\n"
