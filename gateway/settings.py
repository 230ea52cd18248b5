"""Settings of one gateway process: plain frozen data, read from arguments or the environment.

``fincat serve`` turns its options into environment variables (:meth:`Settings.to_env`)
so that every uvicorn worker, started through the app factory
:func:`gateway.app.app_from_env`, builds the same settings with :meth:`Settings.from_env`.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.auth import ApiKey, keys_to_json, load_keys_file, parse_keys
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


class SettingsError(ValueError):
    """A setting is malformed, or the combination of settings is unsafe."""


@dataclass(frozen=True)
class Settings:
    """Everything one gateway process needs; every field but ``root`` has a default."""

    #: The catalog's location: a directory, ``file://``, ``s3://bucket/prefix`` or ``memory://``.
    root: str
    #: Options for the storage backend (for S3: ``endpoint_url``, ``key``, ``secret`` ...).
    storage_options: Mapping[str, Any] = field(default_factory=dict)
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
    #: Limits and switches of ``/graphql`` (``FINCAT_GRAPHQL_*``).
    graphql: GraphQLSettings = field(default_factory=GraphQLSettings)

    def __post_init__(self) -> None:
        if self.cache_ttl < 0 or self.monitor_interval < 0:
            raise SettingsError("cache_ttl and monitor_interval must not be negative")
        if self.rate_limit < 0 or self.rate_burst < 1:
            raise SettingsError("rate_limit must be >= 0 and rate_burst >= 1")
        if self.max_body_bytes < 1 or self.max_observations < 1 or self.max_operations < 1:
            raise SettingsError("limits must be positive")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port {self.port} is out of range")

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``FINCAT_*`` environment variables.

        Raises SettingsError for a missing root or a malformed value (the message
        names the variable).
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
        numbers: tuple[tuple[str, str, type[int] | type[float]], ...] = (
            (ENV_PORT, "port", int),
            (ENV_CACHE_TTL, "cache_ttl", float),
            (ENV_CACHE_BYTES, "cache_bytes", int),
            (ENV_RATE_LIMIT, "rate_limit", float),
            (ENV_RATE_BURST, "rate_burst", int),
            (ENV_MAX_BODY_BYTES, "max_body_bytes", int),
            (ENV_MAX_OBSERVATIONS, "max_observations", int),
            (ENV_MONITOR_INTERVAL, "monitor_interval", float),
        )
        for name, attribute, kind in numbers:
            if name in env:
                try:
                    changes[attribute] = kind(env[name])
                except ValueError:
                    raise SettingsError(f"{name} must be a number, not {env[name]!r}") from None
        for name, attribute in ((ENV_CREATE, "create"), (ENV_HOLD_WRITES, "hold_writes")):
            if name in env:
                changes[attribute] = env[name].strip().lower() in ("1", "true", "yes")
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
        env = {
            ENV_ROOT: self.root,
            ENV_HOST: self.host,
            ENV_PORT: str(self.port),
            ENV_CACHE_TTL: repr(self.cache_ttl),
            ENV_CACHE_BYTES: str(self.cache_bytes),
            ENV_RATE_LIMIT: repr(self.rate_limit),
            ENV_RATE_BURST: str(self.rate_burst),
            ENV_MAX_BODY_BYTES: str(self.max_body_bytes),
            ENV_MAX_OBSERVATIONS: str(self.max_observations),
            ENV_CREATE: "1" if self.create else "0",
            ENV_HOLD_WRITES: "1" if self.hold_writes else "0",
            ENV_API_KEYS: keys_to_json(self.api_keys) if self.api_keys else "",
        }
        env.update(self.graphql.to_env())
        if self.storage_options:
            env[ENV_STORAGE_OPTIONS] = json.dumps(dict(self.storage_options))
        return env


def keys_from_env(environ: Mapping[str, str] | None = None) -> tuple[ApiKey, ...]:
    """Keys from ``FINCAT_API_KEYS_FILE`` (a path) and ``FINCAT_API_KEYS`` (JSON).

    Raises KeyConfigError or SettingsError for an unreadable or malformed one.
    """
    env = os.environ if environ is None else environ
    keys: list[ApiKey] = []
    if env.get(ENV_API_KEYS_FILE):
        keys.extend(load_keys_file(env[ENV_API_KEYS_FILE]))
    if env.get(ENV_API_KEYS):
        keys.extend(parse_keys(_json(env, ENV_API_KEYS), ENV_API_KEYS))
    return tuple(keys)


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
