"""Vault keystore (docs/compat/keystore.md §4.3) against a real OpenBao dev server.

Set VAULT_ADDR + VAULT_TOKEN (root-capable) to run the shared tests against a real
HashiCorp Vault instead (see docs/vault.md); seal/stop/TLS tests always use private
``bao``/``vault`` dev servers because they break the server they run against.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from conftest import PKI, _pem_key, make_certificate, start_server
from pykes.config import (
    VaultAppRoleConfig,
    VaultKeyStoreConfig,
    VaultKubernetesConfig,
    VaultTLSConfig,
    VaultTransitConfig,
)
from pykes.crypto import decode_key_version
from pykes.errors import KeyExistsError, KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore import KeyStore
from pykes.keystore.vault import (
    VaultError,
    VaultKeyStore,
    VaultSealedError,
    VaultUnreachable,
    connect,
)
from pykes.vault.client import VaultClient
from pykes.vault.http import VaultHTTP
from vault_harness import (
    VaultServer,
    external_server,
    find_binary,
    kes_config,
    start_dev_server,
)

VALUE = b"CiAKHgocdGVzdCBrZXkgdmFsdWUgbm90IHJlYWxseSBhIGtleQ=="  # an encoded-key-like string

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServer]:
    server = external_server()
    if server is None:
        if find_binary() is None:
            pytest.skip("no bao/vault binary and no VAULT_ADDR/VAULT_TOKEN")
        server = start_dev_server(tmp_path_factory.mktemp("bao"))
    try:
        yield server
    finally:
        server.cleanup()
        server.stop()


@pytest.fixture
def dev_vault(tmp_path: Path) -> Iterator[VaultServer]:
    """A private dev server for tests that seal or stop it."""
    if find_binary() is None:
        pytest.skip("no bao/vault binary")
    server = start_dev_server(tmp_path / "bao")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mounts(vault: VaultServer) -> dict[str, str]:
    transit = vault.enable_engine("transit")
    vault.write(f"{transit}/keys/kes", {"type": "aes256-gcm96"})
    return {"v1": vault.enable_kv(1), "v2": vault.enable_kv(2), "transit": transit}


@pytest.fixture(scope="session")
def approle(vault: VaultServer, mounts: dict[str, str]) -> dict[str, Any]:
    """An AppRole whose policy allows both K/V mounts and the transit key."""
    policy = vault.policy(_kv_policy(mounts["v1"], mounts["v2"], mounts["transit"]))
    mount = vault.enable_auth("approle")
    role_id, secret_id = vault.approle(mount, [policy])
    return {"mount": mount, "policy": policy, "id": role_id, "secret": secret_id}


def _kv_policy(v1: str, v2: str, transit: str = "", sub: str = "*") -> str:
    rules = [
        f'path "{v1}/{sub}" {{ capabilities = ["create","read","update","delete","list"] }}',
        f'path "{v1}" {{ capabilities = ["list"] }}',
        f'path "{v2}/data/{sub}" {{ capabilities = ["create","read","update"] }}',
        f'path "{v2}/metadata/{sub}" {{ capabilities = ["read","delete","list"] }}',
        f'path "{v2}/metadata" {{ capabilities = ["list"] }}',
    ]
    if transit:
        rules.append(f'path "{transit}/encrypt/kes" {{ capabilities = ["update"] }}')
        rules.append(f'path "{transit}/decrypt/kes" {{ capabilities = ["update"] }}')
    return "\n".join(rules)


def make_config(
    vault: VaultServer, mounts: dict[str, str], creds: dict[str, Any], version: str, **kw: Any
) -> VaultKeyStoreConfig:
    ca = vault.verify if isinstance(vault.verify, str) else ""
    config = VaultKeyStoreConfig(
        endpoint=vault.addr,
        engine=mounts[version],
        version=version,
        approle=VaultAppRoleConfig(
            engine=creds["mount"], namespace="", id=creds["id"], secret=creds["secret"]
        ),
        tls=VaultTLSConfig(ca=ca),
        status_ping=1.0,
    )
    return replace(config, **kw)


def run(config: VaultKeyStoreConfig, scenario: Callable[[VaultKeyStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = await connect(config)
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


def unique(kind: str = "key") -> str:
    return f"{kind}-{os.urandom(4).hex()}"


VERSIONS = pytest.mark.parametrize("version", ["v1", "v2"])


# --------------------------------------------------------------------------- basics
def test_connect_status_and_protocol(vault, mounts, approle) -> None:
    config = make_config(vault, mounts, approle, "v1")

    async def scenario(store: VaultKeyStore) -> None:
        assert isinstance(store, KeyStore)
        assert store.description == f"Hashicorp Vault: {vault.addr}"
        latency = await store.status()
        assert 0 < latency < 5
        assert store.keeper is not None and store.keeper.token.ttl > 60
        assert store.keeper.token.value not in repr(store.keeper.token)

    run(config, scenario)


@VERSIONS
def test_create_get_delete(vault, mounts, approle, version) -> None:
    config = make_config(vault, mounts, approle, version)
    name = unique()

    async def scenario(store: VaultKeyStore) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.get(name)
        await store.create(name, VALUE)
        assert await store.get(name) == VALUE
        with pytest.raises(KeyExistsError) as exc:
            await store.create(name, b"other")
        assert (exc.value.status, exc.value.message) == (400, "key already exists")
        assert await store.get(name) == VALUE  # not overwritten
        await store.delete(name)
        with pytest.raises(KeyNotFoundError):
            await store.get(name)
        with pytest.raises(KeyNotFoundError) as missing:  # the Go server reports success
            await store.delete(name)
        assert (missing.value.status, missing.value.message) == (404, "key does not exist")
        await store.create(name, b"second life")  # v2: metadata is gone, CAS 0 works again
        assert await store.get(name) == b"second life"
        await store.delete(name)

    run(config, scenario)


@VERSIONS
def test_exact_storage_layout(vault, mounts, approle, version) -> None:
    """Field name == key name, value == encoded key; v2 writes exactly version 1."""
    config = make_config(vault, mounts, approle, version, prefix="tenant-a//nested/")
    name = unique()
    run(config, lambda store: store.create(name, VALUE))
    engine = mounts[version]
    if version == "v1":
        assert vault.read(f"{engine}/tenant-a/nested/{name}") == {name: VALUE.decode()}
    else:
        secret = vault.read(f"{engine}/data/tenant-a/nested/{name}")
        assert secret is not None
        assert secret["data"] == {name: VALUE.decode()}
        assert secret["metadata"]["version"] == 1
        meta = vault.read(f"{engine}/metadata/tenant-a/nested/{name}")
        assert meta is not None and meta["current_version"] == 1


@VERSIONS
def test_reads_keys_written_by_go_kes(vault, mounts, approle, version) -> None:
    engine, name = mounts[version], unique()
    if version == "v1":
        vault.write(f"{engine}/go/{name}", {name: VALUE.decode()})
    else:
        vault.write(f"{engine}/data/go/{name}", {"options": {"cas": 0}, "data": {name: "v1"}})
        vault.write(f"{engine}/data/go/{name}", {"data": {name: "overwritten"}})  # version 2
    config = make_config(vault, mounts, approle, version, prefix="go")

    async def scenario(store: VaultKeyStore) -> None:
        expected = VALUE if version == "v1" else b"v1"  # KES always reads version 1
        assert await store.get(name) == expected
        assert name in (await store.list("", -1))[0]
        with pytest.raises(KeyExistsError):
            await store.create(name, VALUE)
        await store.delete(name)  # v2: all versions

    run(config, scenario)
    gone = f"{engine}/go/{name}" if version == "v1" else f"{engine}/metadata/go/{name}"
    assert vault.read(gone) is None


@VERSIONS
def test_secret_without_the_key_field_is_an_error(vault, mounts, approle, version) -> None:
    engine, name = mounts[version], unique()
    if version == "v1":
        vault.write(f"{engine}/odd/{name}", {"something": "else"})
    else:
        vault.write(f"{engine}/data/odd/{name}", {"data": {"something": "else"}})
    config = make_config(vault, mounts, approle, version, prefix="odd")

    async def scenario(store: VaultKeyStore) -> None:
        with pytest.raises(VaultError, match="no secret key is present"):
            await store.get(name)
        with pytest.raises(VaultError, match="no secret key is present"):
            await store.create(name, VALUE)

    run(config, scenario)


@VERSIONS
def test_list_prefix_pages_and_folders(vault, mounts, approle, version) -> None:
    prefix = unique("list")
    engine = mounts[version]
    folder = (
        f"{engine}/{prefix}/folder/x" if version == "v1" else f"{engine}/data/{prefix}/folder/x"
    )
    vault.write(folder, {"x": "1"} if version == "v1" else {"data": {"x": "1"}})
    config = make_config(vault, mounts, approle, version, prefix=prefix)
    names = ["b-1", "a-2", "a-1", "c_3"]

    async def scenario(store: VaultKeyStore) -> None:
        for name in names:
            await store.create(name, VALUE)
        assert await store.list("", -1) == (["a-1", "a-2", "b-1", "c_3", "folder/"], "")
        assert await store.list("a-", -1) == (["a-1", "a-2"], "")
        assert await store.list("", 2) == (["a-1", "a-2"], "b-1")
        assert await store.list("zzz", -1) == ([], "")

    run(config, scenario)
    empty = make_config(vault, mounts, approle, version, prefix=unique("nothing"))
    run(empty, lambda store: _expect(store.list("", -1), ([], "")))


async def _expect(awaitable: Awaitable[Any], expected: Any) -> None:
    assert await awaitable == expected


def test_v2_concurrent_creates_exactly_one_wins(vault, mounts, approle) -> None:
    """Two KES nodes (two connections) racing on the same names: CAS 0 lets exactly
    one create per name succeed; the loser gets KeyExistsError."""
    config = make_config(vault, mounts, approle, "v2", prefix=unique("race"))
    names = [f"k{i}" for i in range(8)]

    async def main() -> None:
        a, b = await connect(config), await connect(config)
        try:
            for name in names:
                results = await asyncio.gather(
                    a.create(name, b"from-a"), b.create(name, b"from-b"), return_exceptions=True
                )
                wins = [r for r in results if r is None]
                losses = [r for r in results if isinstance(r, KeyExistsError)]
                assert (len(wins), len(losses)) == (1, 1), results
                winner = b"from-a" if results[0] is None else b"from-b"
                assert await a.get(name) == winner
                assert await b.get(name) == winner
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


# --------------------------------------------------------------------------- transit
def test_transit_encrypts_stored_values(vault, mounts, approle) -> None:
    transit = VaultTransitConfig(engine=mounts["transit"], key="kes")
    config = make_config(vault, mounts, approle, "v1", prefix="transit", transit=transit)
    name = unique()
    run(config, lambda store: store.create(name, VALUE))
    stored = vault.read(f"{mounts['v1']}/transit/{name}")
    assert stored is not None and set(stored) == {name}
    assert stored[name].startswith("vault:v1:") and VALUE.decode() not in stored[name]
    # the stored ciphertext is genuine transit output: Vault decrypts it to the value
    plain = vault.write(f"{mounts['transit']}/decrypt/kes", {"ciphertext": stored[name]})
    assert base64.b64decode(plain["data"]["plaintext"]) == VALUE

    run(config, lambda store: _expect(store.get(name), VALUE))
    without = make_config(vault, mounts, approle, "v1", prefix="transit")

    async def no_transit(store: VaultKeyStore) -> None:
        with pytest.raises(VaultError, match="encrypted with vault transit key"):
            await store.get(name)

    run(without, no_transit)


# --------------------------------------------------------------------------- auth
def test_forbidden_path_is_an_error_not_a_missing_key(vault, mounts, approle) -> None:
    policy = vault.policy(_kv_policy(mounts["v1"], mounts["v2"], sub="allowed/*"))
    role_id, secret_id = vault.approle(approle["mount"], [policy])
    limited = {**approle, "id": role_id, "secret": secret_id}
    secret_value = b"TOP-SECRET-VALUE-MUST-NOT-LEAK"

    for version in ("v1", "v2"):
        config = make_config(vault, mounts, limited, version, prefix="forbidden")

        async def scenario(store: VaultKeyStore) -> None:
            for op in (
                store.create("k", secret_value),
                store.get("k"),
                store.delete("k"),
                store.list("", -1),
            ):
                with pytest.raises(VaultError) as exc:
                    await op
                assert not isinstance(exc.value, KeyNotFoundError | KeyExistsError)
                assert "permission denied" in str(exc.value)
                assert secret_value.decode() not in str(exc.value)

        run(config, scenario)
        allowed = make_config(vault, mounts, limited, version, prefix="allowed")
        run(allowed, lambda store: store.create(unique(), VALUE))


def test_token_renewal_and_relogin(vault, mounts, approle) -> None:
    """TTL 3 s, max TTL 6 s: the keeper renews at 80 %, re-logs in when the max TTL
    caps a renewal, and operations never see an expired token."""
    role_id, secret_id = vault.approle(
        approle["mount"], [approle["policy"]], ttl="3s", max_ttl="6s"
    )
    config = make_config(vault, mounts, {**approle, "id": role_id, "secret": secret_id}, "v1")
    name = unique()

    async def scenario(store: VaultKeyStore) -> None:
        keeper = store.keeper
        assert keeper is not None and keeper.token.ttl == 3
        first = keeper.token.value
        await store.create(name, VALUE)
        deadline = time.monotonic() + 6.5
        while time.monotonic() < deadline:
            assert await store.get(name) == VALUE
            await asyncio.sleep(0.25)
        assert keeper.renewals >= 2
        assert keeper.logins >= 2 and keeper.token.value != first
        await store.delete(name)

    run(config, scenario)


def _jwt(key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{b64(signature)}"


def test_kubernetes_login_with_jwt_file_and_inline(vault, mounts, approle, tmp_path) -> None:
    """The Kubernetes login request ({"role","jwt"} to auth/<engine>/login) against
    OpenBao's JWT auth method, which validates the token for real."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mount = vault.enable_auth("jwt")
    vault.write(f"auth/{mount}/config", {"jwt_validation_pubkeys": [pem.decode()]})
    vault.write(
        f"auth/{mount}/role/kes",
        {
            "role_type": "jwt",
            "bound_audiences": ["pykes"],
            "user_claim": "sub",
            "token_policies": [approle["policy"]],
            "token_ttl": "1h",
        },
    )
    now = int(time.time())
    claims = {"sub": "system:serviceaccount:kes", "aud": "pykes", "iat": now, "exp": now + 600}
    token = _jwt(key, claims)
    jwt_file = tmp_path / "token"
    jwt_file.write_text(token + "\n")
    for jwt in (str(jwt_file), token):
        k8s = VaultKubernetesConfig(engine=mount, namespace="", role="kes", jwt=jwt)
        config = make_config(vault, mounts, approle, "v1", approle=None, kubernetes=k8s)
        run(config, lambda store: store.create(unique(), VALUE))
    bad = VaultKubernetesConfig(engine=mount, role="kes", jwt=_jwt(key, {**claims, "aud": "x"}))
    config = make_config(vault, mounts, approle, "v1", approle=None, kubernetes=bad)
    with pytest.raises(VaultError, match="authentication failed") as exc:
        asyncio.run(connect(config))
    assert not isinstance(exc.value, KeyStoreUnreachable)


