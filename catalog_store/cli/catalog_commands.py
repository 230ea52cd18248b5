"""Commands about the catalog as a whole: init, ls, show, log, demo, compact, checkpoint."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.table import Table

from catalog_store.cli._app import app
from catalog_store.cli._common import as_of_option, open_catalog, settings
from catalog_store.cli._output import JsonFlag, console, emit, err_console, iso, progress
from catalog_store.errors import FormatError
from catalog_store.models import DERIVED_FIELDS, SPEC_FIELDS, Series
from catalog_store.options import DEFAULT_SHARDS, CatalogOptions, VersionInfo


@app.command()
def init(
    ctx: typer.Context,
    shards: Annotated[
        int | None,
        typer.Option(
            "--shards",
            min=1,
            max=4096,
            help=f"External-id index shards [default: {DEFAULT_SHARDS}]; fixed for the "
            "catalog's life.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an empty catalog at --root. An existing catalog is left as it is,
    its index shards too."""
    root = settings(ctx).root
    count = DEFAULT_SHARDS if shards is None else shards
    try:
        with open_catalog(ctx) as catalog:
            version = catalog.version()
        created = False
    except FormatError:
        # No catalog yet (a store of an unknown format raises again just below).
        with open_catalog(ctx, create=True, options=CatalogOptions(shard_count=count)) as catalog:
            version = catalog.version()
            # Another init may have made it meanwhile, with its own shard count.
            created = catalog.created
    if not created and shards is not None:
        # Scripts run init every time, so this is no error; but silence would let the
        # user think the catalog has these shards.
        err_console().print(
            f"note: --shards {shards} is not applied: the catalog at {root} exists, "
            "and its shard count was fixed when it was created.",
            soft_wrap=True,
        )

    def text(data: dict[str, Any]) -> None:
        if data["created"]:
            console().print(f"Created a catalog at {root} with {count} index shards.")
        else:
            console().print(f"A catalog already exists at {root} (version {version}).")

    emit({"root": root, "created": created, "version": version}, as_json, text)


def _series_json(series: Series) -> dict[str, Any]:
    return series.model_dump(mode="json")


