"""Bearer API keys with scopes, and the guards that enforce them.

A key is a random token given to a client once; the server keeps only its SHA-256
(hex) and compares digests with :func:`hmac.compare_digest`. Scopes nest:
``admin`` implies ``write``, which implies ``read``. With no key configured the
gateway runs in local development mode: every request is allowed, and
:meth:`gateway.settings.Settings.check_bind` keeps such a server on loopback.

Key files are JSON or TOML::

    {"keys": [{"name": "loader", "sha256": "<64 hex digits>", "scopes": ["write"]}]}

    [[keys]]
    name = "dashboard"
    sha256 = "<64 hex digits>"
    scopes = ["read"]
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from gateway.ratelimit import RateLimitedError
from gateway.state import STATE_KEY, Gateway, gateway_of

SCOPES = ("read", "write", "admin")
_IMPLIED = {"read": {"read"}, "write": {"read", "write"}, "admin": {"read", "write", "admin"}}
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,63}$")
TOKEN_PREFIX = "fck_"
#: Sent with every 401, as RFC 6750 asks.
CHALLENGE = 'Bearer realm="fincat"'


class KeyConfigError(ValueError):
    """An API key file or variable is malformed."""


@dataclass(frozen=True)
class ApiKey:
    """One accepted key: a name for logs and rate limits, the token's SHA-256, its scopes."""

    name: str
    sha256: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return any(scope in _IMPLIED[granted] for granted in self.scopes)


@dataclass(frozen=True)
class Principal:
    """Who made a request: a key's name, or the client address in development mode."""

    identity: str
    key: ApiKey | None

    def allows(self, scope: str) -> bool:
        return self.key is None or self.key.allows(scope)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits) for a new key."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def parse_keys(data: Any, origin: str) -> tuple[ApiKey, ...]:
    """Keys from decoded JSON/TOML: ``{"keys": [...]}`` or the list itself.

    Raises KeyConfigError naming ``origin`` and the entry at fault: a missing
    name, a digest that is not 64 lower-case hex digits, an unknown scope, or a
    name or digest used twice.
    """
    entries = data.get("keys") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise KeyConfigError(f"{origin}: expected a list of keys under 'keys'")
    keys: list[ApiKey] = []
    for index, entry in enumerate(entries):
        where = f"{origin}: keys[{index}]"
        if not isinstance(entry, dict):
            raise KeyConfigError(f"{where} must be an object")
        name, digest, scopes = entry.get("name"), entry.get("sha256"), entry.get("scopes")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise KeyConfigError(f"{where}: 'name' must be 1-64 letters, digits, '_.:@-'")
        if not isinstance(digest, str) or not _HEX_DIGEST.fullmatch(digest):
            raise KeyConfigError(
                f"{where}: 'sha256' must be the 64 hex digits of the token's SHA-256 "
                "(never the token itself)"
            )
        if (
            not isinstance(scopes, list)
            or not scopes
            or not all(isinstance(s, str) and s in SCOPES for s in scopes)
        ):
            raise KeyConfigError(f"{where}: 'scopes' must be a non-empty list of {SCOPES}")
        key = ApiKey(name, digest, frozenset(scopes))
        clash = _clash(key, keys)
        if clash is not None:
            raise KeyConfigError(f"{where}: {clash}")
        keys.append(key)
    return tuple(keys)


def combine_keys(*sources: Iterable[ApiKey]) -> tuple[ApiKey, ...]:
    """The keys of several sources (a file given twice, a file and the environment),
    a key they repeat exactly kept once. Raises KeyConfigError for a name or a
    digest two sources give different entries."""
    keys: list[ApiKey] = []
    for key in (key for source in sources for key in source):
        if key in keys:
            continue
        clash = _clash(key, keys)
        if clash is not None:
            raise KeyConfigError(f"API keys from more than one source: {clash}")
        keys.append(key)
    return tuple(keys)


def _clash(key: ApiKey, keys: Iterable[ApiKey]) -> str | None:
    """Why ``key`` cannot join ``keys``: a name twice, or one digest twice, which
    would make a token's name and scopes those of whichever entry came last."""
    for other in keys:
        if other.name == key.name:
            return f"the name {key.name!r} is used twice"
        if other.sha256 == key.sha256:
            return (
                f"{other.name!r} and {key.name!r} have the same sha256: one token "
                "cannot be two keys"
            )
    return None


