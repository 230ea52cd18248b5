"""A store wrapper that fails the way real storage fails, on a seeded plan.

``FaultyStore(inner, plan)`` delegates every call to ``inner`` (any backend) and
lets a :class:`FaultPlan` decide, call by call, whether to inject a fault:

======================  ============================================================
kind                    what the caller sees
======================  ============================================================
``UNAVAILABLE``         a transient error before the call reaches storage (S3 500,
                        503 SlowDown, a timeout, a connection reset; EAGAIN or
                        ETIMEDOUT on disk): nothing happened
``LOST_RESPONSE``       the call ran (a write landed), then its response was lost:
                        the caller hears a transient error
``EXISTS_AFTER_WRITE``  ``put_if_absent`` landed, its response was lost, and the
                        client's automatic retry was answered 412: the caller hears
                        "already exists" about its own object
``FULL``                no space left: ENOSPC or EDQUOT on disk, 507 on S3-compatible
                        storage; only writes, before anything is written
``PERMISSION``          access denied or read-only: EACCES, EPERM, EROFS, 403
``IO_ERROR``            a permanent failure of another kind: EIO, an unclassified 4xx
``TRUNCATE``            ``get`` returns a strict prefix of the object's bytes
``CORRUPT``             ``get`` returns the bytes with one byte altered
======================  ============================================================

Errors are realised natively: for a :class:`~catalog_store.storage.LocalStore` an
``OSError`` with the matching errno goes through the backend's own translation,
for an S3 store a botocore ``ClientError`` (or ``TimeoutError``,
``ConnectionResetError``) does, and any other store gets the typed error directly.
The caller therefore sees exactly what the backend would raise, and the
backend's translation table is exercised as well.

A plan is a list of :class:`FaultRule`; each matches operations and keys and fires
on chosen calls (the 3rd matching call, ...) and/or with a probability. Each rule
draws from its own random generator seeded from the plan's seed and the rule's
position, so the same seed and the same sequence of calls give the same faults.
(Concurrent calls, such as the writes a commit issues together, may reach the store
in a different order from one run to the next; the plan is deterministic in the
order it sees.) Every injection is recorded in :attr:`FaultPlan.injected`, every
call in :attr:`FaultyStore.calls`.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import enum
import errno
import os
import random
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from catalog_store.errors import (
    AlreadyExistsError,
    CatalogStoreError,
    StorageError,
    StorageFullError,
    StoragePermissionError,
    StorageUnavailableError,
)
from catalog_store.storage.base import ObjectInfo, Store
from catalog_store.storage.local import LocalStore, translate_os_errors

ALL_OPERATIONS = frozenset({"get", "head", "put", "put_if_absent", "list", "delete"})
READS = frozenset({"get", "head", "list"})
WRITES = frozenset({"put", "put_if_absent", "delete"})

#: A schedule decides per call: ``(operation, key) -> FaultKind`` value ("ok",
#: "fail-before", "fail-after", ...). :meth:`FaultPlan.from_schedule` wraps one.
Schedule = Callable[[str, str], str]


class FaultKind(enum.StrEnum):
    """What a fault does. The values double as the verdicts of a :data:`Schedule`."""

    NONE = "ok"
    UNAVAILABLE = "fail-before"
    LOST_RESPONSE = "fail-after"
    EXISTS_AFTER_WRITE = "exists-after-write"
    FULL = "full"
    PERMISSION = "permission"
    IO_ERROR = "io-error"
    TRUNCATE = "truncate"
    CORRUPT = "corrupt"
    #: The call never answers (a stalled connection); only a deadline ends it.
    HANG = "hang"
    #: The call does its work (a write lands), then never answers.
    HANG_AFTER = "hang-after"

    @property
    def operations(self) -> frozenset[str]:
        """The operations this kind of fault can happen to."""
        return _KIND_OPERATIONS.get(self, ALL_OPERATIONS)

    @property
    def transient(self) -> bool:
        """The caller hears StorageUnavailableError: retrying may succeed."""
        return self in (
            FaultKind.UNAVAILABLE,
            FaultKind.LOST_RESPONSE,
            FaultKind.HANG,
            FaultKind.HANG_AFTER,
        )

    @property
    def permanent(self) -> bool:
        """The caller hears StorageFullError, StoragePermissionError or StorageError."""
        return self in (FaultKind.FULL, FaultKind.PERMISSION, FaultKind.IO_ERROR)

    @property
    def corrupts(self) -> bool:
        """``get`` returns wrong bytes instead of raising."""
        return self in (FaultKind.TRUNCATE, FaultKind.CORRUPT)

    @property
    def after_call(self) -> bool:
        """The inner call runs (a write lands) before the fault shows."""
        return (
            self in (FaultKind.LOST_RESPONSE, FaultKind.EXISTS_AFTER_WRITE, FaultKind.HANG_AFTER)
            or self.corrupts
        )

    @property
    def hangs(self) -> bool:
        """The call stalls until the caller's deadline cancels it."""
        return self in (FaultKind.HANG, FaultKind.HANG_AFTER)


