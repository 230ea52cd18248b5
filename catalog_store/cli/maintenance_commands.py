"""Commands that keep a store healthy: verify, gc, repair."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from catalog_store.cli._app import app
from catalog_store.cli._common import console, open_catalog, print_json
from catalog_store.maintenance import DEFAULT_GRACE

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for monitoring.")]


@app.command()
def verify(
    ctx: typer.Context,
    latest: Annotated[
        bool, typer.Option("--latest", help="Check the newest version only.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check every version: manifests chain, objects match their checksums, derived
    fields match the files. Exits 4 when a problem is found."""
    with open_catalog(ctx) as catalog, Progress(console=console(), transient=True) as bar:
        task = bar.add_task("verifying", total=None)
        report = catalog.verify(
            latest_only=latest,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(report.to_dict())
    else:
        table = Table("check", "result")
        table.add_row("versions checked", str(report.versions_checked))
        table.add_row("objects checked", str(report.objects_checked))
        table.add_row("series states checked", str(report.series_checked))
        table.add_row("orphans (reclaimed by gc)", str(len(report.orphans)))
        for kind, count in sorted(report.counts().items()):
            table.add_row(f"[red]{kind}[/red]", str(count))
        console().print(table)
        for problem in report.problems[:50]:
            console().print(
                f"[red]{problem.kind}[/red] v{problem.version} {problem.key}: {problem.detail}"
            )
        console().print("[green]OK[/green]" if report.ok else "[red]PROBLEMS FOUND[/red]")
    if not report.ok:
        raise typer.Exit(4)


@app.command()
def gc(
    ctx: typer.Context,
    grace_hours: Annotated[
        float,
        typer.Option("--grace-hours", min=0, help="Keep unreferenced objects younger than this."),
    ] = DEFAULT_GRACE.total_seconds() / 3600,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go; delete nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete objects that no version references and that are older than the grace period.
    Every version is kept: as-of reads and revisions rely on them."""
    with open_catalog(ctx) as catalog:
        report = catalog.collect_garbage(dt.timedelta(hours=grace_hours), dry_run=dry_run)
    if as_json:
        print_json({**report.to_dict(), "candidates": report.candidates})
        return
    for key in report.candidates if dry_run else []:
        console().print(key)
    verb = "would delete" if dry_run else "deleted"
    console().print(
        f"{report.referenced} objects referenced; {verb} "
        f"{len(report.candidates) if dry_run else report.deleted} unreferenced "
        f"({report.too_young} younger than the grace period kept)"
    )


@app.command()
def repair(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Move the catalog back to the newest version that verifies, as a new commit.
    Deletes nothing; refuses when no version can be proven whole."""
    with open_catalog(ctx) as catalog:
        report = catalog.repair()
    if as_json:
        print_json(report.to_dict())
        return
    console().print(report.message)
    if report.lost_changes:
        console().print(f"changes no longer current: {report.lost_changes}")
