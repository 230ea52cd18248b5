"""The catalog's history: every commit, newest first, one commit's details, and the
changes of one series."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.params import PathParameter, QueryParameter

from catalog_store.asof import MAX_VERSION, parse_as_of, parse_version
from catalog_store.errors import ValidationError
from catalog_store.listing import is_version, pack_cursor, unpack_cursor
from catalog_store.options import VersionInfo
from gateway.openapi import documented
from gateway.params import etag, none_match
from gateway.problems import problem_specs
from gateway.routes.series import (
    READ,
    AsOfParam,
    Cursor,
    IfNoneMatch,
    SeriesId,
    SeriesOut,
    not_modified,
    wire,
)
from gateway.state import gateway_of

MAX_VERSIONS_PAGE = 200


class Change(msgspec.Struct):
    """One change of a commit: what happened (create, update, write, delete ...) to which series."""

    action: str
    series_id: str


class Version(msgspec.Struct):
    version: int
    committed_at: dt.datetime
    commit_id: str
    message: str
    #: The first changes of the commit (at most 1,000); ``change_count`` counts all.
    changes: list[Change]
    change_count: int
    series_count: int
    observation_count: int


class VersionPage(msgspec.Struct):
    """Versions newest first; pass ``next_cursor`` back as ``cursor`` for older ones."""

    items: list[Version]
    next_cursor: str | None


def as_version(info: VersionInfo) -> Version:
    return Version(
        version=info.version,
        committed_at=info.committed_at,
        commit_id=info.commit_id,
        message=info.message,
        changes=[Change(action, series_id) for action, series_id in info.changes],
        change_count=info.change_count,
        series_count=info.series_count,
        observation_count=info.observation_count,
    )


@get(
    "/v1/versions",
    opt=READ,
    summary="List catalog versions",
    responses=problem_specs(400, 401, 403, 404, 422, 429),
)
async def list_versions(
    request: Request[Any, Any, Any],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_VERSIONS_PAGE)] = 20,
    cursor: Cursor = None,
) -> VersionPage:
    """Commits newest first, ``limit`` at a time."""
    catalog = gateway_of(request).catalog
    before = None if cursor is None else parse_version(cursor, "cursor")
    if before is not None:
        await catalog.check_pinned(before)
    # One more than the page: a cursor is given only where older versions are kept.
    history = await catalog.history(limit=limit + 1, before=before)
    page = history[:limit]
    more = len(history) > limit
    return VersionPage([as_version(v) for v in page], str(page[-1].version) if more else None)


@get(
    "/v1/versions/{version:int}",
    opt=READ,
    summary="Get one catalog version",
    responses=problem_specs(400, 401, 403, 404, 422, 429),
)
async def get_version(
    request: Request[Any, Any, Any],
    version: Annotated[
        int, PathParameter(description="A catalog version (0 is the empty catalog).")
    ],
) -> Version:
    """One commit: when, its message, and the series it changed."""
    if not 0 <= version <= MAX_VERSION:
        raise ValidationError(f"must be between 0 and {MAX_VERSION}", "version")
    return as_version(await gateway_of(request).catalog.version_details(version))


class SeriesHistoryItem(msgspec.Struct):
    """One change of a series: the commit that made it and the series as it left it."""

    version: int
    committed_at: dt.datetime
    message: str
    #: What the commit did to the series first (create, update, append ...); null
    #: for a repair's restore, which names the version it restored instead, and past
    #: the first 1,000 changes of a batch.
    action: str | None
    #: Everything the commit did to the series, in order; empty where action is null.
    actions: list[str]
    series: SeriesOut


class SeriesHistoryPage(msgspec.Struct):
    """Changes newest first; pass ``next_cursor`` back as ``cursor`` for older ones."""

    items: list[SeriesHistoryItem]
    next_cursor: str | None


@get(
    "/v1/series/{series_id:str}/history",
    opt=READ,
    summary="List a series' changes",
    responses=problem_specs(400, 401, 403, 404, 422, 429),
    operation_class=documented(
        headers={
            200: {
                "ETag": 'Weak ETag of the series version the listing reads: W/"42"; once '
                'retention has expired history, with the oldest version kept: W/"42.7".'
            }
        },
        responses={304: {}},
    ),
)
async def series_history(
    request: Request[Any, Any, Any],
    series_id: SeriesId,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_VERSIONS_PAGE)] = 20,
    cursor: Cursor = None,
    as_of: AsOfParam = None,
    if_none_match: IfNoneMatch = None,
) -> Response[Any]:
    """The commits that changed the series, newest first from its state now (or as
    of a version or instant), each with the series as it left it. States that
    cannot be read (lost to damage and passed over by a repair) are skipped; under
    retention the list ends at the oldest change whose commit is kept. 304 if the
    page is unchanged."""
    catalog = gateway_of(request).catalog
    if cursor is None:
        pinned, before = (await catalog.snapshot(parse_as_of(as_of))).version, None
    else:
        pinned, before = _history_cursor(cursor)
        await catalog.check_pinned(pinned)
    # A page changes only with the series (at the version it is pinned to) and with
    # the oldest version kept, as a revision history does: the two are its validator.
    version = (await catalog.get(series_id, as_of=pinned)).version
    floor = await catalog.reader.oldest_version()
    if none_match(if_none_match, version, floor):
        return not_modified(version, weak=True, floor=floor)
    # One more than the page, to tell whether another follows: that change is read,
    # not shown (a damaged one there fails this page, as it would the next).
    changes = await catalog.series_history(series_id, as_of=pinned, before=before, limit=limit + 1)
    items = [
        SeriesHistoryItem(
            version=change.series.version,
            committed_at=change.commit.committed_at,
            message=change.commit.message,
            action=change.action,
            actions=list(change.actions),
            series=wire(change.series),
        )
        for change in changes[:limit]
    ]
    more = len(changes) > limit
    page = SeriesHistoryPage(items, pack_cursor(pinned, items[-1].version) if more else None)
    return Response(page, headers={"ETag": etag(version, weak=True, floor=floor)})


def _history_cursor(cursor: str) -> tuple[int, int]:
    """(the version the listing reads, the version of the last change it showed),
    from a cursor this route made; ValidationError on ``cursor`` for anything else."""
    pinned, last = unpack_cursor(cursor, 2)
    if not (is_version(pinned) and is_version(last) and last <= pinned):
        raise ValidationError("invalid cursor", "cursor")
    return pinned, last


ROUTES = [list_versions, get_version, series_history]
