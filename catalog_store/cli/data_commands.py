"""Commands on the observations of one series: write, read, revisions."""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from typing import Annotated, Any

import pyarrow as pa
import typer

from catalog_store.cli._app import app
from catalog_store.cli._common import (
    as_of_option,
    console,
    date_range,
    iso,
    open_catalog,
    print_json,
)
from catalog_store.cli.csvfiles import read_pairs

SeriesArg = Annotated[str, typer.Argument(metavar="SERIES_ID")]
StartOpt = Annotated[
    str | None, typer.Option("--start", metavar="DATE", help="First date, inclusive.")
]
EndOpt = Annotated[str | None, typer.Option("--end", metavar="DATE", help="Last date, inclusive.")]


class WriteMode(StrEnum):
    append = "append"
    upsert = "upsert"
    replace_range = "replace_range"
    delete_range = "delete_range"


class OutputFormat(StrEnum):
    csv = "csv"
    json = "json"


FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]


@app.command()
def write(
    ctx: typer.Context,
    series_id: SeriesArg,
    file: Annotated[
        typer.FileText | None,
        typer.Argument(
            metavar="FILE.csv",
            help="CSV with a date,value header; '-' reads stdin. Not used by delete_range.",
            encoding="utf-8-sig",
        ),
    ] = None,
    mode: Annotated[
        WriteMode,
        typer.Option(
            help="append: only dates after the last one; upsert: replace values of equal "
            "dates; replace_range: replace --start..--end with the file; delete_range: "
            "delete --start..--end."
        ),
    ] = WriteMode.append,
    start: StartOpt = None,
    end: EndOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write observations of one series from a CSV file, as one commit.

    Empty, '.' and 'NA' values are written as missing observations (null).
    """
    low, high = date_range(start, end)
    if mode is WriteMode.delete_range and file is not None:
        raise typer.BadParameter("delete_range takes no file", param_hint="'FILE.csv'")
    if mode is not WriteMode.delete_range and file is None:
        raise typer.BadParameter(f"{mode.value} needs a file", param_hint="'FILE.csv'")
    parsed = read_pairs(file, series_id) if file is not None else None
    with open_catalog(ctx) as catalog:
        table = parsed.table(catalog.get(series_id).frequency) if parsed is not None else None
        series = catalog.write(series_id, table, mode.value, start=low, end=high)
    rows = 0 if parsed is None else len(parsed.dates)
    if as_json:
        print_json(
            {
                "series_id": series_id,
                "mode": mode.value,
                "rows": rows,
                "version": series.version,
                "observation_count": series.observation_count,
                "first_date": iso(series.first_date),
                "last_date": iso(series.last_date),
            }
        )
        return
    span = (
        f" from {iso(series.first_date)} to {iso(series.last_date)}"
        if series.first_date is not None
        else ""
    )
    console().print(
        f"{series_id}: {mode.value} of {rows} rows committed as version {series.version}; "
        f"the series has {series.observation_count} observations{span}."
    )


def _records(table: pa.Table) -> list[dict[str, Any]]:
    return [{name: iso(value) for name, value in row.items()} for row in table.to_pylist()]


def _emit(table: pa.Table, fmt: OutputFormat) -> None:
    records = _records(table)
    if fmt is OutputFormat.json:
        print_json(records)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for record in records:
        writer.writerow(["" if v is None else v for v in record.values()])
    typer.echo(buffer.getvalue(), nl=False)


@app.command()
def read(
    ctx: typer.Context,
    series_id: SeriesArg,
    start: StartOpt = None,
    end: EndOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", metavar="VERSION|RFC3339", help="Read the series as it was then."),
    ] = None,
    fmt: FormatOpt = OutputFormat.csv,
) -> None:
    """Print a series' observations as CSV or JSON; missing values are empty (null)."""
    low, high = date_range(start, end)
    when = as_of_option(as_of)
    with open_catalog(ctx) as catalog:
        table = catalog.read(series_id, low, high, as_of=when)
    _emit(table, fmt)


@app.command()
def revisions(
    ctx: typer.Context,
    series_id: SeriesArg,
    start: StartOpt = None,
    end: EndOpt = None,
    first_release: Annotated[
        bool, typer.Option("--first-release", help="Only each date's first published value.")
    ] = False,
    fmt: FormatOpt = OutputFormat.csv,
) -> None:
    """Print every value each date has had and when it was current.

    realtime_start and realtime_end bound the time a value was the current one;
    realtime_end is empty (null) while it still is.
    """
    low, high = date_range(start, end)
    with open_catalog(ctx) as catalog:
        table = catalog.revisions(series_id, low, high, first_release_only=first_release)
    _emit(table, fmt)
