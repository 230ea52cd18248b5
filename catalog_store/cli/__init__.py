"""The ``fincat`` command line.

:data:`app` is the typer application; importing this package registers the
built-in commands and opens nothing. Other packages add commands with
``@app.command()``.
"""

from __future__ import annotations

import sys

# The command modules register their commands on ``app`` when imported.
from catalog_store.cli import catalog_commands as catalog_commands
from catalog_store.cli import data_commands as data_commands
from catalog_store.cli import import_command as import_command
from catalog_store.cli import maintenance_commands as maintenance_commands
from catalog_store.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``fincat`` script."""
    escape_what_the_terminal_cannot_show()
    app(prog_name="fincat")


def escape_what_the_terminal_cannot_show() -> None:
    """Catalog text the output's encoding cannot hold (an accent under
    ``PYTHONIOENCODING=ascii``) is written escaped, where a table stopped half-printed
    with a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
