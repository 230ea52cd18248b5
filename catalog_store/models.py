"""Series metadata: what a user may set, what the engine derives, and every limit.

Validation is pydantic v2 in strict mode: no silent coercion (a number is not a
string, a naive datetime is not a UTC instant). :func:`validation_error` turns
pydantic's report into fincat's :class:`~catalog_store.errors.ValidationError`
naming the field at fault.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import pydantic
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from catalog_store.errors import ValidationError

Frequency = Literal[
    "intraday",
    "daily",
    "business_daily",
    "weekly",
    "monthly",
    "quarterly",
    "semiannual",
    "annual",
    "irregular",
]
FREQUENCIES: tuple[str, ...] = get_args(Frequency)

Partitioning = Literal["none", "decade", "year", "month"]
PARTITIONINGS: tuple[str, ...] = get_args(Partitioning)

#: The limits, in one place; docs/storage-format.md lists them for users.
MAX_ID = 128
MAX_TITLE = 500
MAX_DESCRIPTION = 10_000
#: A commit message: it is in the manifest of its version.
MAX_MESSAGE = 2_000
MAX_NAME = 64
MAX_UNITS = 128
MAX_TAGS = 32
MAX_EXTERNAL_IDS = 16
MAX_EXTERNAL_ID = 256
MAX_ATTRIBUTES = 64
MAX_ATTRIBUTES_BYTES = 16_384

SERIES_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
#: A source: a name, or empty for none.
SOURCE_PATTERN = r"^(?:[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63})?$"
NAME_RULE = "1-64 ASCII letters, digits, '_', '.', ':' and '-', starting with a letter or digit"
#: What each pattern asks, in words: a message naming the regex helps no one.
_PATTERN_WORDS = {
    NAME_PATTERN: f"must be {NAME_RULE}",
    SOURCE_PATTERN: f"must be empty or {NAME_RULE}",
}
_SERIES_ID = re.compile(SERIES_ID_PATTERN, re.ASCII)
_PRINTABLE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$", re.ASCII)


def check_count(value: int, name: str, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an integer in ``[low, high]``, else raise ValidationError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"must be an integer, not {type(value).__name__}", field=name)
    if value < low or (high is not None and value > high):
        limits = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ValidationError(f"must be {limits}", field=name)
    return value


def check_series_id(value: str) -> str:
    """Return ``value`` if it is a valid series id, else raise ValidationError.

    Ids are ASCII letters, digits, ``_ . -``; 1-128 characters; starting with a
    letter or digit. ASCII only, so look-alike letters from other scripts and
    control characters never enter a key.
    """
    if not isinstance(value, str):
        raise ValidationError("series id must be a string", field="id")
    if not _SERIES_ID.fullmatch(value):
        raise ValidationError(
            "must be 1-128 ASCII letters, digits, '_', '.', '-', starting with a letter or digit",
            field="id",
        )
    return value


def _check_id(value: str) -> str:
    if not _SERIES_ID.fullmatch(value):
        raise ValueError(
            "must be 1-128 ASCII letters, digits, '_', '.', '-', starting with a letter or digit"
        )
    return value


def _check_printable(value: str) -> str:
    if not _PRINTABLE.fullmatch(value):
        raise ValueError("must be printable ASCII without surrounding spaces")
    return value


#: C0 and C1 control characters and DEL: a title holding ESC would drive the
#: terminal of whoever lists the catalog. Line breaks and tabs are text in a description.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LAYOUT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _check_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not hold control characters (line breaks, tabs, escapes)")
    return value


def _check_text(value: str) -> str:
    if _CONTROL_BUT_LAYOUT.search(value):
        raise ValueError("must not hold control characters other than line breaks and tabs")
    return value


def check_message(message: str) -> str:
    """A commit message: text of at most MAX_MESSAGE characters whose only control
    characters are line breaks and tabs (``fincat log`` prints it to a terminal).
    Raises ValidationError on ``message``."""
    if not isinstance(message, str):
        raise ValidationError("must be text", "message")
    if len(message) > MAX_MESSAGE:
        raise ValidationError(f"must be at most {MAX_MESSAGE} characters", "message")
    if not _is_unicode(message):
        raise ValidationError("must be Unicode text (it holds a lone surrogate)", "message")
    try:
        return _check_text(message)
    except ValueError as exc:
        raise ValidationError(str(exc), "message") from None


def _check_unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("tags must be unique")
    return values


AttributeValue = str | int | float | bool | None


def _check_attributes(values: dict[str, Any]) -> dict[str, Any]:
    for key, value in values.items():
        # Shown wherever the metadata is (the CLI's tables, CSV, the metadata table),
        # so held to the rules of the title (names) and the description (text).
        if _CONTROL.search(key):
            raise ValueError(
                f"attribute name {key!r} must not hold control characters "
                "(line breaks, tabs, escapes)"
            )
        if isinstance(value, str) and _CONTROL_BUT_LAYOUT.search(value):
            raise ValueError(
                f"attribute {key!r} must not hold control characters other than "
                "line breaks and tabs"
            )
        if isinstance(value, str) and not _is_unicode(value):
            raise ValueError(f"attribute {key!r} must be Unicode text (it holds a lone surrogate)")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValueError(f"attribute {key!r} must be a string, number, boolean or null")
        if isinstance(value, int) and not -(2**63) <= value < 2**64:
            raise ValueError(f"attribute {key!r} is an integer beyond 64 bits")
    if len(values) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
    try:
        # As a client sends them: compact UTF-8. Escaped to ASCII, with spaces, text
        # outside ASCII counted 6-12 bytes a character, and the limit quoted a size
        # the client's JSON never had.
        text = json.dumps(values, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        raise ValueError("attribute values must be finite numbers") from None
    size = len(text.encode())
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValueError(
            f"attributes take {size} bytes as compact UTF-8 JSON, more than {MAX_ATTRIBUTES_BYTES}"
        )
    return values


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


SeriesId = Annotated[str, AfterValidator(_check_id)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
ExternalId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_EXTERNAL_ID),
    AfterValidator(_check_printable),
]
Tags = Annotated[list[Name], Field(max_length=MAX_TAGS), AfterValidator(_check_unique)]
ExternalIds = Annotated[dict[Name, ExternalId], Field(max_length=MAX_EXTERNAL_IDS)]
Attributes = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)], Any],
    AfterValidator(_check_attributes),
]

#: Fields a user sets. ``id`` never changes after creation.
SPEC_FIELDS = (
    "id",
    "title",
    "description",
    "source",
    "frequency",
    "units",
    "seasonal_adjustment",
    "tags",
    "external_ids",
    "attributes",
    "partitioning",
)
#: Fields the engine maintains; a user who sets one gets a ValidationError.
DERIVED_FIELDS = (
    "created_at",
    "updated_at",
    "version",
    "first_date",
    "last_date",
    "observation_count",
)


class SeriesSpec(BaseModel):
    """The metadata a user gives when creating or updating a series."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: SeriesId
    frequency: Frequency
    title: Annotated[str, StringConstraints(max_length=MAX_TITLE), AfterValidator(_check_line)] = ""
    description: Annotated[
        str, StringConstraints(max_length=MAX_DESCRIPTION), AfterValidator(_check_text)
    ] = ""
    source: Annotated[str, StringConstraints(pattern=SOURCE_PATTERN)] = ""
    units: Annotated[str, StringConstraints(max_length=MAX_UNITS), AfterValidator(_check_line)] = ""
    seasonal_adjustment: Annotated[
        str, StringConstraints(max_length=MAX_NAME), AfterValidator(_check_line)
    ] = ""
    tags: Tags = Field(default_factory=list)
    external_ids: ExternalIds = Field(default_factory=dict)
    attributes: Attributes = Field(default_factory=dict)
    #: Time partitioning of observation files; None picks the frequency's default.
    partitioning: Partitioning | None = None


