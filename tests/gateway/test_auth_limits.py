"""API keys and scopes, rate limits, safe defaults, and the settings that configure them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from catalog_store.cli._common import Settings as CliSettings
from gateway.app import create_app
from gateway.auth import (
    KeyConfigError,
    hash_token,
    load_keys_file,
    parse_keys,
)
from gateway.ratelimit import TokenBuckets
from gateway.settings import Settings, SettingsError, is_loopback
from tests.conftest import StoreTarget
from tests.gateway.conftest import (
    ADMIN_TOKEN,
    KEYS,
    READ_TOKEN,
    WRITE_TOKEN,
    Client,
    bearer,
    client_for,
    problem,
)
from tests.gateway.test_health_metrics import metric

Call = Callable[[Client, dict[str, str]], httpx.Response]

WRITES: dict[str, Call] = {
    "create": lambda c, h: c.post(
        "/v1/series", json={"id": "NEW", "frequency": "annual"}, headers=h
    ),
    "update": lambda c, h: c.patch("/v1/series/GDP", json={"units": "USD"}, headers=h),
    "write": lambda c, h: c.post(
        "/v1/series/UNRATE/observations",
        json={"dates": ["2025-01-01"], "values": [4.2]},
        headers=h,
    ),
    "commit": lambda c, h: c.post(
        "/v1/commits",
        json={"operations": [{"op": "update", "id": "UNRATE", "changes": {"units": "%"}}]},
        headers=h,
    ),
    "delete": lambda c, h: c.delete("/v1/series/GDPC1", headers=h),
}
READS = [
    "/v1/series",
    "/v1/series/GDP",
    "/v1/series/GDP/observations",
    "/v1/series/UNRATE/revisions",
    "/v1/versions",
    "/v1/versions/1",
]


@pytest.mark.parametrize("name", list(WRITES))
def test_every_write_refuses_missing_wrong_and_read_only_keys(
    auth_client: Client, name: str
) -> None:
    call = WRITES[name]
    version = auth_client.get("/v1/versions?limit=1", headers=bearer(READ_TOKEN)).json()
    missing = problem(call(auth_client, {}), 401)
    assert missing["type"].endswith("unauthorized")
    assert call(auth_client, {}).headers["www-authenticate"].startswith("Bearer")
    wrong = call(auth_client, bearer("fck_not-a-key"))
    problem(wrong, 401)
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    problem(call(auth_client, {"Authorization": f"Basic {WRITE_TOKEN}"}), 401)
    problem(call(auth_client, bearer(READ_TOKEN)), 403)
    # Nothing changed...
    assert auth_client.get("/v1/versions?limit=1", headers=bearer(READ_TOKEN)).json() == version
    # ...until a key with the scope asks.
    allowed = call(auth_client, bearer(WRITE_TOKEN))
    assert allowed.status_code in (200, 201), allowed.text


def test_reads_need_a_key_with_read(auth_client: Client) -> None:
    for url in READS:
        problem(auth_client.get(url), 401)
        problem(auth_client.get(url, headers=bearer(READ_TOKEN.upper())), 401)
        for token in (READ_TOKEN, WRITE_TOKEN, ADMIN_TOKEN):
            assert auth_client.get(url, headers=bearer(token)).status_code == 200, url
    for url in ("/health/live", "/health/ready", "/metrics", "/schema/openapi.json"):
        assert auth_client.get(url).status_code == 200, url
    security = auth_client.get("/schema/openapi.json").json()["components"]["securitySchemes"]
    assert security["bearer"]["scheme"] == "bearer"


def test_rate_limit_per_key(local_target: StoreTarget) -> None:
    with client_for(local_target, api_keys=KEYS, rate_limit=0.5, rate_burst=2) as client:
        for _ in range(2):
            assert client.get("/v1/series/GDP", headers=bearer(READ_TOKEN)).status_code == 200
        limited = client.get("/v1/series/GDP", headers=bearer(READ_TOKEN))
        body = problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        assert "reader" in body["detail"]
        # Another key has its own bucket; health checks are never limited.
        assert client.get("/v1/series/GDP", headers=bearer(WRITE_TOKEN)).status_code == 200
        for _ in range(5):
            assert client.get("/health/live").status_code == 200
        # Failed attempts spend the client address's budget: guessing keys is throttled.
        statuses = [
            client.get("/v1/series", headers=bearer(f"guess{i}")).status_code for i in range(4)
        ]
        assert statuses[:2] == [401, 401]
        assert 429 in statuses[2:]
        # Refusals are counted under their route and real status.
        text = client.get("/metrics").text
        assert metric(text, "fincat_http_requests_total", route="/v1/series", status="401") == 2
        limited_route = "/v1/series/{series_id}"
        assert metric(text, "fincat_http_requests_total", route=limited_route, status="429") == 1


def test_rate_limit_by_address_without_keys(local_target: StoreTarget) -> None:
    with client_for(local_target, rate_limit=1, rate_burst=1) as client:
        assert client.get("/v1/series").status_code == 200
        problem(client.get("/v1/series"), 429)


def test_token_bucket_refills() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=2, max_identities=2, clock=lambda: now[0])
    assert [buckets.take("a"), buckets.take("a")] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert buckets.take("a") == 0.0
    assert TokenBuckets(0, 1).take("a") == 0.0
    buckets.take("b")
    buckets.take("c")  # forgets "a", the least recently seen
    assert buckets.take("a") == 0.0


def test_no_keys_means_loopback_only(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "192.0.2.7", "example.org", "::"):
        with pytest.raises(SettingsError, match="loopback"):
            create_app(Settings(root=str(tmp_path), host=host))
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"):
        assert is_loopback(host)
        create_app(Settings(root=str(tmp_path), host=host))
    create_app(Settings(root=str(tmp_path), host="0.0.0.0", api_keys=KEYS))


def test_key_files(tmp_path: Path) -> None:
    digest = hash_token("secret")
    as_json = tmp_path / "keys.json"
    as_json.write_text(json.dumps({"keys": [{"name": "a", "sha256": digest, "scopes": ["read"]}]}))
    as_toml = tmp_path / "keys.toml"
    as_toml.write_text(f'[[keys]]\nname = "b"\nsha256 = "{digest}"\nscopes = ["admin"]\n')
    assert load_keys_file(as_json)[0].name == "a"
    assert load_keys_file(as_toml)[0].allows("write")
    for bad in (
        {"keys": [{"name": "a", "sha256": "secret", "scopes": ["read"]}]},
        {"keys": [{"name": "a", "sha256": digest, "scopes": ["sudo"]}]},
        {"keys": [{"name": "", "sha256": digest, "scopes": ["read"]}]},
        {"keys": [{"name": "a", "sha256": digest, "scopes": ["read"]}] * 2},
        # One token, two keys: it would get the scopes of whichever came last.
        {
            "keys": [
                {"name": "dashboard", "sha256": digest, "scopes": ["read"]},
                {"name": "loader", "sha256": digest, "scopes": ["write"]},
            ]
        },
        {"keys": "none"},
    ):
        with pytest.raises(KeyConfigError):
            parse_keys(bad, "test")
    with pytest.raises(KeyConfigError):
        load_keys_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[keys]\n")
    with pytest.raises(KeyConfigError):
        load_keys_file(broken)


def test_keys_from_several_sources_are_combined_once(tmp_path: Path) -> None:
    digest = hash_token("secret")
    entry = {"name": "loader", "sha256": digest, "scopes": ["write"]}
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"keys": [entry]}))
    env = {"FINCAT_ROOT": "x", "FINCAT_API_KEYS_FILE": str(keys_file)}
    same = Settings.from_env({**env, "FINCAT_API_KEYS": json.dumps([entry])})
    assert [k.name for k in same.api_keys] == ["loader"]
    assert Settings.from_env(same.to_env()) == same
    for clash in ({**entry, "scopes": ["read"]}, {**entry, "name": "other"}):
        with pytest.raises(KeyConfigError, match="more than one source"):
            Settings.from_env({**env, "FINCAT_API_KEYS": json.dumps([clash])})


def test_settings_from_env_round_trip(tmp_path: Path) -> None:
    settings = Settings(
        root=str(tmp_path),
        storage_options={"endpoint_url": "http://127.0.0.1:9", "secret": "Sup3rSecret"},
        cache_ttl=0.25,
        api_keys=KEYS,
        rate_limit=3.5,
        max_observations=10,
        create=True,
        hold_writes=False,
    )
    assert Settings.from_env(settings.to_env()) == settings
    # Error trackers record locals by repr: the store's credentials are not in it.
    assert "Sup3rSecret" not in repr(settings)
    assert "Sup3rSecret" not in repr(CliSettings("s3://b", {"secret": "Sup3rSecret"}))
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(
        json.dumps({"keys": [{"name": "f", "sha256": "0" * 64, "scopes": ["read"]}]})
    )
    loaded = Settings.from_env({"FINCAT_ROOT": "x", "FINCAT_API_KEYS_FILE": str(keys_file)})
    assert [k.name for k in loaded.api_keys] == ["f"]
    for env in (
        {},
        {"FINCAT_ROOT": "x", "FINCAT_PORT": "eighty"},
        {"FINCAT_ROOT": "x", "FINCAT_STORAGE_OPTIONS": "[1]"},
        {"FINCAT_ROOT": "x", "FINCAT_API_KEYS": "{"},
        {"FINCAT_ROOT": "x", "FINCAT_CACHE_TTL": "-1"},
    ):
        with pytest.raises(SettingsError):
            Settings.from_env(env)