_KIND_OPERATIONS: dict[FaultKind, frozenset[str]] = {
    FaultKind.EXISTS_AFTER_WRITE: frozenset({"put_if_absent"}),
    FaultKind.FULL: frozenset({"put", "put_if_absent"}),
    FaultKind.TRUNCATE: frozenset({"get"}),
    FaultKind.CORRUPT: frozenset({"get"}),
}

#: The typed error each raising kind surfaces as, whatever the backend.
EXPECTED_ERROR: dict[FaultKind, type[CatalogStoreError]] = {
    FaultKind.UNAVAILABLE: StorageUnavailableError,
    FaultKind.LOST_RESPONSE: StorageUnavailableError,
    FaultKind.EXISTS_AFTER_WRITE: AlreadyExistsError,
    FaultKind.FULL: StorageFullError,
    FaultKind.PERMISSION: StoragePermissionError,
    FaultKind.IO_ERROR: StorageError,
}

# Native failures by backend: flavour name -> errno (local disk) or
# (HTTP status, error code) / exception type (S3).
_TRANSIENT_ERRNO = {
    "EAGAIN": errno.EAGAIN,
    "ETIMEDOUT": errno.ETIMEDOUT,
    "EBUSY": errno.EBUSY,
    "EINTR": errno.EINTR,
}
_LOCAL_ERRNO: dict[FaultKind, dict[str, int]] = {
    FaultKind.UNAVAILABLE: _TRANSIENT_ERRNO,
    FaultKind.LOST_RESPONSE: _TRANSIENT_ERRNO,
    FaultKind.EXISTS_AFTER_WRITE: {"EEXIST": errno.EEXIST},
    FaultKind.FULL: {"ENOSPC": errno.ENOSPC, "EDQUOT": errno.EDQUOT},
    FaultKind.PERMISSION: {"EACCES": errno.EACCES, "EPERM": errno.EPERM, "EROFS": errno.EROFS},
    FaultKind.IO_ERROR: {"EIO": errno.EIO},
}
_S3_TRANSIENT: dict[str, tuple[int, str] | type[OSError]] = {
    "SlowDown": (503, "SlowDown"),
    "ServiceUnavailable": (503, "ServiceUnavailable"),
    "InternalError": (500, "InternalError"),
    "ConditionalRequestConflict": (409, "ConditionalRequestConflict"),
    "RequestTimeout": (400, "RequestTimeout"),
    # Throttling as S3-compatible services send it besides SlowDown.
    "TooManyRequests": (429, "TooManyRequests"),
    "Throttling": (400, "Throttling"),
    "timeout": TimeoutError,
    "connection-reset": ConnectionResetError,
}
_S3_ERRORS: dict[FaultKind, dict[str, tuple[int, str] | type[OSError]]] = {
    FaultKind.UNAVAILABLE: _S3_TRANSIENT,
    FaultKind.LOST_RESPONSE: _S3_TRANSIENT,
    FaultKind.EXISTS_AFTER_WRITE: {"PreconditionFailed": (412, "PreconditionFailed")},
    # MinIO answers 507 XMinioStorageFull; Ceph RGW answers 403 QuotaExceeded.
    FaultKind.FULL: {"XMinioStorageFull": (507, "XMinioStorageFull")},
    FaultKind.PERMISSION: {"AccessDenied": (403, "AccessDenied")},
    FaultKind.IO_ERROR: {"InvalidRequest": (400, "InvalidRequest")},
}
#: Flavours a rule may ask for by name but which no rule gets unless it asks.
_S3_EXTRA: dict[FaultKind, dict[str, tuple[int, str] | type[OSError]]] = {
    FaultKind.FULL: {"QuotaExceeded": (403, "QuotaExceeded")},
}
_GENERIC = "injected"


