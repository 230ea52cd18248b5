"""What the commands print: JSON or text on stdout, progress on stderr.

Every command that reports goes through :func:`emit`, so ``--json`` behaves the
same everywhere: one JSON document on stdout and nothing else there. Long work
shows a bar through :func:`progress`, on stderr and only when stderr is an
interactive terminal, so pipes, files, CI logs and ``--json`` output stay clean.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

__all__ = [
    "JsonFlag",
    "Meter",
    "console",
    "emit",
    "err_console",
    "iso",
    "print_json",
    "progress",
]

#: The ``--json`` option of every reporting command.
JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json", help="Print one JSON document on stdout instead of text (see docs/cli.md)."
    ),
]

T = TypeVar("T")


def iso(value: Any) -> Any:
    """Dates as ISO 8601, instants in UTC with a ``Z``; anything else unchanged."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def plural(count: int, noun: str) -> str:
    """``1 row``, ``2 rows``: a count with its noun."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def print_json(value: Any) -> None:
    """Machine-readable output: plain JSON on stdout, no colour, no wrapping.

    Dates and instants become ISO 8601 strings; NaN and infinities are refused
    rather than written as JSON no parser accepts.
    """
    write_output(json.dumps(value, indent=2, default=iso, allow_nan=False) + "\n")


class OutputError(Exception):
    """stdout could not be written (disk full, the reader gone): no bug, so no
    traceback; :class:`~catalog_store.cli._app.CatalogGroup` says what happened."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(cause.strerror or str(cause))
        self.cause = cause


def write_output(text: str) -> None:
    """Write ``text`` to stdout as it is (OutputError if it cannot be written), the
    way the console writes: typer.echo wrote nothing, and said nothing, where the
    process has no stdout (``>&-``)."""
    out = _Stdout()
    out.write(text)
    out.flush()


def _stdout() -> Any:
    """sys.stdout; OSError (EBADF) where the process was started without one
    (``>&-``), which Python then sets to None."""
    if sys.stdout is None:
        raise OSError(errno.EBADF, "stdout is closed")
    return sys.stdout


class _Stdout:
    """sys.stdout as rich writes to it, a failed write raised as OutputError."""

    def write(self, text: str) -> int:
        try:
            written: int = _stdout().write(text)
            return written
        except OSError as exc:
            raise OutputError(exc) from exc

    def flush(self) -> None:
        try:
            _stdout().flush()
        except OSError as exc:
            raise OutputError(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stdout, name)


def emit(data: T, as_json: bool, text: Callable[[T], None]) -> None:
    """Print a command's result: ``data`` as JSON with ``--json``, else ``text(data)``.

    Commands build one result and render it either way, so the text and the JSON
    always say the same thing.
    """
    if as_json:
        print_json(data)
    else:
        text(data)


def console() -> Console:
    """Human-readable output on stdout. Markup is off: catalog text is printed as is."""
    return Console(file=_Stdout(), highlight=False, markup=False)  # type: ignore[arg-type]


def err_console() -> Console:
    """Progress and notes on stderr, so stdout stays clean for pipes."""
    return Console(stderr=True, highlight=False, markup=False)


def _interactive(out: Console) -> bool:
    """Whether a live bar may be drawn: stderr is a terminal that can redraw lines.

    Rich's own test honours FORCE_COLOR, which CI services set for colour in their
    logs; a bar redrawn into a log is noise, so the stream must really be a terminal.
    ``TTY_INTERACTIVE=0`` turns bars off even then.
    """
    try:
        tty = sys.stderr.isatty()
    except ValueError:  # closed
        return False
    return tty and out.is_interactive


class _Count(MofNCompleteColumn):
    """``done/total``, or nothing while the total is unknown."""

    def render(self, task: Task) -> Text:
        return Text("") if task.total is None else super().render(task)


class Meter:
    """The handle :func:`progress` yields.

    Calling it as ``meter(done, total)`` is the progress callback the engine's long
    operations take; :meth:`advance` counts steps of the command's own loops;
    :meth:`stage` starts the next phase. When the count reaches the total and a
    ``then`` description was given, the bar turns to that phase (e.g. committing).
    """

    def __init__(
        self, bar: Progress, description: str, total: int | None, then: str | None
    ) -> None:
        self._bar = bar
        self._task: TaskID = bar.add_task(description, total=total)
        self._done = 0
        self._total = total
        self._then = then

    def __call__(self, done: int, total: int) -> None:
        self._done, self._total = done, total
        self._show()

    def advance(self, steps: int = 1) -> None:
        self._done += steps
        self._show()

    def stage(self, description: str, total: int | None = None, then: str | None = None) -> None:
        """Start a new phase: a new description, a count from zero (None: unknown)."""
        self._bar.remove_task(self._task)
        self._done, self._total, self._then = 0, total, then
        self._task = self._bar.add_task(description, total=total)

    def _show(self) -> None:
        self._bar.update(self._task, completed=self._done, total=self._total)
        if self._then is not None and self._total is not None and self._done >= self._total:
            self.stage(self._then)


@contextmanager
def progress(
    description: str, total: int | None = None, then: str | None = None
) -> Iterator[Meter]:
    """Show a progress bar on stderr while the block runs; it is erased at the end.

    ``total`` is the number of steps, None while unknown (the bar pulses). Nothing
    is drawn unless stderr is an interactive terminal; stdout is never touched.
    """
    out = err_console()
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        _Count(),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=not _interactive(out),
        # Output written while the bar is up must land where it was meant to go.
        redirect_stdout=False,
    )
    with bar:
        yield Meter(bar, description, total, then)
