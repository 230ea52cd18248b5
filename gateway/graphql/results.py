"""Results of queries, remembered by the catalog version they read.

A query whose every field reads only the catalog version the request pinned gives
the same answer for the same document, operation, variables and version: versions
are immutable. Such results, when they have no error, are kept encoded as JSON
under the key ``(document text, operation name, variables, catalog version, oldest
version kept)``, bounded in bytes (``result_cache_bytes``), least recently used
first out. The oldest version kept is in the key as gc raises it without making a
version: a result read as of a version it expired must not outlive it.

The version is the one the request reads, resolved as REST resolves it for its
cached series views (the latest version within the app's cache TTL): a commit by
this replica makes a new version, hence new keys, at once; one by another replica
after at most the TTL, as for every other read. An entry of an older version is
never looked up again and ages out.

The controller looks a POSTed query up right after authentication and the rate
limit (:meth:`ResultCache.answer`). A hit there is not parsed, validated or checked
against the limits again: a result is kept only after a request identical in
everything those steps read (the text, the operation, the variables, the app's
settings) passed them all and ran without error. Anything else goes through the
pipeline (:mod:`gateway.graphql.pipeline`), which answers from the cache in place
of execution when it can (:meth:`ResultCache.look_up`) and keeps the result of a
qualifying query that ran (:meth:`ResultCache.keep`).

Which operations qualify is decided once per document: a query qualifies if every
field in the document (fragments and other operations included) is a plain
attribute of the object its parent returned, an introspection field, or one of
:data:`PINNED_FIELDS`. Fields that probe the store (``health``), read the clock
(``dataFreshness``), need a scope (``validateCatalog``) or end at the oldest version
kept (``Series.revisions``, ``Series.history``) are :data:`UNPINNED_FIELDS`; a
field with a resolver or a permission check that is in neither set never qualifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import cachetools
import msgspec
from graphql import (
    DocumentNode,
    FieldNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    visit,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.utilities import get_operation_ast
from strawberry import Schema
from strawberry.types import ExecutionContext
from strawberry.types.base import StrawberryObjectDefinition

from catalog_store.errors import CatalogStoreError
from gateway.graphql.context import GraphQLContext
from gateway.graphql.documents import DocumentCache, Entry

#: Fields with a resolver whose answer is fixed by the pinned catalog version and
#: their arguments (an ``asOf`` names a version, or an instant the chain of commits
#: maps to one).
PINNED_FIELDS = frozenset(
    {
        "Query.series",
        "Query.seriesList",
        "Query.seriesByExternalId",
        "Query.version",
        "Query.catalogStats",
        "Series.observations",
        "Observations.count",
        "Observations.dates",
        "Observations.values",
        "Observations.instants",
        "Change.series",
    }
)
#: Fields with a resolver whose answer may change while the version stays the same.
UNPINNED_FIELDS = frozenset(
    {
        "Query.health",  # probes the store
        "Query.dataFreshness",  # ages are measured against the clock
        "Query.validateCatalog",  # admin scope; reads every object of the store
        # Lists of history end at the oldest version kept, which gc raises without
        # making a new version.
        "Series.revisions",
        "Query.versions",
        "Series.history",
        "Revisions.count",
        "Revisions.dates",
        "Revisions.values",
        "Revisions.realtimeStart",
        "Revisions.realtimeEnd",
        "Revisions.instants",
        "CommitResult.commit",  # only under mutations
    }
)
#: Encoded bytes charged per entry besides its result and key.
ENTRY_OVERHEAD = 256
#: An entry may take at most this share of the cache.
LARGEST_SHARE = 16

#: (document text, operation name, variables as JSON, catalog version, oldest kept)
Key = tuple[str, str | None, bytes, int, int]


@dataclass(frozen=True)
class Fields:
    """The fields of a schema by coordinate (``Type.field``)."""

    #: Fields answered from their parent object's attribute, with no permission check.
    plain: frozenset[str]
    #: Fields with a resolver of their own or a permission check.
    resolved: frozenset[str]


def schema_fields(schema: Schema) -> Fields:
    """Every field of ``schema``'s object types, plain or resolved."""
    plain: set[str] = set()
    resolved: set[str] = set()
    names = schema.config.name_converter
    for entry in schema.schema_converter.type_map.values():
        definition = entry.definition
        if not isinstance(definition, StrawberryObjectDefinition) or definition.is_input:
            continue
        for item in definition.fields:
            coordinate = f"{definition.name}.{names.get_graphql_name(item)}"
            if item.base_resolver is None and not item.permission_classes:
                plain.add(coordinate)
            else:
                resolved.add(coordinate)
    return Fields(frozenset(plain), frozenset(resolved))


class _Coordinates(Visitor):
    def __init__(self, types: TypeInfo) -> None:
        super().__init__()
        self.types = types
        self.found: set[str] = set()

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        parent = self.types.get_parent_type()
        self.found.add(f"{parent.name if parent else '?'}.{node.name.value}")


