"""What a process that caches "the latest version" may and may not miss.

A catalog opened with ``max_staleness`` serves the newest version it knows for
that long without asking the store; these tests hold it to the rest of the
contract: an as-of read is never stale, and a version the store no longer holds
is never built on, nor served for longer than a refresh.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from catalog_store import Catalog, CatalogOptions

LAZY = CatalogOptions(max_staleness=3600.0)


def test_an_as_of_instant_after_the_known_latest_asks_the_store(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    writer = Catalog.open(root, create=True)
    writer.create(id="A", frequency="annual", title="first")
    reader = Catalog.open(root, options=LAZY)
    assert reader.get("A").title == "first"  # the reader now knows version 1
    writer.update("A", {"title": "second"})  # version 2, another process's
    at = writer.get("A").updated_at
    assert reader.get("A").title == "first", "the reader was expected to be stale here"
    assert reader.get("A", as_of=at).title == "second"
    assert reader.get("A", as_of=at - dt.timedelta(microseconds=1)).title == "first"
    for opened in (writer, reader):
        opened.close()
