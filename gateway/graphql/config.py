"""Limits and switches of the GraphQL endpoint: plain frozen data, read from the environment.

They ride on :class:`gateway.settings.Settings` (its ``graphql`` field), so
``fincat serve`` hands them to every worker through ``FINCAT_GRAPHQL_*`` variables
like the rest of the settings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from gateway import envvars

ENV_PREFIX = "FINCAT_GRAPHQL_"
#: Two days: a source whose newest change is older than this is reported stale.
DEFAULT_FRESHNESS_MAX_AGE = 2 * 24 * 3600.0
#: Settings where 0 turns a feature off.
MAY_BE_ZERO = frozenset({"result_cache_bytes"})
#: The page ``seriesList`` and ``versions`` give a query that names no ``first``
#: (``history``'s is 10): ``max_page`` may not be below it, or those queries fail
#: on a ``first`` the client never sent.
DEFAULT_PAGE = 20


class GraphQLSettingsError(ValueError):
    """A GraphQL setting is malformed or out of range."""


@dataclass(frozen=True)
class GraphQLSettings:
    """Every field has a default; each is also ``FINCAT_GRAPHQL_<FIELD NAME IN CAPITALS>``."""

    #: Answer introspection queries (``__schema``, ``__type``); off also hides the
    #: suggestions in error messages ("Did you mean ...?"), which would reveal the schema.
    introspection: bool = True
    #: Serve GraphiQL on ``GET /graphql``; only ever in development mode (no API keys).
    ide: bool = True
    #: Deepest selection nesting a document may have.
    max_depth: int = 10
    #: Most aliases in one document.
    max_aliases: int = 30
    #: Most lexical tokens in one document (large inputs belong in variables).
    max_tokens: int = 10_000
    #: Most cost units per operation: each field costs 1 times the page sizes above it.
    max_cost: int = 10_000
    #: Largest page of ``seriesList``, ``versions`` and ``history``.
    max_page: int = 100
    #: Most observation (and revision) rows in one response, summed over every field.
    max_observations: int = 100_000
    #: Most list items in the variables of one request, summed over every list.
    max_input_items: int = 100_000
    #: Largest request body ``/graphql`` decodes, in bytes (larger: 413 before
    #: decoding): decoded JSON takes some twenty times its bytes, and the REST body
    #: limit (64 MiB) let one request of variables take over a gigabyte.
    max_body_bytes: int = 8 * 2**20
    #: Seconds after which a source without changes is reported stale by ``dataFreshness``.
    freshness_max_age: float = DEFAULT_FRESHNESS_MAX_AGE
    #: Most series ``catalogStats`` and ``dataFreshness`` read per catalog version; past
    #: it they report what they saw and say the figures are incomplete.
    summary_scan_limit: int = 200_000
    #: Most problems ``validateCatalog`` lists (counts by kind always cover all of them).
    max_problems: int = 1_000
    #: Bytes of encoded query results kept per process, by the catalog version they
    #: read (see gateway.graphql.results); 0 keeps none.
    result_cache_bytes: int = 32 * 2**20

    def __post_init__(self) -> None:
        for item in fields(self):
            _check(item.name, getattr(self, item.name), f"graphql {item.name}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GraphQLSettings:
        """Settings from ``FINCAT_GRAPHQL_*`` variables; absent ones keep their default.

        Raises GraphQLSettingsError naming the variable for a malformed value.
        """
        env = os.environ if environ is None else environ
        defaults = cls()
        changes: dict[str, bool | int | float] = {}
        for item in fields(cls):
            name = ENV_PREFIX + item.name.upper()
            if name not in env:
                continue
            kind = type(getattr(defaults, item.name))
            try:
                if kind is bool:
                    changes[item.name] = envvars.flag(name, env[name])
                else:
                    changes[item.name] = envvars.number(name, env[name], kind)
            except ValueError as exc:
                raise GraphQLSettingsError(str(exc)) from None
            _check(item.name, changes[item.name], name)
        return cls(**changes)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """These settings as ``FINCAT_GRAPHQL_*`` variables, the inverse of :meth:`from_env`."""
        out: dict[str, str] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            text = ("1" if value else "0") if isinstance(value, bool) else repr(value)
            out[ENV_PREFIX + item.name.upper()] = text
        return out


def _check(field: str, value: bool | float, label: str) -> None:
    """Raise GraphQLSettingsError naming ``label`` unless ``value`` suits ``field``."""
    if isinstance(value, bool) or (field in MAY_BE_ZERO and value == 0):
        return
    if not value > 0:  # NaN too
        raise GraphQLSettingsError(f"{label} must be positive, not {value}")
    if not math.isfinite(value):
        # An infinite age went through startup, then failed every dataFreshness
        # query: a GraphQL Float cannot hold it.
        raise GraphQLSettingsError(f"{label} must be finite, not {value}")
    if field == "max_page" and value < DEFAULT_PAGE:
        raise GraphQLSettingsError(
            f"{label} must be at least {DEFAULT_PAGE}, the page of a query that gives "
            f"no first, not {value}"
        )
