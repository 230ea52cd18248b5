"""Fixtures for the ``fincat`` CLI tests: the ``--root`` arguments of a catalog to run against."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import as_json, cli, roots
from tests.conftest import StoreTarget


@pytest.fixture
def local(tmp_path: Path) -> list[str]:
    return ["--root", str(tmp_path / "catalog")]


@pytest.fixture
def demo_root(shared_target: StoreTarget) -> list[str]:
    args = roots(shared_target)
    as_json(cli(*args, "demo", "--json"))
    return args


@pytest.fixture
def series_root(shared_target: StoreTarget) -> list[str]:
    """A catalog with one empty monthly series, created on its own."""
    with shared_target.open() as catalog:
        catalog.create(id="EX.SALES", frequency="monthly", title="Sales", units="USD")
    return roots(shared_target)
