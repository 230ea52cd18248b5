from __future__ import annotations

import datetime as dt

from tests.conftest import StoreTarget, new_bucket
from tests.s3server import LoopbackS3Server


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


def test_a_response_cut_short_is_storage_unavailable(s3_server: LoopbackS3Server) -> None:
    # aiohttp's payload error reached callers untranslated: a traceback from the
    # CLI, a 500 from the gateway, and a commit's read-back that settled nothing.
    import pytest

    from catalog_store import Catalog, CatalogOptions
    from catalog_store.errors import StorageUnavailableError

    bucket = new_bucket(s3_server.endpoint)
    options = {"endpoint_url": s3_server.endpoint, "key": "testing", "secret": "testing"}
    no_held = CatalogOptions(inline_rows=0, pending_records=0, store_timeout=10.0)
    cat = Catalog.open(f"s3://{bucket}/catalog", options, create=True, options=no_held)
    cat.create(id="GDP", frequency="quarterly")
    cat.write("GDP", ([dt.date(2020, 1, 1)], [1.5]))
    fresh = Catalog.open(f"s3://{bucket}/catalog", options, options=no_held)
    with s3_server.cut_bodies(r"/data/.*\.parquet$"), pytest.raises(StorageUnavailableError):
        fresh.read("GDP")
    assert fresh.read("GDP").column("value").to_pylist() == [1.5]
    for opened in (cat, fresh):
        opened.close()