def test_connect_errors(vault, mounts, approle) -> None:
    wrong = make_config(vault, mounts, {**approle, "secret": "not-the-secret"}, "v1")
    with pytest.raises(VaultError, match="authentication failed") as exc:
        asyncio.run(connect(wrong))
    assert not isinstance(exc.value, KeyStoreUnreachable)
    assert "not-the-secret" not in str(exc.value)
    with pytest.raises(ValueError, match="vault: invalid engine API version 'v3'"):
        asyncio.run(connect(replace(make_config(vault, mounts, approle, "v1"), version="v3")))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(VaultUnreachable):
        asyncio.run(connect(make_config(vault, mounts, approle, "v1", endpoint=closed)))


def test_close_cancels_background_tasks(vault, mounts, approle) -> None:
    config = make_config(vault, mounts, approle, "v1")

    async def main() -> None:
        store = await connect(config)
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert {"vault-token-renewal", "vault-health-ping"} <= names
        await store.close()
        await store.close()  # idempotent
        assert {t.get_name() for t in asyncio.all_tasks()} == {asyncio.current_task().get_name()}
        with pytest.raises(VaultError, match="closed"):
            await store.get("k")

    asyncio.run(main())


# --------------------------------------------------------------------------- namespaces
def test_namespaces(vault) -> None:
    ns = vault.create_namespace()
    if ns is None:
        pytest.skip("server has no namespaces (Vault OSS)")
    kv = vault.enable_kv(1, namespace=ns)
    # AppRole in the root namespace ("/"), policy granting the child namespace's path
    root_policy = vault.policy(f'path "{ns}/{kv}/*" {{ capabilities = ["create","read","list"] }}')
    root_mount = vault.enable_auth("approle")
    rid, sid = vault.approle(root_mount, [root_policy])
    # AppRole inside the namespace ("" = the keystore namespace)
    ns_policy = vault.policy(
        f'path "{kv}/*" {{ capabilities = ["create","read","list"] }}', namespace=ns
    )
    ns_mount = vault.enable_auth("approle", namespace=ns)
    nrid, nsid = vault.approle(ns_mount, [ns_policy], namespace=ns)

    def config(mount: str, auth_ns: str, role_id: str, secret_id: str) -> VaultKeyStoreConfig:
        return VaultKeyStoreConfig(
            endpoint=vault.addr,
            engine=kv,
            namespace=ns,
            approle=VaultAppRoleConfig(
                engine=mount, namespace=auth_ns, id=role_id, secret=secret_id
            ),
            tls=VaultTLSConfig(ca=vault.verify if isinstance(vault.verify, str) else ""),
        )

    names = []
    for cfg in (config(root_mount, "/", rid, sid), config(ns_mount, "", nrid, nsid)):
        name = unique()
        names.append(name)

        async def scenario(store: VaultKeyStore, name: str = name) -> None:
            assert await store.status() > 0  # sys/health must go without the namespace
            await store.create(name, VALUE)
            assert await store.get(name) == VALUE

        run(cfg, scenario)
        assert vault.read(f"{kv}/{name}", namespace=ns) == {name: VALUE.decode()}
        assert vault.read(f"{kv}/{name}") is None  # not in the root namespace
    run(config(root_mount, "/", rid, sid), lambda s: _expect(s.list("", -1), (sorted(names), "")))
    # the namespace-local role does not exist at the root: "/" must not find it
    with pytest.raises(VaultError, match="authentication failed"):
        asyncio.run(connect(config(ns_mount, "/", nrid, nsid)))


