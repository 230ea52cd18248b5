"""The ``fincat`` application object, its global options and its error handling.

Commands live in sibling modules and register themselves on :data:`app`; other
packages may add their own commands the same way. Importing this module opens
nothing and touches no store.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from catalog_store.cli._common import DEFAULT_ROOT, Settings, parse_storage_options
from catalog_store.cli._output import OutputError
from catalog_store.errors import (
    AlreadyExistsError,
    CatalogMovedOnError,
    CatalogStoreError,
    CommitRetriesExhaustedError,
    CommitStateUnknownError,
    ExternalIdTakenError,
    StorageUnavailableError,
    ValidationError,
)

#: Exit statuses. Usage errors exit with 2, as every typer program does.
EXIT_ERROR = 1
EXIT_CONFLICT = 3
#: ``verify`` found damage (the report is printed first, as text or JSON).
EXIT_PROBLEMS = 4
#: The storage could not be reached, or did not say whether a commit landed.
EXIT_UNAVAILABLE = 5
#: Interrupted (Ctrl-C), as shells report a SIGINT.
EXIT_INTERRUPTED = 130
#: The reader of the output went away (``| head``), as shells report a SIGPIPE.
EXIT_BROKEN_PIPE = 141
INTERRUPTED = (
    "interrupted; a change it was committing has landed whole or not at all: "
    "`fincat log --limit 1` tells which"
)


def exit_code(exc: CatalogStoreError) -> int:
    """3 when the command lost a race and changed nothing, so that running it again
    may succeed; 5 when the storage failed in a way that may pass (unreachable,
    timing out, or leaving a commit's outcome unknown); else 1.

    Races: the commit lost to other writers too often, a series or object this
    command was creating was created by another writer first (run again, the
    command finds it), or a writer committed while repair verified. A conflict
    no rerun can cure is 1, as bad input is: an append that does not follow the
    last date (another writer may have appended those dates), a stale expected
    version (read again before deciding), an external id that belongs to another
    series.
    """
    if isinstance(exc, ExternalIdTakenError):
        return EXIT_ERROR
    if isinstance(exc, CommitRetriesExhaustedError | CatalogMovedOnError | AlreadyExistsError):
        return EXIT_CONFLICT
    if isinstance(exc, StorageUnavailableError | CommitStateUnknownError):
        return EXIT_UNAVAILABLE
    return EXIT_ERROR


def describe(exc: CatalogStoreError) -> str:
    """One line naming the field at fault once, if the error knows it."""
    text = str(exc)  # a ValidationError's names its field
    field = getattr(exc, "field", None)
    if field and not isinstance(exc, ValidationError) and not text.startswith(f"{field}:"):
        text = f"{field}: {text}"
    return " ".join(text.split())


class CatalogGroup(TyperGroup):
    """Turns the engine's expected errors into a message and an exit status.

    Unexpected exceptions still propagate with their traceback: those are bugs.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CatalogStoreError as exc:
            message = Text.assemble(("error:", "bold red"), " ", describe(exc))
            Console(stderr=True, highlight=False, soft_wrap=True).print(message)
            raise typer.Exit(exit_code(exc)) from None
        except KeyboardInterrupt:
            # The first Ctrl-C lets a commit under way land or fail before it is
            # raised, so the store holds it whole or not at all; which, only a read
            # tells: said here, where the command used to end without a word.
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                Text.assemble(("error:", "bold red"), " ", INTERRUPTED)
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except OutputError as exc:
            # Else the interpreter's last flush at exit fails again, with its own
            # traceback.
            # (No descriptor: a test's capture, or none at all, ``>&-``.)
            with contextlib.suppress(OSError, ValueError, AttributeError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            if isinstance(exc.cause, BrokenPipeError):
                raise typer.Exit(EXIT_BROKEN_PIPE) from None
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                Text.assemble(("error:", "bold red"), " ", OUTPUT_FAILED.format(exc))
            )
            raise typer.Exit(EXIT_ERROR) from None


OUTPUT_FAILED = (
    "cannot write the output: {}; it is cut short, and a change the command made "
    "was committed before it began"
)


app = typer.Typer(
    cls=CatalogGroup,
    name="fincat",
    help="Manage a fincat catalog of financial and economic time series.",
    epilog=(
        "Exit status: 0 on success, 1 for a missing series, invalid input, a conflict no "
        "rerun can cure or a storage failure no rerun can cure, 2 for a command-line usage "
        "error, 3 when the command lost a race with another writer and changed nothing "
        "(running it again may succeed), 4 when verify finds a problem, 5 when the storage "
        "could not be reached or a commit's outcome is unknown (read, then run it again "
        "later), 130 when interrupted (Ctrl-C), 141 when the output's reader went away. "
        "With --json, stdout holds one JSON document and nothing else; errors and "
        "progress go to stderr."
    ),
    no_args_is_help=True,
    # Markdown rewraps docstring paragraphs and leaves brackets alone.
    rich_markup_mode="markdown",
    # Storage options may carry credentials; tracebacks must never print them.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def configure(
    ctx: typer.Context,
    root: Annotated[
        str,
        typer.Option(
            "--root",
            envvar="FINCAT_ROOT",
            metavar="URL",
            help="Catalog location: a directory, a file:// URL or s3://bucket/prefix.",
        ),
    ] = DEFAULT_ROOT,
    storage_option: Annotated[
        list[str] | None,
        typer.Option(
            "--storage-option",
            metavar="KEY=VALUE",
            help=(
                "Option for the storage backend, repeatable (for S3: endpoint_url, key, "
                "secret...). VALUE true/false and JSON objects or lists are decoded."
            ),
        ),
    ] = None,
) -> None:
    """Settings shared by every command."""
    try:
        options = parse_storage_options(storage_option or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--storage-option'") from None
    ctx.obj = Settings(root=os.path.expanduser(root), storage_options=options)
