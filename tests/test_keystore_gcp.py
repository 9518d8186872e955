"""Google Cloud Secret Manager keystore (docs/compat/keystore.md §4.5, config.md §3.6).

GCP cannot run here, so the real ``google-cloud-secret-manager`` client (REST
transport) talks to a local HTTPS replay server (tests/cloud_replay.py) that emulates
the resources documented in the **Google Cloud Secret Manager REST reference v1**
(``projects.secrets.create`` / ``.addVersion`` / ``.delete`` / ``.list``,
``projects.secrets.versions.access``, ``google.rpc.Status`` error bodies) and the token
endpoint of **Google's "Using OAuth 2.0 for Server to Server Applications"** (JWT-bearer
grant; the server verifies the assertion's RS256 signature with the test key's public
key). The exchanges were built from those documented shapes, not captured from a live
system. Nothing in the client library is patched.

The behaviour shared with every backend is in test_keystore_contract.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import cloud_replay
from cloud_replay import GCPSecretManager, ServiceAccount
from conftest import PKI
from pykes.config import GCPKeyStoreConfig
from pykes.errors import KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore.gcp import (
    DEFAULT_SCOPES,
    GCPError,
    GCPSecretManagerKeyStore,
    connect,
    endpoint_host,
    service_account_info,
)

VALUE = b"eyJieXRlcyI6IkFRSURCQVVHQndnSkNnc01EUTRQRUJFU0V4UVZGaGNZR1JvYkhCMGVIeUE9In0="


@pytest.fixture(scope="module")
def account() -> ServiceAccount:
    return cloud_replay.make_service_account()


@pytest.fixture
def server(pki: PKI, account: ServiceAccount) -> Iterator[GCPSecretManager]:
    srv = GCPSecretManager(pki.server_cert, pki.server_key, account, cloud_replay.GCP_PROJECT)
    yield srv
    srv.stop()


Scenario = Callable[[GCPSecretManagerKeyStore], Awaitable[None]]


def run(
    server: GCPSecretManager,
    pki: PKI,
    scenario: Scenario,
    config: GCPKeyStoreConfig | None = None,
    **options: Any,
) -> None:
    cloud_replay.run_store(
        connect,
        config or cloud_replay.gcp_config(server),
        cloud_replay.gcp_options(server, pki.server_cert, **options),
        scenario,  # type: ignore[arg-type]
    )


def test_create_get_delete_list_use_the_documented_requests(
    server: GCPSecretManager, pki: PKI
) -> None:
    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        await cloud_replay.create_get_list_delete(store, "my-key", VALUE)

    run(server, pki, scenario)
    base = f"/v1/projects/{cloud_replay.GCP_PROJECT}/secrets"
    create = server.api_requests("POST", base)[0]
    assert create.path == base and create.query["secretId"] == ["my-key"]
    assert json.loads(create.body)["replication"] == {"automatic": {}}
    add = server.api_requests("POST", ":addVersion")[0]
    assert add.path == f"{base}/my-key:addVersion"
    assert base64.b64decode(json.loads(add.body)["payload"]["data"]) == VALUE
    access = server.api_requests("GET", ":access")
    assert [r.path for r in access] == [f"{base}/my-key/versions/1:access"]
    assert [r.path for r in server.api_requests("DELETE")] == [f"{base}/my-key"]
    assert server.secrets == {}


def test_existing_secret_raises_exists_and_keeps_value(server: GCPSecretManager, pki: PKI) -> None:
    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        await cloud_replay.second_create_keeps_first(store, "k")

    run(server, pki, scenario)
    assert server.secrets["k"] == {1: b"first"}
    assert len(server.api_requests("POST", ":addVersion")) == 1


def test_missing_secret_get_and_delete_raise_not_found(server: GCPSecretManager, pki: PKI) -> None:
    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.get("nope")
        with pytest.raises(KeyNotFoundError):
            await store.delete("nope")

    run(server, pki, scenario)


def test_get_always_reads_version_1(server: GCPSecretManager, pki: PKI) -> None:
    server.secrets["rotated"] = {1: b"original", 2: b"newer"}

    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        assert await store.get("rotated") == b"original"

    run(server, pki, scenario)


def test_secret_without_version_1_is_not_found(server: GCPSecretManager, pki: PKI) -> None:
    server.secrets["empty"] = {}

    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.get("empty")

    run(server, pki, scenario)


def test_service_account_jwt_is_signed_and_exchanged_for_a_token(
    server: GCPSecretManager, pki: PKI, account: ServiceAccount
) -> None:
    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        await store.create("a", b"1")
        await store.get("a")

    run(server, pki, scenario)
    # The replay server verified the RS256 signature with the account's public key.
    assert server.token_errors == []
    assert len(server.assertions) == 1, "one token is cached and reused"
    claims = server.assertions[0]
    assert claims["iss"] == account.client_email
    assert claims["scope"] == " ".join(DEFAULT_SCOPES)
    assert claims["exp"] > time.time()
    issued = server.tokens
    for rec in server.api_requests():
        assert rec.headers["authorization"].removeprefix("Bearer ") in issued


def test_configured_scopes_are_requested(server: GCPSecretManager, pki: PKI) -> None:
    scopes = ["https://www.googleapis.com/auth/cloud-platform.read-only", "openid"]
    config = cloud_replay.gcp_config(server, scopes=scopes)

    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        await store.list("", 0)

    run(server, pki, scenario, config=config)
    assert server.assertions[0]["scope"] == " ".join(scopes)


def test_a_key_the_token_endpoint_does_not_know_fails_without_leaking_it(
    server: GCPSecretManager, pki: PKI
) -> None:
    other = cloud_replay.make_service_account()
    config = cloud_replay.gcp_config(server, private_key=other.private_key_pem)

    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        with pytest.raises(GCPError) as info:
            await store.create("k", VALUE)
        text = str(info.value)
        assert "access token" in text
        assert "PRIVATE KEY" not in text and VALUE.decode() not in text
        assert info.value.__cause__ is None and info.value.__context__ is None

    run(server, pki, scenario, config=config)
    assert server.token_errors and server.assertions == []
    assert server.api_requests() == [] or all(r.path == "/" for r in server.api_requests()), (
        "no API request without a token"
    )


def test_service_account_info_converts_newlines_and_requires_all_fields() -> None:
    config = GCPKeyStoreConfig(
        project_id="p",
        client_email="e@x",
        client_id="1",
        private_key_id="kid",
        private_key="-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n",
    )
    info = service_account_info(config)
    assert info["type"] == "service_account"
    assert info["private_key"] == "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    assert info["token_uri"] == "https://oauth2.googleapis.com/token"
    for field_name, message in [
        ("client_email", "gcp: no client email provided"),
        ("client_id", "gcp: no client ID provided"),
        ("private_key", "gcp: no client private key provided"),
        ("private_key_id", "gcp: no client private key ID provided"),
    ]:
        partial = GCPKeyStoreConfig(**{**config.__dict__, field_name: ""})
        with pytest.raises(ValueError, match=message):
            service_account_info(partial)


def test_invalid_private_key_is_reported_without_its_text(server: GCPSecretManager) -> None:
    secret_text = "not-a-pem-SECRETMATERIAL"
    config = cloud_replay.gcp_config(server, private_key=secret_text)
    with pytest.raises(ValueError) as info:
        GCPSecretManagerKeyStore(config, token_uri=server.token_uri)
    assert "SECRETMATERIAL" not in str(info.value)
    assert info.value.__cause__ is None


def test_endpoint_host_accepts_host_port_and_urls() -> None:
    assert endpoint_host("secretmanager.googleapis.com:443") == "secretmanager.googleapis.com:443"
    assert endpoint_host("https://127.0.0.1:8443/") == "127.0.0.1:8443"


def test_list_follows_page_tokens_and_includes_foreign_secrets(
    server: GCPSecretManager, pki: PKI
) -> None:
    names = [f"key-{i:02d}" for i in range(8)] + ["other-app"]
    for name in names:
        server.secrets[name] = {1: b"x"}

    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        assert await store.list("", 0) == (sorted(names), "")
        assert await store.list("key-", 3) == (["key-00", "key-01", "key-02"], "key-03")

    run(server, pki, scenario)
    lists = server.api_requests("GET", "/secrets")
    lists = [r for r in lists if r.path.endswith("/secrets")]
    tokens = [r.query.get("pageToken", [""])[0] for r in lists[:3]]
    assert tokens == ["", "3", "6"], "three pages of at most 3 secrets"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retried(
    server: GCPSecretManager, pki: PKI, status: int
) -> None:
    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        await store.create("k", VALUE)
        server.fail_next(
            2,
            status,
            {"error": {"code": status, "message": "Quota exceeded", "status": "UNAVAILABLE"}},
        )
        started = time.monotonic()
        assert await store.get("k") == VALUE
        assert time.monotonic() - started < 5

    run(server, pki, scenario)
    assert len(server.api_requests("GET", ":access")) == 3


def test_persistent_server_errors_fail_within_the_deadline(
    server: GCPSecretManager, pki: PKI
) -> None:
    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        server.fail_next(1000, 503, {"error": {"code": 503, "status": "UNAVAILABLE"}})
        started = time.monotonic()
        with pytest.raises((GCPError, KeyStoreUnreachable)):
            await store.get("k")
        assert time.monotonic() - started < 4

    run(server, pki, scenario, operation_timeout=1.5)
    assert len(server.api_requests("GET", ":access")) >= 2


def test_failed_add_version_removes_the_empty_secret(server: GCPSecretManager, pki: PKI) -> None:
    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        await store.status()
        # createSecret succeeds; addVersion is rejected with a non-retryable error.
        original = server.handle

        def reject_add(rec: Any) -> Any:
            if rec.path.endswith(":addVersion"):
                return cloud_replay.Reply(
                    400,
                    {
                        "error": {
                            "code": 400,
                            "message": "bad payload",
                            "status": "INVALID_ARGUMENT",
                        }
                    },
                )
            return original(rec)

        server.handle = reject_add  # type: ignore[method-assign]
        with pytest.raises(GCPError) as info:
            await store.create("k", VALUE)
        assert VALUE.decode() not in str(info.value)
        server.handle = original  # type: ignore[method-assign]
        with pytest.raises(KeyNotFoundError):
            await store.get("k")
        await store.create("k", VALUE)
        assert await store.get("k") == VALUE

    run(server, pki, scenario)


def test_status_times_a_get_of_the_endpoint(server: GCPSecretManager, pki: PKI) -> None:
    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        server.requests.clear()
        latency = await store.status()
        assert 0 <= latency < 5
        assert [(r.method, r.path) for r in server.requests] == [("GET", "/")]

    run(server, pki, scenario)


def test_untrusted_server_certificate_is_rejected(server: GCPSecretManager, pki: PKI) -> None:
    # Another self-signed certificate: trusting it does not make the server trusted.
    other = pki.client("gcp-untrusted", key_type="ecdsa").cert_file

    async def main() -> None:
        with pytest.raises(KeyStoreUnreachable):
            await connect(
                cloud_replay.gcp_config(server), token_uri=server.token_uri, ca_file=str(other)
            )

    asyncio.run(main())


def test_closed_port_is_unreachable_within_the_timeout(pki: PKI, account: ServiceAccount) -> None:
    port = cloud_replay.unused_port()
    config = GCPKeyStoreConfig(
        project_id="p",
        endpoint=f"127.0.0.1:{port}",
        client_email=account.client_email,
        client_id=account.client_id,
        private_key_id=account.private_key_id,
        private_key=account.private_key_pem,
    )
    options = {
        "token_uri": f"https://127.0.0.1:{port}/token",
        "ca_file": str(pki.server_cert),
        "operation_timeout": 3.0,
    }

    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(KeyStoreUnreachable):
            await connect(config, **options)
        store = GCPSecretManagerKeyStore(config, **options)
        try:
            with pytest.raises(KeyStoreUnreachable):
                await store.get("k")
            with pytest.raises(KeyStoreUnreachable):
                await store.list("", 0)
        finally:
            await store.close()
        assert time.monotonic() - started < 6

    asyncio.run(main())


def test_stopped_server_makes_operations_unreachable(server: GCPSecretManager, pki: PKI) -> None:
    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        await store.create("k", VALUE)
        server.stop()
        with pytest.raises(KeyStoreUnreachable):
            await store.status()
        with pytest.raises(KeyStoreUnreachable):
            await store.get("k")

    run(server, pki, scenario, operation_timeout=3.0)


def test_missing_project_is_rejected() -> None:
    with pytest.raises(ValueError, match="no project ID"):
        GCPSecretManagerKeyStore(GCPKeyStoreConfig(project_id=""))


def test_without_credentials_application_default_credentials_are_used(
    server: GCPSecretManager,
    pki: PKI,
    account: ServiceAccount,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ADC from GOOGLE_APPLICATION_CREDENTIALS: a service-account key file whose
    # token_uri is the replay server.
    key_file = tmp_path / "adc.json"
    info = service_account_info(cloud_replay.gcp_config(server), token_uri=server.token_uri)
    key_file.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    config = GCPKeyStoreConfig(project_id=cloud_replay.GCP_PROJECT, endpoint=server.host)

    async def scenario(store: GCPSecretManagerKeyStore) -> None:
        await store.create("adc", VALUE)
        assert await store.get("adc") == VALUE

    run(server, pki, scenario, config=config)
    assert server.token_errors == []
    assert [c["iss"] for c in server.assertions] == [account.client_email]