# --------------------------------------------------------------------------- health
async def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_sealed_vault(dev_vault: VaultServer) -> None:
    config = kes_config(dev_vault, 2, status_ping=0.2)

    async def scenario(store: VaultKeyStore) -> None:
        await store.create("before", VALUE)
        await asyncio.to_thread(dev_vault.seal)
        await _wait_for(lambda: store.sealed, 2.0)  # noticed by the background ping alone
        with pytest.raises(KeyStoreUnreachable, match="vault: key store is sealed"):
            await store.status()
        for op in (
            store.get("before"),
            store.create("during", VALUE),
            store.delete("before"),
            store.list("", -1),
        ):
            start = time.monotonic()
            with pytest.raises(VaultSealedError, match="^vault: key store is sealed$"):
                await op
            assert time.monotonic() - start < 0.1  # fails fast
        await asyncio.to_thread(dev_vault.unseal)
        await _wait_for(lambda: not store.sealed, 2.0)
        assert await store.status() > 0
        assert await store.get("before") == VALUE

    run(config, scenario)


def test_stopped_vault_is_unreachable(dev_vault: VaultServer) -> None:
    config = kes_config(dev_vault, 1)

    async def scenario(store: VaultKeyStore) -> None:
        await store.create("k", VALUE)
        dev_vault.stop()
        start = time.monotonic()
        with pytest.raises(KeyStoreUnreachable):
            await store.status()
        with pytest.raises(VaultUnreachable):
            await store.get("k")
        assert time.monotonic() - start < 5

    run(config, scenario)


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_hanging_vault_times_out(hanging_endpoint: str) -> None:
    config = VaultKeyStoreConfig(
        endpoint=hanging_endpoint,
        approle=VaultAppRoleConfig(id="x", secret="y"),
    )

    async def main() -> None:
        start = time.monotonic()
        with pytest.raises(VaultUnreachable, match="no response within 0.5s"):
            await connect(config, timeout=0.5)
        assert time.monotonic() - start < 3
        http = VaultHTTP(hanging_endpoint, timeout=0.3)
        store = VaultKeyStore(config, VaultClient(http, None, 0))
        start = time.monotonic()
        with pytest.raises(KeyStoreUnreachable):
            await store.status()
        assert time.monotonic() - start < 2
        await store.close()

    asyncio.run(main())


