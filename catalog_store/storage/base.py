"""The storage interface every backend implements.

Keys are relative, ``/``-separated paths (``_manifests/00000000000000000042.json``).
Every method is a coroutine; backends translate their own exceptions into
:mod:`catalog_store.errors` before they reach the caller.
"""

from __future__ import annotations

import builtins
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from catalog_store.errors import ValidationError

_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_.=~-]+$", re.ASCII)

#: True in calls whose event loop runs on a thread that waits for them anyway (the
#: synchronous Catalog's): a store may then do short blocking work on that thread
#: instead of handing it to a worker thread and back, two thread wake-ups that can
#: cost more than the work. Never set for a loop that serves others (the gateway).
caller_waits: ContextVar[bool] = ContextVar("fincat_caller_waits", default=False)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a store knows about one object without reading it."""

    key: str
    size: int
    modified: datetime | None = None


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise ValidationError.

    A key never escapes the store root: no empty segment, no ``.`` or ``..``,
    no absolute path, only a conservative set of characters.
    """
    if not key or key.startswith("/") or key.endswith("/"):
        raise ValidationError(f"invalid storage key {key!r}", field="key")
    for segment in key.split("/"):
        if segment in (".", "..") or not _KEY_SEGMENT.match(segment):
            raise ValidationError(f"invalid storage key {key!r}", field="key")
    return key


class Store(ABC):
    """An object store with atomic create.

    Concurrency: ``put_if_absent`` is the only synchronisation primitive. It is
    atomic across threads, processes and machines sharing the store: of any number
    of concurrent creators of one key, exactly one succeeds.
    """

    #: URL the store was opened from, without credentials.
    url: str

    @abstractmethod
    async def get(self, key: str) -> bytes:
        """Return the object's bytes.

        Raises ObjectNotFoundError if the key is absent, StorageError on failure.
        """

    @abstractmethod
    async def head(self, key: str) -> ObjectInfo:
        """Return the object's size (and modification time where known).

        Raises ObjectNotFoundError if the key is absent.
        """

    async def exists(self, key: str) -> bool:
        """Tell whether the key is present."""
        from catalog_store.errors import ObjectNotFoundError

        try:
            await self.head(key)
        except ObjectNotFoundError:
            return False
        return True

    @abstractmethod
    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        """Write the object, replacing any existing one atomically.

        A reader sees the old bytes or the new bytes, never a mixture. Safe to
        repeat. ``durable=False`` marks an advisory object whose readers accept
        any content (the "latest" hint: a reader checks what it names): a backend
        may then skip flushing it and may rewrite it in place, so that a reader
        can see a mixture of old and new bytes.
        """

    @abstractmethod
    async def put_if_absent(self, key: str, data: bytes) -> None:
        """Create the object only if the key is absent.

        Raises AlreadyExistsError if the key exists (including when an earlier
        attempt of the same call landed but its response was lost: the caller
        reads the object back to tell). Atomic across processes and machines.
        """

    async def put_new(self, key: str, data: bytes) -> None:
        """Write an immutable object under a key no other write uses; durable on return.

        Only for objects nothing reads before a manifest names them (data files,
        shards), since a backend may let a reader see one partly written: the
        manifest is created only after every such write has returned. A failed
        call may leave a partial object behind, which garbage collection removes
        like any object no version references. Repeating the call is safe.
        """
        await self.put(key, data)

    async def put_if_absent_after(self, key: str, data: bytes, ready: Awaitable[None]) -> None:
        """:meth:`put_if_absent`, once ``ready`` (the writes of what the object names)
        has completed; if ``ready`` raises, nothing is created and its error propagates.

        A backend may prepare the write meanwhile: a local disk flushes the new
        manifest's bytes while the objects it names are being flushed, so a commit
        waits for two rounds of flushes instead of four.
        """
        await ready
        await self.put_if_absent(key, data)

    @abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield every object whose key starts with ``prefix``, in no set order."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Delete the object. Deleting an absent key is not an error (repeat-safe)."""

    async def sweep_partial_writes(
        self, older_than: datetime, *, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        """Remove what writers that died mid-write left, older than ``older_than``.

        Such leftovers are no objects (no reader ever sees them); a backend that
        can leave them (temp files on a local disk) finds and removes them here.
        Returns what was (or, with ``dry_run``, would be) removed.
        """
        return []

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The store must not be used afterwards."""