class Series(SeriesSpec):
    """A series as stored: the user's metadata plus what the engine derives.

    ``version`` is the catalog version of the commit that last changed the series
    (metadata or observations); it is the series' ETag. Dates are calendar dates,
    or UTC instants for intraday series.
    """

    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int = Field(ge=1)
    first_date: dt.date | AwareDatetime | None = None
    last_date: dt.date | AwareDatetime | None = None
    observation_count: int = Field(default=0, ge=0)

    def spec(self) -> SeriesSpec:
        """The user-settable part of this series."""
        return SeriesSpec.model_construct(**{name: getattr(self, name) for name in SPEC_FIELDS})


def validation_error(exc: pydantic.ValidationError, prefix: str = "") -> ValidationError:
    """Turn a pydantic report into fincat's ValidationError naming the first bad field.
    Each problem's field is a whole path, ``prefix`` first: a value validated alone
    (an external id) has no path of its own, and was named by none."""
    problems = [
        {"field": ".".join(str(p) for p in (prefix, *e["loc"]) if p != ""), "message": _in_words(e)}
        for e in exc.errors(include_url=False)
    ]
    field = problems[0]["field"]
    if len(problems) == 1:
        return ValidationError(problems[0]["message"], field=field or None, problems=problems)
    details = "; ".join(f"{p['field'] or 'input'}: {p['message']}" for p in problems)
    return ValidationError(details, field=field or None, problems=problems)


