"""The bounds of a range of observations: a calendar date or an instant.

``start`` and ``end`` are ``Date``s; ``startInstant`` and ``endInstant`` are
``Instant``s, read by :func:`catalog_store.asof.parse_instant` as REST reads an
instant ``start`` or ``end``. As in REST and the Python API, a date bounds an
intraday series by whole UTC days, and an instant bounds a series that is not
intraday by its UTC date (docs/observations.md). The catalog's errors about a
bound name ``start`` or ``end``; :meth:`Bounds.names` gives the argument the
client gave instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from catalog_store.asof import parse_instant
from catalog_store.observations import range_bounds
from gateway.graphql.errors import VALIDATION, ApiError, Arguments

#: One end of a range: a date, an instant (aware, UTC), or None for open.
Bound = dt.date | dt.datetime | None


@dataclass(frozen=True)
class Bounds:
    """``[start, end]`` as the catalog takes it, and the arguments each end came from."""

    start: Bound = None
    end: Bound = None
    start_name: str = "start"
    end_name: str = "end"

    def names(self) -> dict[str, str]:
        """The argument each of the catalog's names for a bound stands for."""
        # The catalog names start for the pair ("start and end apply to replace_range
        # ..."), even when only an end was given.
        start_name = self.end_name if self.start is None and self.end is not None else None
        return {"start": start_name or self.start_name, "end": self.end_name}

    @contextmanager
    def named(self) -> Iterator[None]:
        """Name the argument in a catalog error about a bound raised inside."""
        with Arguments(names=self.names()).named():
            yield

    def check(self, frequency: str) -> None:
        """Raises a ``VALIDATION`` error naming the argument if the range is empty
        (start after end) in the units of a series of ``frequency``."""
        with self.named():
            range_bounds(self.start, self.end, frequency)


def read_bounds(
    start: dt.date | None,
    end: dt.date | None,
    start_instant: str | None,
    end_instant: str | None,
    prefix: str = "",
) -> Bounds:
    """The bounds the arguments give. ``prefix`` goes before the argument names in
    errors (``operations.2.write.``).

    Raises ApiError (``VALIDATION``) when a date and an instant are given for one
    end, and ValidationError naming the argument for an instant that is not RFC 3339
    with an offset, or that falls outside the years 1-9999 in UTC.
    """
    low, start_name = _one(start, start_instant, "start", prefix)
    high, end_name = _one(end, end_instant, "end", prefix)
    return Bounds(low, high, start_name, end_name)


def _one(day: dt.date | None, instant: str | None, name: str, prefix: str) -> tuple[Bound, str]:
    if instant is None:
        return day, name
    instant_name = f"{name}Instant"
    if day is not None:
        raise ApiError(
            f"give {name} (a date) or {instant_name} (an instant), not both",
            VALIDATION,
            prefix + instant_name,
        )
    return parse_instant(instant, prefix + instant_name), instant_name