@dataclass(frozen=True)
class FaultRule:
    """One source of faults in a plan.

    ``operations`` defaults to every operation ``kind`` applies to; ``keys`` is a
    regular expression searched in the key (the prefix for ``list``), empty for
    every key. The rule fires on the matching calls numbered in ``calls`` (from 1)
    and, independently, with ``probability`` on each matching call, at most
    ``limit`` times. ``flavours`` restricts the native failures chosen from (errno
    names for local disk, error codes for S3); empty means all of them.
    """

    kind: FaultKind
    probability: float = 0.0
    operations: frozenset[str] | None = None
    keys: str = ""
    calls: frozenset[int] = frozenset()
    limit: int | None = None
    flavours: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability {self.probability} is not in [0, 1]")
        if self.kind is FaultKind.NONE:
            raise ValueError("a rule needs a fault kind other than NONE")
        unknown = (self.operations or frozenset()) - self.kind.operations
        if unknown:
            raise ValueError(f"{self.kind.name} cannot happen to {sorted(unknown)}")
        re.compile(self.keys)

    @property
    def applies_to(self) -> frozenset[str]:
        return self.operations if self.operations is not None else self.kind.operations


@dataclass(frozen=True)
class Injection:
    """One fault the plan injected."""

    call: int
    operation: str
    key: str
    kind: FaultKind
    detail: str
    error: str = ""


class Call(NamedTuple):
    """One call a FaultyStore received, with the fault decided for it."""

    operation: str
    key: str
    fault: FaultKind


@dataclass
class _Armed:
    rule: FaultRule
    rng: random.Random
    pattern: re.Pattern[str]
    matched: int = 0
    fired: int = 0


@dataclass(frozen=True)
class _Decision:
    kind: FaultKind
    rng: random.Random
    flavours: tuple[str, ...] = ()
    call: int = 0


