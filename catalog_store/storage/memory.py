"""An in-process store, for tests and scratch work.

Stores opened with the same ``memory://name`` URL in one process share their
objects, like fsspec's memory filesystem; different names are independent.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from catalog_store.errors import AlreadyExistsError, ObjectNotFoundError
from catalog_store.storage.base import ObjectInfo, Store, check_key

_Objects = dict[str, tuple[bytes, datetime]]
_REGISTRY: dict[str, tuple[threading.Lock, _Objects]] = {}
_REGISTRY_LOCK = threading.Lock()


class MemoryStore(Store):
    """Objects in a dict; a lock makes check-and-set atomic across threads."""

    def __init__(self, name: str = "") -> None:
        with _REGISTRY_LOCK:
            self._lock, self._objects = _REGISTRY.setdefault(name, (threading.Lock(), {}))
        self.url = f"memory://{name}"

    async def get(self, key: str) -> bytes:
        try:
            return self._objects[check_key(key)][0]
        except KeyError:
            raise ObjectNotFoundError(key) from None

    async def head(self, key: str) -> ObjectInfo:
        try:
            data, modified = self._objects[check_key(key)]
        except KeyError:
            raise ObjectNotFoundError(key) from None
        return ObjectInfo(key, len(data), modified)

    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        check_key(key)
        with self._lock:
            self._objects[key] = (bytes(data), datetime.now(UTC))

    async def put_if_absent(self, key: str, data: bytes) -> None:
        check_key(key)
        with self._lock:
            if key in self._objects:
                raise AlreadyExistsError(f"object exists: {key}")
            self._objects[key] = (bytes(data), datetime.now(UTC))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        with self._lock:
            matching = [(k, v) for k, v in self._objects.items() if k.startswith(prefix)]
        for key, (data, modified) in matching:
            yield ObjectInfo(key, len(data), modified)

    async def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._objects.pop(key, None)


def drop_memory_store(name: str) -> None:
    """Forget every object of the named in-memory store."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop(name, None)
