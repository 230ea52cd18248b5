"""Points in time as text: a version number, a UTC instant, a calendar date.

The one reading of an ``as_of`` (and of any version number) that the CLI, REST and
GraphQL share, and of a calendar date that REST and GraphQL share, raising
:class:`~catalog_store.errors.ValidationError` naming the parameter, so that each
surface refuses exactly what the others refuse.
"""

from __future__ import annotations

import datetime as dt
import re

from catalog_store.errors import ValidationError
from catalog_store.observations import parse_date_text, parse_instant_text, utc_instant

#: A catalog version (int), an instant (aware datetime), or None for the newest.
AsOf = int | dt.datetime | None

#: Versions beyond this are refused before they reach the store (keys have 20 digits).
MAX_VERSION = 10**18


def parse_version(text: str, name: str) -> int:
    """A non-negative version number in ASCII digits. Raises ValidationError naming ``name``."""
    value = text.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise ValidationError("must be a non-negative integer version", name)
    number = int(value)
    if number > MAX_VERSION:
        raise ValidationError(f"must be at most {MAX_VERSION}", name)
    return number


#: An instant whose offset's ``+`` a URL query made a space (form encoding).
_PLUS_READ_AS_SPACE = re.compile(r"\d:\d\d(?:\.\d+)? \d\d:?\d\d$")


def parse_date(text: str, name: str) -> dt.date:
    """A calendar date written ``YYYY-MM-DD``, surrounding whitespace aside. Raises
    ValidationError naming ``name`` for anything else, such as the ISO 8601 basic
    (``20240131``) and week (``2024W053``) forms that ``date.fromisoformat`` takes."""
    try:
        return parse_date_text(text.strip())
    except ValueError:
        raise ValidationError("must be a date like 2024-01-31", name) from None


def parse_instant(text: str, name: str) -> dt.datetime:
    """An RFC 3339 instant with a UTC offset, as UTC. Raises ValidationError (naive,
    malformed, or outside the years 1-9999 in UTC)."""
    try:
        value = parse_instant_text(text.strip())
    except ValueError:
        reason = "must be an RFC 3339 instant with an offset, e.g. 2024-05-01T12:00:00Z"
        if _PLUS_READ_AS_SPACE.search(text.strip()):
            reason += "; a + written as is in a URL's query reads as a space: write it %2B"
        raise ValidationError(reason, name) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError("naive datetime; give a UTC offset, e.g. 2024-05-01T12:00:00Z", name)
    return utc_instant(value, name)


def parse_as_of(text: str | None, name: str = "as_of") -> AsOf:
    """A version number or an instant with a UTC offset; None (the newest) when none
    is given. Blank text is refused: a client whose template left the value out
    would otherwise be answered for the newest version without being told."""
    return None if text is None else parse_point(text, name)


def parse_point(text: str, name: str = "as_of") -> int | dt.datetime:
    """A version number or an instant with a UTC offset. Raises ValidationError
    naming ``name``, for blank text too."""
    if not text.strip():
        raise ValidationError("must not be empty; leave it out for the newest version", name)
    if text.strip().isdigit():
        return parse_version(text, name)
    return parse_instant(text, name)
