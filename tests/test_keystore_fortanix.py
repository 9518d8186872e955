"""Fortanix SDKMS / DSM keystore (docs/compat/keystore.md §4.7) against replayed exchanges.

The exchanges follow the Fortanix DSM REST API reference (support.fortanix.com/apidocs:
``GET /sys/v1/health``, ``POST /sys/v1/session/auth`` / ``terminate``,
``PUT /crypto/v1/keys``, ``POST /crypto/v1/keys/export``, ``GET /crypto/v1/keys``,
``DELETE /crypto/v1/keys/{kid}``) and the mapping of docs/compat/keystore.md §4.7. They were
built from those documented request/response shapes, not captured from a live DSM; the
error texts (``sobject does not exist`` / ``already exists``) are the ones the Go
reference server matches. They are served over real HTTPS by tests/replay_server.py;
the client is not patched.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import cloud_replay
from keystore_backends import FORTANIX_API_KEY, fortanix_config, fortanix_emulator, serve_replay
from pykes.errors import KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore import fortanix
from pykes.keystore.fortanix import FortanixError, FortanixKeyStore
from replay_server import FortanixEmulator, ReplayServer, Reply, text

FAST = {"timeout": 2.0, "backoff": 0.01}
VALUE = b"CiAxMjM0NTY3ODkwYWJjZGVmMTIzNDU2Nzg5MGFiY2RlZhIFYWRtaW4="


@pytest.fixture
def server(pki: Any) -> Iterator[ReplayServer]:
    yield from serve_replay(pki, fortanix_emulator())


@pytest.fixture
def emulator(server: ReplayServer) -> FortanixEmulator:
    assert isinstance(server.emulator, FortanixEmulator)
    return server.emulator


Scenario = Callable[[FortanixKeyStore], Awaitable[None]]


def run(server: ReplayServer, pki: Any, scenario: Scenario, **overrides: str) -> None:
    config = fortanix_config(server.url, pki.server_cert, **overrides)
    cloud_replay.run_store(fortanix.connect, config, FAST, scenario)


def test_connect_checks_health_and_session_with_the_api_key_verbatim(
    server: ReplayServer, pki: Any
) -> None:
    async def scenario(store: FortanixKeyStore) -> None:
        assert store.description == f"Fortanix SDKMS: {server.url}"

    run(server, pki, scenario)
    paths = [(r.method, r.path) for r in server.requests]
    assert paths == [
        ("GET", "/sys/v1/health"),
        ("POST", "/sys/v1/session/auth"),
        ("POST", "/sys/v1/session/terminate"),
    ]
    assert server.requests[1].headers["authorization"] == "Basic " + FORTANIX_API_KEY
    assert server.requests[2].headers["authorization"].startswith("Bearer tok-")


def test_create_sends_the_documented_sobject_and_get_returns_the_bytes(
    server: ReplayServer, emulator: FortanixEmulator, pki: Any
) -> None:
    async def scenario(store: FortanixKeyStore) -> None:
        await store.create("my-key", VALUE)
        assert await store.get("my-key") == VALUE

    run(server, pki, scenario)
    (put,) = server.calls("PUT", "/crypto/v1/keys")
    assert put.body == {
        "obj_type": "OPAQUE",
        "name": "my-key",
        "group_id": "grp-kes",
        "key_ops": ["EXPORT", "APPMANAGEABLE"],
        "value": base64.b64encode(VALUE).decode(),
        "enabled": True,
    }
    assert put.headers["authorization"] == "Basic " + FORTANIX_API_KEY
    (export,) = server.calls("POST", "/crypto/v1/keys/export")
    assert export.body == {"name": "my-key"}
    assert emulator.keys["my-key"]["value"] == base64.b64encode(VALUE).decode()


def test_group_id_is_omitted_when_not_configured(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: FortanixKeyStore) -> None:
        await store.create("k", b"v")

    run(server, pki, scenario, group_id="")
    (put,) = server.calls("PUT", "/crypto/v1/keys")
    assert "group_id" not in put.body


def test_not_found_and_exists_map_to_the_canonical_errors(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: FortanixKeyStore) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.get("missing")
        await cloud_replay.second_create_keeps_first(store, "dup")
        # a 404 with another text (e.g. a proxy) is not "key does not exist"
        server.script("POST", "/crypto/v1/keys/export", text(404, "page not found"))
        with pytest.raises(FortanixError, match="page not found"):
            await store.get("dup")

    run(server, pki, scenario)


def test_disabled_key_is_an_error_without_the_value(
    server: ReplayServer, emulator: FortanixEmulator, pki: Any
) -> None:
    async def scenario(store: FortanixKeyStore) -> None:
        await store.create("off", VALUE)
        emulator.keys["off"]["enabled"] = False
        with pytest.raises(FortanixError, match="disabled") as err:
            await store.get("off")
        assert VALUE.decode() not in str(err.value)
        assert base64.b64encode(VALUE).decode() not in str(err.value)

    run(server, pki, scenario)


def test_delete_exports_for_the_kid_then_deletes_it(
    server: ReplayServer, emulator: FortanixEmulator, pki: Any
) -> None:
    async def scenario(store: FortanixKeyStore) -> None:
        await store.create("gone", b"v")
        kid = emulator.keys["gone"]["kid"]
        await store.delete("gone")
        assert "gone" not in emulator.keys
        assert server.calls("DELETE", f"/crypto/v1/keys/{kid}")
        with pytest.raises(KeyNotFoundError):
            await store.delete("gone")

    run(server, pki, scenario)


def test_wrong_api_key_fails_connect_without_revealing_it(server: ReplayServer, pki: Any) -> None:
    async def main() -> None:
        config = fortanix_config(server.url, pki.server_cert, api_key="d3Jvbmc6a2V5")
        with pytest.raises(FortanixError, match="authentication failed") as err:
            await fortanix.connect(config, **FAST)
        assert "d3Jvbmc6a2V5" not in str(err.value)

    asyncio.run(main())


def test_unhealthy_server_fails_connect(server: ReplayServer, pki: Any) -> None:
    server.script("GET", "/sys/v1/health", Reply(200, {"status": "starting"}))

    async def main() -> None:
        with pytest.raises(FortanixError, match="health check failed"):
            await fortanix.connect(fortanix_config(server.url, pki.server_cert), **FAST)

    asyncio.run(main())
    assert not server.calls("POST", "/sys/v1/session/auth")


def test_429_is_retried_then_succeeds(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: FortanixKeyStore) -> None:
        server.script("PUT", "/crypto/v1/keys", Reply(429, {"message": "too many requests"}))
        await store.create("k", b"v")
        assert await store.get("k") == b"v"

    run(server, pki, scenario)
    assert len(server.calls("PUT", "/crypto/v1/keys")) == 2
    assert server.pending() == 0


def test_5xx_exhausted_is_an_error_not_unreachable(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: FortanixKeyStore) -> None:
        await store.create("k", VALUE)
        busy = Reply(503, {"message": "service unavailable"})
        server.script("POST", "/crypto/v1/keys/export", busy, busy, busy)
        with pytest.raises(FortanixError, match="service unavailable") as err:
            await store.get("k")
        assert not isinstance(err.value, KeyStoreUnreachable)
        assert VALUE.decode() not in str(err.value)
        assert len(server.calls("POST", "/crypto/v1/keys/export")) == 3
        assert await store.get("k") == VALUE  # the server recovered

    run(server, pki, scenario)


@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive-start", "inclusive-start"])
def test_list_pages_past_100_names(
    server: ReplayServer, emulator: FortanixEmulator, pki: Any, inclusive: bool
) -> None:
    emulator.inclusive_start = inclusive
    names = [f"key-{i:03d}" for i in range(250)] + [f"other-{i:03d}" for i in range(120)]

    async def scenario(store: FortanixKeyStore) -> None:
        for name in names:
            emulator.add(name, b"v")
        assert await store.list("", -1) == (sorted(names), "")
        pages = server.calls("GET", "/crypto/v1/keys")
        assert len(pages) == 4  # 100 + 100 + 100 + 70
        assert "start" not in pages[0].query
        assert pages[1].query["start"] == sorted(names)[99]
        assert all(p.query["sort"] == "name:asc" and p.query["limit"] == "100" for p in pages)

        server.requests.clear()
        keys = [n for n in names if n.startswith("key-")]
        assert await store.list("key-", 1000) == (keys, "")
        assert await store.list("key-", 30) == (keys[:30], keys[30])
        assert await store.list("other-1", -1) == ([f"other-{i}" for i in range(100, 120)], "")
        first = server.calls("GET", "/crypto/v1/keys")[0]
        assert first.query["start"] == "key"  # sorts before every "key-…" name

    run(server, pki, scenario)


def test_status_counts_any_http_answer_as_reachable(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: FortanixKeyStore) -> None:
        server.script("GET", "/", Reply(500, {"message": "oops"}))
        latency = await store.status()
        assert 0 <= latency < 2
        assert server.calls("GET", "/")

    run(server, pki, scenario)


def test_closed_port_is_unreachable_quickly(pki: Any) -> None:
    config = fortanix_config(f"https://127.0.0.1:{cloud_replay.unused_port()}", pki.server_cert)
    cloud_replay.assert_unreachable_quickly(fortanix.connect, config, "fortanix", FAST)


def test_silent_server_times_out_as_unreachable(pki: Any) -> None:
    with socket.socket() as listener:  # accepts TCP, never answers the TLS handshake
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        config = fortanix_config(f"https://127.0.0.1:{port}", pki.server_cert)

        async def main() -> None:
            start = time.monotonic()
            with pytest.raises(KeyStoreUnreachable):
                await fortanix.connect(config, timeout=0.3, backoff=0.01)
            assert time.monotonic() - start < 2

        asyncio.run(main())


def test_stopped_server_makes_status_and_calls_unreachable(server: ReplayServer, pki: Any) -> None:
    async def scenario(store: FortanixKeyStore) -> None:
        server.stop()
        with pytest.raises(KeyStoreUnreachable):
            await store.status()
        with pytest.raises(KeyStoreUnreachable):
            await store.get("k")

    run(server, pki, scenario)


def test_ca_directory_and_untrusted_server(server: ReplayServer, pki: Any, tmp_path: Any) -> None:
    cas = tmp_path / "cas"
    cas.mkdir()
    (cas / "server.pem").write_bytes(pki.server_cert.read_bytes())

    async def main() -> None:
        store = await fortanix.connect(fortanix_config(server.url, cas), **FAST)
        await store.close()
        # system roots do not trust the test PKI
        with pytest.raises(KeyStoreUnreachable):
            await fortanix.connect(fortanix_config(server.url, ""), **FAST)

    asyncio.run(main())
