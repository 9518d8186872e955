"""Stateful mode on OpenBao (``store.vault``): the config section, and three real
``kes server`` nodes on one store in a real three-node OpenBao Raft cluster, each node
talking to a different OpenBao node, over real mTLS.

* every node sees the others' enclaves, keys (create, rotate, delete), policies and
  identities; a data key generated on node 1 decrypts on nodes 2 and 3;
* what a node sees of another node's write is at most ``cache.expiry.any`` old
  (docs/stateful.md, "Consistency across nodes"): measured, and asserted;
* no OpenBao entry — every secret and version read through the API, and the raw Raft
  storage of every OpenBao node — holds an imported key's bytes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bao_cluster import BaoCluster, cluster_fixture  # noqa: F401 (the fixture cluster)
from conftest import (
    PKI,
    ClientIdentity,
    RunningServer,
    free_port,
    kes_command,
    start_server,
    until,
)
from pykes.config import parse_config
from pykes.errors import ConfigError
from pykes.store import generate_seal_key
from pykes.store.errors import RecordTooLargeError
from store_backings import VaultBacking
from vault_harness import find_binary, store_config, store_yaml

pytestmark = pytest.mark.skipif(find_binary() is None, reason="no bao binary")

EXPIRY = 2.0
"""``cache.expiry.any`` of the nodes: the bound on what a node sees of another's writes."""
CONTEXT = base64.b64encode(b'{"bucket":"three-nodes"}').decode()
HEAD = "admin:\n  identity: disabled\ntls:\n  key: k\n  cert: c\n"


# ------------------------------------------------------------------ the config section
def test_the_store_vault_section_has_the_fields_of_keystore_vault() -> None:
    cfg = parse_config(
        HEAD + "store:\n  vault:\n    endpoint: https://bao:8200\n    engine: pykes\n"
        "    prefix: node-a\n    namespace: ns\n"
        "    approle:\n      id: role\n      secret: s3cret\n"
        "    tls:\n      ca: /etc/bao/ca.pem\n    status:\n      ping: 3s\n"
        "  seal:\n    env: PYKES_SEAL\n"
    )
    assert cfg.keystore is None and cfg.store is not None and cfg.store.sqlite is None
    vault = cfg.store.vault
    assert vault is not None
    assert (vault.endpoint, vault.engine, vault.version, vault.prefix, vault.namespace) == (
        "https://bao:8200",
        "pykes",
        "v2",  # the default: the store needs K/V v2
        "node-a",
        "ns",
    )
    assert (vault.approle.id, vault.approle.secret, vault.tls.ca, vault.status_ping) == (
        "role",
        "s3cret",
        "/etc/bao/ca.pem",
        3.0,
    )
    seal = "  seal:\n    file: a\n"
    login = "    approle:\n      id: r\n      secret: s\n"
    bad = {
        "store:\n  vault:\n    endpoint: https://bao:8200\n" + seal: (
            "kesconf: invalid store config: invalid vault store: no authentication method specified"
        ),
        "store:\n  vault:\n    endpoint: https://bao:8200\n    version: v1\n" + login + seal: (
            "kesconf: invalid store config: invalid vault store: "
            "the store needs a K/V v2 engine (version: v2), not 'v1'"
        ),
        "store:\n  vault:\n    endpoint: https://bao:8200\n"
        + login
        + "    transit:\n      key: t\n"
        + seal: (
            "kesconf: invalid store config: invalid vault store: "
            "'transit' is not used by the store: it seals its records itself"
        ),
        "store:\n  sqlite:\n    path: ./pykes.db\n  vault:\n    endpoint: https://bao:8200\n"
        + login
        + seal: (
            "kesconf: invalid store config: 'sqlite' and 'vault' are both specified: use one engine"
        ),
    }
    for text, message in bad.items():
        with pytest.raises(ConfigError) as caught:
            parse_config(HEAD + text)
        assert str(caught.value) == message


