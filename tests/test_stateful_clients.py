"""The Python SDK (sync and async) and the ``kes`` CLI drive two enclaves of a real pykes
in stateful mode end to end, over real mTLS: create, generate, decrypt, rotate, list,
isolation and a restart (issue 23). Expected values come from the protocol (what was
generated must decrypt, what belongs to one enclave must not be reachable from the
other), never from the client under test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import PKI, RunningServer, start_server
from pykes.client import (
    AsyncClient,
    Client,
    DecryptError,
    EnclaveExists,
    EnclaveNotFound,
    KeyNotFound,
    NotAllowed,
    client_ssl_context,
)
from pykes.pki import APIKey
from stateful_store import new_store_dir, stateful_config
from test_cli_support import clean_env, error_line, run_kes

#: What the tenant policy of enclave ``a`` grants (written at run time, in ``a``).
TENANT_ALLOW = ["/v1/key/create/*", "/v1/key/generate/*", "/v1/key/decrypt/*", "/v1/key/list/*"]


@dataclass
class StatefulKES:
    root: Path
    pki: PKI
    admin: APIKey
    tenant: APIKey  # assigned in enclave "a" only
    server: RunningServer | None = None

    def config(self) -> str:
        return "version: v1\n" + stateful_config(self.pki, self.admin.identity, self.root)

    def start(self) -> None:
        self.server = start_server(self.root, self.pki, self.config())

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def client(self, api_key: APIKey | None = None, **kw: object) -> Client:
        return Client(
            self.url, api_key=api_key or self.admin, ca_file=str(self.pki.server_cert), **kw
        )  # type: ignore[arg-type]

    def async_client(self, api_key: APIKey | None = None, **kw: object) -> AsyncClient:
        return AsyncClient(
            self.url, api_key=api_key or self.admin, ca_file=str(self.pki.server_cert), **kw
        )  # type: ignore[arg-type]

    def kes(self, *args: str, api_key: APIKey | None = None, **env: str):
        environment = clean_env(
            MINIO_KES_SERVER=self.url,
            MINIO_KES_API_KEY=str(api_key or self.admin),
            SSL_CERT_FILE=str(self.pki.server_cert),
            **env,
        )
        return run_kes(*args, env=environment)


def _assign_tenant(kes: StatefulKES) -> None:
    """A policy and its identity written at run time in enclave ``a`` by the admin over
    plain HTTP (the legacy write routes, which the SDK does not offer; stateful mode
    keeps what they write in the request's enclave)."""
    context = client_ssl_context(api_key=kes.admin, ca_file=str(kes.pki.server_cert))
    with httpx.Client(base_url=kes.url, verify=context, headers={"Kes-Enclave": "a"}) as raw:
        r = raw.post("/v1/policy/write/tenant", json={"allow": TENANT_ALLOW})
        assert r.status_code == 200, r.text
        r = raw.post(f"/v1/identity/assign/tenant/{kes.tenant.identity}")
        assert r.status_code == 200, r.text


def start_stateful(root: Path, pki: PKI) -> StatefulKES:
    """A stateful server on a new store in ``root`` (a fresh seal key), with a new admin."""
    kes = StatefulKES(new_store_dir(root), pki, APIKey.generate(), APIKey.generate())
    kes.start()
    return kes


@pytest.fixture(scope="module")
def stateful(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[StatefulKES]:
    kes = start_stateful(tmp_path_factory.mktemp("stateful"), pki)
    with kes.client() as admin:
        for name in ("a", "b"):
            admin.create_enclave(name)
    _assign_tenant(kes)
    yield kes
    kes.stop()


# ------------------------------------------------------------------ the sync SDK
def test_sdk_two_enclaves_are_two_key_spaces(stateful: StatefulKES) -> None:
    with stateful.client() as admin:
        a, b = admin.in_enclave("a"), admin.in_enclave("b")
        assert {"default", "a", "b"} <= set(admin.list_enclaves())
        assert list(admin.list_enclaves("b")) == ["b"]
        with pytest.raises(EnclaveExists):
            admin.create_enclave("a")

        a.create_key("sdk-key")
        b.create_key("sdk-key")  # the same name in b is another key
        dek_a = a.generate_key("sdk-key", b"ctx")
        dek_b = b.generate_key("sdk-key", b"ctx")
        assert dek_a.version == dek_b.version == "1"
        assert a.decrypt("sdk-key", dek_a.ciphertext, b"ctx") == dek_a.plaintext
        with pytest.raises(DecryptError):
            b.decrypt("sdk-key", dek_a.ciphertext, b"ctx")  # a's ciphertext never opens in b
        with pytest.raises(KeyNotFound):
            admin.describe_key("sdk-key")  # nor is the key in default
        assert "sdk-key" in list(a.list_keys("sdk-*")) and "sdk-key" in list(b.list_keys())
        assert "sdk-key" not in list(admin.list_keys())


def test_sdk_rotation_keeps_old_ciphertexts_and_names_versions(stateful: StatefulKES) -> None:
    with stateful.client(enclave="a") as a:
        a.create_key("rotating")
        old = a.generate_key("rotating")
        old_ciphertext = a.encrypt("rotating", b"old message")
        old_mac = a.hmac("rotating", b"m")
        assert (old.version, old_ciphertext.version, old_mac.version) == ("1", "1", "1")

        assert a.rotate_key("rotating") == "2"
        new = a.generate_key("rotating")
        new_mac = a.hmac("rotating", b"m")
        assert new.version == new_mac.version == "2" and new_mac != old_mac
        assert a.decrypt("rotating", old.ciphertext) == old.plaintext  # found by trying
        assert a.decrypt("rotating", old.ciphertext, version=1) == old.plaintext
        assert a.decrypt("rotating", old_ciphertext, version="1") == b"old message"
        assert a.decrypt("rotating", new.ciphertext, version="2") == new.plaintext
        with pytest.raises(DecryptError):
            a.decrypt("rotating", old.ciphertext, version="2")
        info = a.describe_key("rotating")
        assert (info.version, info.versions, info.min_version) == ("2", ("1", "2"), "1")
        with stateful.client(enclave="b") as b, pytest.raises(KeyNotFound):
            b.rotate_key("rotating")


def test_sdk_tenant_identity_acts_only_in_its_enclave(stateful: StatefulKES) -> None:
    with stateful.client() as admin:
        admin.in_enclave("a").create_key("tenant-key")
        admin.in_enclave("b").create_key("tenant-key")
    with stateful.client(stateful.tenant, enclave="a") as tenant:
        dek = tenant.generate_key("tenant-key")
        assert tenant.decrypt("tenant-key", dek.ciphertext) == dek.plaintext
        for enclave in ("b", ""):  # another enclave, and default
            other = tenant.in_enclave(enclave)
            with pytest.raises(NotAllowed):
                other.generate_key("tenant-key")
            with pytest.raises(NotAllowed):
                other.decrypt("tenant-key", dek.ciphertext)
            with pytest.raises(NotAllowed):
                list(other.list_keys())
        with pytest.raises(NotAllowed):
            tenant.create_enclave("c")  # only the server's admin
        with pytest.raises(NotAllowed):
            tenant.in_enclave("no-such").generate_key("tenant-key")  # names do not leak


# ------------------------------------------------------------------ the async SDK
def test_async_sdk_drives_both_enclaves_concurrently(stateful: StatefulKES) -> None:
    async def main() -> None:
        async with stateful.async_client() as admin:
            await admin.create_enclave("async-1")
            tenants = [admin.in_enclave("async-1"), admin.in_enclave("b")]
            await asyncio.gather(*(t.create_key("async-key") for t in tenants))
            deks = await asyncio.gather(*(t.generate_key("async-key") for t in tenants))
            plains = await asyncio.gather(
                *(t.decrypt("async-key", d.ciphertext) for t, d in zip(tenants, deks, strict=True))
            )
            assert plains == [d.plaintext for d in deks]
            assert await tenants[0].rotate_key("async-key") == "2"
            assert (await tenants[0].generate_key("async-key")).version == "2"
            assert (await tenants[1].generate_key("async-key")).version == "1"
            with pytest.raises(DecryptError):
                await tenants[1].decrypt("async-key", deks[0].ciphertext)
            names = [n async for n in admin.list_enclaves("async*")]
            assert names == ["async-1"]
            described = await admin.describe_enclave("async-1")
            assert described.name == "async-1"
            assert described.created_by == stateful.admin.identity
            await admin.delete_enclave("async-1", force=True)  # it holds a key
            with pytest.raises(EnclaveNotFound):
                await admin.describe_enclave("async-1")

    asyncio.run(main())


# ------------------------------------------------------------------ the CLI
def test_cli_drives_two_enclaves(stateful: StatefulKES) -> None:
    kes = stateful.kes
    assert kes("enclave", "create", "cli-1", "cli-2").returncode == 0
    assert json.loads(kes("enclave", "ls", "cli-*", "--json").stdout) == ["cli-1", "cli-2"]
    info = json.loads(kes("enclave", "info", "cli-1", "--json").stdout)
    assert info["name"] == "cli-1" and info["created_by"] == stateful.admin.identity

    assert kes("key", "create", "-e", "cli-1", "k").returncode == 0
    assert kes("key", "create", "k", KES_ENCLAVE="cli-2").returncode == 0
    dek = json.loads(kes("key", "dek", "k", "-e", "cli-1").stdout)
    assert dek["version"] == "1"
    rotated = kes("key", "rotate", "k", KES_ENCLAVE="cli-1")
    assert rotated.stdout == '{"name":"k","version":"2"}\n'
    plain = json.loads(kes("key", "decrypt", "-e", "cli-1", "k", dek["ciphertext"]).stdout)
    assert plain == {"plaintext": dek["plaintext"]}
    plain = kes("key", "decrypt", "-e", "cli-1", "--version", "1", "k", dek["ciphertext"])
    assert json.loads(plain.stdout) == {"plaintext": dek["plaintext"]}
    r = kes("key", "decrypt", "-e", "cli-2", "k", dek["ciphertext"])
    assert (
        error_line(r)
        == "failed to decrypt ciphertext: decryption failed: ciphertext is not authentic"
    )
    info = json.loads(kes("key", "info", "k", "--json", KES_ENCLAVE="cli-1").stdout)
    assert info["versions"] == ["1", "2"]
    assert json.loads(kes("key", "ls", "--json", "-e", "cli-2").stdout) == ["k"]
    assert "k" not in json.loads(kes("key", "ls", "--json").stdout)

    r = kes("enclave", "rm", "cli-2")
    assert error_line(r).startswith('failed to delete enclave "cli-2": ')  # it holds a key
    assert kes("enclave", "rm", "--force", "cli-2").returncode == 0
    r = kes("key", "ls", "-e", "cli-2")
    assert error_line(r) == "failed to list keys: enclave does not exist"


def test_cli_tenant_is_refused_outside_its_enclave(stateful: StatefulKES) -> None:
    with stateful.client() as admin:
        admin.in_enclave("a").create_key("cli-tenant")
    ok = stateful.kes("key", "dek", "cli-tenant", "-e", "a", api_key=stateful.tenant)
    assert ok.returncode == 0, ok.stderr
    r = stateful.kes("key", "dek", "cli-tenant", "-e", "b", api_key=stateful.tenant)
    assert error_line(r) == "failed to derive key: not authorized: insufficient permissions"
    r = stateful.kes("enclave", "ls", api_key=stateful.tenant)
    assert error_line(r) == "failed to list enclaves: not authorized: insufficient permissions"


# ------------------------------------------------------------------ a restart
def test_everything_survives_a_restart(stateful: StatefulKES) -> None:
    with stateful.client() as admin:
        admin.in_enclave("a").create_key("before-restart")
        admin.create_enclave("restart")
        r = admin.in_enclave("restart")
        r.create_key("k")
        before = r.generate_key("k", b"ctx")
        assert r.rotate_key("k") == "2"
        after = r.generate_key("k", b"ctx")
    cli_dek = json.loads(stateful.kes("key", "dek", "k", "-e", "restart").stdout)

    stateful.stop()
    stateful.start()

    with stateful.client(enclave="restart") as r:
        assert r.decrypt("k", before.ciphertext, b"ctx") == before.plaintext
        assert r.decrypt("k", after.ciphertext, b"ctx", version="2") == after.plaintext
        assert r.describe_key("k").versions == ("1", "2")
        assert r.rotate_key("k") == "3"
        assert "restart" in list(r.list_enclaves())
    plain = stateful.kes("key", "decrypt", "-e", "restart", "k", cli_dek["ciphertext"])
    assert json.loads(plain.stdout)["plaintext"] == cli_dek["plaintext"]
    with stateful.client(stateful.tenant, enclave="a") as tenant:  # its assignment persisted
        assert tenant.generate_key("before-restart").version == "1"
