"""Azure Key Vault keystore (docs/compat/keystore.md §4.6, config.md §3.7).

Azure cannot run here, so the real ``azure-keyvault-secrets`` async client and the real
``azure-identity`` ``ClientSecretCredential`` talk to a local HTTPS replay server
(tests/cloud_replay.py) that emulates the resources documented in the **Azure Key Vault
Secrets REST API 7.4 / 7.5** reference (Get Secret, Set Secret, Get Secret Versions,
Get Secrets, Delete Secret, Get Deleted Secret, Purge Deleted Secret; the
``{"error": {"code", "message", "innererror"}}`` body, e.g. ``ObjectIsDeletedButRecoverable``;
the 401 bearer challenge) and the **Microsoft identity platform OAuth 2.0
client-credentials** token request. The exchanges were built from those documented
shapes, not captured from a live system. Nothing in the client libraries is patched.

The behaviour shared with every backend is in test_keystore_contract.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import cloud_replay
from cloud_replay import AzureKeyVault, AzureVersion
from conftest import PKI
from pykes.config import AzureKeyStoreConfig
from pykes.errors import KeyExistsError, KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore.azure import AzureError, AzureKeyVaultKeyStore, connect

VALUE = b"eyJieXRlcyI6IkFRSURCQVVHQndnSkNnc01EUTRQRUJFU0V4UVZGaGNZR1JvYkhCMGVIeUE9In0="


@pytest.fixture
def server(pki: PKI) -> Iterator[AzureKeyVault]:
    srv = cloud_replay.azure_vault(pki.server_cert, pki.server_key)
    yield srv
    srv.stop()


Scenario = Callable[[AzureKeyVaultKeyStore], Awaitable[None]]


def run(
    server: AzureKeyVault,
    pki: PKI,
    scenario: Scenario,
    config: AzureKeyStoreConfig | None = None,
    **options: Any,
) -> None:
    cloud_replay.run_store(
        connect,
        config or cloud_replay.azure_config(server),
        cloud_replay.azure_options(server, pki.server_cert, **options),
        scenario,  # type: ignore[arg-type]
    )


def calls(server: AzureKeyVault) -> list[tuple[str, str]]:
    return [(r.method, r.path.rstrip("/")) for r in server.api_requests()]


def test_create_get_delete_list_use_the_documented_requests(
    server: AzureKeyVault, pki: PKI
) -> None:
    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        await cloud_replay.create_get_list_delete(store, "my-key", VALUE)

    run(server, pki, scenario)
    for rec in server.api_requests():
        assert rec.query["api-version"] == ["7.5"], "every call names the API version"
        if rec.method == "PUT" and rec.body:
            assert json.loads(rec.body)["value"] == VALUE.decode()
    seen = calls(server)
    assert ("PUT", "/secrets/my-key") in seen
    assert ("GET", "/secrets/my-key/versions") in seen
    assert ("DELETE", "/secrets/my-key") in seen
    assert ("DELETE", "/deletedsecrets/my-key") in seen, "deleted secrets are purged"
    assert server.secrets == {} and server.deleted == {}


def test_existing_secret_raises_exists_without_writing(server: AzureKeyVault, pki: PKI) -> None:
    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        await cloud_replay.second_create_keeps_first(store, "k")

    run(server, pki, scenario)
    assert [c for c in calls(server) if c[0] == "PUT"] == [("PUT", "/secrets/k")]
    assert [v.value for v in server.secrets["k"]] == ["first"]


def test_missing_secret_get_and_delete_raise_not_found(server: AzureKeyVault, pki: PKI) -> None:
    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.get("nope")
        with pytest.raises(KeyNotFoundError):
            await store.delete("nope")

    run(server, pki, scenario)


def test_client_secret_token_and_bearer_challenge(server: AzureKeyVault, pki: PKI) -> None:
    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        await store.create("a", b"1")
        await store.get("a")
        await store.list("", 0)

    run(server, pki, scenario)
    assert len(server.token_forms) == 1, "the token is cached"
    form = server.token_forms[0]
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == cloud_replay.AZURE_CLIENT_ID
    assert form["scope"] == "https://vault.azure.net/.default"
    token_calls = [r for r in server.requests if server.is_token_request(r)]
    assert token_calls[0].path == f"/{cloud_replay.AZURE_TENANT}/oauth2/v2.0/token"
    api = server.api_requests()
    assert "authorization" not in api[0].headers, "first request draws the 401 challenge"
    for rec in api[2:]:
        assert rec.headers["authorization"].removeprefix("Bearer ") in server.tokens


def test_wrong_client_secret_fails_without_leaking_it(server: AzureKeyVault, pki: PKI) -> None:
    bad = "wrong~secret~XYZZY"
    config = cloud_replay.azure_config(server, client_secret=bad)

    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        for op in (store.create("k", VALUE), store.get("k"), store.list("", 0)):
            with pytest.raises(AzureError) as info:
                await op
            assert bad not in str(info.value) and VALUE.decode() not in str(info.value)
            assert info.value.__cause__ is None

    run(server, pki, scenario, config=config)
    assert server.secrets == {}


def test_soft_deleted_secret_is_purged_and_creation_retried(
    server: AzureKeyVault, pki: PKI
) -> None:
    server.deleted["k"] = [AzureVersion("old", "stale", server.tick())]

    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        await store.create("k", VALUE)
        assert await store.get("k") == VALUE

    run(server, pki, scenario)
    sequence = [c for c in calls(server) if c[0] in ("PUT", "DELETE")]
    assert sequence == [
        ("PUT", "/secrets/k"),
        ("DELETE", "/deletedsecrets/k"),
        ("PUT", "/secrets/k"),
    ]
    assert server.deleted == {}


def test_secret_being_deleted_is_purged_after_retries(server: AzureKeyVault, pki: PKI) -> None:
    server.deleted["k"] = [AzureVersion("old", "stale", server.tick())]
    server.being_deleted = 3  # three purge attempts answer ObjectIsBeingDeleted

    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        await store.create("k", VALUE)
        assert await store.get("k") == VALUE

    run(server, pki, scenario)
    purges = [c for c in calls(server) if c == ("DELETE", "/deletedsecrets/k")]
    assert len(purges) == 4
    assert server.being_deleted == 0


def test_delete_purges_a_leftover_soft_deleted_secret(server: AzureKeyVault, pki: PKI) -> None:
    server.deleted["k"] = [AzureVersion("old", "stale", server.tick())]

    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.delete("k")

    run(server, pki, scenario)
    assert server.deleted == {}


def test_get_reads_the_oldest_version(server: AzureKeyVault, pki: PKI) -> None:
    now = int(time.time())
    # Listed newest first: the oldest (earliest "created") must win, not list order.
    server.secrets["rotated"] = [
        AzureVersion("v3", "newest", now - 10),
        AzureVersion("v1", "original", now - 300),
        AzureVersion("v2", "middle", now - 100),
    ]

    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        assert await store.get("rotated") == b"original"

    run(server, pki, scenario)
    assert ("GET", "/secrets/rotated/v1") in calls(server)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"enabled": False}, "disabled"),
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not yet valid"),
    ],
)
def test_unusable_oldest_version_is_an_error(
    server: AzureKeyVault, pki: PKI, attrs: dict[str, Any], message: str
) -> None:
    server.add_version("k", "value", **attrs)

    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        with pytest.raises(AzureError, match=message):
            await store.get("k")

    run(server, pki, scenario)


def test_more_than_one_page_of_versions_is_an_error(server: AzureKeyVault, pki: PKI) -> None:
    server.page_size = 3
    for i in range(server.page_size + 1):
        server.add_version("k", f"v{i}")

    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        with pytest.raises(AzureError, match="too many versions"):
            await store.get("k")

    run(server, pki, scenario)


def test_list_follows_next_links(server: AzureKeyVault, pki: PKI) -> None:
    server.page_size = 3
    names = [f"key-{i:02d}" for i in range(8)] + ["other-app"]
    for name in names:
        server.add_version(name, "x")

    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        assert await store.list("", 0) == (sorted(names), "")
        assert await store.list("key-", 3) == (["key-00", "key-01", "key-02"], "key-03")

    run(server, pki, scenario)
    pages = [
        r
        for r in server.api_requests("GET")
        if r.path.rstrip("/") == "/secrets" and "authorization" in r.headers  # not the challenge
    ]
    skips = [r.query.get("$skiptoken", [""])[0] for r in pages[:3]]
    assert skips == ["", "3", "6"]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retried(
    server: AzureKeyVault, pki: PKI, status: int
) -> None:
    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        await store.create("k", VALUE)
        server.fail_next(2, status, {"error": {"code": "Throttled", "message": "busy"}})
        started = time.monotonic()
        assert await store.list("", 0) == (["k"], "")
        assert time.monotonic() - started < 5

    run(server, pki, scenario)
    lists = [r for r in server.api_requests("GET") if r.path.rstrip("/") == "/secrets"]
    assert len(lists) == 3


def test_persistent_server_errors_fail(server: AzureKeyVault, pki: PKI) -> None:
    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        server.fail_next(1000, 500, {"error": {"code": "InternalError", "message": "down"}})
        with pytest.raises((AzureError, KeyStoreUnreachable)):
            await store.get("k")

    run(server, pki, scenario, operation_timeout=5.0)
    assert len(server.api_requests()) >= 2


def test_non_utf8_value_is_rejected_without_echoing_it(server: AzureKeyVault, pki: PKI) -> None:
    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        with pytest.raises(ValueError, match="not UTF-8") as info:
            await store.create("k", b"\xff\xfeSECRET")
        assert "SECRET" not in str(info.value)

    run(server, pki, scenario)
    assert server.secrets == {}


def test_status_times_a_get_of_the_vault_url(server: AzureKeyVault, pki: PKI) -> None:
    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        server.requests.clear()
        assert 0 <= await store.status() < 5
        assert [(r.method, r.path) for r in server.requests] == [("GET", "/")]

    run(server, pki, scenario)


def test_closed_port_is_unreachable_within_the_timeout(pki: PKI) -> None:
    port = cloud_replay.unused_port()
    url = f"https://127.0.0.1:{port}"
    config = AzureKeyStoreConfig(
        endpoint=url,
        tenant_id=cloud_replay.AZURE_TENANT,
        client_id=cloud_replay.AZURE_CLIENT_ID,
        client_secret=cloud_replay.AZURE_CLIENT_SECRET,
    )
    options = {
        "authority": url,
        "ca_file": str(pki.server_cert),
        "verify_challenge_resource": False,
        "retry_backoff": 0.05,
        "retry_backoff_max": 0.1,
        "operation_timeout": 3.0,
    }

    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(KeyStoreUnreachable):
            await connect(config, **options)
        store = AzureKeyVaultKeyStore(config, **options)
        try:
            for op in (store.get("k"), store.create("k", VALUE), store.list("", 0)):
                with pytest.raises(KeyStoreUnreachable):
                    await op
        finally:
            await store.close()
        assert time.monotonic() - started < 10

    asyncio.run(main())


def test_stopped_server_makes_operations_unreachable(server: AzureKeyVault, pki: PKI) -> None:
    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        await store.create("k", VALUE)
        server.stop()
        with pytest.raises(KeyStoreUnreachable):
            await store.status()
        with pytest.raises(KeyStoreUnreachable):
            await store.get("k")

    run(server, pki, scenario, operation_timeout=3.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"client_id": "c", "client_secret": "s"}, "no tenant ID"),
        ({"tenant_id": "t", "client_secret": "s"}, "no client ID"),
        ({"tenant_id": "t", "client_id": "c"}, "no client secret"),
        ({}, "no endpoint"),
    ],
)
def test_incomplete_config_is_rejected(fields: dict[str, str], message: str) -> None:
    endpoint = "https://vault.example" if message != "no endpoint" else ""

    async def main() -> None:
        with pytest.raises(ValueError, match=message):
            AzureKeyVaultKeyStore(AzureKeyStoreConfig(endpoint=endpoint, **fields))

    asyncio.run(main())


def test_rejected_write_reports_the_vault_error_without_the_value(
    server: AzureKeyVault, pki: PKI
) -> None:
    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        await store.status()
        await store.list("", 0)  # the bearer challenge is done
        original = server.handle

        def forbid_put(rec: Any) -> Any:
            if rec.method == "PUT":
                return cloud_replay.Reply(
                    403,
                    {"error": {"code": "Forbidden", "message": "ForbiddenByPolicy: not allowed"}},
                )
            return original(rec)

        server.handle = forbid_put  # type: ignore[method-assign]
        with pytest.raises(AzureError, match="ForbiddenByPolicy") as info:
            await store.create("k", VALUE)
        assert VALUE.decode() not in str(info.value)
        assert info.value.__context__ is None and info.value.__cause__ is None

    run(server, pki, scenario)
    assert server.secrets == {}


def test_losing_a_create_race_disables_the_extra_version(server: AzureKeyVault, pki: PKI) -> None:
    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        await store.list("", 0)  # the bearer challenge is done
        original = server.handle

        def concurrent_winner(rec: Any) -> Any:
            # Another creator's SetSecret lands between our GET (404) and our SetSecret.
            if rec.method == "GET" and rec.path.rstrip("/") == "/secrets/k":
                reply = original(rec)
                server.add_version("k", "winner")
                return reply
            return original(rec)

        server.handle = concurrent_winner  # type: ignore[method-assign]
        with pytest.raises(KeyExistsError):
            await store.create("k", VALUE)
        server.handle = original  # type: ignore[method-assign]
        assert await store.get("k") == b"winner"

    run(server, pki, scenario)
    assert [(v.value, v.enabled) for v in server.secrets["k"]] == [
        ("winner", True),
        (VALUE.decode(), False),
    ]
    assert any(r.method == "PATCH" for r in server.api_requests())


def test_managed_identity_token_from_the_app_service_endpoint(
    server: AzureKeyVault, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # azure-identity's documented App Service managed identity environment.
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{server.url}{AzureKeyVault.MSI_PATH}")
    monkeypatch.setenv("IDENTITY_HEADER", AzureKeyVault.MSI_HEADER)
    config = AzureKeyStoreConfig(
        endpoint=server.url, managed_identity_client_id=cloud_replay.AZURE_CLIENT_ID
    )

    async def scenario(store: AzureKeyVaultKeyStore) -> None:
        await store.create("k", VALUE)
        assert await store.get("k") == VALUE

    run(server, pki, scenario, config=config)
    assert len(server.token_forms) == 1
    query = server.token_forms[0]
    assert query["client_id"] == cloud_replay.AZURE_CLIENT_ID
    assert query["resource"].startswith("https://vault.azure.net")
    for rec in server.api_requests()[1:]:
        assert rec.headers["authorization"].removeprefix("Bearer ") in server.tokens
