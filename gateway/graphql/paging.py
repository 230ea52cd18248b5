"""``seriesList``: the catalog's listing with the filters it lacks, as Relay pages.

The catalog lists by text, source, frequency and tags with its own cursors. Two
filters it does not offer, a provider of external ids and "has observations
between two dates", are applied here to the catalog's pages as they stream by.
A cursor is therefore a position inside the catalog's listing: the catalog
cursor of one of its pages and how many items of that page are behind us,
pinned to the catalog version the listing started at. At most ``scan_limit``
series are looked at per request: a page may hold fewer than ``first`` items
while ``hasNextPage`` is true, and ``endCursor`` then continues the scan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from catalog_store import AsyncCatalog, Series
from catalog_store.errors import SeriesNotFoundError
from catalog_store.listing import (
    decode_cursor,
    is_version,
    pack_cursor,
    searchable,
    unpack_cursor,
)
from gateway.graphql.errors import VALIDATION, ApiError
from gateway.graphql.types import day

#: Series asked of the catalog per call.
CATALOG_PAGE = 200
#: Series one request looks at, at most, for a page.
SCAN_LIMIT = 10_000


@dataclass(frozen=True)
class Position:
    """Where a listing stands: ``skip`` items into the catalog page at ``cursor``
    (None: the first page), at catalog ``version``."""

    version: int
    cursor: str | None
    skip: int

    def encode(self) -> str:
        return pack_cursor(self.version, self.cursor, self.skip)

    @classmethod
    def decode(cls, text: str) -> Position:
        """Raises ApiError ``VALIDATION`` (field ``after``) for a cursor this code did not
        make, by the rule REST reads its cursors with, the catalog's cursor within it
        included (which must pin the same version)."""
        try:
            version, cursor, skip = unpack_cursor(text, 3)
            # A cursor made here skips at most one catalog page's items.
            if not (is_version(version) and type(skip) is int and 0 <= skip <= CATALOG_PAGE):
                raise ValueError
            if cursor is not None and (
                not isinstance(cursor, str) or decode_cursor(cursor)[0] != version
            ):
                raise ValueError
        except ValueError:
            # The catalog's ValidationError is a ValueError: it names ``cursor``, which
            # the client did not send.
            raise ApiError("invalid cursor", VALIDATION, "after") from None
        return cls(version, cursor, skip)


@dataclass(frozen=True)
class Conditions:
    """Every given condition must hold."""

    text: str | None = None
    source: str | None = None
    frequency: str | None = None
    tags: tuple[str, ...] = ()
    external_provider: str | None = None
    external_id: str | None = None
    #: Has observations (in ``observed_from`` .. ``observed_to``, where given).
    observed: bool = False
    observed_from: dt.date | None = None
    observed_to: dt.date | None = None

    def beyond_catalog(self, series: Series) -> bool:
        """The conditions the catalog's listing cannot check."""
        if self.external_provider is not None and self.external_provider not in (
            series.external_ids
        ):
            return False
        if self.observed:
            first, last = day(series.first_date), day(series.last_date)
            if first is None or last is None:
                return False
            if self.observed_from is not None and last < self.observed_from:
                return False
            if self.observed_to is not None and first > self.observed_to:
                return False
        return True

    def matches(self, series: Series) -> bool:
        """Every condition, for a series found without the catalog's listing."""
        if self.source is not None and series.source != self.source:
            return False
        if self.frequency is not None and series.frequency != self.frequency:
            return False
        if not all(tag in series.tags for tag in self.tags):
            return False
        if self.text:
            needle = searchable(self.text)
            fields = (series.id, series.title, series.description)
            if not any(needle in searchable(field) for field in fields):
                return False
        return self.beyond_catalog(series)


def check_external_id(
    provider: str | None, external_id: str | None, fields: tuple[str, str]
) -> None:
    """Raises ApiError ``VALIDATION`` naming (by ``fields``) an empty provider or id.

    No series can carry one, so an empty value is a client's mistake: answering with
    no series would hide it, and REST refuses it too.
    """
    for value, field in zip((provider, external_id), fields, strict=True):
        if value == "":
            raise ApiError("must not be empty", VALIDATION, field)


@dataclass(frozen=True)
class Listing:
    """One page: each item with its own cursor, whether more may follow, where to go on."""

    items: Sequence[tuple[Series, str]]
    has_next: bool
    end_cursor: str | None
    version: int


async def list_series(
    catalog: AsyncCatalog,
    conditions: Conditions,
    first: int,
    after: str | None,
    version: int,
    scan_limit: int,
) -> Listing:
    """Up to ``first`` series matching ``conditions`` after the cursor ``after``.

    Raises ApiError (bad cursor) and the catalog's errors (ValidationError for a
    bad frequency, VersionNotFoundError).
    """
    check_external_id(
        conditions.external_provider,
        conditions.external_id,
        ("filter.externalProvider", "filter.externalId"),
    )
    position = Position.decode(after) if after is not None else Position(version, None, 0)
    if after is not None:
        await catalog.check_pinned(position.version, "after")
    if conditions.external_id is not None:
        return await _by_external_id(catalog, conditions, position)
    cursor, skip, scanned = position.cursor, position.skip, 0
    found: list[tuple[Series, str]] = []
    while True:
        page = await catalog.list(
            source=conditions.source,
            frequency=conditions.frequency,
            tags=conditions.tags,
            text=conditions.text,
            limit=CATALOG_PAGE,
            cursor=cursor,
            as_of=position.version if cursor is None else None,
        )
        for index in range(skip, len(page.items)):
            series = page.items[index]
            here = Position(position.version, cursor, index + 1).encode()
            scanned += 1
            if conditions.beyond_catalog(series):
                if len(found) == first:  # one more exists: the page is full
                    return Listing(found, True, found[-1][1], position.version)
                found.append((series, here))
            if scanned >= scan_limit:
                # Out of budget for this request: the next page goes on from here.
                return Listing(found, True, here, position.version)
        if page.next_cursor is None:
            end = found[-1][1] if found else after
            return Listing(found, False, end, position.version)
        cursor, skip = page.next_cursor, max(0, skip - len(page.items))


async def _by_external_id(
    catalog: AsyncCatalog, conditions: Conditions, position: Position
) -> Listing:
    # An external id names at most one series: a page of one, or of none.
    provider = conditions.external_provider
    if provider is None:
        raise ApiError("externalId needs externalProvider", VALIDATION, "filter.externalProvider")
    assert conditions.external_id is not None
    if position.skip:
        return Listing([], False, None, position.version)
    try:
        series = await catalog.find_by_external_id(
            provider, conditions.external_id, as_of=position.version
        )
    except SeriesNotFoundError:
        return Listing([], False, None, position.version)
    if not conditions.matches(series):
        return Listing([], False, None, position.version)
    cursor = Position(position.version, None, 1).encode()
    return Listing([(series, cursor)], False, cursor, position.version)
