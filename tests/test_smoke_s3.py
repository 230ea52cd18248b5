from __future__ import annotations

import datetime as dt

from tests.conftest import StoreTarget


def test_round_trip_on_every_backend(target: StoreTarget) -> None:
    cat = target.open()
    try:
        cat.create(id="GDP", frequency="quarterly")
        cat.write("GDP", ([dt.date(2020, 1, 1)], [1.5]))
        assert cat.read("GDP").column("value").to_pylist() == [1.5]
    finally:
        cat.close()


def test_a_missing_bucket_is_named_not_taken_for_a_missing_object(s3_endpoint: str) -> None:
    import pytest

    from catalog_store import Catalog
    from catalog_store.errors import ObjectNotFoundError, StorageError

    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    with pytest.raises(StorageError, match="bucket does not exist") as raised:
        Catalog.open("s3://no-such-bucket/catalog", options, create=True)
    assert not isinstance(raised.value, ObjectNotFoundError)
