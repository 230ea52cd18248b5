"""The one error tree of fincat.

Every error the engine raises derives from :class:`CatalogStoreError`. Backend
exceptions (``OSError``, botocore) are translated at the storage boundary and never
leak upward. Where a builtin with the same meaning exists, the error subclasses it
too, so callers may catch either::

    CatalogStoreError
    ├── NotFoundError (LookupError)
    │   ├── ObjectNotFoundError (FileNotFoundError)
    │   ├── SeriesNotFoundError (KeyError)
    │   └── VersionNotFoundError
    ├── AlreadyExistsError (FileExistsError)
    │   ├── SeriesExistsError
    │   └── ExternalIdTakenError
    ├── ValidationError (ValueError)            field at fault in ``.field``
    ├── ConflictError                           the commit certainly did not land
    │   ├── VersionMismatchError                stale expected version
    │   ├── AppendOrderError                    append no longer follows the last date
    │   └── CommitRetriesExhaustedError         too many lost races, ``.reason`` says why
    ├── CommitStateUnknownError                 the commit may or may not have landed
    ├── IntegrityError                          size or checksum mismatch, unparseable object
    ├── StorageError
    │   ├── StorageUnavailableError             transient: network, 5xx, timeouts
    │   ├── StorageFullError                    ENOSPC, quota
    │   ├── StoragePermissionError              403, EACCES, read-only file system
    │   └── UnsupportedOperationError           the backend cannot do it atomically
    ├── FormatError                             unknown store format or version
    ├── CatalogClosedError (RuntimeError)       a call after close()
    └── BatchEndedError (RuntimeError)          a change added to a batch after its block
"""

from __future__ import annotations

import functools
from typing import Any


class CatalogStoreError(Exception):
    """Root of every error raised by fincat's storage engine.

    An error crosses to another process (a pool's worker raising it) pickled. Python
    rebuilds an exception from its message alone, which an error made from its
    parts (``VersionMismatchError(series_id, expected, actual)``) cannot take: the
    pool broke, or the message came back wrapped in itself. So each error keeps the
    arguments it was made with and is rebuilt from them, with its attributes.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def remembering(self: CatalogStoreError, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            # The outermost, the error's own class, sets it last.
            self.__dict__["_made_with"] = (args, kw)

        cls.__init__ = remembering  # type: ignore[assignment,method-assign]

    def __reduce__(self) -> Any:
        made_with = self.__dict__.get("_made_with")
        if made_with is None:
            return super().__reduce__()
        args, kwargs = made_with
        return (_remade, (type(self), args, kwargs), self.__dict__)


def _remade(cls: type[CatalogStoreError], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return cls(*args, **kwargs)


class NotFoundError(CatalogStoreError, LookupError):
    """Something asked for does not exist."""


class ObjectNotFoundError(NotFoundError, FileNotFoundError):
    """A key is absent from the store."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object not found: {key}")
        self.key = key


class SeriesNotFoundError(NotFoundError, KeyError):
    """No series with this id exists at the version read."""

    def __init__(self, series_id: str, version: int | None = None, detail: str = "") -> None:
        at = f" at version {version}" if version is not None else ""
        super().__init__(f"series not found: {series_id!r}{detail or at}")
        self.series_id = series_id
        self.version = version

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class VersionNotFoundError(NotFoundError):
    """The catalog has no version matching the request."""


class AlreadyExistsError(CatalogStoreError, FileExistsError):
    """A put-if-absent found the key taken, or an id is already in use."""


class SeriesExistsError(AlreadyExistsError):
    """A series with this id already exists."""

    def __init__(self, series_id: str) -> None:
        super().__init__(f"series already exists: {series_id!r}")
        self.series_id = series_id
        self.field = "id"


class ExternalIdTakenError(AlreadyExistsError):
    """An external id (provider, id) is already attached to another series."""

    def __init__(self, provider: str, external_id: str, owner: str) -> None:
        super().__init__(
            f"external id {provider}:{external_id} already belongs to series {owner!r}"
        )
        self.field = f"external_ids.{provider}"
        self.owner = owner


class ValidationError(CatalogStoreError, ValueError):
    """Bad input. ``field`` names the field at fault (dotted path), if any."""

    def __init__(
        self,
        message: str,
        field: str | None = None,
        problems: list[dict[str, str]] | None = None,
    ) -> None:
        # A report of several problems names each field in its message already.
        named = not field or message.startswith(f"{field}: ")
        super().__init__(message if named else f"{field}: {message}")
        self.field = field
        self.message = message
        #: Every problem found, each ``{"field": ..., "message": ...}``.
        self.problems = problems or [{"field": field or "", "message": message}]


class ConflictError(CatalogStoreError):
    """The commit lost to a concurrent one and certainly did not land."""


class VersionMismatchError(ConflictError):
    """An expected version no longer matches: someone else changed the series."""

    def __init__(self, series_id: str, expected: int, actual: int | None) -> None:
        now = f"is at version {actual}" if actual is not None else "is new in this commit"
        super().__init__(f"series {series_id!r} {now}, expected version {expected}")
        self.series_id = series_id
        self.expected = expected
        self.actual = actual


class AppendOrderError(ConflictError):
    """An append's first date does not follow the series' last date."""

    def __init__(self, series_id: str, first_new: object, last_existing: object) -> None:
        super().__init__(
            f"append to {series_id!r} starts at {first_new}, "
            f"not after the last observation {last_existing}"
        )
        self.series_id = series_id
        self.field = "dates"


class CatalogMovedOnError(ConflictError):
    """A commit landed, or a gc under retention expired a version, while a command
    that needs the catalog to hold still (repair) was looking at it; it changed
    nothing, and running it again may succeed."""


class CommitRetriesExhaustedError(ConflictError):
    """The commit lost the race too often or for too long and gave up."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"commit gave up: {reason}")
        self.reason = reason


class CommitStateUnknownError(CatalogStoreError):
    """The commit write failed in a way that leaves its outcome unknown.

    ``commit_id`` is recorded in the manifest if it landed, at one of ``versions``.
    """

    def __init__(self, message: str, commit_id: str = "", versions: list[int] | None = None):
        super().__init__(message)
        self.commit_id = commit_id
        self.versions = versions or []

    def summary(self) -> str:
        """What a client is told: the commit and its versions, without the storage
        failure behind it, which names the store's endpoint, bucket and keys."""
        return (
            f"commit {self.commit_id}: outcome of version(s) {self.versions} unknown; "
            "read whether it landed before writing again"
        )


class IntegrityError(CatalogStoreError):
    """An object's size or checksum does not match its record, or it cannot be parsed."""


class StorageError(CatalogStoreError):
    """The storage backend failed."""


class StorageUnavailableError(StorageError):
    """A transient failure: network error, timeout, 5xx. Safe to retry."""


class StorageFullError(StorageError):
    """The storage has no space left (ENOSPC, quota)."""


class StoragePermissionError(StorageError, PermissionError):
    """Access denied or the storage is read-only."""


class UnsupportedOperationError(StorageError):
    """The backend cannot perform the operation atomically, so it refuses."""


class FormatError(CatalogStoreError):
    """The store's format marker is missing, unknown or newer than this code."""


class CatalogClosedError(CatalogStoreError, RuntimeError):
    """The catalog was closed; open it again to use it."""


class BatchEndedError(CatalogStoreError, RuntimeError):
    """A change was added to a batch whose block had ended: it would never commit."""