@app.command("ls")
def list_series(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only series from this source.")] = None,
    frequency: Annotated[str | None, typer.Option(help="Only series of this frequency.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only series with this tag; repeatable.")
    ] = None,
    text: Annotated[
        str | None,
        typer.Option("--q", help="Only series whose id, title or description contain this."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Series per page.")] = 100,
    cursor: Annotated[
        str | None, typer.Option(help="Continue a listing where its last page ended.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List one page of series matching every filter, and the cursor of the next page."""
    with open_catalog(ctx) as catalog:
        page = catalog.list(
            source=source,
            frequency=frequency,
            tags=tag or (),
            text=text,
            limit=limit,
            cursor=cursor,
        )
    data = {
        "version": page.version,
        "items": [_series_json(s) for s in page.items],
        "next_cursor": page.next_cursor,
    }
    emit(data, as_json, _print_page)


def _print_page(data: dict[str, Any]) -> None:
    table = Table()
    table.add_column("id", no_wrap=True)
    table.add_column("frequency", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("first", no_wrap=True)
    table.add_column("last", no_wrap=True)
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("title", ratio=1)
    for s in data["items"]:
        table.add_row(
            s["id"],
            s["frequency"],
            s["source"],
            s["first_date"] or "",
            s["last_date"] or "",
            str(s["observation_count"]),
            s["title"],
        )
    out = console()
    out.print(table)
    out.print(f"{len(data['items'])} series at version {data['version']}")
    if data["next_cursor"]:
        out.print(f"next cursor: {data['next_cursor']}", soft_wrap=True)


@app.command()
def show(
    ctx: typer.Context,
    series_id: Annotated[str, typer.Argument(metavar="SERIES_ID")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", metavar="VERSION|RFC3339", help="Show the series as it was then."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a series' metadata, including what the catalog derives (dates, counts, version)."""
    when = as_of_option(as_of)
    with open_catalog(ctx) as catalog:
        series = catalog.get(series_id, as_of=when)
    emit(_series_json(series), as_json, _print_series)


def _print_series(data: dict[str, Any]) -> None:
    table = Table("field", "value", show_header=False, box=None)
    for name in (*SPEC_FIELDS, *DERIVED_FIELDS):
        value = data.get(name)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        table.add_row(name, "" if value is None else str(value))
    console().print(table)


def _version_json(info: VersionInfo) -> dict[str, Any]:
    return {
        "version": info.version,
        "committed_at": iso(info.committed_at),
        "message": info.message,
        "changes": info.change_count,
        "series_count": info.series_count,
        "observation_count": info.observation_count,
        "commit_id": info.commit_id,
    }


@app.command()
def log(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="Number of versions to show.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Show the catalog's history, newest version first."""
    with open_catalog(ctx) as catalog:
        history = catalog.history(limit)
    emit([_version_json(info) for info in history], as_json, _print_history)


def _print_history(data: list[dict[str, Any]]) -> None:
    table = Table()
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("committed at", no_wrap=True)
    table.add_column("changes", justify="right", no_wrap=True)
    table.add_column("series", justify="right", no_wrap=True)
    table.add_column("obs", justify="right", no_wrap=True)
    table.add_column("message", ratio=1)
    for info in data:
        # Whole seconds are enough to read; --json keeps the microseconds.
        seconds = iso(dt.datetime.fromisoformat(info["committed_at"]).replace(microsecond=0))
        table.add_row(
            str(info["version"]),
            seconds,
            str(info["changes"]),
            str(info["series_count"]),
            str(info["observation_count"]),
            info["message"],
        )
    console().print(table)


@app.command()
def demo(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Load the bundled real data sets (FRED, BLS, stock prices) with full metadata.

    Creates the catalog if needed. Safe to run again: series that already hold the
    demo data are left alone and nothing is committed when nothing differs.
    """
    from catalog_store.demo import load_demo

    with (
        open_catalog(ctx, create=True) as catalog,
        progress("loading demo series", then="committing") as meter,
    ):
        summary = load_demo(catalog, progress=meter)
    emit(summary, as_json, _print_demo)


def _print_demo(summary: dict[str, Any]) -> None:
    table = Table("file", "series", "observations")
    for dataset in summary["datasets"]:
        table.add_row(dataset["file"], str(dataset["series"]), str(dataset["observations"]))
    out = console()
    out.print(table)
    state = (
        f"committed as version {summary['version']}"
        if summary["committed"]
        else f"already up to date at version {summary['version']}"
    )
    out.print(
        f"{summary['series']} series, {summary['observations']} observations: "
        f"{summary['created']} created, {summary['updated']} updated, "
        f"{summary['unchanged']} unchanged; {state}."
    )


@app.command()
def compact(
    ctx: typer.Context,
    series_id: Annotated[str, typer.Argument(metavar="SERIES_ID")],
    min_files: Annotated[
        int,
        typer.Option(min=1, help="Rewrite each partition that has at least this many files."),
    ] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Merge a series' observation files into one per partition; values do not change."""
    with open_catalog(ctx) as catalog, progress(f"compacting {series_id}"):
        version = catalog.compact(series_id, min_files)

    def text(data: dict[str, Any]) -> None:
        if version is None:
            console().print(f"{series_id}: nothing to compact.")
        else:
            console().print(f"{series_id}: compacted as version {version}.")

    emit(
        {"series_id": series_id, "compacted": version is not None, "version": version},
        as_json,
        text,
    )


@app.command()
def checkpoint(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Write the series recent commits left in the manifest into their shards, and
    their appended rows into Parquet files; values do not change."""
    with open_catalog(ctx) as catalog, progress("writing held series out"):
        version = catalog.checkpoint()

    def text(data: dict[str, Any]) -> None:
        if version is None:
            console().print("nothing held in the manifest: every row is in a file.")
        else:
            console().print(f"written out as version {version}.")

    emit({"checkpointed": version is not None, "version": version}, as_json, text)
