"""The Python SDK (pykes.client) against a live pykes server over real mTLS.

Expected values come from docs/compat/api.md and from the server's fs keystore files
(decoded with pykes.crypto), never from the SDK under test.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Iterator

import pytest

from conftest import PKI
from pykes.client import (
    APIError,
    AsyncClient,
    DecryptError,
    IdentityNotFound,
    KeyAlgorithm,
    KeyExists,
    KeyNotFound,
    NotAllowed,
    PolicyNotFound,
)
from pykes.crypto import KeyType, decode_key_version
from test_cli_support import READER_ALLOW, READER_DENY, KesServer, start_kes


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[KesServer]:
    server = start_kes(tmp_path_factory.mktemp("sdk"), pki)
    yield server
    server.stop()


def stored(kes: KesServer, name: str):
    return decode_key_version((kes.keys_dir / name).read_bytes())


def test_system_apis(kes: KesServer) -> None:
    from pykes import __version__

    with kes.client() as c:
        assert c.version() == __version__
        assert c.ready() is True
        state = c.status()
        assert state.os == "linux" and state.cpus >= 1 and state.usable_cpus >= 1
        assert state.keystore_latency >= 1 and state.keystore_reachable
        assert state.heap_alloc > 0
        apis = {(a.method, a.path): a for a in c.apis()}
        assert apis[("PUT", "/v1/key/import/")].max_body == 1_000_000
        assert apis[("GET", "/version")].timeout == 10
        assert apis[("GET", "/v1/log/audit")].timeout == 0
        c.create_key("metrics-probe")
        with pytest.raises(KeyNotFound):
            c.describe_key("metrics-missing")
        m = c.metrics()
        assert m.request_ok >= 1 and m.request_err >= 1
        assert 10_000_000 in m.latency_histogram  # 0.01 s bucket, as a Go duration
        assert m.latency_histogram[10_000_000_000] >= m.request_n - m.request_active
        assert m.cpus >= 1 and m.uptime % 1_000_000_000 == 0


def test_key_lifecycle(kes: KesServer) -> None:
    with kes.client() as c:
        before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        c.create_key("life")
        with pytest.raises(KeyExists) as exists:
            c.create_key("life")
        assert exists.value == APIError(400, "key already exists")
        info = c.describe_key("life")
        assert info.name == "life" and info.algorithm is KeyAlgorithm.AES256
        assert info.created_by == kes.admin.identity
        assert before < info.created_at < dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)

        key = stored(kes, "life")
        dek = c.generate_key("life", b"ctx")
        assert len(dek.plaintext) == 32 and len(dek.ciphertext) == 76
        assert "plaintext" not in repr(dek)
        assert key.decrypt(dek.ciphertext, b"ctx") == dek.plaintext
        assert c.decrypt("life", dek.ciphertext, b"ctx") == dek.plaintext
        with pytest.raises(DecryptError):
            c.decrypt("life", dek.ciphertext, b"other")
        plain_dek = c.generate_key("life")  # no context: {} body
        assert key.decrypt(plain_dek.ciphertext) == plain_dek.plaintext

        ciphertext = c.encrypt("life", b"hello world", b"aad")
        assert len(ciphertext) == len(b"hello world") + 44
        assert key.decrypt(ciphertext, b"aad") == b"hello world"
        assert c.decrypt("life", ciphertext, b"aad", version="v1") == b"hello world"

        mac = c.hmac("life", b"message")
        assert mac == hmac.new(key.hmac_key, b"message", hashlib.sha256).digest()

        c.delete_key("life")
        with pytest.raises(KeyNotFound) as missing:
            c.describe_key("life")
        assert (missing.value.status, missing.value.message) == (404, "key does not exist")
        with pytest.raises(KeyNotFound):
            c.delete_key("life")
        with pytest.raises(APIError) as invalid:
            c.create_key("bad name")
        assert invalid.value.status == 400
        assert invalid.value.message.startswith("key name 'bad name' is empty")


def test_import_key_types(kes: KesServer) -> None:
    raw = os.urandom(32)
    with kes.client() as c:
        c.import_key("imported-chacha", raw, KeyAlgorithm.CHACHA20)
        c.import_key("imported-aes", raw)
        assert c.describe_key("imported-chacha").algorithm is KeyAlgorithm.CHACHA20
        assert c.describe_key("imported-aes").algorithm is KeyAlgorithm.AES256
        key = stored(kes, "imported-chacha")
        assert key.key == raw and key.key_type is KeyType.CHACHA20
        with pytest.raises(KeyExists):
            c.import_key("imported-aes", raw)
        with pytest.raises(APIError) as size:
            c.import_key("imported-short", raw[:16])
        assert size.value == APIError(406, "invalid key size for 'AES256'")


def test_list_keys_with_prefix_and_pattern(kes: KesServer) -> None:
    with kes.client() as c:
        for name in ("list-a", "list-b", "listx"):
            c.create_key(name)
        assert list(c.list_keys("list-*")) == ["list-a", "list-b"]
        assert list(c.list_keys("list")) == ["list-a", "list-b", "listx"]
        everything = list(c.list_keys())
        assert {"list-a", "list-b", "listx"} <= set(everything)
        assert everything == sorted(everything)
        assert list(c.list_keys("*")) == everything
        names, continue_at = c.list_keys_page("listx")
        assert names == ["listx"] and continue_at == ""
        with pytest.raises(APIError) as invalid:
            c.list_keys_page("list-")
        assert invalid.value.message == "listing pattern 'list-' is empty, too long or is invalid"


def test_policies_and_identities(kes: KesServer) -> None:
    with kes.client() as c:
        assert list(c.list_policies()) == ["reader", "unused"]
        assert list(c.list_policies("re*")) == ["reader"]
        info = c.describe_policy("reader")
        assert info.name == "reader" and info.created_by == kes.admin.identity
        policy = c.get_policy("reader")
        assert policy.allow == READER_ALLOW and policy.deny == READER_DENY
        with pytest.raises(PolicyNotFound):
            c.get_policy("missing")
        with pytest.raises(PolicyNotFound):
            c.describe_policy("missing")

        assert sorted(c.list_identities()) == sorted([kes.admin.identity, kes.user.identity])
        admin = c.describe_identity(kes.admin.identity)
        assert admin.is_admin and admin.policy == ""
        user = c.describe_identity(kes.user.identity)
        assert user.policy == "reader" and not user.is_admin
        assert user.created_by == kes.admin.identity
        with pytest.raises(IdentityNotFound):
            c.describe_identity("ab" * 32)

        me, my_policy = c.describe_self()
        assert me.identity == kes.admin.identity and me.is_admin


def test_policy_restricted_identity(kes: KesServer) -> None:
    with kes.client() as admin:
        admin.create_key("app-data")
        admin.create_key("app-secret")
    with kes.client(kes.user) as c:
        me, policy = c.describe_self()
        assert me.identity == kes.user.identity and me.policy == "reader"
        assert policy.allow == READER_ALLOW and policy.deny == READER_DENY
        dek = c.generate_key("app-data")
        assert c.decrypt("app-data", dek.ciphertext) == dek.plaintext
        with pytest.raises(NotAllowed) as denied:
            c.generate_key("app-secret")  # explicitly denied
        assert denied.value == APIError(403, "not authorized: insufficient permissions")
        with pytest.raises(NotAllowed):
            c.create_key("app-new")  # not allowed
        with pytest.raises(NotAllowed):
            c.status()
        with pytest.raises(KeyNotFound):
            c.describe_key("app-missing")  # allowed, but missing
        assert "app-data" in list(c.list_keys("app-*"))


def test_unknown_route_is_plain_text_error(kes: KesServer) -> None:
    from pykes.client import ops

    with kes.client() as c:
        op = ops.Op("GET", "/v1/nothing", ops._none)
        with pytest.raises(APIError) as err:
            c._call(op)
    assert type(err.value) is APIError
    assert (err.value.status, err.value.message) == (404, "404 page not found\n")


def test_certificate_file_credentials(kes: KesServer, pki: PKI, tmp_path) -> None:
    from pykes.client import Client, ConnError
    from pykes.pki import encrypt_private_key_pem_legacy

    other = pki.client("sdk-cert-user")
    with Client(
        kes.server.url,
        cert_file=str(other.cert_file),
        key_file=str(other.key_file),
        ca_file=str(pki.server_cert),
    ) as c:
        assert c.version()
        with pytest.raises(NotAllowed):  # unknown identity
            c.describe_key("anything")

    encrypted = tmp_path / "enc.key"
    encrypted.write_bytes(encrypt_private_key_pem_legacy(other.key_file.read_bytes(), b"pw"))
    asked: list[str] = []

    def password() -> str:
        asked.append("yes")
        return "pw"

    with Client(
        kes.server.url,
        cert_file=str(other.cert_file),
        key_file=str(encrypted),
        password=password,
        insecure=True,
    ) as c:
        assert c.version()
    assert asked == ["yes"]
    with pytest.raises(ValueError, match="password incorrect"):
        Client(
            kes.server.url,
            cert_file=str(other.cert_file),
            key_file=str(encrypted),
            password="wrong",
            insecure=True,
        )

    # No CA: verification fails - reported as a connection error, without retries.
    with Client(kes.server.url, api_key=kes.admin) as c, pytest.raises(ConnError) as err:
        c.version()
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)


def test_async_client(kes: KesServer) -> None:
    async def scenario() -> None:
        async with AsyncClient(
            [kes.server.url], api_key=str(kes.admin), ca_file=str(kes.server.pki.server_cert)
        ) as c:
            assert (await c.status()).keystore_reachable
            await c.create_key("async-key")
            with pytest.raises(KeyExists):
                await c.create_key("async-key")
            dek = await c.generate_key("async-key", b"c")
            assert await c.decrypt("async-key", dek.ciphertext, b"c") == dek.plaintext
            names = [n async for n in c.list_keys("async-*")]
            assert names == ["async-key"]
            assert [p async for p in c.list_policies()] == ["reader", "unused"]
            assert kes.user.identity in [i async for i in c.list_identities()]
            assert (await c.describe_key("async-key")).created_by == kes.admin.identity
            results = await asyncio.gather(*(c.encrypt("async-key", b"x%d" % i) for i in range(8)))
            assert len(set(results)) == 8
            await c.delete_key("async-key")
            with pytest.raises(KeyNotFound):
                await c.describe_key("async-key")

    asyncio.run(scenario())


def test_api_key_certificate_is_the_go_sdk_one(kes: KesServer) -> None:
    """The server computes the same identity from the derived certificate as the
    API key's own identity (docs/compat/auth.md §7)."""
    with kes.client() as c:
        me, _ = c.describe_self()
    assert me.identity == kes.admin.identity
    assert base64.b64decode(str(kes.admin).removeprefix("kes:v1:"))[0] == 0
