"""Parsed and validated documents, remembered by their text.

Clients send the same few documents over and over with different variables, and
validating one costs milliseconds. strawberry's ValidationCache keys its cache by
the document's syntax tree, whose hash walks the whole tree on every request, and
its ParserCache and ValidationCache are caches of the whole process that keep texts
of any size. This cache is keyed by the text itself, keeps at most :data:`ENTRIES`
documents, and never keeps a text longer than :data:`MAX_TEXT` characters (those
are parsed and validated each time) nor more than :data:`MAX_CACHED_TEXT` in all,
so its memory stays bounded whatever clients send: a parsed document keeps every
token of its text through its nodes' locations, ~250 bytes a character of a dense
one, so 256 of 20,000 characters held over a gigabyte. An entry also keeps what
is known of its document beyond validity: its cost (:mod:`gateway.graphql.limits`)
and whether its result may be cached (:mod:`gateway.graphql.results`).

A text is validated against one schema with one set of rules, so each schema has
its own cache.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field

from graphql import DocumentNode, GraphQLError, parse
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

#: Documents remembered per schema.
ENTRIES = 256
#: Longer texts are not remembered.
MAX_TEXT = 20_000
#: Characters of all the texts remembered per schema: some 64 MiB of parsed
#: documents at most.
MAX_CACHED_TEXT = 256 * 1024


@dataclass
class Entry:
    """One text's document, its validation errors and its cost, as far as known."""

    document: DocumentNode
    errors: list[GraphQLError] | None = None
    #: The cost of its operation when it reads no variable (see gateway.graphql.limits).
    cost: dict[str | None, int] | None = None
    #: Per operation name: whether its result is fixed by the catalog version it reads
    #: (see gateway.graphql.results).
    pinned: dict[str | None, bool] = field(default_factory=dict)


class DocumentCache:
    """Documents by text, least recently used first out."""

    def __init__(
        self, entries: int = ENTRIES, max_text: int = MAX_TEXT, max_total: int = MAX_CACHED_TEXT
    ) -> None:
        self.entries = entries
        self.max_text = max_text
        self.max_total = max_total
        #: Characters of the texts remembered.
        self.total = 0
        self._lru: OrderedDict[str, Entry] = OrderedDict()

    def get(self, text: str | None) -> Entry | None:
        if text is None:
            return None
        entry = self._lru.get(text)
        if entry is not None:
            self._lru.move_to_end(text)
        return entry

    def put(self, text: str | None, document: DocumentNode) -> None:
        if text is None or len(text) > self.max_text or text in self._lru:
            return
        self._lru[text] = Entry(document)
        self.total += len(text)
        while len(self._lru) > self.entries or self.total > self.max_total:
            dropped, _ = self._lru.popitem(last=False)
            self.total -= len(dropped)


def parse_through(cache: DocumentCache, execution: ExecutionContext) -> Entry | None:
    """Set the document of ``execution`` from ``cache``, or parse and remember it
    (with the token limit in its parse options); returns its entry, if remembered.

    A document that does not parse is left to strawberry, which parses it again and
    reports the error as the client's; an error raised here would escape before any
    extension could give it a code.
    """
    entry = cache.get(execution.query)
    if entry is not None:
        execution.graphql_document = entry.document
    elif execution.query:
        with contextlib.suppress(GraphQLError):
            execution.graphql_document = parse(execution.query, **execution.parse_options)
            cache.put(execution.query, execution.graphql_document)
            entry = cache.get(execution.query)
    return entry


def validate_through(entry: Entry | None, execution: ExecutionContext) -> None:
    """Set the validation errors of ``execution``: those remembered in ``entry``, or
    those of validating its document with its rules (then remembered)."""
    if entry is not None and entry.errors is not None:
        execution.pre_execution_errors = list(entry.errors)
        return
    assert execution.graphql_document is not None
    errors = validate_document(
        execution.schema._schema, execution.graphql_document, execution.validation_rules
    )
    execution.pre_execution_errors = errors
    if entry is not None:
        entry.errors = list(errors)
