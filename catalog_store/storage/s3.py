"""A store on S3-compatible object storage, through s3fs.

Atomic create is ``PutObject`` with ``If-None-Match: *``: the service decides, and a
loser gets 412. Manifests are small and always go in one request, because s3fs
drops conditional headers on multipart uploads. A 409 (ConditionalRequestConflict)
is transient; a timeout or 5xx on a conditional put leaves the outcome unknown,
which the commit protocol settles by reading the object back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientError as HTTPClientError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    InvalidConfigError,
    InvalidEndpointConfigurationError,
    InvalidS3AddressingStyleError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import ValidationError as BotoValidationError
from s3fs import S3FileSystem

from catalog_store.errors import (
    AlreadyExistsError,
    ObjectNotFoundError,
    StorageError,
    StorageFullError,
    StoragePermissionError,
    StorageUnavailableError,
    ValidationError,
)
from catalog_store.storage.base import ObjectInfo, Store, check_key

_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
_PERMISSION_CODES = {"AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId"}
_FULL_CODES = {"QuotaExceeded", "EntityTooLarge", "507"}
#: Throttling and timeouts, by the codes S3 and S3-compatible services send (some
#: with a 400 or a 429): a later try may pass.
_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "TooManyRequests",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
    }
)
#: Credentials that are not configured: no rerun finds them, so not an outage.
_MISSING_CREDENTIALS = (NoCredentialsError, PartialCredentialsError, ProfileNotFound)
#: What botocore refuses in the options or the request it was given (InvalidRegionError
#: is a ValidationError): wrong, not unreachable.
_UNUSABLE_OPTIONS = (
    ParamValidationError,
    BotoValidationError,
    InvalidConfigError,
    InvalidEndpointConfigurationError,
    InvalidS3AddressingStyleError,
)


def _client_error(exc: BaseException) -> ClientError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ClientError):
            return seen
        seen = seen.__cause__
    return None


def _on_another_loop(exc: BaseException) -> bool:
    """Whether ``exc`` comes of aiohttp used from an event loop not its own."""
    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        text = str(found)
        if isinstance(found, RuntimeError) and (
            "attached to a different loop" in text or "Event loop is closed" in text
        ):
            return True
        wrapped = getattr(found, "kwargs", {}).get("error")  # botocore's HTTPClientError
        found = (
            wrapped if isinstance(wrapped, BaseException) else found.__cause__ or found.__context__
        )
    return False


@contextlib.contextmanager
def translate_s3_errors(key: str) -> Iterator[None]:
    """Turn botocore, aiohttp and s3fs errors into fincat's tree, in one place."""
    try:
        yield
    except _MISSING_CREDENTIALS as exc:
        raise StoragePermissionError(
            f"no S3 credentials: {exc}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE), or give the store's key and secret options"
        ) from exc
    except _UNUSABLE_OPTIONS as exc:
        # botocore refuses what it was given (a region with a space, a bucket it
        # will not address): no rerun cures it, as "unavailable" would tell.
        raise ValidationError(
            f"the S3 storage options are not usable: {exc}", "storage_options"
        ) from exc
    except (TimeoutError, ConnectionError, BotoCoreError, HTTPClientError) as exc:
        if _on_another_loop(exc):
            # A program's error, which no retry cures: "unavailable" had the caller
            # retry for good (see AsyncCatalog).
            raise RuntimeError(
                "this catalog's S3 connections belong to another event loop (an "
                "AsyncCatalog opened in one asyncio.run and used in another, or awaited "
                "on a loop that is not its own): open one in the loop that uses it"
            ) from exc
        # HTTPClientError: a response cut short (ClientPayloadError) and the like,
        # which reach here untranslated when botocore reads a body.
        raise StorageUnavailableError(f"{key}: {type(exc).__name__}: {exc}") from exc
    except (OSError, ClientError) as exc:
        client = _client_error(exc)
        code = ""
        status = 0
        if client is not None:
            code = str(client.response.get("Error", {}).get("Code", ""))
            status = int(client.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code == "NoSuchBucket":
            # Not an absent object: nothing at all can be stored until it is created.
            raise StorageError(f"{key}: the bucket does not exist; create it first") from exc
        if isinstance(exc, FileNotFoundError) or code in _NOT_FOUND_CODES or status == 404:
            raise ObjectNotFoundError(key) from None
        if status == 412 or code == "PreconditionFailed" or isinstance(exc, FileExistsError):
            raise AlreadyExistsError(f"object exists: {key}") from None
        # Before the permission test: some servers send QuotaExceeded as a 403.
        if code in _FULL_CODES or status == 507:
            raise StorageFullError(f"{key}: {exc}") from exc
        if isinstance(exc, PermissionError) or code in _PERMISSION_CODES or status == 403:
            raise StoragePermissionError(f"{key}: {exc}") from exc
        if status in (409, 429) or status >= 500 or code in _RETRYABLE_CODES:
            raise StorageUnavailableError(f"{key}: {exc}") from exc
        if client is None:
            # aiohttp and socket errors surface as plain OSError subclasses.
            raise StorageUnavailableError(f"{key}: {type(exc).__name__}: {exc}") from exc
        raise StorageError(f"{key}: {exc}") from exc


class S3Store(Store):
    """Objects under ``s3://bucket/prefix``.

    ``options`` go to :class:`s3fs.S3FileSystem` (``endpoint_url``, ``key``,
    ``secret``, ``client_kwargs={"region_name": ...}`` …); what they leave out comes
    from the usual AWS environment variables and configuration files.
    """

    def __init__(self, bucket: str, prefix: str = "", options: Mapping[str, Any] | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        opts = dict(options or {})
        if not isinstance(opts.get("client_kwargs", {}), Mapping):
            raise ValidationError(
                "the S3 storage options cannot make a client: client_kwargs must be a "
                'JSON object (client_kwargs={"region_name": "eu-west-1"})',
                "storage_options",
            )
        given = {name: opts.pop(name) for name in ("region", "region_name") if name in opts}
        if len(set(given.values())) > 1:
            raise ValidationError(
                f"region {given['region']!r} and region_name {given['region_name']!r} "
                "disagree; give one",
                "storage_options",
            )
        region = next(iter(given.values()), None)
        if region:
            opts["client_kwargs"] = {**opts.get("client_kwargs", {}), "region_name": region}
        for endpoint in (
            opts.get("endpoint_url"),
            opts.get("client_kwargs", {}).get("endpoint_url"),
        ):
            try:
                netloc = urlsplit(endpoint).netloc if isinstance(endpoint, str) else ""
            except ValueError as exc:  # "Invalid IPv6 URL"
                raise ValidationError(
                    f"endpoint_url is not a URL: {exc}", "storage_options"
                ) from None
            if "@" in netloc:
                # Not repeated: before the @ is a user and a secret, which the S3
                # client would not use (it signs each request with the key).
                raise ValidationError(
                    "endpoint_url carries credentials (user:secret@); give them as the "
                    "key and secret storage options",
                    "storage_options",
                )
        opts.setdefault("skip_instance_cache", True)
        opts.setdefault("use_listings_cache", False)
        try:
            self._fs = S3FileSystem(asynchronous=True, **opts)
        except (ValueError, TypeError) as exc:
            raise ValidationError(
                f"the S3 storage options are not usable: {exc}", "storage_options"
            ) from None
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def _call(self, method: str, key: str, **kwargs: Any) -> Any:
        await self._connect()
        with translate_s3_errors(key):
            return await self._fs._call_s3(method, Bucket=self.bucket, **kwargs)

    async def _connect(self) -> None:
        """Make the S3 client, on first use: s3fs makes it then, and an option it
        cannot take (an endpoint without a scheme, an unknown keyword) fails there,
        as ValueError or TypeError from inside aiobotocore."""
        if self._fs._s3 is not None:
            return
        try:
            with translate_s3_errors("the S3 client"):
                await self._fs.set_session()
        except ValidationError:
            raise  # translated already (a ValueError too)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValidationError(
                f"the S3 storage options cannot make a client: {exc}", "storage_options"
            ) from None

    async def get(self, key: str) -> bytes:
        out = await self._call("get_object", key, Key=self._key(key))
        with translate_s3_errors(key):
            async with out["Body"] as body:
                data: bytes = await body.read()
        return data

    async def head(self, key: str) -> ObjectInfo:
        out = await self._call("head_object", key, Key=self._key(key))
        modified = out.get("LastModified")
        return ObjectInfo(
            key, int(out["ContentLength"]), modified if isinstance(modified, datetime) else None
        )

    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        await self._call("put_object", key, Key=self._key(key), Body=bytes(data))

    async def put_if_absent(self, key: str, data: bytes) -> None:
        await self._call("put_object", key, Key=self._key(key), Body=bytes(data), IfNoneMatch="*")

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": full}
            if token:
                kwargs["ContinuationToken"] = token
            page = await self._call("list_objects_v2", prefix, **kwargs)
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"][strip:], int(item["Size"]), item.get("LastModified"))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def delete(self, key: str) -> None:
        await self._call("delete_object", key, Key=self._key(key))

    async def close(self) -> None:
        s3 = self._fs._s3
        if s3 is not None:
            with contextlib.suppress(Exception):
                await s3.__aexit__(None, None, None)
            self._fs._s3 = None
