"""The schema and its extensions, built once per app from its GraphQL settings.

Extension order matters where operations end: hooks unwind last-listed first, so
:class:`~gateway.graphql.extensions.ErrorCodes` codes the errors before
:class:`~gateway.graphql.errors.MaskInternalErrors` decides which to mask. The
validation rules of depth, aliases and introspection are built once per schema,
as the document cache (:mod:`gateway.graphql.documents`) assumes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.graphql.config import GraphQLSettings
from gateway.graphql.documents import DocumentCache, cached_documents
from gateway.graphql.errors import MaskInternalErrors, log_internal
from gateway.graphql.execution import ColumnExecutionContext
from gateway.graphql.extensions import ErrorCodes
from gateway.graphql.limits import limits_extension
from gateway.graphql.mutations import Mutation
from gateway.graphql.queries import Query
from gateway.graphql.scalars import SCALARS


class FincatSchema(strawberry.Schema):
    """The schema, logging only the errors that are masked (client errors are the
    client's to read, not the operator's)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_internal(errors)


def extensions(config: GraphQLSettings) -> list[Callable[[], SchemaExtension]]:
    """Extension factories, one instance of each per request."""
    rules = [
        *QueryDepthLimiter(max_depth=config.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=config.max_aliases).validation_rules,
    ]
    if not config.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    documents = DocumentCache()
    factories: list[Callable[[], SchemaExtension]] = [
        MaskInternalErrors,
        ErrorCodes,
        partial(MaxTokensLimiter, max_token_count=config.max_tokens),
        partial(AddValidationRules, rules),
        cached_documents(documents),
        limits_extension(config, documents),
    ]
    return factories


def build_schema(config: GraphQLSettings | None = None) -> FincatSchema:
    """The schema with the limits of ``config`` (defaults if None)."""
    config = config or GraphQLSettings()
    return FincatSchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions(config),
        execution_context_class=ColumnExecutionContext,
        config=StrawberryConfig(
            scalar_map=SCALARS,
            # Suggestions ("did you mean ...") would reveal a schema that is not public.
            disable_field_suggestions=not config.introspection,
        ),
    )


def schema_sdl() -> str:
    """The schema in SDL, as ``fincat export-graphql-schema`` writes it."""
    return str(build_schema()) + "\n"
