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


def test_s3_options_no_rerun_cures_are_invalid_and_credentials_never_repeated(
    s3_endpoint: str,
) -> None:
    """Before, a bad region or bucket name was "storage unavailable" (run again
    later: exit 5, HTTP 503), and credentials in the URL or the endpoint were
    repeated in the error."""
    import asyncio

    import pytest

    from catalog_store import Catalog
    from catalog_store.errors import ValidationError
    from catalog_store.storage import open_store

    secret = "Sup3rSecretValue"
    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    refusals: list[tuple[str, dict[str, object], str]] = [
        (f"s3://AKID:{secret}@bucket/cat", options, "url"),
        ("s3://bad bucket/cat", options, "url"),
        ("s3://bucket:9000/cat", options, "url"),
        (
            "s3://bucket/cat",
            {**options, "endpoint_url": f"http://user:{secret}@127.0.0.1:9"},
            "storage_options",
        ),
        ("s3://bucket/cat", {**options, "region": "us east 1"}, "storage_options"),
        ("s3://bucket/cat", {**options, "endpoint_url": "http://[::1:9000"}, "storage_options"),
        (
            "s3://bucket/cat",
            {**options, "region": "eu-west-1", "region_name": "us-east-1"},
            "storage_options",
        ),
    ]
    for url, given, field in refusals:
        with pytest.raises(ValidationError) as info:
            Catalog.open(url, given, create=True)
        assert info.value.field == field, url
        assert secret not in str(info.value), str(info.value)
    # The same region twice is one region.
    same = open_store(
        "s3://bucket/cat", {**options, "region": "us-east-1", "region_name": "us-east-1"}
    )
    asyncio.run(same.close())


def test_an_async_catalog_used_on_another_loop_says_so(s3_endpoint: str) -> None:
    """Opened in one asyncio.run and used in another: the S3 client's connections
    belong to the first loop. It failed as StorageUnavailableError ("run again")
    after seconds of retries, so a caller that retries on it never stopped."""
    import asyncio
    import gc
    import warnings

    import pytest

    from catalog_store import AsyncCatalog

    url = f"s3://{new_bucket(s3_endpoint)}/catalog"
    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}

    async def make() -> AsyncCatalog:
        catalog = await AsyncCatalog.open(url, options, create=True)
        await catalog.create({"id": "S", "frequency": "annual"})
        return catalog

    catalog = asyncio.run(make())
    catalog.reader.max_staleness = 0.0
    with pytest.raises(RuntimeError, match="another event loop"):
        asyncio.run(catalog.get("S"))
    # Its connections died with their loop and cannot be closed from another: let
    # them go here, rather than warn in whichever test collects them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del catalog
        gc.collect()
