"""Parsed and validated documents, remembered by their text.

Clients send the same few documents over and over with different variables, and
validating one costs milliseconds. strawberry's ParserCache and ValidationCache
key their caches by the document's syntax tree, whose hash and equality walk the
whole tree on every request, and hold every text they see, however large. This
cache is keyed by the text itself, keeps at most :data:`ENTRIES` documents, and
never keeps a text longer than :data:`MAX_TEXT` characters (those are parsed and
validated each time), so its memory stays bounded whatever clients send.

A text is validated against one schema with one set of rules, so each schema has
its own cache.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

#: Documents remembered per schema.
ENTRIES = 256
#: Longer texts are not remembered.
MAX_TEXT = 20_000


@dataclass
class Entry:
    """One text's document, its validation errors and its cost, as far as known."""

    document: DocumentNode
    errors: list[GraphQLError] | None = None
    #: The cost of its operation when it reads no variable (see gateway.graphql.limits).
    cost: dict[str | None, int] | None = None


class DocumentCache:
    """Documents by text, least recently used first out."""

    def __init__(self, entries: int = ENTRIES, max_text: int = MAX_TEXT) -> None:
        self.entries = entries
        self.max_text = max_text
        self._lru: OrderedDict[str, Entry] = OrderedDict()

    def get(self, text: str | None) -> Entry | None:
        if text is None:
            return None
        entry = self._lru.get(text)
        if entry is not None:
            self._lru.move_to_end(text)
        return entry

    def put(self, text: str | None, document: DocumentNode) -> None:
        if text is None or len(text) > self.max_text:
            return
        self._lru[text] = Entry(document)
        while len(self._lru) > self.entries:
            self._lru.popitem(last=False)


def cached_documents(cache: DocumentCache) -> Callable[[], SchemaExtension]:
    """A factory of the extension that parses and validates through ``cache``."""

    class CachedDocuments(SchemaExtension):
        def on_parse(self) -> Iterator[None]:
            context = self.execution_context
            entry = cache.get(context.query)
            if entry is not None:
                context.graphql_document = entry.document
            elif context.query:
                # A document that does not parse is left to strawberry, which parses
                # it again and reports the error as the client's; an error raised
                # here would escape before any extension could give it a code.
                with contextlib.suppress(GraphQLError):
                    context.graphql_document = parse(context.query, **context.parse_options)
                    cache.put(context.query, context.graphql_document)
            yield

        def on_validate(self) -> Iterator[None]:
            context = self.execution_context
            entry = cache.get(context.query)
            if entry is not None and entry.errors is not None:
                context.pre_execution_errors = list(entry.errors)
            else:
                assert context.graphql_document is not None
                errors = validate_document(
                    context.schema._schema, context.graphql_document, context.validation_rules
                )
                context.pre_execution_errors = errors
                if entry is not None:
                    entry.errors = list(errors)
            yield

    return CachedDocuments
