"""Errors as a process pool carries them: pickled in the worker, rebuilt in the parent."""

from __future__ import annotations

import concurrent.futures
import copy
import multiprocessing
import pickle
from typing import Any

import pytest

from catalog_store import errors
from catalog_store.repair import RepairReport, RestoreAtRiskError
from catalog_store.revision_table import RevisionsTooLargeError

#: One of every error made from its parts, as the engine raises them.
MADE = [
    errors.ObjectNotFoundError("data/x.parquet"),
    errors.SeriesNotFoundError("NOPE", 4),
    errors.SeriesExistsError("GDP"),
    errors.ExternalIdTakenError("fred", "GDP", "GDP.US"),
    errors.ValidationError("must be positive", "limit"),
    errors.VersionMismatchError("GDP", 3, 5),
    errors.AppendOrderError("GDP", "2024-01-01", "2024-02-01"),
    errors.CommitRetriesExhaustedError("lost the race 200 times"),
    errors.CommitStateUnknownError("outcome unknown", "c0ffee", [7, 8]),
    RevisionsTooLargeError(2_000_001, 2_000_000),
    RestoreAtRiskError(RepairReport(latest_before=9, healthy_version=5, new_version=10), "why"),
]


def same(rebuilt: BaseException, made: BaseException) -> None:
    assert type(rebuilt) is type(made)
    assert str(rebuilt) == str(made)
    attributes = {k: v for k, v in vars(made).items() if k != "_made_with"}
    assert {k: v for k, v in vars(rebuilt).items() if k != "_made_with"} == attributes


@pytest.mark.parametrize("made", MADE, ids=lambda e: type(e).__name__)
def test_an_error_survives_pickling_and_copying(made: BaseException) -> None:
    """VersionMismatchError and its like could not be rebuilt (a worker raising one
    broke the pool), and others came back with their message wrapped in itself."""
    same(pickle.loads(pickle.dumps(made)), made)
    same(copy.copy(made), made)
    same(copy.deepcopy(made), made)


def raise_in_worker(index: int) -> Any:
    raise MADE[index]


def test_a_conflict_raised_in_a_pool_worker_reaches_the_parent_as_itself() -> None:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        for index, made in enumerate(MADE):
            with pytest.raises(type(made)) as raised:
                pool.submit(raise_in_worker, index).result(timeout=60)
            same(raised.value, made)


def test_a_catalog_says_it_cannot_be_pickled_or_copied(tmp_path: Any) -> None:
    """Pickling one failed on a lock, naming nothing; a copy shared the original's
    connections and was closed under its user when the original was collected."""
    from catalog_store import Catalog

    with Catalog.open(tmp_path / "store", create=True) as catalog:
        for how in (pickle.dumps, copy.copy, copy.deepcopy):
            with pytest.raises(TypeError, match="open one in each process"):
                how(catalog)
        with pytest.raises(TypeError, match="AsyncCatalog cannot be pickled"):
            pickle.dumps(catalog.inner)
        assert catalog.version() == 0
