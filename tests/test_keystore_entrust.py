"""Entrust KeyControl keystore (docs/compat/keystore.md §4.9) against replayed exchanges.

The exchanges follow the Entrust KeyControl Vault REST API documentation (all calls
``POST /vault/1.0/<Operation>/``: ``Login/{vault_id}/`` → ``{access_token,
expires_at}``, ``Renew/``, ``GetBox/``, ``CreateSecret/``, ``CheckoutSecret/``,
``DeleteSecret/``, ``ListSecretIds/`` with ``max_items``/``next_token``; token header
``X-Vault-Auth``; errors ``{"error": ...}``) and the mapping of docs/compat/keystore.md §4.9.
They were built from those documented shapes (the error texts are the ones the Go
reference server matches), not captured from a live KeyControl, and are served over
real HTTPS by tests/replay_server.py; the client is not patched.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import cloud_replay
from keystore_backends import (
    ENTRUST_BOX_ID,
    ENTRUST_PASSWORD,
    ENTRUST_USER,
    ENTRUST_VAULT_ID,
    entrust_config,
    entrust_emulator,
    serve_replay,
)
from pykes.errors import KeyExistsError, KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore import entrust
from pykes.keystore.entrust import DEFAULT_LIFETIME, EntrustError, EntrustKeyStore, _lifetime
from replay_server import EntrustEmulator, ReplayServer, Reply

FAST = {"timeout": 2.0, "backoff": 0.01}
VALUE = b"CiAxMjM0NTY3ODkwYWJjZGVmMTIzNDU2Nzg5MGFiY2RlZhIFYWRtaW4="
LOGIN = f"/vault/1.0/Login/{ENTRUST_VAULT_ID}/"
LIST = "/vault/1.0/ListSecretIds/"


@pytest.fixture
def server(pki: Any) -> Iterator[ReplayServer]:
    yield from serve_replay(pki, entrust_emulator())


@pytest.fixture
def emulator(server: ReplayServer) -> EntrustEmulator:
    assert isinstance(server.emulator, EntrustEmulator)
    return server.emulator


Scenario = Callable[[EntrustKeyStore], Awaitable[None]]


def run(server: ReplayServer, pki: Any, scenario: Scenario) -> None:
    config = entrust_config(server.url, pki.server_cert)
    cloud_replay.run_store(entrust.connect, config, FAST, scenario)


def _decode_token(token: str) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(token)))


def test_login_getbox_and_the_secret_round_trip(
    server: ReplayServer, emulator: EntrustEmulator, pki: Any
) -> None:
    async def scenario(store: EntrustKeyStore) -> None:
        await cloud_replay.round_trip_then_gone(store, "my-key", VALUE)

    run(server, pki, scenario)
    login, getbox = server.requests[:2]
    assert (login.method, login.path) == ("POST", LOGIN)
    assert login.body == {"username": ENTRUST_USER, "password": ENTRUST_PASSWORD}
    assert getbox.path == "/vault/1.0/GetBox/"
    assert getbox.body == {"box_id": ENTRUST_BOX_ID}
    assert getbox.headers["x-vault-auth"].startswith("tok-")
    (create,) = server.calls("POST", "/vault/1.0/CreateSecret/")
    assert create.body == {
        "box_id": ENTRUST_BOX_ID,
        "name": "my-key",
        "secret_data": base64.b64encode(VALUE).decode(),
    }
    checkout = server.calls("POST", "/vault/1.0/CheckoutSecret/")[0]
    assert checkout.body == {"box_id": ENTRUST_BOX_ID, "secret_id": "my-key"}
    (delete,) = server.calls("POST", "/vault/1.0/DeleteSecret/")
    assert delete.body == {"box_id": ENTRUST_BOX_ID, "secret_id": "my-key"}


def test_exists_and_not_found_map_only_on_the_exact_texts(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: EntrustKeyStore) -> None:
        await store.create("dup", b"first")
        with pytest.raises(KeyExistsError):
            await store.create("dup", b"second")
        with pytest.raises(KeyNotFoundError):
            await store.get("missing")
        with pytest.raises(KeyNotFoundError):
            await store.delete("missing")
        server.script("POST", "/vault/1.0/CheckoutSecret/", Reply(404, {"error": "Box not found"}))
        with pytest.raises(EntrustError, match="Box not found"):
            await store.get("dup")

    run(server, pki, scenario)


def test_wrong_box_or_password_fails_connect(server: ReplayServer, pki: Any) -> None:
    async def main() -> None:
        with pytest.raises(EntrustError, match="Box not found"):
            await entrust.connect(entrust_config(server.url, pki.server_cert, box_id="x"), **FAST)
        config = entrust_config(server.url, pki.server_cert, password="wrong-pass")
        with pytest.raises(EntrustError, match="login failed") as err:
            await entrust.connect(config, **FAST)
        assert "wrong-pass" not in str(err.value)

    asyncio.run(main())


def test_expired_token_logs_in_again_and_repeats_the_call(
    server: ReplayServer, emulator: EntrustEmulator, pki: Any
) -> None:
    async def scenario(store: EntrustKeyStore) -> None:
        await store.create("k", VALUE)
        emulator.expire_tokens()
        assert await store.get("k") == VALUE

    run(server, pki, scenario)
    assert len(server.calls("POST", LOGIN)) == 2
    checkouts = server.calls("POST", "/vault/1.0/CheckoutSecret/")
    assert len(checkouts) == 2
    assert checkouts[0].headers["x-vault-auth"] != checkouts[1].headers["x-vault-auth"]


def test_token_is_renewed_at_half_life_with_login_fallback(
    server: ReplayServer, emulator: EntrustEmulator, pki: Any
) -> None:
    emulator.token_lifetime = 1.0

    async def scenario(store: EntrustKeyStore) -> None:
        (renew,) = await server.wait_calls("POST", "/vault/1.0/Renew/", 1)
        (login,) = server.calls("POST", LOGIN)
        assert 0.3 <= renew.at - login.at < 0.9  # due at half of ~1 s
        first_token = server.calls("POST", "/vault/1.0/GetBox/")[0].headers["x-vault-auth"]
        assert renew.headers["x-vault-auth"] == first_token
        # the next renewal is refused: the store falls back to a fresh login
        server.script("POST", "/vault/1.0/Renew/", Reply(401, {"error": "Token expired"}))
        await server.wait_calls("POST", LOGIN, 2)
        assert len(server.calls("POST", "/vault/1.0/Renew/")) == 2
        await store.create("k", b"v")

    run(server, pki, scenario)
    creates = server.calls("POST", "/vault/1.0/CreateSecret/")
    assert len(creates) == 1  # the background renewal kept the token valid


def test_expiry_parsing() -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=100)).isoformat().replace("+00:00", "Z")
    assert 95 < _lifetime(soon) <= 100
    assert _lifetime(None) == DEFAULT_LIFETIME  # missing expiry → 5 min
    assert _lifetime("0001-01-01T00:00:00Z") == DEFAULT_LIFETIME  # Go zero time
    assert _lifetime("garbage") == DEFAULT_LIFETIME


def test_list_skips_expired_and_never_returns_empty_names(
    server: ReplayServer, emulator: EntrustEmulator, pki: Any
) -> None:
    emulator.add("a", b"v")
    emulator.add("b", b"v", expired=True)
    emulator.add("c", b"v")
    server.script(
        "POST",
        LIST,
        Reply(200, {"secrets": [{"name": ""}, {"name": "a"}, {"name": "c"}], "next_token": ""}),
    )

    async def scenario(store: EntrustKeyStore) -> None:
        assert await store.list("", -1) == (["a", "c"], "")  # scripted: an empty name
        assert await store.list("", -1) == (["a", "c"], "")  # emulated: "b" expired

    run(server, pki, scenario)
    first = server.calls("POST", LIST)[0]
    assert first.body == {"box_id": ENTRUST_BOX_ID, "max_items": 257}


def test_list_follows_continuation_tokens_and_returns_one_page(
    server: ReplayServer, emulator: EntrustEmulator, pki: Any
) -> None:
    emulator.page_cap = 40
    names = [f"key-{i:03d}" for i in range(300)] + ["zz"]
    for name in names:
        emulator.add(name, b"v")

    async def scenario(store: EntrustKeyStore) -> None:
        server.requests.clear()
        page, cont = await store.list("", -1)
        assert (page, cont) == (names[:256], names[256])
        requests = server.calls("POST", LIST)
        assert len(requests) == 7  # 257 names in pages of 40
        assert "next_token" not in requests[0].body
        assert _decode_token(requests[1].body["next_token"]) == {
            "box_id": ENTRUST_BOX_ID,
            "next_ctx": names[40],
        }

        server.requests.clear()
        assert await store.list("key-1", 5) == (names[100:105], names[105])
        (req,) = server.calls("POST", LIST)
        assert _decode_token(req.body["next_token"])["next_ctx"] == "key-1"
        assert req.body["max_items"] == 6
        assert await store.list("key-29", -1) == (names[290:300], "")

    run(server, pki, scenario)


def test_429_then_success_and_5xx_exhausted(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: EntrustKeyStore) -> None:
        create = "/vault/1.0/CreateSecret/"
        server.script("POST", create, Reply(429, {"error": "Too many requests"}))
        await store.create("k", VALUE)
        assert len(server.calls("POST", create)) == 2
        busy = Reply(500, {"error": "Internal error"})
        server.script("POST", "/vault/1.0/CheckoutSecret/", busy, busy, busy)
        with pytest.raises(EntrustError, match="Internal error") as err:
            await store.get("k")
        assert not isinstance(err.value, KeyStoreUnreachable)
        assert base64.b64encode(VALUE).decode() not in str(err.value)

    run(server, pki, scenario)


def test_status_is_getbox_and_unreachable_when_down(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: EntrustKeyStore) -> None:
        assert 0 <= await store.status() < 2
        server.script("POST", "/vault/1.0/GetBox/", Reply(403, {"error": "Access denied"}))
        with pytest.raises(EntrustError, match="Access denied"):
            await store.status()
        server.stop()
        with pytest.raises(KeyStoreUnreachable):
            await store.status()

    run(server, pki, scenario)


def test_closed_port_is_unreachable_quickly(pki: Any) -> None:
    config = entrust_config(f"https://127.0.0.1:{cloud_replay.unused_port()}", pki.server_cert)
    cloud_replay.assert_unreachable_quickly(entrust.connect, config, "keycontrol", FAST)
