"""The schema's own scalars and enums: ``AsOf``, ``Date``, ``Frequency``, ``Partitioning``,
``WriteMode``."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import NewType

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

from catalog_store.asof import MAX_VERSION, parse_as_of, parse_date
from catalog_store.errors import ValidationError

#: A catalog version number (``42`` or ``"42"``) or an RFC 3339 instant with an offset.
AsOf = NewType("AsOf", object)


def parse_as_of_value(value: object) -> int | dt.datetime:
    """An ``AsOf`` argument: a version, or a UTC instant.

    Raises ValidationError (field ``as_of``) for anything else: a negative or huge
    number, a naive or malformed instant, a boolean.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError("must be a version number or an RFC 3339 instant", "as_of")
    if isinstance(value, int):
        if not 0 <= value <= MAX_VERSION:
            raise ValidationError(f"a version is between 0 and {MAX_VERSION}", "as_of")
        return value
    parsed = parse_as_of(value)
    if parsed is None:
        raise ValidationError("must not be empty", "as_of")
    return parsed


def _serialize_as_of(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value


AS_OF_SCALAR: ScalarDefinition = strawberry.scalar(
    name="AsOf",
    description=(
        "A point in the catalog's history: a version number (42) or an RFC 3339 "
        'instant with a UTC offset ("2024-05-01T12:00:00Z").'
    ),
    serialize=_serialize_as_of,
    parse_value=parse_as_of_value,
)


def parse_date_value(value: object) -> dt.date:
    """A ``Date`` argument, read as REST reads a date.

    One that does not parse is a value that does not fit its type, as for
    strawberry's own scalars (GRAPHQL_VALIDATION_FAILED, graphql-core's message
    naming the variable or literal): a scalar does not know its argument's name.
    """
    reason = "must be a string"
    if isinstance(value, str):
        try:
            return parse_date(value, "Date")
        except ValidationError as exc:
            reason = exc.message
    raise StrawberryInputCoercionError(f"Value cannot represent a Date: {value!r}; it {reason}")


def _serialize_date(value: dt.date) -> str:
    return value.isoformat()


# Replaces strawberry's Date, whose date.fromisoformat also takes 20240131 and 2024W053.
DATE_SCALAR: ScalarDefinition = strawberry.scalar(
    name="Date",
    description="A calendar date, YYYY-MM-DD (2024-01-31).",
    serialize=_serialize_date,
    parse_value=parse_date_value,
)

SCALARS: dict[object, ScalarDefinition] = {AsOf: AS_OF_SCALAR, dt.date: DATE_SCALAR}


@strawberry.enum(description="How often a series has observations.")
class Frequency(Enum):
    INTRADAY = "intraday"
    DAILY = "daily"
    BUSINESS_DAILY = "business_daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMIANNUAL = "semiannual"
    ANNUAL = "annual"
    IRREGULAR = "irregular"


@strawberry.enum(description="Time partitioning of a series' observation files.")
class Partitioning(Enum):
    NONE = "none"
    DECADE = "decade"
    YEAR = "year"
    MONTH = "month"


@strawberry.enum(description="How a write combines with the observations already stored.")
class WriteMode(Enum):
    APPEND = strawberry.enum_value("append", description="Every date after the series' last date.")
    UPSERT = strawberry.enum_value(
        "upsert", description="Rows replace earlier rows of the same date."
    )
    REPLACE_RANGE = strawberry.enum_value(
        "replace_range", description="Delete [start, end], then insert rows inside it."
    )
    DELETE_RANGE = strawberry.enum_value(
        "delete_range", description="Delete [start, end]; takes no rows."
    )


def catalog_mode(mode: WriteMode) -> str:
    """The catalog's name of a write mode (``replace_range`` ...)."""
    return mode.name.lower()
