"""Thales CipherTrust Manager / Gemalto KeySecure keystore (docs/compat/keystore.md §4.8)
against replayed exchanges.

The exchanges follow the Thales CipherTrust Manager REST API documentation
(``POST /api/v1/auth/tokens`` with ``grant_type=refresh_token`` → ``{jwt, duration,
token_type}``; ``/api/v1/vault/secrets`` create, ``/{id}/export?type=name``,
``DELETE /{id}?type=name`` and the ``limit``/``skip``/``total``/``resources`` list
envelope) and the mapping of docs/compat/keystore.md §4.8. They were built from those
documented shapes, not captured from a live CipherTrust Manager, and are served over
real HTTPS by tests/replay_server.py; the client is not patched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import cloud_replay
from keystore_backends import GEMALTO_REFRESH_TOKEN, gemalto_config, gemalto_emulator, serve_replay
from pykes.errors import KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore import gemalto
from pykes.keystore.gemalto import GemaltoError, GemaltoKeyStore
from replay_server import GemaltoEmulator, ReplayServer, Reply

FAST = {"timeout": 2.0, "backoff": 0.01, "retry_interval": 0.1}
VALUE = b"CiAxMjM0NTY3ODkwYWJjZGVmMTIzNDU2Nzg5MGFiY2RlZhIFYWRtaW4="
TOKENS = "/api/v1/auth/tokens"
SECRETS = "/api/v1/vault/secrets"


@pytest.fixture
def server(pki: Any) -> Iterator[ReplayServer]:
    yield from serve_replay(pki, gemalto_emulator())


@pytest.fixture
def emulator(server: ReplayServer) -> GemaltoEmulator:
    assert isinstance(server.emulator, GemaltoEmulator)
    return server.emulator


Scenario = Callable[[GemaltoKeyStore], Awaitable[None]]


def run(server: ReplayServer, pki: Any, scenario: Scenario, **options: Any) -> None:
    config = gemalto_config(server.url, pki.server_cert)
    cloud_replay.run_store(gemalto.connect, config, {**FAST, **options}, scenario)


def test_connect_exchanges_the_refresh_token_for_a_bearer_jwt(
    server: ReplayServer, pki: Any
) -> None:
    async def scenario(store: GemaltoKeyStore) -> None:
        await cloud_replay.round_trip_then_gone(store, "my-key", VALUE)

    run(server, pki, scenario)
    auth = server.requests[0]
    assert (auth.method, auth.path) == ("POST", TOKENS)
    assert auth.body == {
        "grant_type": "refresh_token",
        "refresh_token": GEMALTO_REFRESH_TOKEN,
        "domain": "root",
    }
    (create,) = server.calls("POST", SECRETS)
    assert create.body == {"dataType": "seed", "material": VALUE.decode(), "name": "my-key"}
    assert create.headers["authorization"].startswith("Bearer tok-")
    export = server.calls("POST", f"{SECRETS}/my-key/export")
    assert export and all(r.query == {"type": "name"} for r in export)
    (delete,) = server.calls("DELETE", f"{SECRETS}/my-key")
    assert delete.query == {"type": "name"}


def test_domain_is_omitted_when_not_configured(server: ReplayServer, pki: Any) -> None:
    async def main() -> None:
        config = gemalto_config(server.url, pki.server_cert, domain="")
        store = await gemalto.connect(config, **FAST)
        await store.close()

    asyncio.run(main())
    assert "domain" not in server.calls("POST", TOKENS)[0].body


def test_exists_not_found_and_silent_delete(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: GemaltoKeyStore) -> None:
        await cloud_replay.second_create_keeps_first(store, "dup")
        with pytest.raises(KeyNotFoundError):
            await store.get("missing")
        assert await store.delete("missing") is None  # 404 counts as deleted (§4.8)

    run(server, pki, scenario)


def test_non_utf8_value_is_rejected_without_echoing_it(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: GemaltoKeyStore) -> None:
        with pytest.raises(ValueError, match="not UTF-8") as err:
            await store.create("bin", b"\xff\xfe-secret-bytes")
        assert "secret-bytes" not in str(err.value)
        assert not server.calls("POST", SECRETS)

    run(server, pki, scenario)


def test_expired_jwt_is_renewed_on_401_and_the_call_repeated(
    server: ReplayServer, emulator: GemaltoEmulator, pki: Any
) -> None:
    async def scenario(store: GemaltoKeyStore) -> None:
        await store.create("k", VALUE)
        emulator.expire_tokens()
        assert await store.get("k") == VALUE

    run(server, pki, scenario)
    assert len(server.calls("POST", TOKENS)) == 2
    exports = server.calls("POST", f"{SECRETS}/k/export")
    assert len(exports) == 2
    assert exports[0].headers["authorization"] != exports[1].headers["authorization"]


def test_revoked_refresh_token_fails_after_one_reauthentication(
    server: ReplayServer, emulator: GemaltoEmulator, pki: Any
) -> None:
    async def scenario(store: GemaltoKeyStore) -> None:
        emulator.refresh_token = "revoked"
        emulator.expire_tokens()
        with pytest.raises(GemaltoError, match="failed to authenticate") as err:
            await store.get("k")
        assert GEMALTO_REFRESH_TOKEN not in str(err.value)

    run(server, pki, scenario)
    assert len(server.calls("POST", TOKENS)) == 2


def test_wrong_refresh_token_fails_connect(server: ReplayServer, pki: Any) -> None:
    async def main() -> None:
        config = gemalto_config(server.url, pki.server_cert, token="not-the-token")
        with pytest.raises(GemaltoError, match="authenticate") as err:
            await gemalto.connect(config, **FAST)
        assert "not-the-token" not in str(err.value)

    asyncio.run(main())


def test_jwt_is_renewed_in_the_background_at_half_its_duration(pki: Any) -> None:
    server = ReplayServer(gemalto_emulator(duration=1), pki.server_cert, pki.server_key).start()
    try:

        async def scenario(store: GemaltoKeyStore) -> None:
            first, renewal = await server.wait_calls("POST", TOKENS, 2)
            assert 0.4 <= renewal.at - first.at < 0.9  # due at half of 1 s
            await asyncio.sleep(max(0.0, first.at + 1.1 - time.monotonic()))
            await store.create("k", b"v")  # the first JWT expired; the renewed one works

        run(server, pki, scenario)
        assert len(server.calls("POST", SECRETS)) == 1  # no 401 and retry was needed
    finally:
        server.stop()


def test_failed_renewal_is_retried_after_the_retry_interval(pki: Any) -> None:
    server = ReplayServer(gemalto_emulator(duration=1), pki.server_cert, pki.server_key).start()
    try:

        async def scenario(store: GemaltoKeyStore) -> None:
            server.script("POST", TOKENS, Reply(503, {"codeDesc": "unavailable"}))
            _, failed, retried = await server.wait_calls("POST", TOKENS, 3)
            assert 0.05 <= retried.at - failed.at < 0.4  # retry_interval=0.1, not 0.5
            assert server.pending() == 0
            await store.create("k", b"v")

        run(server, pki, scenario, max_attempts=1)
    finally:
        server.stop()


def test_429_is_retried_then_succeeds(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: GemaltoKeyStore) -> None:
        server.script("POST", SECRETS, Reply(429, {"codeDesc": "too many requests"}))
        await store.create("k", b"v")
        assert await store.get("k") == b"v"

    run(server, pki, scenario)
    assert len(server.calls("POST", SECRETS)) == 2


def test_5xx_exhausted_is_an_error_not_unreachable(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: GemaltoKeyStore) -> None:
        await store.create("k", VALUE)
        busy = Reply(502, {"codeDesc": "bad gateway"})
        server.script("POST", f"{SECRETS}/k/export", busy, busy, busy)
        with pytest.raises(GemaltoError, match="502") as err:
            await store.get("k")
        assert not isinstance(err.value, KeyStoreUnreachable)
        assert VALUE.decode() not in str(err.value)
        assert await store.get("k") == VALUE

    run(server, pki, scenario)
    assert len(server.calls("POST", f"{SECRETS}/k/export")) == 4


def test_list_pages_with_limit_and_skip_until_total(
    server: ReplayServer, emulator: GemaltoEmulator, pki: Any
) -> None:
    names = [f"key-{i:03d}" for i in range(450)]
    for name in names:
        emulator.add(name, b"v")

    async def scenario(store: GemaltoKeyStore) -> None:
        server.requests.clear()
        assert await store.list("", -1) == (names, "")
        pages = server.calls("GET", SECRETS)
        assert [(p.query["limit"], p.query["skip"]) for p in pages] == [
            ("200", "0"),
            ("200", "200"),
            ("200", "400"),
        ]
        assert await store.list("key-1", 10) == (names[100:110], names[110])

    run(server, pki, scenario)


def test_status_and_unreachable(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: GemaltoKeyStore) -> None:
        server.script("GET", "/", Reply(404, {"codeDesc": "not found"}))
        assert 0 <= await store.status() < 2
        server.stop()
        with pytest.raises(KeyStoreUnreachable):
            await store.status()
        with pytest.raises(KeyStoreUnreachable):
            await store.get("k")

    run(server, pki, scenario)


def test_closed_port_is_unreachable_quickly(pki: Any) -> None:
    config = gemalto_config(f"https://127.0.0.1:{cloud_replay.unused_port()}", pki.server_cert)
    cloud_replay.assert_unreachable_quickly(gemalto.connect, config, "gemalto", FAST)