def reads_one_version(
    schema: Schema, fields: Fields, document: DocumentNode, operation_name: str | None
) -> bool:
    """Whether the operation of a validated ``document`` is a query whose every field
    reads only the pinned catalog version (see the module docstring).

    Every field of the document counts, fragments and other operations included.
    """
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return False
    types = TypeInfo(schema._schema)
    coordinates = _Coordinates(types)
    visit(document, TypeInfoVisitor(types, coordinates))
    for coordinate in coordinates.found:
        parent, _, name = coordinate.partition(".")
        if coordinate in PINNED_FIELDS or coordinate in fields.plain:
            continue
        # Introspection: fixed by the schema.
        if name.startswith("__") or parent.startswith("__"):
            continue
        return False
    return True


@dataclass(frozen=True)
class Stored:
    data: msgspec.Raw
    size: int


class ResultCache:
    """Encoded results by :data:`Key`, least recently used first out, bounded in bytes."""

    def __init__(self, max_bytes: int, documents: DocumentCache) -> None:
        self.max_bytes = max_bytes
        #: The documents of the same schema: a result is kept only for a document
        #: held there, and looked up only for one known to qualify.
        self.documents = documents
        #: The schema's fields, known at the first request.
        self.fields: Fields | None = None
        self._lru: cachetools.LRUCache[Key, Stored] = cachetools.LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=lambda entry: entry.size
        )
        self._encoder = msgspec.json.Encoder()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._lru)

    def key(
        self,
        text: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        version: tuple[int, int],
    ) -> Key:
        """``version``: the catalog version the request reads and the oldest kept."""
        return (text, operation_name, self._encoder.encode(variables or {}), *version)

    def get(self, key: Key) -> msgspec.Raw | None:
        entry = self._lru.get(key)
        return entry.data if entry is not None else None

    def put(self, key: Key, data: object) -> msgspec.Raw:
        """Remember ``data`` under ``key`` unless it is too large; returns it encoded."""
        raw = msgspec.Raw(self._encoder.encode(data))
        size = len(raw) + len(key[0]) + len(key[2]) + ENTRY_OVERHEAD
        if self.enabled and size <= self.max_bytes // LARGEST_SHARE:
            self._lru[key] = Stored(raw, size)
        return raw

    def clear(self) -> None:
        self._lru.clear()

    def qualifies(self, execution: ExecutionContext, entry: Entry) -> bool:
        """Whether the operation of ``execution`` (whose validated document ``entry``
        holds) reads only its pinned version; decided once per document and name."""
        name = execution.operation_name
        known = entry.pinned.get(name)
        if known is None:
            if self.fields is None:
                self.fields = schema_fields(execution.schema)
            known = reads_one_version(execution.schema, self.fields, entry.document, name)
            entry.pinned[name] = known
        return known

    async def look_up(self, execution: ExecutionContext, entry: Entry | None) -> Key | None:
        """Answer ``execution`` from the cache if it can be (another request may have
        run it since the controller looked): its result is then set, and graphql-core
        never runs the operation.

        Returns the key to :meth:`keep` the result under once it has run, or None if
        it is not to be kept (answered here, or not qualifying). Pins the request to
        the version of the key.
        """
        context = execution.context
        if (
            not self.enabled
            or entry is None
            or execution.query is None
            or execution.result is not None
            or execution.pre_execution_errors
            or not isinstance(context, GraphQLContext)
            or not self.qualifies(execution, entry)
        ):
            return None
        try:
            version = await _versions(context)
        except CatalogStoreError:
            return None  # the resolvers meet the same error and report it with its code
        key = self.key(execution.query, execution.operation_name, execution.variables, version)
        found = self.get(key)
        if found is None:
            return key
        execution.result = GraphQLExecutionResult(data=cast(Any, found))
        if context.runtime.metrics is not None:
            context.runtime.metrics.cached.inc()  # the operation itself is counted as usual
        return None

    async def answer(
        self,
        context: GraphQLContext,
        query: str | None,
        variables: dict[str, Any] | None,
        operation_name: str | None,
    ) -> msgspec.Raw | None:
        """The remembered result of a request, before anything else is done for it.

        A result is kept only after a request identical in everything a check reads
        (the text, the operation, the variables, this app's settings) passed every
        check and ran without error at the same catalog version; authentication and
        the rate limit, which the key does not hold, have run before this is asked.
        None if there is no such result (or the catalog cannot be asked): the
        request then takes the whole way. Pins the request's version when it looks.
        """
        entry = self.documents.get(query) if self.enabled else None
        if query is None or entry is None or entry.errors is None or entry.errors:
            return None  # unknown, not yet validated, or invalid
        name = operation_name
        if name is None:
            # The one operation, or None for several: that request is refused on its way.
            only = get_operation_ast(entry.document)
            if only is None:
                return None
            name = only.name.value if only.name else None
        if not entry.pinned.get(name):
            return None
        try:
            version = await _versions(context)
        except CatalogStoreError:
            return None
        return self.get(self.key(query, name, variables, version))

    def keep(self, key: Key, execution: ExecutionContext) -> None:
        """Remember the result of ``execution`` under ``key`` if it has no error."""
        result = execution.result
        if isinstance(result, GraphQLExecutionResult) and not result.errors and result.data:
            # Encoded once, for the cache and the response alike.
            result.data = cast(Any, self.put(key, result.data))


async def _versions(context: GraphQLContext) -> tuple[int, int]:
    """The version a request reads, and the oldest kept: an ``asOf`` read of a version
    gc has expired since is not answered from before (gc makes no new version)."""
    return await context.version(), await context.history_kept()
