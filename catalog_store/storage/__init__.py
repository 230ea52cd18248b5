"""Storage backends behind one async interface, opened from a URL."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from catalog_store.errors import UnsupportedOperationError, ValidationError
from catalog_store.storage.base import ObjectInfo, Store, check_key
from catalog_store.storage.local import LocalStore
from catalog_store.storage.memory import MemoryStore, drop_memory_store

__all__ = [
    "LocalStore",
    "MemoryStore",
    "ObjectInfo",
    "Store",
    "check_key",
    "drop_memory_store",
    "open_store",
]


#: A bucket name as S3 and the stores that speak its protocol take one: AWS's rules
#: (3-63 lower-case letters, digits, dots and hyphens) and its legacy ones.
_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,255}")


def open_store(url: str | Path, storage_options: Mapping[str, Any] | None = None) -> Store:
    """Open the store a URL names.

    Accepted: a plain path or ``file://`` URL, ``memory://name``, and
    ``s3://bucket/prefix``. ``storage_options`` go to the backend (for S3: endpoint,
    credentials, region; the AWS environment variables fill in the rest).
    Raises ValidationError for a malformed URL and UnsupportedOperationError for a
    scheme no backend handles atomically.
    """
    text = str(url)
    if not text:
        raise ValidationError("store URL is empty", field="url")
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme in ("file", "memory", "s3", "s3a") and ("?" in text or "#" in text):
        # A URL drops them: s3://b/reports?2024 and s3://b/reports#eu would both open
        # s3://b/reports, and a write meant for one would land in the other.
        raise ValidationError(
            "a store URL has no query or fragment ('?' or '#'); "
            "name the prefix with other characters",
            field="url",
        )
    if scheme in ("", "file") or (len(scheme) == 1 and text[1:3] in (":\\", ":/")):
        if scheme == "file" and parsed.netloc not in ("", "localhost"):
            # file://data/x would name /x on host "data": refused, not guessed at.
            raise ValidationError(
                f"a file URL names an absolute path (file:///abs/path), not host "
                f"{parsed.netloc!r}; or give a plain path",
                field="url",
            )
        path = unquote(parsed.path) if scheme == "file" else text
        return LocalStore(path)
    if scheme == "memory":
        return MemoryStore((parsed.netloc + parsed.path).strip("/"))
    if scheme in ("s3", "s3a"):
        if not parsed.netloc:
            raise ValidationError("s3 URL needs a bucket: s3://bucket/prefix", field="url")
        if "@" in parsed.netloc:
            # Not repeated: what comes before the @ is a key and a secret.
            raise ValidationError(
                "an s3 URL names a bucket, not credentials (user:secret@): give them as "
                "the key and secret storage options, or in AWS_* variables",
                field="url",
            )
        if not _BUCKET.fullmatch(parsed.netloc):
            raise ValidationError(
                f"{parsed.netloc!r} is not an S3 bucket name (letters, digits, '.', '-' "
                "and '_', up to 255)",
                field="url",
            )
        from catalog_store.storage.s3 import S3Store

        return S3Store(parsed.netloc, parsed.path, storage_options)
    raise UnsupportedOperationError(
        f"no backend for {scheme!r} URLs with atomic create; use a path, memory:// or s3://"
    )