class FaultPlan:
    """Which calls fail and how; shared by any number of FaultyStores.

    ``enabled`` switches every rule off and on; :meth:`paused` and :meth:`during`
    do it for a block. ``schedule`` (see :meth:`from_schedule`) replaces the rules
    by a function. Thread-safe.
    """

    def __init__(
        self,
        rules: Iterable[FaultRule] = (),
        seed: int = 0,
        *,
        schedule: Schedule | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.seed = seed
        self.schedule = schedule
        self.enabled = True
        #: Every fault injected so far, in order.
        self.injected: list[Injection] = []
        self._lock = threading.Lock()
        self._armed = [self._arm(rule, f"rule-{i}") for i, rule in enumerate(self.rules)]
        self._extra: list[_Armed] = []
        self._during = 0
        self._calls = 0
        self._rng = random.Random(f"{seed}/plan")

    def __repr__(self) -> str:
        return f"FaultPlan(rules={self.rules!r}, seed={self.seed!r})"

    @classmethod
    def from_schedule(cls, schedule: Schedule, seed: int = 0) -> FaultPlan:
        """A plan that asks ``schedule(operation, key)`` for each call's fault."""
        return cls(seed=seed, schedule=schedule)

    def _arm(self, rule: FaultRule, name: str) -> _Armed:
        return _Armed(rule, random.Random(f"{self.seed}/{name}"), re.compile(rule.keys))

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No faults inside the block."""
        with self._lock:
            before, self.enabled = self.enabled, False
        try:
            yield
        finally:
            with self._lock:
                self.enabled = before

    @contextlib.contextmanager
    def during(self, *rules: FaultRule) -> Iterator[None]:
        """Apply ``rules`` first, before the plan's own, inside the block.

        Models a condition that lasts: a full disk, a read-only mount, revoked
        credentials. Each block's rules get generators of their own.
        """
        with self._lock:
            self._during += 1
            armed = [self._arm(rule, f"during-{self._during}-{i}") for i, rule in enumerate(rules)]
            saved = self._extra
            self._extra = armed + saved
        try:
            yield
        finally:
            with self._lock:
                self._extra = saved

    def counts(self) -> dict[FaultKind, int]:
        """How many faults of each kind were injected so far."""
        out: dict[FaultKind, int] = {}
        for injection in self.injected:
            out[injection.kind] = out.get(injection.kind, 0) + 1
        return out

    def _decide(self, operation: str, key: str) -> _Decision:
        with self._lock:
            self._calls += 1
            call = self._calls
            if not self.enabled:
                return _Decision(FaultKind.NONE, self._rng, call=call)
            if self.schedule is not None:
                kind = FaultKind(self.schedule(operation, key))
                return _Decision(_effective(kind, operation), self._rng, call=call)
            chosen: _Armed | None = None
            for armed in (*self._extra, *self._armed):
                rule = armed.rule
                if operation not in rule.applies_to or not armed.pattern.search(key):
                    continue
                armed.matched += 1
                fires = armed.matched in rule.calls
                if rule.probability > 0.0 and armed.rng.random() < rule.probability:
                    fires = True
                if not fires or (rule.limit is not None and armed.fired >= rule.limit):
                    continue
                if chosen is None:
                    chosen = armed
            if chosen is None:
                return _Decision(FaultKind.NONE, self._rng, call=call)
            chosen.fired += 1
            return _Decision(chosen.rule.kind, chosen.rng, chosen.rule.flavours, call)

    def _record(self, injection: Injection) -> None:
        with self._lock:
            self.injected.append(injection)


def _effective(kind: FaultKind, operation: str) -> FaultKind:
    """What a scheduled verdict means for an operation it cannot literally apply to."""
    if kind.corrupts and operation != "get":
        return FaultKind.IO_ERROR  # a reader of a damaged object hears an I/O error
    if kind is FaultKind.EXISTS_AFTER_WRITE and operation != "put_if_absent":
        return FaultKind.LOST_RESPONSE
    return kind


def _base_store(store: Store) -> Store:
    seen = 0
    while seen < 16 and isinstance(getattr(store, "inner", None), Store):
        store = store.inner  # type: ignore[attr-defined]
        seen += 1
    return store


def _pick(
    rng: random.Random, known: Iterable[str], default: Iterable[str], wanted: tuple[str, ...]
) -> str:
    """One flavour: among ``wanted`` if given (each must be known), else ``default``."""
    if wanted:
        unknown = set(wanted) - set(known)
        if unknown:
            raise ValueError(f"unknown flavour(s) {sorted(unknown)}; known: {sorted(known)}")
        names = list(wanted)
    else:
        names = list(default)
    return names[0] if len(names) == 1 else rng.choice(names)


class FaultyStore(Store):
    """Delegates to ``inner`` and injects the faults ``plan`` decides.

    ``plan`` may also be a :data:`Schedule` function. With ``native=False`` faults
    are raised as fincat's typed errors directly instead of through the backend's
    own translation of native errors.
    """

    def __init__(self, inner: Store, plan: FaultPlan | Schedule, *, native: bool = True) -> None:
        self.inner = inner
        self.plan = plan if isinstance(plan, FaultPlan) else FaultPlan.from_schedule(plan)
        self.url = inner.url
        self.calls: list[Call] = []
        base = _base_store(inner) if native else None
        s3 = sys.modules.get("catalog_store.storage.s3")
        if isinstance(base, LocalStore):
            self.backend = "local"
        elif s3 is not None and isinstance(base, s3.S3Store):
            self.backend = "s3"
        else:
            self.backend = "generic"

    @property
    def injected(self) -> list[Injection]:
        """Every injection of the plan (shared with other stores on the same plan)."""
        return self.plan.injected

    # -- deciding and realising faults -------------------------------------------------

    async def _decide(self, operation: str, key: str) -> _Decision:
        decision = self.plan._decide(operation, key)
        self.calls.append(Call(operation, key, decision.kind))
        if decision.kind is FaultKind.HANG:
            await self._hang(decision, operation, key)
        if decision.kind is not FaultKind.NONE and not decision.kind.after_call:
            raise self._error(decision, operation, key)
        return decision

    async def _after(self, decision: _Decision, operation: str, key: str) -> None:
        if decision.kind is FaultKind.HANG_AFTER:
            await self._hang(decision, operation, key)
        if decision.kind in (FaultKind.LOST_RESPONSE, FaultKind.EXISTS_AFTER_WRITE):
            raise self._error(decision, operation, key)

    async def _hang(self, decision: _Decision, operation: str, key: str) -> None:
        self.plan._record(Injection(decision.call, operation, key, decision.kind, "no answer"))
        await asyncio.Event().wait()  # until cancelled

    def _error(self, decision: _Decision, operation: str, key: str) -> CatalogStoreError:
        """The error a real backend would raise for this fault, recorded."""
        kind = decision.kind
        error, flavour = self._native(kind, decision, key)
        self.plan._record(
            Injection(decision.call, operation, key, kind, flavour, type(error).__name__)
        )
        return error

    def _native(
        self, kind: FaultKind, decision: _Decision, key: str
    ) -> tuple[CatalogStoreError, str]:
        if self.backend == "local":
            codes = _LOCAL_ERRNO[kind]
            flavour = _pick(decision.rng, codes, codes, decision.flavours)
            code = codes[flavour]
            # OSError picks the subclass for the errno (EEXIST: FileExistsError).
            native: BaseException = OSError(code, f"{os.strerror(code)} (injected)")
            return _translate(native, lambda: translate_os_errors(key)), flavour
        if self.backend == "s3":
            from botocore.exceptions import ClientError

            from catalog_store.storage.s3 import translate_s3_errors

            table = {**_S3_ERRORS[kind], **_S3_EXTRA.get(kind, {})}
            flavour = _pick(decision.rng, table, _S3_ERRORS[kind], decision.flavours)
            spec = table[flavour]
            if isinstance(spec, tuple):
                status, error_code = spec
                native = ClientError(
                    {
                        "Error": {"Code": error_code, "Message": f"{error_code} (injected)"},
                        "ResponseMetadata": {"HTTPStatusCode": status},
                    },
                    "PutObject",
                )
            else:
                native = spec(f"{flavour} (injected)")
            return _translate(native, lambda: translate_s3_errors(key)), flavour
        flavour = _GENERIC
        message = f"{key}: injected {kind.name.lower()}"
        return EXPECTED_ERROR[kind](message), flavour

    def _spoil(self, decision: _Decision, key: str, data: bytes) -> bytes:
        """Truncate or corrupt ``data`` as decided; record what was done."""
        if not data:
            return data  # nothing to spoil
        rng = decision.rng
        if decision.kind is FaultKind.TRUNCATE:
            keep = rng.randrange(len(data))
            spoiled = data[:keep]
            detail = f"kept {keep} of {len(data)} bytes"
        else:
            at = rng.randrange(len(data))
            mask = rng.randrange(1, 256)
            spoiled = data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]
            detail = f"byte {at} of {len(data)} xor {mask:#04x}"
        self.plan._record(Injection(decision.call, "get", key, decision.kind, detail))
        return spoiled

    # -- the Store interface ---------------------------------------------------------------

    async def get(self, key: str) -> bytes:
        decision = await self._decide("get", key)
        data = await self.inner.get(key)
        await self._after(decision, "get", key)
        if decision.kind.corrupts:
            return self._spoil(decision, key, data)
        return data

    async def head(self, key: str) -> ObjectInfo:
        decision = await self._decide("head", key)
        info = await self.inner.head(key)
        await self._after(decision, "head", key)
        return info

    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        decision = await self._decide("put", key)
        await self.inner.put(key, data, durable=durable)
        await self._after(decision, "put", key)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        decision = await self._decide("put_if_absent", key)
        await self.inner.put_if_absent(key, data)
        await self._after(decision, "put_if_absent", key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        decision = await self._decide("list", prefix)
        items = [info async for info in self.inner.list(prefix)]
        # A lost response of a listing is a failure part-way: a later page failed.
        stop = len(items) // 2 if decision.kind.after_call else len(items)
        for info in items[:stop]:
            yield info
        await self._after(decision, "list", prefix)

    async def delete(self, key: str) -> None:
        decision = await self._decide("delete", key)
        await self.inner.delete(key)
        await self._after(decision, "delete", key)

    async def sweep_partial_writes(
        self, older_than: datetime, *, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        return await self.inner.sweep_partial_writes(older_than, dry_run=dry_run)

    async def close(self) -> None:
        await self.inner.close()


def _translate(
    native: BaseException, translator: Callable[[], contextlib.AbstractContextManager[None]]
) -> CatalogStoreError:
    """Pass ``native`` through a backend's translation and return what comes out."""
    try:
        with translator():
            raise native
    except CatalogStoreError as translated:
        return translated
    raise AssertionError(f"the translation let {native!r} through")  # pragma: no cover
