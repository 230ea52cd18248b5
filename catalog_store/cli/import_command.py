"""``fincat import``: many series from one CSV file, created as needed, in one commit."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated, Any

import pyarrow as pa
import typer

from catalog_store.cli._app import app
from catalog_store.cli._common import open_catalog
from catalog_store.cli._output import JsonFlag, Meter, console, emit, plural, progress
from catalog_store.cli.csvfiles import ParsedSeries, frequency_of, read_long, read_wide
from catalog_store.errors import SeriesNotFoundError, ValidationError
from catalog_store.models import FREQUENCIES, Series, check_series_id, parse_spec
from catalog_store.sync import Catalog


class Layout(StrEnum):
    wide = "wide"
    long = "long"


class ImportMode(StrEnum):
    upsert = "upsert"
    append = "append"


DateColumnOpt = Annotated[
    str | None, typer.Option(metavar="COLUMN", help="Column of the dates (default: guessed).")
]
IdColumnOpt = Annotated[
    str | None,
    typer.Option(
        metavar="COLUMN", help="Long format: column of the series ids (default: guessed)."
    ),
]
ValueColumnOpt = Annotated[
    str | None,
    typer.Option(metavar="COLUMN", help="Long format: column of the values (default: guessed)."),
]
YearColumnOpt = Annotated[
    str | None, typer.Option(metavar="COLUMN", help="Column of the year, with --quarter-column.")
]
QuarterColumnOpt = Annotated[
    str | None,
    typer.Option(metavar="COLUMN", help="Column of the quarter (1-4), with --year-column."),
]


def _series_ids(parsed: list[ParsedSeries], prefix: str) -> list[str]:
    ids = []
    for item in parsed:
        series_id = prefix + item.name
        try:
            check_series_id(series_id)
        except ValidationError as exc:
            raise ValidationError(f"{series_id!r} {exc.message}", "id") from None
        ids.append(series_id)
    return ids


def _frequencies(
    catalog: Catalog,
    ids: list[str],
    parsed: list[ParsedSeries],
    given: str | None,
    file_frequency: str | None,
    meter: Meter,
) -> tuple[dict[str, Series | None], dict[str, str]]:
    existing: dict[str, Series | None] = {}
    frequencies: dict[str, str] = {}
    for series_id, item in zip(ids, parsed, strict=True):
        meter.advance()
        try:
            current: Series | None = catalog.get(series_id)
        except SeriesNotFoundError:
            current = None
        existing[series_id] = current
        if current is not None:
            if given is not None and given != current.frequency:
                raise ValidationError(
                    f"series {series_id!r} is {current.frequency}, not {given}", "frequency"
                )
            frequencies[series_id] = current.frequency
            continue
        frequency = given or file_frequency or frequency_of(item.dates, item.skipped_dates)
        if frequency is None:
            raise ValidationError(
                f"cannot infer the frequency of new series {series_id!r} from fewer than "
                "two dates; pass --frequency",
                "frequency",
            )
        frequencies[series_id] = frequency
    return existing, frequencies


def _commit(
    catalog: Catalog,
    tables: dict[str, pa.Table],
    specs: dict[str, dict[str, Any]],
    mode: str,
    name: str,
    meter: Meter,
) -> tuple[int, bool]:
    """Create the series of ``specs`` and write every table as one commit.

    Returns the catalog version holding the import and whether this commit made it:
    changes that change nothing (no rows at all) make no version.
    """
    meter.stage(f"importing {name}", total=len(tables), then="committing")
    before = catalog.version()
    owners: list[str] = []  # the series of each operation, in the batch's order
    try:
        with catalog.batch(f"import {name}") as batch:
            for series_id, table in tables.items():
                if series_id in specs:
                    owners.append(series_id)
                    batch.create(specs[series_id])
                if table.num_rows:
                    owners.append(series_id)
                    batch.write(series_id, table, mode)
                meter.advance()
    except ValidationError as exc:
        if not owners:
            raise
        # Rules that need the stored series (a range a replace may not leave) are
        # judged as the batch commits, or as the write is added: the engine's message
        # names the date, not the series. (Every row was judged alone, with its line,
        # by ParsedSeries.table.)
        failed = batch.failed_operation
        series_id = owners[failed if failed is not None else -1]
        raise ValidationError(f"series {series_id!r}: {exc.message}", exc.field) from None
    if batch.version is None:
        return before, False
    return batch.version, True


def _check_sources(existing: dict[str, Series | None], source: str) -> None:
    """``--source`` names the source of the series the import creates; a series that
    exists with another one is refused, as one of another ``--frequency`` is: the
    import would otherwise leave series of two sources the option said were one."""
    if not source:
        return
    for series_id, current in existing.items():
        if current is not None and current.source != source:
            raise ValidationError(
                f"series {series_id!r} exists with source {current.source!r}, not {source!r}; "
                "--source applies to the series an import creates",
                "source",
            )


def _check_source(value: str) -> str:
    """``--source`` checked by the rule the engine applies when the series is created,
    before the file is read, and explained in words rather than as a pattern."""
    try:
        parse_spec({"id": "source-check", "frequency": "annual", "source": value})
    except ValidationError as exc:
        raise typer.BadParameter(f"{value!r} is not a source name: {exc.message}") from None
    return value


@app.command("import")
def import_csv(
    ctx: typer.Context,
    file: Annotated[
        typer.FileText,
        typer.Argument(
            metavar="FILE.csv", help="The CSV file; '-' reads stdin.", encoding="utf-8-sig"
        ),
    ],
    layout: Annotated[
        Layout,
        typer.Option(
            "--format",
            help="wide: a date column and one column per series; long: id, date, value rows.",
        ),
    ],
    source: Annotated[
        str, typer.Option(help="Source of the series this creates.", callback=_check_source)
    ] = "",
    frequency: Annotated[
        str | None,
        typer.Option(
            help="Frequency of the series this creates; inferred from the dates if not given."
        ),
    ] = None,
    prefix: Annotated[str, typer.Option(help="Prefix of every series id, e.g. 'US.'.")] = "",
    date_column: DateColumnOpt = None,
    id_column: IdColumnOpt = None,
    value_column: ValueColumnOpt = None,
    year_column: YearColumnOpt = None,
    quarter_column: QuarterColumnOpt = None,
    mode: Annotated[
        ImportMode,
        typer.Option(help="upsert replaces values of equal dates; append adds later dates."),
    ] = ImportMode.upsert,
    as_json: JsonFlag = False,
) -> None:
    """Import many series from a CSV file in one commit, creating missing series.

    Dates may be ISO dates, 'Jan 1 2000' and similar spellings, or year and quarter
    columns (found automatically when named year and quarter). Empty, '.', 'NA',
    'N/A', '#N/A', 'NaN', 'null' and 'None' cells (in any case) are skipped. Without
    --date-column the first of date, month, period, time, timestamp and
    observation_date is used, else the first column. A file with a header and no
    rows commits nothing for series that exist (new ones are created empty).
    """
    if frequency is not None and frequency not in FREQUENCIES:
        raise typer.BadParameter(
            f"{frequency!r} is not one of {', '.join(FREQUENCIES)}", param_hint="'--frequency'"
        )
    if layout is Layout.wide and (id_column is not None or value_column is not None):
        raise typer.BadParameter(
            "--id-column and --value-column apply to --format long", param_hint="'--format'"
        )
    given = str(getattr(file, "name", "-"))
    name = "stdin" if given in ("-", "<stdin>") else os.path.basename(given)
    with progress(f"reading {name}") as meter:
        if layout is Layout.wide:
            parsed = read_wide(file, date_column, year_column, quarter_column)
            file_frequency = frequency_of(
                [d for item in parsed for d in item.dates],
                [d for item in parsed for d in item.skipped_dates],
            )
        else:
            parsed = read_long(
                file, id_column, date_column, value_column, year_column, quarter_column
            )
            file_frequency = None
        ids = _series_ids(parsed, prefix)

        with open_catalog(ctx) as catalog:
            meter.stage("checking series", total=len(ids))
            existing, frequencies = _frequencies(
                catalog, ids, parsed, frequency, file_frequency, meter
            )
            _check_sources(existing, source)
            tables = {
                sid: item.table(frequencies[sid]) for sid, item in zip(ids, parsed, strict=True)
            }
            specs = {
                sid: {
                    "id": sid,
                    "frequency": frequencies[sid],
                    "title": item.name,
                    "source": source,
                }
                for sid, item in zip(ids, parsed, strict=True)
                if existing[sid] is None
            }
            version, committed = _commit(catalog, tables, specs, mode.value, name, meter)

    data = {
        "series": len(ids),
        "created": sum(current is None for current in existing.values()),
        "observations": sum(table.num_rows for table in tables.values()),
        "committed": committed,
        "version": version,
        "ids": ids,
    }
    emit(data, as_json, _print_imported)


def _print_imported(data: dict[str, Any]) -> None:
    observations = plural(data["observations"], "observation")
    if data["committed"]:
        text = (
            f"Imported {observations} into {data['series']} series "
            f"({data['created']} created) as version {data['version']}."
        )
    else:
        text = (
            f"{observations} for {data['series']} series change "
            f"nothing: nothing committed; the catalog stays at version {data['version']}."
        )
    console().print(text)
