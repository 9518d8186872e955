"""What the SDK sends and reads for enclaves and key versions (docs/client.md), over real
HTTPS: a local replay server records every request and answers with scripted replies
in the shapes of docs/openapi.yaml and docs/compat/api.md §6."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from conftest import PKI
from pykes.client import (
    APIError,
    AsyncClient,
    Client,
    EnclaveExists,
    EnclaveInfo,
    EnclaveNotFound,
    Versioned,
)
from pykes.client.types import parse_time
from pykes.pki import APIKey
from replay_server import ReplayServer, Reply

OK = Reply(200)
CREATED_AT = "2026-01-02T03:04:05.123456789Z"


@pytest.fixture
def server(kes_replay: ReplayServer) -> ReplayServer:
    return kes_replay


def client(server: ReplayServer, pki: PKI, **kw: object) -> Client:
    return Client(server.url, api_key=APIKey.generate(), ca_file=str(pki.server_cert), **kw)  # type: ignore[arg-type]


def async_client(server: ReplayServer, pki: PKI, **kw: object) -> AsyncClient:
    return AsyncClient(server.url, api_key=APIKey.generate(), ca_file=str(pki.server_cert), **kw)  # type: ignore[arg-type]


def sent_paths(server: ReplayServer) -> list[tuple[str, str, str | None]]:
    return [(r.method, r.path, r.headers.get("kes-enclave")) for r in server.requests]


def enclaves_sent(server: ReplayServer) -> list[str | None]:
    return [r.headers.get("kes-enclave") for r in server.requests]


# ------------------------------------------------------------------ the enclave header
def test_an_enclave_client_names_its_enclave_in_every_request(server: ReplayServer, pki: PKI):
    server.script("POST", "/v1/key/create/k", OK)
    server.script(
        "POST", "/v1/key/generate/k", Reply(200, {"plaintext": "AA==", "ciphertext": "AQ=="})
    )
    server.script("GET", "/v1/key/list/%2A", Reply(200, {"names": ["k"]}))
    server.script("GET", "/v1/key/list/*", Reply(200, {"names": ["k"]}))
    with client(server, pki, enclave="tenant-a") as kes:
        assert kes.enclave == "tenant-a"
        kes.create_key("k")
        kes.generate_key("k")
        assert list(kes.list_keys("*")) == ["k"]
    assert enclaves_sent(server) == ["tenant-a"] * 3


def test_without_an_enclave_no_header_is_sent(server: ReplayServer, pki: PKI):
    """The Go SDK's requests exactly: every KES server (and pykes' default enclave)."""
    server.script("POST", "/v1/key/create/k", OK)
    with client(server, pki) as kes:
        assert kes.enclave == ""
        kes.create_key("k")
    assert enclaves_sent(server) == [None]


def test_in_enclave_shares_the_connections_and_leaves_the_client_as_it_was(
    server: ReplayServer, pki: PKI
):
    server.script("POST", "/v1/key/create/k", OK, OK, OK)
    with client(server, pki, enclave="tenant-a") as kes:
        with kes.in_enclave("tenant-b") as other:  # closing a view closes nothing
            assert other.enclave == "tenant-b" and other.endpoints == kes.endpoints
            other.create_key("k")
        kes.create_key("k")
        kes.in_enclave("").create_key("k")
    assert enclaves_sent(server) == ["tenant-b", "tenant-a", None]
    ports = {r.headers.get("host") for r in server.requests}
    assert len(ports) == 1


def test_async_client_names_its_enclave_and_its_views(server: ReplayServer, pki: PKI):
    server.script("POST", "/v1/key/create/k", OK, OK)

    async def main() -> None:
        async with async_client(server, pki, enclave="tenant-a") as kes:
            await kes.create_key("k")
            async with kes.in_enclave("tenant-b") as other:
                await other.create_key("k")
            assert kes.in_enclave("x").enclave == "x"

    asyncio.run(main())
    assert enclaves_sent(server) == ["tenant-a", "tenant-b"]


@pytest.mark.parametrize("name", ["a b", "bad\r\nX-Injected: 1", "-x", "_", "é", "a" * 81])
def test_an_invalid_enclave_name_is_refused_before_anything_is_sent(
    server: ReplayServer, pki: PKI, name: str
):
    with pytest.raises(ValueError, match="^kes: invalid enclave name ") as refused:
        client(server, pki, enclave=name)
    assert "\n" not in str(refused.value)
    with client(server, pki) as kes, pytest.raises(ValueError):
        kes.in_enclave(name)
    assert server.requests == []


# ------------------------------------------------------------------ the enclave admin API
def test_enclave_admin_requests_and_answers(server: ReplayServer, pki: PKI):
    info = {"name": "tenant-a", "created_at": CREATED_AT, "created_by": "ab" * 32}
    server.script("PUT", "/v1/enclave/create/tenant-a", OK)
    server.script("GET", "/v1/enclave/describe/tenant-a", Reply(200, info))
    server.script("GET", "/v1/enclave/list/t", Reply(200, {"names": ["tenant-b", "tenant-a"]}))
    server.script("GET", "/v1/enclave/list", Reply(200, {"names": ["default", "tenant-a"]}))
    server.script("DELETE", "/v1/enclave/delete/tenant-a", OK, OK)
    with client(server, pki) as kes:
        kes.create_enclave("tenant-a")
        described = kes.describe_enclave("tenant-a")
        assert described == EnclaveInfo("tenant-a", parse_time(CREATED_AT), "ab" * 32)
        assert described.to_json() == {
            "name": "tenant-a",
            "created_at": "2026-01-02T03:04:05.123456Z",
            "created_by": "ab" * 32,
        }
        assert list(kes.list_enclaves("t")) == ["tenant-b", "tenant-a"]
        assert list(kes.list_enclaves()) == ["default", "tenant-a"]
        kes.delete_enclave("tenant-a")
        kes.delete_enclave("tenant-a", force=True)
    sent = [(r.method, r.path, r.query, r.body) for r in server.requests]
    assert sent == [
        ("PUT", "/v1/enclave/create/tenant-a", {}, None),
        ("GET", "/v1/enclave/describe/tenant-a", {}, None),
        ("GET", "/v1/enclave/list/t", {}, None),
        ("GET", "/v1/enclave/list", {}, None),
        ("DELETE", "/v1/enclave/delete/tenant-a", {}, None),
        ("DELETE", "/v1/enclave/delete/tenant-a", {"force": "true"}, None),
    ]


def test_enclave_errors_are_typed(server: ReplayServer, pki: PKI):
    server.script("PUT", "/v1/enclave/create/a", Reply(400, {"message": "enclave already exists"}))
    server.script(
        "GET", "/v1/enclave/describe/b", Reply(404, {"message": "enclave does not exist"})
    )
    with client(server, pki) as kes:
        with pytest.raises(EnclaveExists) as exists:
            kes.create_enclave("a")
        with pytest.raises(EnclaveNotFound) as missing:
            kes.describe_enclave("b")
    assert exists.value == APIError(400, "enclave already exists")
    assert missing.value == APIError(404, "enclave does not exist")


# ------------------------------------------------------------------ key versions
def test_rotate_and_the_versions_of_answers(server: ReplayServer, pki: PKI):
    server.script("PUT", "/v1/key/rotate/k", Reply(200, {"version": "2"}))
    gen = {"plaintext": "AAE=", "ciphertext": "AgM=", "version": "2"}
    server.script("POST", "/v1/key/generate/k", Reply(200, gen))
    server.script("POST", "/v1/key/encrypt/k", Reply(200, {"ciphertext": "BAU=", "version": "2"}))
    server.script("PUT", "/v1/key/hmac/k", Reply(200, {"hmac": "Bgc=", "version": "2"}))
    server.script("POST", "/v1/key/encrypt/old", Reply(200, {"ciphertext": "CA=="}))
    with client(server, pki) as kes:
        assert kes.rotate_key("k") == "2"
        assert kes.generate_key("k").version == "2"
        ciphertext = kes.encrypt("k", b"msg")
        mac = kes.hmac("k", b"msg")
        stateless = kes.encrypt("old", b"msg")
    assert ciphertext == b"\x04\x05" and ciphertext.version == "2"
    assert mac == b"\x06\x07" and mac.version == "2"
    assert stateless == b"\x08" and stateless.version == ""
    assert server.calls("PUT", "/v1/key/rotate/k")[0].body is None


def test_decrypt_sends_a_version_only_when_given(server: ReplayServer, pki: PKI):
    server.script("POST", "/v1/key/decrypt/k", *[Reply(200, {"plaintext": "AA=="})] * 3)
    with client(server, pki) as kes:
        kes.decrypt("k", b"\x01")
        kes.decrypt("k", b"\x01", version="3")
        kes.decrypt("k", b"\x01", b"ctx", version=12)
    bodies = [r.body for r in server.calls("POST", "/v1/key/decrypt/k")]
    assert bodies == [
        {"ciphertext": "AQ=="},
        {"ciphertext": "AQ==", "version": "3"},
        {"ciphertext": "AQ==", "context": "Y3R4", "version": "12"},
    ]


def test_versioned_bytes_are_bytes_that_keep_their_version():
    made = Versioned(b"\x00\x01", "7")
    assert isinstance(made, bytes) and made == b"\x00\x01" and made.version == "7"
    copied = pickle.loads(pickle.dumps(made))
    assert type(copied) is Versioned and copied.version == "7" and copied == made
    assert repr(made) == "Versioned(b'\\x00\\x01', version='7')"


def test_describe_shows_the_versions_of_a_key(server: ReplayServer, pki: PKI):
    ring = {"name": "k", "algorithm": "AES256", "created_at": CREATED_AT, "version": "3"}
    ring |= {"min_version": "2", "versions": ["1", "2", "3"]}
    server.script("GET", "/v1/key/describe/k", Reply(200, ring))
    server.script("GET", "/v1/key/describe/old", Reply(200, {"name": "old"}))
    with client(server, pki) as kes:
        info = kes.describe_key("k")
        stateless = kes.describe_key("old")
    assert (info.version, info.min_version, info.versions) == ("3", "2", ("1", "2", "3"))
    assert info.to_json() == {**ring, "created_at": "2026-01-02T03:04:05.123456Z"}
    assert (stateless.version, stateless.min_version, stateless.versions) == ("", "", ())
    assert set(stateless.to_json()) == {"name", "algorithm", "created_at"}


def test_deleting_a_version_and_the_minimum_version(server: ReplayServer, pki: PKI):
    server.script("DELETE", "/v1/key/version/delete/k/1", OK)
    server.script("PUT", "/v1/key/version/minimum/k/2", OK)

    async def main() -> None:
        async with async_client(server, pki, enclave="tenant-a") as kes:
            await kes.delete_key_version("k", 1)
            await kes.set_key_min_version("k", "2")

    asyncio.run(main())
    assert sent_paths(server) == [
        ("DELETE", "/v1/key/version/delete/k/1", "tenant-a"),
        ("PUT", "/v1/key/version/minimum/k/2", "tenant-a"),
    ]
