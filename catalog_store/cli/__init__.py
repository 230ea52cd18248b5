"""The ``fincat`` command line.

:data:`app` is the typer application; importing this package registers the
built-in commands and opens nothing. Other packages add commands with
``@app.command()``.
"""

from __future__ import annotations

# The command modules register their commands on ``app`` when imported.
from catalog_store.cli import catalog_commands as catalog_commands
from catalog_store.cli import data_commands as data_commands
from catalog_store.cli import import_command as import_command
from catalog_store.cli import maintenance_commands as maintenance_commands
from catalog_store.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``fincat`` script."""
    app(prog_name="fincat")
