"""Commands that keep a store healthy: verify, gc, repair."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from catalog_store.cli._app import EXIT_PROBLEMS, app
from catalog_store.cli._common import open_catalog
from catalog_store.cli._output import JsonFlag, console, emit, plural, progress
from catalog_store.maintenance import DEFAULT_GRACE

#: Problems listed one per line by the text report; --json lists them all.
SHOWN_PROBLEMS = 50
#: The longest grace period and retention gc takes, 100 years: no catalog is that
#: old, and far longer ones reach back before the year 1, which no date can hold.
MAX_DAYS = 36525
MAX_HOURS = MAX_DAYS * 24


def _from_zero_to(highest: int) -> Callable[[float | None], float | None]:
    """An option's range check. click's own let nan through to a message about
    the upper bound ("less than or equal to 876600")."""

    def check(value: float | None) -> float | None:
        if value is not None and not 0 <= value <= highest:  # nan is neither
            raise typer.BadParameter(f"must be a number from 0 to {highest}, not {value}")
        return value

    return check


@app.command()
def verify(
    ctx: typer.Context,
    latest: Annotated[
        bool, typer.Option("--latest", help="Check the newest version only.")
    ] = False,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--no-record",
            help="Keep the outcome in the store (_status/verify.json, with --latest "
            "_status/verify-latest.json) for the gateways' metrics; skipped with a warning "
            "where the credentials cannot write.",
        ),
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Check every version: manifests chain, objects match their checksums, derived
    fields match the files. Exits 4 when a problem is found, with --json too."""
    after = None if latest else "looking for orphans"
    with open_catalog(ctx) as catalog, progress("verifying versions", then=after) as meter:
        report = catalog.verify(latest_only=latest, progress=meter, record=record)
    emit(report.to_dict(), as_json, _print_verified)
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEMS)


def _print_verified(data: dict[str, Any]) -> None:
    out = console()
    table = Table("check", "result")
    table.add_row("versions checked", str(data["versions_checked"]))
    table.add_row("objects checked", str(data["objects_checked"]))
    table.add_row("series states checked", str(data["series_checked"]))
    table.add_row("orphans (reclaimed by gc)", str(data["orphans"]))
    for kind, count in sorted(data["problem_counts"].items()):
        table.add_row(Text(kind, style="red"), str(count))
    out.print(table)
    problems = data["problems"]
    for problem in problems[:SHOWN_PROBLEMS]:
        out.print(
            Text.assemble(
                (problem["kind"], "red"),
                f" v{problem['version']} {problem['key']}: {problem['detail']}",
            )
        )
    if len(problems) > SHOWN_PROBLEMS:
        out.print(f"... and {len(problems) - SHOWN_PROBLEMS} more (--json lists them all)")
    superseded = data["superseded_problems"]
    if superseded:
        versions = sorted({p["version"] for p in superseded})
        out.print(
            f"{plural(len(superseded), 'problem')} in versions a repair superseded "
            f"({', '.join(map(str, versions))}): history only, not the catalog"
        )
    out.print(Text("OK", style="green") if data["ok"] else Text("PROBLEMS FOUND", style="red"))


@app.command()
def gc(
    ctx: typer.Context,
    grace_hours: Annotated[
        float,
        typer.Option(
            "--grace-hours",
            callback=_from_zero_to(MAX_HOURS),
            help=f"Keep unreferenced objects younger than this (0 to {MAX_HOURS}).",
        ),
    ] = DEFAULT_GRACE.total_seconds() / 3600,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go; delete nothing.")
    ] = False,
    retain_days: Annotated[
        float | None,
        typer.Option(
            "--retain-days",
            callback=_from_zero_to(MAX_DAYS),
            help=f"Expire versions superseded more than this many days ago, 0 to {MAX_DAYS} "
            "(default: keep every version).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete objects that no kept version references and that are older than the grace
    period. Every version is kept unless --retain-days is given: as-of reads and
    revisions rely on them."""
    retain = None if retain_days is None else dt.timedelta(days=retain_days)
    with open_catalog(ctx) as catalog, progress("collecting garbage") as meter:
        report = catalog.collect_garbage(
            dt.timedelta(hours=grace_hours), dry_run=dry_run, progress=meter, retain=retain
        )
    emit({**report.to_dict(), "candidates": report.candidates}, as_json, _print_collected)


def _print_collected(data: dict[str, Any]) -> None:
    out = console()
    dry_run = data["dry_run"]
    for key in data["candidates"] if dry_run else []:
        out.print(key)
    verb = "would delete" if dry_run else "deleted"
    count = data["unreferenced_old_enough"] if dry_run else data["deleted"]
    out.print(
        f"{data['referenced']} objects referenced; {verb} {count} unreferenced "
        f"({data['unreferenced_too_young']} younger than the grace period kept)"
    )
    if data["expired_versions"]:
        verb = "would expire" if dry_run else "expired"
        out.print(
            f"{verb} {data['expired_versions']} versions; "
            f"the oldest kept is {data['oldest_version']}"
        )
    if data["restores_in_progress"] and not dry_run:
        out.print(
            "deleted no object: a repair is restoring an older version "
            f"({', '.join(data['restores_in_progress'])}); run gc again once it has finished"
        )


@app.command()
def repair(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Move the catalog back to the newest version that verifies, as a new commit.
    Deletes nothing; refuses when no version can be proven whole."""
    with open_catalog(ctx) as catalog, progress("looking for the newest whole version"):
        report = catalog.repair()
    emit(report.to_dict(), as_json, _print_repaired)


def _print_repaired(data: dict[str, Any]) -> None:
    out = console()
    out.print(data["message"])
    if data["lost_changes"]:
        lost = ", ".join(f"{kind} {key}" for kind, key in data["lost_changes"])
        out.print(f"changes no longer current: {lost}")