# ------------------------------------------------------------------ three nodes
class Node:
    """An httpx client of one pykes node that names one enclave (or none)."""

    def __init__(self, server: RunningServer, ident: ClientIdentity) -> None:
        self.server = server
        self.client = server.client(ident)

    def call(
        self, method: str, path: str, body: object = None, enclave: str | None = None
    ) -> httpx.Response:
        headers = {"Kes-Enclave": enclave} if enclave else {}
        return self.client.request(method, path, json=body, headers=headers)

    def ok(self, method: str, path: str, body: object = None, enclave: str | None = None) -> dict:
        answer = self.call(method, path, body, enclave)
        assert answer.status_code == 200, (self.server.url, method, path, answer.text)
        return answer.json() if answer.content.strip() else {}

    def status(self, method: str, path: str, body: object = None, enclave: str | None = None):
        return self.call(method, path, body, enclave).status_code


@pytest.fixture
def three(
    cluster: BaoCluster, tmp_path: Path, pki: PKI
) -> Iterator[tuple[list[RunningServer], VaultBacking]]:
    """Three pykes nodes on one fresh K/V v2 engine of the cluster, each pointed at a
    different OpenBao node, with ``cache.expiry.any`` = :data:`EXPIRY`."""
    admin = cluster.admin()
    config = store_config(admin)
    seal = tmp_path / "root.seal"
    seal.write_text(generate_seal_key().text() + "\n")
    servers: list[RunningServer] = []
    try:
        for i, bao in enumerate(cluster.nodes):
            run = tmp_path / f"node{i + 1}"
            run.mkdir()
            text = (
                f"admin:\n  identity: {pki.client('admin').identity}\n"
                f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
                f"cache:\n  expiry:\n    any: {EXPIRY}s\n    unused: 30s\n"
                "log:\n  audit: off\n" + store_yaml(config, seal, endpoint=bao.addr)
            )
            servers.append(start_server(run, pki, text))
        yield servers, VaultBacking(admin, config)
    finally:
        for server in servers:
            server.stop()


def test_three_nodes_share_enclaves_keys_policies_and_identities(
    three: tuple[list[RunningServer], VaultBacking], pki: PKI
) -> None:
    servers, _ = three
    admin, app = pki.client("admin"), pki.client("three-app")
    one, two, three_ = (Node(s, admin) for s in servers)
    assert "OpenBao/Vault K/V v2" in servers[0].output()[0]  # the banner names the store

    one.ok("PUT", "/v1/enclave/create/tenant")
    for node in (two, three_):
        assert node.ok("GET", "/v1/enclave/describe/tenant")["name"] == "tenant"
        assert node.ok("GET", "/v1/enclave/list/*")["names"] == ["default", "tenant"]

    # A key created on node 1: a data key of node 2 decrypts on nodes 3 and 1.
    one.ok("PUT", "/v1/key/create/k", enclave="tenant")
    dek = two.ok("PUT", "/v1/key/generate/k", {"context": CONTEXT}, enclave="tenant")
    sealed = {"ciphertext": dek["ciphertext"], "context": CONTEXT}
    for node in (three_, one):
        assert node.ok("PUT", "/v1/key/decrypt/k", sealed, enclave="tenant") == {
            "plaintext": dek["plaintext"]
        }
    assert one.status("PUT", "/v1/key/generate/k", {}) == 404  # not in default

    # A rotation on node 2: the others use version 2 within the bound; version 1 stays.
    assert two.ok("PUT", "/v1/key/rotate/k", enclave="tenant") == {"version": "2"}
    for node in (one, three_):
        until(lambda n=node: n.ok("PUT", "/v1/key/generate/k", {}, "tenant")["version"] == "2",
              EXPIRY + 1)  # fmt: skip
        assert node.ok("PUT", "/v1/key/decrypt/k", sealed, enclave="tenant")["plaintext"]
        assert node.ok("GET", "/v1/key/describe/k", enclave="tenant")["versions"] == ["1", "2"]

    # A policy and an identity written on node 3 let the app act on nodes 1 and 2.
    three_.ok("POST", "/v1/policy/write/app", {"allow": ["/v1/key/*"]}, enclave="tenant")
    three_.ok("POST", f"/v1/identity/assign/app/{app.identity}", enclave="tenant")
    for server in servers[:2]:
        member = Node(server, app)
        until(lambda m=member: m.status("PUT", "/v1/key/generate/k", {}, "tenant") == 200,
              EXPIRY + 1)  # fmt: skip
        assert member.status("GET", "/v1/key/list/*") == 403  # default: not its enclave
    assert one.ok("GET", "/v1/policy/list/*", enclave="tenant")["names"] == ["app"]

    # Forgotten on node 1: refused on nodes 2 and 3 within the bound.
    one.ok("DELETE", f"/v1/identity/forget/{app.identity}", enclave="tenant")
    for server in servers[1:]:
        member = Node(server, app)
        until(lambda m=member: m.status("PUT", "/v1/key/generate/k", {}, "tenant") == 403,
              EXPIRY + 1)  # fmt: skip

    # A key deleted on node 3 is gone on nodes 1 and 2 within the bound.
    three_.ok("DELETE", "/v1/key/delete/k", enclave="tenant")
    for node in (one, two):
        until(lambda n=node: n.status("PUT", "/v1/key/decrypt/k", sealed, "tenant") == 404,
              EXPIRY + 1)  # fmt: skip
        assert node.ok("GET", "/v1/key/list/*", enclave="tenant")["names"] == []

    # An enclave deleted on node 2 is gone everywhere; created again it starts empty.
    one.ok("PUT", "/v1/key/create/again", enclave="tenant")
    two.ok("DELETE", "/v1/enclave/delete/tenant?force")
    for node in (one, three_):
        until(lambda n=node: n.status("PUT", "/v1/key/generate/again", {}, "tenant") == 404,
              EXPIRY + 1)  # fmt: skip
        assert node.status("GET", "/v1/enclave/describe/tenant") == 404
    three_.ok("PUT", "/v1/enclave/create/tenant")
    assert one.ok("GET", "/v1/key/list/*", enclave="tenant")["names"] == []