def _in_words(problem: Any) -> str:
    if problem["type"] == "value_error" and "error" in problem.get("ctx", {}):
        return str(problem["ctx"]["error"])  # our own words, without "Value error, "
    if problem["type"] == "string_pattern_mismatch":
        words = _PATTERN_WORDS.get(str(problem.get("ctx", {}).get("pattern")))
        if words is not None:
            return words
    return str(problem["msg"])


def parse_spec(value: SeriesSpec | Mapping[str, Any]) -> SeriesSpec:
    """Validate user metadata; raise ValidationError naming the field at fault."""
    if isinstance(value, SeriesSpec):
        return SeriesSpec.model_validate(value.model_dump())
    if not isinstance(value, Mapping):
        raise ValidationError("series metadata must be a mapping", field=None)
    derived = [name for name in value if name in DERIVED_FIELDS]
    if derived:
        raise ValidationError("is maintained by the catalog and cannot be set", field=derived[0])
    try:
        return SeriesSpec.model_validate(dict(value))
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None


def as_changes(changes: object) -> dict[str, Any]:
    """An update's ``changes``: a mapping of field names to values (a list of pairs
    is not one). Raises ValidationError on ``changes``."""
    if not isinstance(changes, Mapping):
        raise ValidationError(
            f"must be a mapping of field names to values, not {type(changes).__name__}",
            "changes",
        )
    return dict(changes)


_EXTERNAL_ID_PARTS = (
    ("provider", pydantic.TypeAdapter(Name)),
    ("external_id", pydantic.TypeAdapter(ExternalId)),
)


def check_external_id(provider: object, external_id: object) -> None:
    """A provider name and an external id by the rules series carry them under.
    Raises ValidationError on ``provider`` or ``external_id``."""
    for (name, adapter), value in zip(_EXTERNAL_ID_PARTS, (provider, external_id), strict=True):
        try:
            adapter.validate_python(value, strict=True)
        except pydantic.ValidationError as exc:
            raise validation_error(exc, name) from None


def apply_changes(spec: SeriesSpec, changes: Mapping[str, Any]) -> SeriesSpec:
    """Return ``spec`` with ``changes`` applied, validated as a whole.

    A None resets a field to its default, as in a JSON merge patch (RFC 7396);
    ``frequency``, which has none, refuses it.

    Raises ValidationError if a change names the id, a derived field, an unknown
    field, or makes the metadata invalid.
    """
    if not isinstance(changes, Mapping):
        raise ValidationError("changes must be a mapping", field=None)
    if "id" in changes and changes["id"] != spec.id:
        raise ValidationError("a series id cannot change", field="id")
    merged = spec.model_dump()
    for name, given in changes.items():
        field = SeriesSpec.model_fields.get(name) if given is None else None
        if field is not None and not field.is_required():
            merged[name] = field.get_default(call_default_factory=True)
        else:
            merged[name] = given
    try:
        return parse_spec(merged)
    except ValidationError as exc:
        # A field the update does not touch is kept as stored, not judged again: one
        # written before a rule came in (control characters in a title or an
        # attribute) would otherwise fail every update of the series.
        faulty = {str(p["field"]).split(".")[0] for p in exc.problems}
        # Only the spec's own fields: a problem may name a key that is none (an
        # unknown field, "foo.bar"), which is the change's fault.
        untouched = (faulty & SeriesSpec.model_fields.keys()) - {*changes, "id", "frequency"}
        if not untouched:
            raise
    for name in untouched:
        merged[name] = SeriesSpec.model_fields[name].get_default(call_default_factory=True)
    kept = {name: getattr(spec, name) for name in untouched}
    return parse_spec(merged).model_copy(update=kept)
