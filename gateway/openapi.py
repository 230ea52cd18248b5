"""OpenAPI documentation that Litestar cannot derive from handler signatures.

Bodies the gateway decodes itself (several media types, or validated by the
catalog so that errors name the field) and successful responses in several
formats are described here, as JSON Schema taken from the same types the code uses.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar.openapi.spec import Operation

Schema = dict[str, Any]


def inline_defs(schema: Schema) -> Schema:
    """``schema`` with every ``#/$defs/...`` reference replaced by its definition.

    OpenAPI resolves ``$ref`` against the whole document, so local ``$defs`` must go.
    The types documented here are not recursive.
    """
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                target = copy.deepcopy(defs[ref.removeprefix("#/$defs/")])
                extra = {k: v for k, v in node.items() if k != "$ref"}
                return resolve({**target, **extra})
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: Schema = resolve(schema)
    return resolved


def struct_schema(kind: Any) -> Schema:
    """The JSON Schema of a msgspec type, self-contained."""
    return inline_defs(msgspec.json.schema(kind))


BINARY: Schema = {"type": "string", "format": "binary"}
TEXT: Schema = {"type": "string"}


#: The answer to a ``Range`` request: that part of the representation, of any media type.
_PARTIAL: Schema = {
    "description": "Partial Content: the bytes the Range header asked for",
    "content": {"*/*": {"schema": BINARY}},
    "headers": {
        "Content-Range": {
            "description": "Which bytes of the whole: bytes 0-99/1234.",
            "schema": {"type": "string"},
        }
    },
}


def documented(
    request_body: Mapping[str, Schema] | None = None,
    responses: Mapping[int, Mapping[str, Schema]] | None = None,
    headers: Mapping[int, Mapping[str, str]] | None = None,
    descriptions: Mapping[int, str] | None = None,
    ranged: bool = False,
) -> type[Operation]:
    """An Operation class whose schema also shows the given bodies and headers.

    ``request_body`` and each of ``responses`` map media types to schemas;
    ``headers`` maps a status to ``{header name: description}``; ``descriptions``
    a status to its description where "Success" would not say what it means.
    ``ranged``: the operation answers a ``Range`` request with 206.
    """

    class DocumentedOperation(Operation):
        def to_schema(self) -> dict[str, Any]:
            schema = super().to_schema()
            if request_body:
                schema["requestBody"] = {
                    "required": True,
                    "content": {media: {"schema": s} for media, s in request_body.items()},
                }
            answers = schema.setdefault("responses", {})
            for status, content in (responses or {}).items():
                answer = answers.setdefault(str(status), {"description": "Success"})
                if content:
                    answer["content"] = {media: {"schema": s} for media, s in content.items()}
            for status, named in (headers or {}).items():
                answer = answers.setdefault(str(status), {"description": "Success"})
                answer.setdefault("headers", {}).update(
                    {
                        name: {"description": text, "schema": {"type": "string"}}
                        for name, text in named.items()
                    }
                )
            for status, text in (descriptions or {}).items():
                answers.setdefault(str(status), {})["description"] = text
            if ranged:
                answers["206"] = copy.deepcopy(_PARTIAL)
            return schema

    return DocumentedOperation
