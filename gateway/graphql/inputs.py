"""Input types, and their translation into what the catalog takes.

The catalog validates the content (ids, lengths, tags, dates); these types only
give it shape. A field set to null in an update resets it to its default.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry
from strawberry.scalars import JSON

from catalog_store.errors import ValidationError
from catalog_store.models import SPEC_FIELDS, check_external_id
from gateway.graphql.errors import VALIDATION, ApiError
from gateway.graphql.scalars import Frequency, Instant, Partitioning, WriteMode

#: The fields an update may change besides ``frequency``; a null resets one to its
#: default (the catalog's rule, as in a JSON merge patch).
_UPDATABLE = tuple(name for name in SPEC_FIELDS if name not in ("id", "frequency"))


@strawberry.input(description="Observations between two dates, either end open.")
class DateRange:
    start: dt.date | None = None
    end: dt.date | None = None


@strawberry.input(description="Every given condition must hold.")
class SeriesFilter:
    text: str | None = strawberry.field(
        default=None, description="Text in the id, title or description (any case)."
    )
    source: str | None = None
    frequency: Frequency | None = None
    tags: list[str] | None = strawberry.field(default=None, description="All must be present.")
    external_provider: str | None = strawberry.field(
        default=None, description="Has an external id from this provider."
    )
    external_id: str | None = strawberry.field(
        default=None, description="With externalProvider: the one series carrying this id."
    )
    observed_between: DateRange | None = strawberry.field(
        default=None, description="Has observations in this range (by first and last date)."
    )


@strawberry.input
class ExternalIdInput:
    provider: str
    id: str


@strawberry.input(description="A new series.")
class SeriesInput:
    id: str
    frequency: Frequency
    title: str | None = None
    description: str | None = None
    source: str | None = None
    units: str | None = None
    seasonal_adjustment: str | None = None
    tags: list[str] | None = None
    external_ids: list[ExternalIdInput] | None = None
    attributes: JSON | None = None
    partitioning: Partitioning | None = None


@strawberry.input(description="Changes to a series' metadata; a null resets a field.")
class SeriesChanges:
    frequency: Frequency | None = strawberry.UNSET
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    source: str | None = strawberry.UNSET
    units: str | None = strawberry.UNSET
    seasonal_adjustment: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    external_ids: list[ExternalIdInput] | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    partitioning: Partitioning | None = strawberry.UNSET


@strawberry.input(description="Update one series within a batch.")
class UpdateOperation:
    id: str
    changes: SeriesChanges
    expected_version: int | None = None


@strawberry.input(description="Delete one series within a batch.")
class DeleteOperation:
    id: str
    expected_version: int | None = None


@strawberry.input(
    description="Write observations of one series within a batch (as writeObservations)."
)
class WriteOperation:
    series_id: str
    mode: WriteMode = WriteMode.APPEND
    dates: list[dt.date] | None = None
    instants: list[dt.datetime] | None = None
    values: list[float | None] | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    start_instant: Instant | None = strawberry.field(
        default=None, description="An instant instead of start (as in writeObservations)."
    )
    end_instant: Instant | None = strawberry.field(
        default=None, description="An instant instead of end (as in writeObservations)."
    )
    expected_version: int | None = None


@strawberry.input(one_of=True, description="One change of a batch: exactly one field.")
class BatchOperation:
    create: SeriesInput | None = strawberry.UNSET
    update: UpdateOperation | None = strawberry.UNSET
    delete: DeleteOperation | None = strawberry.UNSET
    write: WriteOperation | None = strawberry.UNSET


def external_ids(items: list[ExternalIdInput], field: str) -> dict[str, str]:
    """``[{provider, id}]`` as the catalog's mapping. Raises ApiError for a repeated provider."""
    out: dict[str, str] = {}
    for index, item in enumerate(items):
        try:
            check_external_id(item.provider, item.id)
        except ValidationError as exc:
            # Named here by its place in the list: the catalog's mapping names it by
            # its provider, which is not a name of the schema.
            part = "provider" if exc.field == "provider" else "id"
            raise ApiError(exc.message, VALIDATION, f"{field}.{index}.{part}") from None
        if item.provider in out:
            raise ApiError(
                f"provider {item.provider!r} is given twice", VALIDATION, f"{field}.{index}"
            )
        out[item.provider] = item.id
    return out


def spec_of(value: SeriesInput, field: str) -> dict[str, Any]:
    """The catalog's metadata mapping of a new series; absent fields keep their defaults."""
    spec: dict[str, Any] = {"id": value.id, "frequency": value.frequency.value}
    for name in ("title", "description", "source", "units", "seasonal_adjustment", "tags"):
        if getattr(value, name) is not None:
            spec[name] = getattr(value, name)
    if value.external_ids is not None:
        spec["external_ids"] = external_ids(value.external_ids, f"{field}.externalIds")
    if value.attributes is not None:
        spec["attributes"] = value.attributes
    if value.partitioning is not None:
        spec["partitioning"] = value.partitioning.value
    return spec


def changes_of(value: SeriesChanges, field: str) -> dict[str, Any]:
    """The catalog's changes mapping: only the fields given; a null resets a field."""
    changes: dict[str, Any] = {}
    for name in _UPDATABLE:
        given = getattr(value, name)
        if given is strawberry.UNSET:
            continue
        if given is None:
            changes[name] = None
        elif name == "external_ids":
            changes[name] = external_ids(given, f"{field}.externalIds")
        elif name == "partitioning":
            changes[name] = given.value
        else:
            changes[name] = given
    if value.frequency is not strawberry.UNSET:
        if value.frequency is None:
            raise ApiError("a series always has a frequency", VALIDATION, f"{field}.frequency")
        changes["frequency"] = value.frequency.value
    return changes


def observations_of(
    dates: list[dt.date] | None,
    instants: list[dt.datetime] | None,
    values: list[float | None] | None,
    field: str = "",
) -> tuple[list[Any], list[float | None]] | None:
    """The catalog's ``(dates, values)`` pair, or None if no rows were given.

    Raises ApiError when both ``dates`` and ``instants`` are given.
    """
    if dates is not None and instants is not None:
        raise ApiError(
            "give dates (calendar dates) or instants (intraday series), not both",
            VALIDATION,
            f"{field}instants",
        )
    if instants is not None and any(instant.tzinfo is None for instant in instants):
        # The catalog takes a naive midnight as a calendar date (a pandas index of
        # dates is one); an argument of instants asks for instants.
        raise ApiError(
            "instants must have a UTC offset (2024-05-01T12:00:00Z); give a series of "
            "calendar dates its dates",
            VALIDATION,
            f"{field}instants",
        )
    keys: list[Any] | None = dates if dates is not None else instants
    if keys is None and values is None:
        return None
    return (keys or [], values or [])