# --------------------------------------------------------------------------- TLS
def test_tls_ca_and_client_certificate(tmp_path: Path) -> None:
    """Vault listener with TLS that requires a client certificate: ``tls.ca`` as file
    and as directory, mTLS with cert/key; no client cert or a wrong CA fails."""
    if find_binary() is None:
        pytest.skip("no bao/vault binary")
    certs = tmp_path / "certs"
    (certs / "ca").mkdir(parents=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = make_certificate(
        server_key,
        "localhost",
        ips=("127.0.0.1",),
        dns=("localhost",),
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = make_certificate(client_key, "pykes")
    pem = serialization.Encoding.PEM
    (certs / "server.crt").write_bytes(server_cert.public_bytes(pem))
    (certs / "ca" / "vault-ca.pem").write_bytes(server_cert.public_bytes(pem))
    (certs / "server.key").write_bytes(_pem_key(server_key))
    (certs / "client.crt").write_bytes(client_cert.public_bytes(pem))
    (certs / "client.key").write_bytes(_pem_key(client_key))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        tls_port = s.getsockname()[1]
    server = start_dev_server(
        tmp_path / "bao",
        extra_config=(
            'listener "tcp" {\n'
            f'  address = "127.0.0.1:{tls_port}"\n'
            f'  cluster_address = "127.0.0.1:{tls_port + 1}"\n'
            f'  tls_cert_file = "{certs / "server.crt"}"\n'
            f'  tls_key_file = "{certs / "server.key"}"\n'
            f'  tls_client_ca_file = "{certs / "client.crt"}"\n'
            "  tls_require_and_verify_client_cert = true\n"
            "}\n"
        ),
    )
    try:
        base = kes_config(server, 1, endpoint=f"https://127.0.0.1:{tls_port}")
        client = {"cert": str(certs / "client.crt"), "key": str(certs / "client.key")}
        for ca in (str(certs / "server.crt"), str(certs / "ca")):
            config = replace(base, tls=VaultTLSConfig(ca=ca, **client))
            run(config, lambda store: store.create(unique(), VALUE))
        no_client = replace(base, tls=VaultTLSConfig(ca=str(certs / "server.crt")))
        with pytest.raises(VaultUnreachable):
            asyncio.run(connect(no_client))
        wrong_ca = replace(base, tls=VaultTLSConfig(ca=str(certs / "client.crt"), **client))
        with pytest.raises(VaultUnreachable, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            asyncio.run(connect(wrong_ca))
    finally:
        server.stop()


# --------------------------------------------------------------------------- end to end
def test_pykes_server_on_vault(vault, mounts, approle, tmp_path: Path, pki: PKI) -> None:
    """A real pykes server with ``keystore: vault:`` (K/V v2, AppRole): create a key,
    generate and decrypt a data key through the API, find the key in OpenBao in the
    Go layout, and get 404 on deleting it twice."""
    admin = pki.client("admin")
    prefix = unique("e2e")
    config = (
        "version: v1\n"
        f"admin:\n  identity: {admin.identity}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
        "keystore:\n"
        "  vault:\n"
        f"    endpoint: {vault.addr}\n"
        f"    engine: {mounts['v2']}\n"
        "    version: v2\n"
        f"    prefix: {prefix}\n"
        "    approle:\n"
        f"      engine: {approle['mount']}\n"
        f"      id: {approle['id']}\n"
        f"      secret: {approle['secret']}\n"
        "    status:\n"
        "      ping: 1s\n"
    )
    if isinstance(vault.verify, str):
        config += f"    tls:\n      ca: {vault.verify}\n"
    server = start_server(tmp_path, pki, config)
    try:
        with server.client(admin) as client:
            assert client.post("/v1/key/create/my-key").status_code == 200
            r = client.post("/v1/key/create/my-key")
            assert (r.status_code, r.json()) == (400, {"message": "key already exists"})
            dek = client.post("/v1/key/generate/my-key", json={"context": "e30="}).json()
            r = client.post(
                "/v1/key/decrypt/my-key", json={"ciphertext": dek["ciphertext"], "context": "e30="}
            )
            assert r.json() == {"plaintext": dek["plaintext"]}
            secret = vault.read(f"{mounts['v2']}/data/{prefix}/my-key")
            assert secret is not None and set(secret["data"]) == {"my-key"}
            assert secret["metadata"]["version"] == 1
            stored = decode_key_version(secret["data"]["my-key"].encode())
            assert stored.hmac_key is not None
            status = client.get("/v1/status").json()
            assert status["keystore_latency"] >= 1 and "keystore_unreachable" not in status
            assert client.get("/v1/key/list/").json()["names"] == ["my-key"]
            assert client.delete("/v1/key/delete/my-key").status_code == 200
            assert vault.read(f"{mounts['v2']}/metadata/{prefix}/my-key") is None
            r = client.delete("/v1/key/delete/my-key")
            assert (r.status_code, r.json()) == (404, {"message": "key does not exist"})
    finally:
        server.stop()
    _, stderr = server.output()
    assert approle["secret"] not in stderr
