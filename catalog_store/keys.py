"""Where things live in a store: key layout and stable hashing.

See docs/storage-format.md. Series ids are case-sensitive but some file systems are
not, so every path derived from an id carries a hash of the exact id: ``GDP`` and
``gdp`` never share a directory.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import uuid
from collections.abc import Sequence

FORMAT_MARKER = "fincat.json"
MANIFEST_DIR = "_manifests"
LATEST_HINT = f"{MANIFEST_DIR}/_latest"
#: The oldest version kept under a retention policy; below it history has expired.
RETENTION_FLOOR = f"{MANIFEST_DIR}/_floor"
#: The outcome of the last full verify, for monitoring (advisory, overwritten).
VERIFY_STATUS = "_status/verify.json"
#: The outcome of the last latest-only verify (``--latest``): apart, so that a quick
#: check of the newest version never overwrites what the full one found.
VERIFY_LATEST_STATUS = "_status/verify-latest.json"
META_DIR = "meta"
XID_DIR = "xid"
DATA_DIR = "data"


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process, on every machine."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def shard_of(key: str, shard_count: int) -> int:
    """The external-id index shard that holds ``key``."""
    return stable_hash(key) % shard_count


def meta_shard_of(bounds: Sequence[str], series_id: str) -> int:
    """The metadata shard whose id range holds ``series_id`` (see Manifest.bounds)."""
    return bisect.bisect_right(bounds, series_id)


def manifest_key(version: int) -> str:
    """Key of the manifest of ``version``; zero-padded so keys sort by version."""
    return f"{MANIFEST_DIR}/{version:020d}.json"


def manifest_version(key: str) -> int | None:
    """The version a manifest key names, or None for any other key."""
    name = key.rpartition("/")[2]
    if key.startswith(f"{MANIFEST_DIR}/") and name.endswith(".json") and name[:-5].isdigit():
        return int(name[:-5])
    return None


def series_dir(series_id: str) -> str:
    """Directory of a series' observation files, unique even on case-folding disks."""
    return f"{DATA_DIR}/{series_id}~{stable_hash(series_id):016x}"


def data_file_key(series_id: str, partition: str) -> str:
    """A new, unique key for an observation file in ``partition`` (Hive-style)."""
    middle = f"{partition}/" if partition else ""
    return f"{series_dir(series_id)}/{middle}part-{uuid.uuid4().hex}.parquet"


def shard_file_key(kind: str, shard: int) -> str:
    """A new, unique key for one metadata or index shard object."""
    return f"{kind}/{shard:05d}/{uuid.uuid4().hex}.msgpack"


def table_part_key() -> str:
    """A new, unique key for one part of the metadata table (under ``meta/``)."""
    return f"{META_DIR}/table/{uuid.uuid4().hex}.arrow"


#: The keys this module makes under ``meta/``, ``xid/`` and ``data/``: the only ones
#: gc may delete. Anything else there (another catalog nested under this one's
#: ``data/``, a file an operator put) is not this catalog's to remove.
_OWN_OBJECT = re.compile(
    r"(?:(?:meta|xid)/[0-9]{5}/[0-9a-f]{32}\.msgpack"
    r"|meta/table/[0-9a-f]{32}\.arrow"
    r"|data/[^/]+~[0-9a-f]{16}/(?:[a-z]+=[0-9]+/)*part-[0-9a-f]{32}\.parquet)",
    re.ASCII,
)


def is_own_object(key: str) -> bool:
    """Whether ``key`` has the shape of an object this catalog writes (see _OWN_OBJECT)."""
    return _OWN_OBJECT.fullmatch(key) is not None


def checksum(data: bytes) -> str:
    """The checksum recorded for every object a manifest references."""
    return hashlib.sha256(data).hexdigest()
