"""What one request may ask for: cost, input size and observations per response.

Depth, aliases and tokens are checked with strawberry's and graphql-core's own rules
(see :mod:`gateway.graphql.pipeline`); this module adds what they cannot see:

- a cost estimate of the operation: each field costs its weight times the page
  sizes (``first``) of the lists above it, so ``seriesList(first: 100)`` with ten
  fields per node costs about 1,000;
- the number of list items in the request's variables, checked before graphql-core
  converts them one by one (a million-element ``dates`` list is refused at once);
- a budget of observation rows per response, shared by every field of the request.

All three answer with an :class:`~gateway.graphql.errors.ApiError`, never by
stopping the process or the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    SelectionSetNode,
    VariableNode,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.utilities import get_operation_ast, value_from_ast_untyped
from strawberry.types import ExecutionContext

from gateway.graphql.config import GraphQLSettings
from gateway.graphql.documents import Entry
from gateway.graphql.errors import (
    INPUT_TOO_LARGE,
    QUERY_TOO_COMPLEX,
    RESULT_TOO_LARGE,
    ApiError,
)

#: Extra weight of fields that read or compute more than one record.
FIELD_WEIGHTS: dict[str, int] = {
    "observations": 5,
    "revisions": 20,
    "history": 2,
    "catalogStats": 100,
    "dataFreshness": 100,
    "validateCatalog": 1_000,
}
#: Fields whose selections repeat once per item, with their default page size.
PAGE_DEFAULTS: dict[str, int] = {"seriesList": 20, "versions": 20, "history": 10}


class ObservationBudget:
    """Observation rows one response may still hold; fields reserve before they read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def reserve(self, rows: int, what: str, advice: str) -> None:
        """Count ``rows`` against the budget.

        Raises ApiError ``RESULT_TOO_LARGE`` (and reserves nothing) if the response
        would pass the limit; ``advice`` tells the client how to ask for less.
        """
        if self.used + rows > self.limit:
            raise ApiError(
                f"{what} would put {self.used + rows:,} observations in this response, "
                f"more than the limit of {self.limit:,}; {advice}",
                RESULT_TOO_LARGE,
                limit=self.limit,
                requested=self.used + rows,
            )
        self.used += rows

    def release(self, rows: int) -> None:
        """Give back rows reserved on an estimate that turned out high."""
        self.used = max(0, self.used - rows)


def count_input_items(value: object, limit: int) -> int:
    """List items in ``value`` (decoded JSON), counted until they pass ``limit``.

    Lists are measured with ``len`` before their items are looked at, so a huge
    list is found without walking it.
    """
    total = 0
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            total += len(item)
            if total > limit:
                return total
            stack.extend(x for x in item if isinstance(x, list | dict))
        elif isinstance(item, dict):
            stack.extend(x for x in item.values() if isinstance(x, list | dict))
    return total


def check_input(variables: Mapping[str, Any] | None, limit: int) -> None:
    """Raises ApiError ``INPUT_TOO_LARGE`` if the variables hold more than ``limit`` items."""
    if not variables:
        return
    items = count_input_items(dict(variables), limit)
    if items > limit:
        raise ApiError(
            f"the variables hold more than {limit:,} list items; split the input over "
            "several requests, or load bulk observations through the REST API "
            "(CSV, Arrow or Parquet)",
            INPUT_TOO_LARGE,
            limit=limit,
        )


class CostEstimator:
    """The cost of one operation of a validated document (see the module docstring)."""

    def __init__(
        self,
        document: DocumentNode,
        variables: Mapping[str, Any] | None,
        max_page: int,
    ) -> None:
        self.variables = variables or {}
        self.max_page = max_page
        #: Whether a page size came from a variable (then the cost is not the text's own).
        self.read_variables = False
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def operation(self, document: DocumentNode, name: str | None) -> int:
        operation = get_operation_ast(document, name)
        if operation is None:
            return 0  # graphql-core reports the missing operation itself
        # A variable the request does not give takes its default from the document.
        defaults = {
            definition.variable.name.value: value_from_ast_untyped(definition.default_value)
            for definition in operation.variable_definitions or ()
            if definition.default_value is not None
        }
        self.variables = {**defaults, **self.variables}
        return self.selections(operation.selection_set, 1, frozenset())

    def selections(
        self, selection_set: SelectionSetNode | None, multiplier: int, seen: frozenset[str]
    ) -> int:
        if selection_set is None:
            return 0
        cost = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name.startswith("__"):
                    continue  # introspection is bounded by the schema's size
                cost += multiplier * FIELD_WEIGHTS.get(name, 1)
                inner = multiplier * self.page_size(selection)
                cost += self.selections(selection.selection_set, inner, seen)
            elif isinstance(selection, InlineFragmentNode):
                cost += self.selections(selection.selection_set, multiplier, seen)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None and fragment.name.value not in seen:
                    cost += self.selections(
                        fragment.selection_set, multiplier, seen | {fragment.name.value}
                    )
        return cost

    def page_size(self, node: FieldNode) -> int:
        name = node.name.value
        if name not in PAGE_DEFAULTS:
            return 1
        size: object = PAGE_DEFAULTS[name]
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                size = int(value.value)
            elif isinstance(value, VariableNode):
                self.read_variables = True
                size = self.variables.get(value.name.value, size)
        if isinstance(size, bool) or not isinstance(size, int):
            return self.max_page
        # A page over the maximum is refused by its field with a clearer message.
        return min(max(size, 1), self.max_page)


def check_cost(
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    config: GraphQLSettings,
    entry: Entry | None = None,
) -> int:
    """The operation's cost. Raises ApiError ``QUERY_TOO_COMPLEX`` over ``max_cost``.

    With the document's cache ``entry``, a cost that reads no variable is kept there.
    """
    known = entry.cost if entry is not None else None
    if known is not None and operation_name in known:
        cost = known[operation_name]
    else:
        estimator = CostEstimator(document, variables, config.max_page)
        cost = estimator.operation(document, operation_name)
        if entry is not None and not estimator.read_variables:
            entry.cost = {**(entry.cost or {}), operation_name: cost}
    if cost > config.max_cost:
        raise ApiError(
            f"the operation costs {cost:,} units, more than the limit of {config.max_cost:,}; "
            "ask for smaller pages (first) or fewer fields",
            QUERY_TOO_COMPLEX,
            cost=cost,
            limit=config.max_cost,
        )
    return cost


def check_limits(execution: ExecutionContext, config: GraphQLSettings, entry: Entry | None) -> None:
    """Check the input size and cost of the operation ``execution`` is about to run
    (``entry``: its document's cache entry, if any).

    Over a limit, the result is set to the error, and graphql-core then never runs
    the operation.
    """
    try:
        check_input(execution.variables, config.max_input_items)
        assert execution.graphql_document is not None
        check_cost(
            execution.graphql_document, execution.operation_name, execution.variables, config, entry
        )
    except ApiError as error:
        execution.result = GraphQLExecutionResult(data=None, errors=[error])
