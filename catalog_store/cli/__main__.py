"""``python -m catalog_store.cli``: the same as the ``fincat`` script."""

from __future__ import annotations

from catalog_store.cli import main

main()
