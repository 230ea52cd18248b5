"""Helpers shared by the commands: opening the catalog, parsing options and dates."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import typer

from catalog_store.asof import AsOf, parse_as_of
from catalog_store.cli.csvfiles import parse_date
from catalog_store.errors import ValidationError
from catalog_store.options import CatalogOptions
from catalog_store.sync import Catalog

DEFAULT_ROOT = "./fincat-data"


@dataclass(frozen=True)
class Settings:
    """Global options, stored on the root context by the app callback."""

    root: str
    #: Credentials among them: left out of repr, which error trackers record.
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)


def settings(ctx: typer.Context) -> Settings:
    found = ctx.find_object(Settings)
    return Settings(DEFAULT_ROOT) if found is None else found


@contextmanager
def open_catalog(
    ctx: typer.Context, create: bool = False, options: CatalogOptions | None = None
) -> Iterator[Catalog]:
    """The catalog at ``--root``, closed when the block ends."""
    where = settings(ctx)
    with Catalog.open(
        where.root, where.storage_options or None, create=create, options=options
    ) as catalog:
        yield catalog


def parse_storage_options(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs to a dict; raises ValueError for a malformed pair.

    Values stay strings, except ``true``/``false`` and JSON objects or lists
    (``client_kwargs={"region_name": "eu-west-1"}``): keys and secrets that look
    like numbers must not turn into numbers.
    """
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        if value.lower() in ("true", "false"):
            options[key] = value.lower() == "true"
        elif value.lstrip().startswith(("{", "[")):
            try:
                options[key] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{key}: not valid JSON: {exc}") from None
        else:
            options[key] = value
    return options


def date_option(value: str | None, name: str, end: bool = False) -> dt.date | dt.datetime | None:
    """A ``--start``/``--end`` value; a malformed one is a usage error.

    With ``end``, a month, quarter or year is its last day: ``--end 2000`` is through
    the end of 2000, as a user means it, not through its first day.
    """
    if value is None:
        return None
    try:
        return parse_date(value, instants=True, end=end)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{name}'") from None


def date_range(
    start: str | None, end: str | None
) -> tuple[dt.date | dt.datetime | None, dt.date | dt.datetime | None]:
    """``--start`` and ``--end`` parsed; ValidationError if start is after end.

    The engine's reads return nothing for an inverted range rather than refusing it,
    which would hide a typo.
    """
    low, high = date_option(start, "--start"), date_option(end, "--end", end=True)
    if low is not None and high is not None and _after(low, high):
        raise ValidationError("start is after end", "start")
    return low, high


def _after(low: dt.date | dt.datetime, high: dt.date | dt.datetime) -> bool:
    if isinstance(low, dt.datetime) and isinstance(high, dt.datetime):
        return low > high
    return _day(low) > _day(high)


def _day(value: dt.date | dt.datetime) -> dt.date:
    return value.astimezone(dt.UTC).date() if isinstance(value, dt.datetime) else value


def as_of_option(value: str | None) -> AsOf:
    """``--as-of``: a catalog version number or an RFC 3339 instant with an offset."""
    try:
        return parse_as_of(value, "--as-of")
    except ValidationError as exc:
        raise typer.BadParameter(exc.message, param_hint="'--as-of'") from None
