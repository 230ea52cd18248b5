"""Commands on the observations of one series: write, read, revisions."""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from typing import Annotated, Any

import pyarrow as pa
import typer

from catalog_store.cli._app import app
from catalog_store.cli._common import as_of_option, date_range, open_catalog
from catalog_store.cli._output import JsonFlag, console, emit, iso, plural, write_output
from catalog_store.cli.csvfiles import read_pairs

SeriesArg = Annotated[str, typer.Argument(metavar="SERIES_ID")]
StartOpt = Annotated[
    str | None,
    typer.Option(
        "--start",
        metavar="DATE",
        help="First date, inclusive; a month, quarter or year (2000-06, 2000Q2, 2000) "
        "starts on its first day.",
    ),
]
EndOpt = Annotated[
    str | None,
    typer.Option(
        "--end",
        metavar="DATE",
        help="Last date, inclusive; a month, quarter or year (2000-06, 2000Q2, 2000) "
        "ends on its last day.",
    ),
]


class WriteMode(StrEnum):
    append = "append"
    upsert = "upsert"
    replace_range = "replace_range"
    delete_range = "delete_range"


class OutputFormat(StrEnum):
    csv = "csv"
    json = "json"


FormatOpt = Annotated[
    OutputFormat | None, typer.Option("--format", help="Output format [default: csv].")
]
RecordsFlag = Annotated[
    bool, typer.Option("--json", help="Print a JSON array of records; the same as --format json.")
]


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
    as_json: JsonFlag = False,
) -> None:
    """Write observations of one series from a CSV file, as one commit.

    Empty, '.', 'NA', 'N/A', '#N/A', 'NaN', 'null' and 'None' values (in any case)
    are written as missing observations (null). An append or upsert of a file with
    a header and no rows commits nothing.
    replace_range and delete_range need --start or --end.
    """
    low, high = date_range(start, end)
    if mode is WriteMode.delete_range and file is not None:
        raise typer.BadParameter("delete_range takes no file", param_hint="'FILE.csv'")
    if mode is not WriteMode.delete_range and file is None:
        raise typer.BadParameter(f"{mode.value} needs a file", param_hint="'FILE.csv'")
    if mode in (WriteMode.replace_range, WriteMode.delete_range) and low is None and high is None:
        # Without bounds the engine applies the mode to the whole series; a forgotten
        # option must not empty it.
        raise typer.BadParameter(
            f"{mode.value} needs --start or --end; to cover the whole series, give "
            "--start with its first date",
            param_hint="'--start' / '--end'",
        )
    parsed = read_pairs(file, series_id) if file is not None else None
    with open_catalog(ctx) as catalog:
        before = catalog.get(series_id)
        table = parsed.table(before.frequency) if parsed is not None else None
        # A batch of one write, which says whether it landed: a write that changes
        # nothing makes no version, and another writer may change the series meanwhile.
        with catalog.batch(f"{mode.value} {series_id}") as batch:
            batch.write(series_id, table, mode.value, start=low, end=high)
        series = catalog.get(series_id, as_of=batch.version)
    data = {
        "series_id": series_id,
        "mode": mode.value,
        "rows": 0 if parsed is None else len(parsed.dates),
        "committed": batch.version is not None,
        "version": series.version,
        "observation_count": series.observation_count,
        "first_date": iso(series.first_date),
        "last_date": iso(series.last_date),
    }
    emit(data, as_json, _print_written)


def _print_written(data: dict[str, Any]) -> None:
    span = (
        f" from {data['first_date']} to {data['last_date']}"
        if data["first_date"] is not None
        else ""
    )
    rows = plural(data["rows"], "row")
    head = f"{data['series_id']}: {data['mode']} of {rows}"
    count = f"{data['observation_count']} observations{span}"
    if data["committed"]:
        text = f"{head} committed as version {data['version']}; the series has {count}."
    else:
        text = (
            f"{head}: nothing committed; the series is unchanged since version "
            f"{data['version']} and has {count}."
        )
    console().print(text)


def _records(table: pa.Table) -> list[dict[str, Any]]:
    return [{name: iso(value) for name, value in row.items()} for row in table.to_pylist()]


def _format(fmt: OutputFormat | None, as_json: bool) -> OutputFormat:
    """``--format`` and its shorthand ``--json``; contradicting them is a usage error."""
    if as_json and fmt is OutputFormat.csv:
        raise typer.BadParameter("--json means --format json", param_hint="'--format'")
    if as_json:
        return OutputFormat.json
    return fmt or OutputFormat.csv


def _emit(table: pa.Table, fmt: OutputFormat) -> None:
    """Records as one JSON array, or CSV with a header row (null as an empty cell)."""

    def csv_text(records: list[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(table.column_names)
        for record in records:
            writer.writerow(["" if v is None else v for v in record.values()])
        write_output(buffer.getvalue())

    emit(_records(table), fmt is OutputFormat.json, csv_text)


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
    fmt: FormatOpt = None,
    as_json: RecordsFlag = False,
) -> None:
    """Print a series' observations as CSV or JSON; missing values are empty (null)."""
    fmt = _format(fmt, as_json)
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
    fmt: FormatOpt = None,
    as_json: RecordsFlag = False,
) -> None:
    """Print every value each date has had and when it was current.

    realtime_start and realtime_end bound the time a value was the current one;
    realtime_end is empty (null) while it still is.
    """
    fmt = _format(fmt, as_json)
    low, high = date_range(start, end)
    with open_catalog(ctx) as catalog:
        table = catalog.revisions(series_id, low, high, first_release_only=first_release)
    _emit(table, fmt)
