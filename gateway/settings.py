"""Settings of one gateway process: plain frozen data, read from arguments or the environment.

``fincat serve`` turns its options into environment variables (:meth:`Settings.to_env`)
so that every uvicorn worker, started through the app factory
:func:`gateway.app.app_from_env`, builds the same settings with :meth:`Settings.from_env`.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from catalog_store import CatalogOptions
from catalog_store.commit import RetryPolicy
from catalog_store.storage.guarded import StoreListener
from gateway import envvars
from gateway.auth import ApiKey, combine_keys, keys_to_json, load_keys_file, parse_keys
from gateway.graphql.config import GraphQLSettings, GraphQLSettingsError

DEFAULT_CACHE_BYTES = 128 * 2**20
DEFAULT_MAX_BODY_BYTES = 64 * 2**20
DEFAULT_MAX_OBSERVATIONS = 1_000_000

#: Environment variables read by :meth:`Settings.from_env`.
ENV_ROOT = "FINCAT_ROOT"
ENV_STORAGE_OPTIONS = "FINCAT_STORAGE_OPTIONS"
ENV_HOST = "FINCAT_HOST"
ENV_PORT = "FINCAT_PORT"
ENV_CACHE_TTL = "FINCAT_CACHE_TTL"
ENV_CACHE_BYTES = "FINCAT_CACHE_BYTES"
ENV_API_KEYS = "FINCAT_API_KEYS"
ENV_API_KEYS_FILE = "FINCAT_API_KEYS_FILE"
ENV_RATE_LIMIT = "FINCAT_RATE_LIMIT"
ENV_RATE_BURST = "FINCAT_RATE_BURST"
ENV_MAX_BODY_BYTES = "FINCAT_MAX_BODY_BYTES"
ENV_MAX_OBSERVATIONS = "FINCAT_MAX_OBSERVATIONS"
ENV_CREATE = "FINCAT_CREATE"
ENV_HOLD_WRITES = "FINCAT_HOLD_WRITES"
ENV_MONITOR_INTERVAL = "FINCAT_MONITOR_INTERVAL"
ENV_STORE_TIMEOUT = "FINCAT_STORE_TIMEOUT"
ENV_SHUTDOWN_TIMEOUT = "FINCAT_SHUTDOWN_TIMEOUT"
ENV_COMMIT_TIMEOUT = "FINCAT_COMMIT_TIMEOUT"


class SettingsError(ValueError):
    """A setting is malformed, or the combination of settings is unsafe."""


@dataclass(frozen=True)
class Number:
    """A numeric setting: its variable, its type and the values it may take.

    The one rule for the setting, whichever way it arrives: ``fincat serve`` gives
    its option ``min`` and ``max`` from here, :meth:`Settings.from_env` checks the
    variable with it, and every Settings checks itself with it.
    """

    variable: str | None
    kind: type[int] | type[float]
    low: int | float
    high: int | float | None = None

    def check(self, name: str, value: float) -> None:
        """Raise SettingsError naming ``name`` unless ``value`` is in range.

        Infinity is refused too: no setting gives it a meaning (0 is "off" where
        there is an off), and an infinite timeout or interval would hold for ever.
        """
        # Written so that NaN, which compares false with everything, is refused.
        in_range = value >= self.low and (self.high is None or value <= self.high)
        if in_range and math.isfinite(value):
            return
        bound = f">= {self.low}" if self.high is None else f"from {self.low} to {self.high}"
        finite = "a finite number " if math.isinf(value) else ""
        raise SettingsError(f"{name} must be {finite}{bound}, not {value!r}")

    def read(self, text: str) -> int | float:
        """The text of this setting's variable as its value; raises SettingsError
        naming the variable."""
        name = str(self.variable)
        try:
            value = envvars.number(name, text, self.kind)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        self.check(name, value)
        return value


#: The numeric fields of :class:`Settings`, by name.
NUMBERS: dict[str, Number] = {
    "port": Number(ENV_PORT, int, 0, 65535),
    "cache_ttl": Number(ENV_CACHE_TTL, float, 0.0),
    "cache_bytes": Number(ENV_CACHE_BYTES, int, 1),
    "rate_limit": Number(ENV_RATE_LIMIT, float, 0.0),
    "rate_burst": Number(ENV_RATE_BURST, int, 1),
    "max_body_bytes": Number(ENV_MAX_BODY_BYTES, int, 1),
    "max_observations": Number(ENV_MAX_OBSERVATIONS, int, 1),
    "max_operations": Number(None, int, 1),
    "monitor_interval": Number(ENV_MONITOR_INTERVAL, float, 0.0),
    "store_timeout": Number(ENV_STORE_TIMEOUT, float, 0.1),
    "commit_timeout": Number(ENV_COMMIT_TIMEOUT, float, 0.1),
    "shutdown_timeout": Number(ENV_SHUTDOWN_TIMEOUT, float, 0.0),
}
#: The boolean fields of :class:`Settings` read from the environment, and their variables.
FLAGS: dict[str, str] = {"create": ENV_CREATE, "hold_writes": ENV_HOLD_WRITES}


#: A revisions read may compare this many stored values per observation a request may write.
REVISION_VALUES_PER_OBSERVATION = 5


@dataclass(frozen=True)
class Settings:
    """Everything one gateway process needs; every field but ``root`` has a default."""

    #: The catalog's location: a directory, ``file://``, ``s3://bucket/prefix`` or ``memory://``.
    root: str
    #: Options for the storage backend (for S3: ``endpoint_url``, ``key``, ``secret`` ...).
    #: Credentials among them: left out of repr, which error trackers record.
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: The address the server binds; without API keys only loopback is allowed.
    host: str = "127.0.0.1"
    port: int = 8000
    #: Seconds a replica may serve "the latest version" without asking the store.
    cache_ttl: float = 1.0
    #: Byte bound of the cache of decoded immutable objects.
    cache_bytes: int = DEFAULT_CACHE_BYTES
    #: Accepted API keys (hashed). Empty means local development mode: no authentication.
    api_keys: tuple[ApiKey, ...] = ()
    #: Sustained requests per second per key (or per client address); 0 turns limiting off.
    rate_limit: float = 50.0
    #: Requests a key may make at once before the sustained rate applies.
    rate_burst: int = 100
    #: Largest request body accepted, in bytes (larger: 413).
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Most observations one request may write (more: 413).
    max_observations: int = DEFAULT_MAX_OBSERVATIONS
    #: Most operations in one ``POST /v1/commits``.
    max_operations: int = 1000
    #: Initialise an empty catalog at ``root`` if there is none.
    create: bool = False
    #: Let small writes be held in the manifest (CatalogOptions.inline_rows and
    #: pending_records at their defaults); off, every write goes to files and shards.
    hold_writes: bool = True
    #: Seconds between refreshes of the per-source freshness and verify metrics; 0: never.
    monitor_interval: float = 30.0
    #: Seconds one storage call may take before it fails as unavailable (a request,
    #: and readiness, then answer 503); a frozen endpoint otherwise holds them that long.
    store_timeout: float = 120.0
    #: Seconds a write may go on retrying its commit (lost races, storage failures)
    #: before it answers 503. The catalog's own limit, two minutes, held a write to
    #: a failing store past the shutdown timeout, and past any client's patience.
    commit_timeout: float = 10.0
    #: Seconds a stop (SIGTERM) waits for requests under way before it cuts them off:
    #: one stalled client otherwise held the process until the platform killed it
    #: (Kubernetes' grace period is 30 s by default, Docker's 10 s).
    shutdown_timeout: float = 20.0
    #: Limits and switches of ``/graphql`` (``FINCAT_GRAPHQL_*``).
    graphql: GraphQLSettings = field(default_factory=GraphQLSettings)

    def __post_init__(self) -> None:
        for name, number in NUMBERS.items():
            number.check(name, getattr(self, name))

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    @property
    def max_revision_values(self) -> int:
        """Most stored values one revisions read compares (every state's rows in its
        range): tens of millions took a replica's event loop and gigabytes."""
        return REVISION_VALUES_PER_OBSERVATION * self.max_observations

    def check_bind(self) -> None:
        """Refuse to serve without authentication on anything but loopback.

        Raises SettingsError when no API key is configured and ``host`` is not a
        loopback address: a catalog anyone on the network can change is never a default.
        """
        if not self.auth_enabled and not is_loopback(self.host):
            raise SettingsError(
                f"refusing to serve on {self.host}: no API keys are configured, so only a "
                "loopback address (127.0.0.1, ::1, localhost) is allowed. Configure keys with "
                f"--api-keys FILE or {ENV_API_KEYS} to serve on other addresses."
            )

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def catalog_options(self, store_listener: StoreListener | None = None) -> CatalogOptions:
        """How an app opens the catalog; ``fincat serve`` opens it so before it starts one."""
        options = CatalogOptions(
            max_staleness=self.cache_ttl,
            cache_bytes=self.cache_bytes,
            store_timeout=self.store_timeout,
            store_listener=store_listener,
            retry=RetryPolicy(max_seconds=self.commit_timeout),
        )
        if not self.hold_writes:
            options = replace(options, inline_rows=0, pending_records=0)
        return options

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``FINCAT_*`` environment variables.

        Raises SettingsError for a missing root or a malformed value (the message
        names the variable). Each variable takes what its option of ``fincat serve``
        takes (:data:`NUMBERS`); flags take 1/0, true/false, yes/no or on/off.
        """
        env = os.environ if environ is None else environ
        root = env.get(ENV_ROOT)
        if not root:
            raise SettingsError(f"{ENV_ROOT} is not set: where is the catalog?")
        changes: dict[str, Any] = {}
        if ENV_STORAGE_OPTIONS in env:
            options = _json(env, ENV_STORAGE_OPTIONS)
            if not isinstance(options, dict):
                raise SettingsError(f"{ENV_STORAGE_OPTIONS} must be a JSON object")
            changes["storage_options"] = options
        if ENV_HOST in env:
            changes["host"] = env[ENV_HOST]
        for attribute, number in NUMBERS.items():
            if number.variable is not None and number.variable in env:
                changes[attribute] = number.read(env[number.variable])
        for attribute, name in FLAGS.items():
            if name in env:
                try:
                    changes[attribute] = envvars.flag(name, env[name])
                except ValueError as exc:
                    raise SettingsError(str(exc)) from None
        try:
            changes["graphql"] = GraphQLSettings.from_env(env)
        except GraphQLSettingsError as exc:
            raise SettingsError(str(exc)) from None
        keys = keys_from_env(env)
        if keys:
            changes["api_keys"] = keys
        return cls(root=root, **changes)

    def to_env(self) -> dict[str, str]:
        """These settings as ``FINCAT_*`` variables, the inverse of :meth:`from_env`.

        API keys travel as their hashes only; storage options (which may hold
        credentials) stay in the environment of the server's own processes.
        """
        env = {ENV_ROOT: self.root, ENV_HOST: self.host}
        # From the same tables from_env reads, so that no setting is left behind.
        for attribute, number in NUMBERS.items():
            if number.variable is not None:
                env[number.variable] = str(getattr(self, attribute))
        for attribute, name in FLAGS.items():
            env[name] = "1" if getattr(self, attribute) else "0"
        env[ENV_API_KEYS] = keys_to_json(self.api_keys) if self.api_keys else ""
        env.update(self.graphql.to_env())
        if self.storage_options:
            env[ENV_STORAGE_OPTIONS] = json.dumps(dict(self.storage_options))
        return env


def keys_from_env(environ: Mapping[str, str] | None = None) -> tuple[ApiKey, ...]:
    """Keys from ``FINCAT_API_KEYS_FILE`` (a path) and ``FINCAT_API_KEYS`` (JSON).

    Raises KeyConfigError or SettingsError for an unreadable or malformed one.
    """
    env = os.environ if environ is None else environ
    from_file = load_keys_file(env[ENV_API_KEYS_FILE]) if env.get(ENV_API_KEYS_FILE) else ()
    given = parse_keys(_json(env, ENV_API_KEYS), ENV_API_KEYS) if env.get(ENV_API_KEYS) else ()
    return combine_keys(from_file, given)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any loopback IPv4 or IPv6 address."""
    text = host.strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def _json(env: Mapping[str, str], name: str) -> Any:
    try:
        return json.loads(env[name])
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{name} is not valid JSON: {exc}") from None
