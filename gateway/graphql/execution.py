"""Execution that completes a list of scalars in one pass: the observation columns.

graphql-core completes every list item on its own (a path entry, an awaitable
check, a scalar coercion: about 8 µs each), so a year of daily dates and values
costs more than reading them. A list whose items are scalars and which is a plain
Python list (the columns built in :mod:`gateway.graphql.types`) is coerced here
in one comprehension instead, and a :class:`Column` (items already in output form)
is passed through as it is. Anything unusual (a null where the schema forbids
one, a value the scalar refuses) goes back to graphql-core's own path, which
reports the error at the failing item as usual.

A leaf value its type refuses is the server's fault, not the client's: its error
is raised as an :class:`~gateway.graphql.errors.OutputCoercionError`, internal.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLError,
    GraphQLLeafType,
    GraphQLList,
    GraphQLOutputType,
    GraphQLResolveInfo,
)
from graphql.pyutils import Path
from graphql.type import is_leaf_type, is_non_null_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.graphql.errors import OutputCoercionError


class Column(list[Any]):
    """A list whose items are already in their output form (ISO dates, finite floats,
    nulls): passed through without coercing each item.

    Only for values the catalog guarantees: dates it stores are valid, values finite.
    """


#: Errors a scalar's coercion raises for a value it refuses.
_REFUSED = (GraphQLError, TypeError, ValueError, AttributeError)


class ColumnExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context with the one-pass path for lists of scalars."""

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if type(result) is Column:
            return result
        item_type = return_type.of_type
        non_null = is_non_null_type(item_type)
        leaf: Any = item_type.of_type if non_null else item_type  # type: ignore[union-attr]
        if (
            type(result) is list
            and is_leaf_type(leaf)
            and self.get_stream_usage(field_details_list, path) is None
        ):
            coerce = leaf.coerce_output_value
            try:
                out = [None if value is None else coerce(value) for value in result]
            except _REFUSED:
                out = None
            # Coercion never answers None for a value it accepts; a null item is
            # allowed only where the schema allows it and where the input had one.
            if out is not None and out.count(None) == (0 if non_null else result.count(None)):
                return out
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    @staticmethod
    def complete_leaf_value(return_type: GraphQLLeafType, result: Any) -> Any:
        try:
            return StrawberryGraphQLCoreExecutionContext.complete_leaf_value(return_type, result)
        except GraphQLError as exc:
            raise OutputCoercionError(exc.message) from exc
