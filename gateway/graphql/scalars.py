"""The schema's own scalars and enums: ``AsOf``, ``Date``, ``DateTime``, ``Instant``,
``Frequency``, ``Partitioning``, ``WriteMode``; and the rule that reads ``Float``
literals as graphql-core reads ``Float`` variables."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import NewType

import strawberry
from graphql import GraphQLError, GraphQLFloat, IntValueNode, ValidationRule, get_named_type
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

from catalog_store.asof import MAX_VERSION, parse_date, parse_point
from catalog_store.errors import ValidationError
from catalog_store.observations import parse_instant_text

#: A catalog version number (``42`` or ``"42"``) or an RFC 3339 instant with an offset.
AsOf = NewType("AsOf", object)
#: The text of an RFC 3339 instant, as the client wrote it: the field taking it reads
#: it (:func:`catalog_store.asof.parse_instant`), so that its errors name the argument.
Instant = NewType("Instant", str)


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
    return parse_point(value)


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


def parse_date_time_value(value: object) -> dt.datetime:
    """A ``DateTime`` argument (an instant of a write), in RFC 3339's form as the catalog
    reads an instant's text; whitespace around it is ignored.

    One without an offset is left naive, for the catalog to refuse naming the
    argument, as it refuses a naive instant sent to REST. Any other form (ISO 8601's
    basic and week forms, an offset without a colon, nanoseconds) does not fit the
    type, as a malformed ``Date`` does not.
    """
    reason = "must be a string"
    if isinstance(value, str):
        try:
            return parse_instant_text(value.strip())
        except ValueError:
            reason = "must be an RFC 3339 instant with an offset, e.g. 2024-05-01T12:00:00Z"
    raise StrawberryInputCoercionError(f"Value cannot represent a DateTime: {value!r}; it {reason}")


def _serialize_date_time(value: dt.datetime) -> str:
    return value.isoformat()


# Replaces strawberry's DateTime, whose dateutil parser also takes 20240131T1200 and
# offsets without a colon, which REST refuses.
DATE_TIME_SCALAR: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description="A date and time of day with a UTC offset (2024-05-01T12:00:00+00:00); "
    "as an argument, in RFC 3339's form.",
    serialize=_serialize_date_time,
    parse_value=parse_date_time_value,
)


def parse_instant_value(value: object) -> str:
    """An ``Instant`` argument: its text, for the field to read (and name in its errors)."""
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(
            f"Value cannot represent an Instant: {value!r}; it must be a string"
        )
    return value


INSTANT_SCALAR: ScalarDefinition = strawberry.scalar(
    name="Instant",
    description="An RFC 3339 instant with a UTC offset (2024-05-01T12:00:00Z, "
    "2024-05-01T14:00:00.25+02:00); other text is a VALIDATION error naming the argument.",
    serialize=str,
    parse_value=parse_instant_value,
)


class ExactFloatLiterals(ValidationRule):
    """Refuses an integer literal a ``Float`` cannot hold exactly (beyond 2^53).

    graphql-core refuses such an integer in a variable ("value would lose precision"),
    as the GraphQL spec asks, but reads a literal with ``float()``, which rounds
    2^53 + 1 to 2^53 unseen; a value written in the document would then be stored
    rounded. This applies the variables' check to literals, with its message.
    ``Float`` is a standard scalar, which a schema may not redefine.
    """

    def enter_int_value(self, node: IntValueNode, *_args: object) -> None:
        if get_named_type(self.context.get_input_type()) is not GraphQLFloat:
            return
        try:
            GraphQLFloat.parse_value(int(node.value))
        except GraphQLError as error:
            self.report_error(GraphQLError(error.message, node))


SCALARS: dict[object, ScalarDefinition] = {
    AsOf: AS_OF_SCALAR,
    dt.date: DATE_SCALAR,
    dt.datetime: DATE_TIME_SCALAR,
    Instant: INSTANT_SCALAR,
}


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