def test_what_a_node_sees_of_another_nodes_writes_is_bounded(
    three: tuple[list[RunningServer], VaultBacking], pki: PKI
) -> None:
    """A key deleted (or rotated) on node 1 while node 2 has it cached: node 2 refuses
    it (uses the new version) at most ``cache.expiry.any`` later. A key created on node
    1 is usable on node 2 at once (a miss is never cached). The delays are printed."""
    servers, _ = three
    admin = pki.client("admin")
    one, two = Node(servers[0], admin), Node(servers[1], admin)
    deletes, rotations = [], []
    for i in range(8):
        name = f"seen-{i}"
        one.ok("PUT", f"/v1/key/create/{name}")
        two.ok("PUT", f"/v1/key/generate/{name}", {})  # created: at once; now cached
        time.sleep(random.uniform(0, EXPIRY))  # not in step with node 2's expiry ticker
        one.ok("PUT", f"/v1/key/rotate/{name}")
        start = time.monotonic()
        until(lambda n=name: two.ok("PUT", f"/v1/key/generate/{n}", {})["version"] == "2",
              EXPIRY + 1, step=0.02)  # fmt: skip
        rotations.append(time.monotonic() - start)
        time.sleep(random.uniform(0, EXPIRY))
        one.ok("DELETE", f"/v1/key/delete/{name}")
        start = time.monotonic()
        until(lambda n=name: two.status("PUT", f"/v1/key/generate/{n}", {}) == 404,
              EXPIRY + 1, step=0.02)  # fmt: skip
        deletes.append(time.monotonic() - start)
    for what, delays in (("rotation", rotations), ("deletion", deletes)):
        print(
            f"{what} on node 1 seen by node 2: median {statistics.median(delays):.3f} s, "
            f"max {max(delays):.3f} s (bound {EXPIRY} s)"
        )
        assert max(delays) <= EXPIRY + 0.5, delays  # the bound, plus polling and load