def load_keys_file(path: str | Path) -> tuple[ApiKey, ...]:
    """Keys from a ``.toml`` or JSON file. Raises KeyConfigError if unreadable or malformed."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyConfigError(f"cannot read the API key file {file}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if file.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise KeyConfigError(f"{file}: {exc}") from None
    return parse_keys(data, str(file))


def keys_to_json(keys: Iterable[ApiKey]) -> str:
    """The JSON form :func:`parse_keys` reads (hashes only, never tokens)."""
    return json.dumps(
        {"keys": [{"name": k.name, "sha256": k.sha256, "scopes": sorted(k.scopes)} for k in keys]}
    )


class KeyRing:
    """The accepted keys of one process."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys = tuple(keys)

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def authenticate(self, token: str) -> ApiKey | None:
        """The key whose digest matches ``token``, or None.

        Every stored digest is compared, in constant time each, so the time taken
        does not tell which key (if any) came close.
        """
        digest = hash_token(token)
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.sha256, digest):
                found = key
        return found


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None if there is none."""
    header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    if not header:
        return None
    scheme, _, token = header.decode("latin-1").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def identify(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Authenticate a request and charge its rate limit.

    Raises NotAuthorizedException (401 with ``WWW-Authenticate: Bearer``) for a
    missing or unknown key, and RateLimitedError (429) when the key, or for a
    failed attempt the client address, has used up its budget, so guessing keys
    is throttled too.
    """
    return identify_scope(connection.scope, gateway_of(connection))


def identify_scope(scope: Scope, gateway: Gateway) -> Principal:
    """:func:`identify` on a raw ASGI scope (no connection object to build per request)."""
    if not gateway.keyring.enabled:
        principal = Principal(f"addr:{client_address(scope)}", None)
        gateway.limiter.charge(principal.identity)
        return principal
    token = bearer_token(scope)
    key = gateway.keyring.authenticate(token) if token else None
    if key is None:
        gateway.limiter.charge(f"addr:{client_address(scope)}")
        raise NotAuthorizedException(
            "a valid API key is required: send 'Authorization: Bearer <key>'"
            if token is None
            else "the API key is not valid",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    principal = Principal(f"key:{key.name}", key)
    gateway.limiter.charge(principal.identity)
    return principal


#: The key of a route handler's ``opt`` that names the scope it needs.
SCOPE_OPT = "fincat_scope"


def needs(scope: str) -> dict[str, str]:
    """Route ``opt`` by which :class:`AccessMiddleware` demands ``scope``.

    ``@get("/v1/series", opt=needs("read"))``. Raises ValueError for an unknown scope.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return {SCOPE_OPT: scope}


class AccessMiddleware(ASGIMiddleware):
    """Authenticates, rate-limits and checks the scope of every route that names one.

    Routes without a scope in their ``opt`` (health, metrics, the OpenAPI pages)
    pass untouched. Raises NotAuthorizedException (401), RateLimitedError (429) or
    PermissionDeniedException (403); the app's exception handlers turn them into
    problem details. A middleware rather than a guard: Litestar copies the route
    handler for every guard call, which costs more than the check itself.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope.get("route_handler")
        needed = handler.opt.get(SCOPE_OPT) if handler is not None else None
        if needed is not None:
            principal = identify_scope(scope, scope["litestar_app"].state[STATE_KEY])
            if not principal.allows(needed):
                raise PermissionDeniedException(
                    f"the API key {principal.identity.removeprefix('key:')!r} lacks the "
                    f"'{needed}' scope"
                )
        await next_app(scope, receive, send)


__all__ = [
    "CHALLENGE",
    "SCOPES",
    "ApiKey",
    "KeyConfigError",
    "AccessMiddleware",
    "KeyRing",
    "Principal",
    "RateLimitedError",
    "hash_token",
    "keys_to_json",
    "load_keys_file",
    "new_token",
    "needs",
    "parse_keys",
]