def test_no_openbao_entry_holds_an_imported_key(
    three: tuple[list[RunningServer], VaultBacking], cluster: BaoCluster, pki: PKI
) -> None:
    """A key imported through node 1 (and rotated on node 2): neither its bytes nor
    their base64 or hex are in any secret, version or metadata of the store's engine
    read through OpenBao's API as root, nor in any file of the Raft storage of any
    OpenBao node."""
    servers, backing = three
    admin = pki.client("admin")
    secret = hashlib.sha256(b"three nodes, one imported key").digest()
    forms = [
        secret,
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret),
        secret.hex().encode(),
        secret.hex().upper().encode(),
        secret[:16],
        secret[16:],
    ]
    one, two = Node(servers[0], admin), Node(servers[1], admin)
    one.ok("PUT", "/v1/enclave/create/grep")
    for enclave in (None, "grep"):
        one.ok("PUT", "/v1/key/import/known", {"key": base64.b64encode(secret).decode(),
               "cipher": "AES256"}, enclave)  # fmt: skip
        two.ok("PUT", "/v1/key/rotate/known", enclave=enclave)
    dek = one.ok("PUT", "/v1/key/generate/known", {}, enclave="grep")
    assert dek["version"] == "2"

    stored = backing.at_rest()
    assert [where for where in stored if "/key/known" in where]  # the rings are there
    found = [f"{where}: {form!r}" for where, data in stored.items() for form in forms
             if form in data]  # fmt: skip
    assert found == []
    files = [p for node in cluster.nodes for p in (node.workdir / "raft").rglob("*") if p.is_file()]
    assert files
    found = [f"{path}: {form!r}" for path in files for form in forms if form in path.read_bytes()]
    assert found == []


def test_a_record_larger_than_raft_stores_is_refused_with_a_clear_error(
    cluster: BaoCluster,
) -> None:
    """OpenBao's Raft storage takes entries up to 1 MiB (``max_entry_size``): a larger
    record (a ring of about 4,000 versions) is a 400 that says so, and nothing is
    written."""
    backing = VaultBacking(cluster.admin(), store_config(cluster.admin()))

    async def scenario() -> None:
        engine = await backing.open()
        try:
            assert await engine.put("enclave/x/key/ok", b"\0" * 600_000, 0) == 1
            with pytest.raises(RecordTooLargeError) as caught:
                await engine.put("enclave/x/key/big", b"\0" * 1_200_000, 0)
            assert (caught.value.status, caught.value.message) == (
                400,
                "the record is too large for the store (1200000 bytes)",
            )
            with pytest.raises(RecordTooLargeError):
                await engine.put("enclave/x/key/ok", b"\0" * 1_200_000, 1)
            assert await engine.get("enclave/x/key/big") is None
            assert await engine.get("enclave/x/key/ok") == (b"\0" * 600_000, 1)
        finally:
            await engine.close()

    asyncio.run(scenario())


def test_a_node_refuses_to_start_on_a_mount_that_keeps_old_versions(
    cluster: BaoCluster, tmp_path: Path, pki: PKI
) -> None:
    """A mount that keeps several versions of a secret would keep a deleted key version
    readable: the server says so in one line, with the command that fixes it."""
    admin = cluster.admin()
    config = store_config(admin)
    admin.write(f"{config.engine}/config", {"max_versions": 0})  # K/V v2's default: 10
    seal = tmp_path / "root.seal"
    seal.write_text(generate_seal_key().text() + "\n")
    text = (
        f"admin:\n  identity: {pki.client('admin').identity}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n" + store_yaml(config, seal)
    )
    (tmp_path / "config.yml").write_text(text)
    done = subprocess.run(
        kes_command("server", "--config", str(tmp_path / "config.yml"), "--addr",
                    f"127.0.0.1:{free_port()}", "--workers", "1"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"Error: store: vault: the K/V engine '{config.engine}' keeps the default number of "
        "versions of a secret; the store needs exactly 1, so that what it deletes is gone: "
        f"bao write {config.engine}/config max_versions=1"
    ]
