"""Stateful mode (issue 23) on a real ``kes server`` with a ``store:`` block: a sealed
SQLite store, enclaves chosen by the ``Kes-Enclave`` header or ``?enclave=``, key rings
through the KES API, over real mTLS with HTTP/1.1 and HTTP/2 (httpx) and raw requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from conftest import PKI, ClientIdentity, RunningServer, free_port, kes_command, start_server
from pykes.config import parse_config
from pykes.crypto import KeyType, import_key_version
from pykes.errors import ConfigError
from pykes.store import generate_seal_key
from stateful_store import new_store_dir, stateful_config

CONTEXT = base64.b64encode(b'{"bucket":"issue-23"}').decode()
NOT_ALLOWED = {"message": "not authorized: insufficient permissions"}
NO_ENCLAVE = {"message": "enclave does not exist"}


# ------------------------------------------------------------------ a stateful server
@dataclass
class StatefulServers:
    """Servers on one store directory (``root``): restarts keep the store."""

    root: Path
    pki: PKI
    admin: ClientIdentity
    started: list[RunningServer] = field(default_factory=list)

    def config(self, extra: str = "", seal: str = "") -> str:
        return stateful_config(self.pki, self.admin.identity, self.root, seal) + extra

    def start(self, extra: str = "", *, seal: str = "", **kw) -> RunningServer:
        run = self.root / f"run{len(self.started)}"
        run.mkdir()
        server = start_server(run, self.pki, self.config(extra, seal), **kw)
        self.started.append(server)
        return server

    def restart(self, server: RunningServer, extra: str = "", **kw) -> RunningServer:
        assert server.stop() == 0
        return self.start(extra, **kw)


def new_store(root: Path, pki: PKI) -> StatefulServers:
    """Servers on a new store in ``root`` (created, with a fresh seal key)."""
    return StatefulServers(new_store_dir(root), pki, pki.client("admin"))


@pytest.fixture
def stateful(tmp_path: Path, pki: PKI) -> Iterator[StatefulServers]:
    servers = new_store(tmp_path / "store", pki)
    yield servers
    for server in servers.started:
        server.stop()


def in_enclave(enclave: str | None, how: str) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and query parameters that select ``enclave`` (None: no selector)."""
    if enclave is None:
        return {}, {}
    if how == "header":
        return {"Kes-Enclave": enclave}, {}
    return {}, {"enclave": enclave}


class Tenant:
    """An httpx client (HTTP/1.1 or HTTP/2) that names one enclave on every request."""

    def __init__(self, client: httpx.Client, enclave: str | None, how: str = "header") -> None:
        self.client = client
        self.headers, self.params = in_enclave(enclave, how)

    def call(self, method: str, path: str, body: object = None) -> httpx.Response:
        params = self.params or None  # (httpx: {} would drop the path's own query)
        return self.client.request(method, path, json=body, headers=self.headers, params=params)

    def ok(self, method: str, path: str, body: object = None) -> dict:
        response = self.call(method, path, body)
        assert response.status_code == 200, (method, path, response.text)
        return response.json() if response.content.strip() else {}


def file_hashes(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.name.startswith("pykes.db")
    }


# ------------------------------------------------------------------ config and start-up
def test_store_block_and_its_errors() -> None:
    head = "admin:\n  identity: disabled\ntls:\n  key: k\n  cert: c\n"
    sqlite = "store:\n  sqlite:\n    path: ./pykes.db\n"
    cfg = parse_config(head + sqlite + "  seal:\n    env: PYKES_SEAL\n")
    assert cfg.keystore is None and cfg.store is not None
    assert (cfg.store.sqlite.path, cfg.store.seal.env) == ("./pykes.db", "PYKES_SEAL")
    bad = {
        sqlite + "  seal:\n    file: ./root.seal\nkeystore:\n  fs:\n    path: /k\n": (
            "kesconf: 'store' and 'keystore' are both specified: "
            "stateful mode keeps the keys in the store, use one of them"
        ),
        sqlite: "kesconf: invalid store config: invalid seal: no seal key specified "
        "(want 'file' or 'env')",
        sqlite + "  seal:\n    file: a\n    env: B\n": "kesconf: invalid store config: "
        "invalid seal: more than one seal key specified (want 'file' or 'env')",
        "store:\n  seal:\n    file: a\n": "kesconf: invalid store config: "
        "no engine specified (want 'sqlite' or 'vault')",
        sqlite + "  vault:\n    endpoint: https://bao:8200\n  seal:\n    file: a\n": (
            "kesconf: invalid store config: 'sqlite' and 'vault' are both specified: use one engine"
        ),
        "store:\n  sqlite: {}\n  seal:\n    file: a\n": "kesconf: invalid store config: "
        "invalid sqlite store: no path specified",
    }
    for text, message in bad.items():
        with pytest.raises(ConfigError) as caught:
            parse_config(head + text)
        assert str(caught.value) == message


def _refused(stateful: StatefulServers, seal: str = "") -> str:
    """Start a server that must refuse to start: its one error line."""
    config = stateful.root / "refused.yml"
    config.write_text(stateful.config(seal=seal))
    addr = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        kes_command("server", "--config", str(config), "--addr", addr, "--workers", "1"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYKES_OTHER_SEAL": generate_seal_key().text()},
    )
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_missing_or_wrong_seal_key_refuses_to_start_and_changes_nothing(
    stateful: StatefulServers,
) -> None:
    line = _refused(stateful, seal=f"file: {stateful.root / 'nowhere.seal'}")
    assert "nowhere.seal" in line and "No such file or directory" in line
    assert file_hashes(stateful.root) == {}  # no store was created
    line = _refused(stateful, seal="env: PYKES_UNSET_SEAL")
    assert line == "Error: store: seal key environment variable 'PYKES_UNSET_SEAL' is not set"

    server = stateful.start()  # creates the store
    with server.client(stateful.admin) as admin:
        assert admin.post("/v1/key/create/k1").status_code == 200
    assert server.stop() == 0
    before = file_hashes(stateful.root)
    assert "pykes.db" in before
    line = _refused(stateful, seal="env: PYKES_OTHER_SEAL")
    assert line.endswith("does not unseal this store's root key: wrong seal key"), line
    assert "kes:v1:" not in line  # never the key
    assert file_hashes(stateful.root) == before  # byte-identical, nothing added

    server = stateful.start()  # the right key still opens it
    with server.client(stateful.admin) as admin:
        assert admin.get("/v1/key/describe/k1").status_code == 200


# ------------------------------------------------------------------ keys in default
@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
def test_the_kes_api_on_the_default_enclave(stateful: StatefulServers, http2: bool) -> None:
    """Every existing client works unchanged: no selector means ``default``; version-1
    ciphertexts are the Go KES format (the key's bytes open them, as Go KES would)."""
    server = stateful.start("keys:\n  - name: predefined\n")
    material = os.urandom(32)
    local = import_key_version(material, KeyType.AES256)
    with server.client(stateful.admin, http2=http2) as client:
        assert client.get("/version").status_code == 200
        kes = Tenant(client, None)
        kes.ok("PUT", "/v1/key/create/k1")
        assert kes.call("PUT", "/v1/key/create/k1").json() == {"message": "key already exists"}
        body = {"key": base64.b64encode(material).decode(), "cipher": "AES256"}
        kes.ok("PUT", "/v1/key/import/imported", body)
        assert kes.ok("GET", "/v1/key/list/*") == {"names": ["imported", "k1", "predefined"]}
        info = kes.ok("GET", "/v1/key/describe/imported")
        assert (info["name"], info["algorithm"], info["version"]) == ("imported", "AES256", "1")
        assert info["created_by"] == stateful.admin.identity

        dek = kes.ok("PUT", "/v1/key/generate/imported", {"context": CONTEXT})
        assert dek["version"] == "1"
        opened = local.decrypt(base64.b64decode(dek["ciphertext"]), base64.b64decode(CONTEXT))
        assert bytes(opened) == base64.b64decode(dek["plaintext"])
        made_here = local.encrypt(b"made by the key's owner", b"ctx")
        body = {"ciphertext": base64.b64encode(made_here).decode(), "context": "Y3R4"}
        plain = kes.ok("PUT", "/v1/key/decrypt/imported", body)["plaintext"]
        assert base64.b64decode(plain) == b"made by the key's owner"

        sealed = kes.ok("PUT", "/v1/key/encrypt/k1", {"plaintext": "aGk="})
        assert sealed["version"] == "1"
        body = {"ciphertext": sealed["ciphertext"]}
        assert kes.ok("PUT", "/v1/key/decrypt/k1", body) == {"plaintext": "aGk="}
        mac = kes.ok("PUT", "/v1/key/hmac/k1", {"message": "aGk="})
        assert mac["version"] == "1" and len(base64.b64decode(mac["hmac"])) == 32
        assert mac == kes.ok("PUT", "/v1/key/hmac/k1", {"message": "aGk="})

        kes.ok("DELETE", "/v1/key/delete/k1")
        assert kes.call("GET", "/v1/key/describe/k1").status_code == 404
        assert kes.call("PUT", "/v1/key/decrypt/k1", body).status_code == 404
        for name in ("a b", "-x", "x" * 81):  # the key-name rule, as stateless
            assert kes.call("PUT", f"/v1/key/create/{name}").status_code == 400


def test_no_store_file_holds_an_imported_key(stateful: StatefulServers) -> None:
    material = hashlib.sha256(b"issue 23: find me").digest()
    server = stateful.start()
    with server.client(stateful.admin) as admin:
        body = {"key": base64.b64encode(material).decode(), "cipher": "AES256"}
        for enclave in (None, "tenant"):
            kes = Tenant(admin, enclave)
            if enclave is not None:
                kes.ok("PUT", f"/v1/enclave/create/{enclave}")
            kes.ok("PUT", "/v1/key/import/secret", body)
            kes.ok("PUT", "/v1/key/rotate/secret")
    forms = [material, base64.b64encode(material), material.hex().encode()]
    files = [p for p in stateful.root.iterdir() if p.name.startswith("pykes.db")]
    assert {p.name for p in files} >= {"pykes.db", "pykes.db-wal"}
    for path in files:
        data = path.read_bytes()
        assert not any(form in data for form in forms), path.name
    assert server.stop() == 0
    for path in stateful.root.iterdir():  # after the WAL was folded in, too
        if path.name.startswith("pykes.db"):
            assert not any(form in path.read_bytes() for form in forms), path.name


# ------------------------------------------------------------------ enclaves
@pytest.mark.parametrize(
    ("http2", "how"), [(False, "header"), (True, "header"), (False, "query"), (True, "query")]
)
def test_two_enclaves_end_to_end(stateful: StatefulServers, http2: bool, how: str) -> None:
    """Create, generate, decrypt, list, isolation and a restart, for two enclaves."""
    server = stateful.start()
    with server.client(stateful.admin, http2=http2) as client:
        admin = Tenant(client, None)
        for name in ("tenant-a", "tenant-b"):
            admin.ok("PUT", f"/v1/enclave/create/{name}")
        a, b = Tenant(client, "tenant-a", how), Tenant(client, "tenant-b", how)
        a.ok("PUT", "/v1/key/create/shared-name")
        b.ok("PUT", "/v1/key/create/shared-name")  # the same name: another key
        a.ok("PUT", "/v1/key/create/only-a")
        assert a.ok("GET", "/v1/key/list/*")["names"] == ["only-a", "shared-name"]
        assert b.ok("GET", "/v1/key/list/*")["names"] == ["shared-name"]
        assert admin.ok("GET", "/v1/key/list/*")["names"] == []  # default has none
        assert b.call("GET", "/v1/key/describe/only-a").status_code == 404

        dek = a.ok("PUT", "/v1/key/generate/shared-name", {"context": CONTEXT})
        sealed = {"ciphertext": dek["ciphertext"], "context": CONTEXT}
        assert a.ok("PUT", "/v1/key/decrypt/shared-name", sealed)["plaintext"] == dek["plaintext"]
        refused = b.call("PUT", "/v1/key/decrypt/shared-name", sealed)
        assert refused.status_code == 400
        assert refused.json() == {"message": "decryption failed: ciphertext is not authentic"}

        listed = admin.ok("GET", "/v1/enclave/list/*")
        assert listed == {"names": ["default", "tenant-a", "tenant-b"]}
        assert admin.ok("GET", "/v1/enclave/list/tenant-*")["names"] == ["tenant-a", "tenant-b"]
        info = admin.ok("GET", "/v1/enclave/describe/tenant-a")
        assert info["name"] == "tenant-a" and info["created_by"] == stateful.admin.identity

    server = stateful.restart(server)
    with server.client(stateful.admin, http2=http2) as client:
        a, b = Tenant(client, "tenant-a", how), Tenant(client, "tenant-b", how)
        assert a.ok("PUT", "/v1/key/decrypt/shared-name", sealed)["plaintext"] == dek["plaintext"]
        assert b.call("PUT", "/v1/key/decrypt/shared-name", sealed).status_code == 400
        assert a.ok("GET", "/v1/key/list/*")["names"] == ["only-a", "shared-name"]


def test_the_enclave_of_a_request_and_its_errors(stateful: StatefulServers) -> None:
    server = stateful.start()
    with server.client(stateful.admin) as client:
        admin = Tenant(client, None)
        admin.ok("PUT", "/v1/enclave/create/tenant")
        assert admin.call("PUT", "/v1/enclave/create/tenant").json() == {
            "message": "enclave already exists"
        }
        assert admin.call("POST", "/v1/enclave/create/by-post").status_code == 200  # POST too
        for method, path in [
            ("GET", "/v1/enclave/describe/missing"),
            ("DELETE", "/v1/enclave/delete/missing"),
        ]:
            answer = admin.call(method, path)
            assert (answer.status_code, answer.json()) == (404, NO_ENCLAVE)
        missing = Tenant(client, "missing")
        answer = missing.call("PUT", "/v1/key/create/k")
        assert (answer.status_code, answer.json()) == (404, NO_ENCLAVE)
        invalid = Tenant(client, "bad name!")
        answer = invalid.call("GET", "/v1/key/list/*")
        assert answer.status_code == 400
        assert answer.json() == {
            "message": "enclave name 'bad name!' is empty, too long or contains invalid characters"
        }
        both = client.get(
            "/v1/key/list/*", headers={"Kes-Enclave": "tenant"}, params={"enclave": "default"}
        )
        assert both.status_code == 400
        same = client.get(
            "/v1/key/list/*", headers={"Kes-Enclave": "tenant"}, params={"enclave": "tenant"}
        )
        assert same.status_code == 200
        answer = admin.call("PUT", "/v1/enclave/create/x" + "y" * 80)
        assert answer.status_code == 400 and "enclave name" in answer.json()["message"]

        answer = admin.call("DELETE", "/v1/enclave/delete/default")
        assert answer.json() == {"message": "the default enclave cannot be deleted"}
        Tenant(client, "tenant").ok("PUT", "/v1/key/create/k")
        answer = admin.call("DELETE", "/v1/enclave/delete/tenant")
        assert (answer.status_code, answer.json()) == (400, {"message": "enclave is not empty"})
        assert Tenant(client, "tenant").call("GET", "/v1/key/describe/k").status_code == 200
        admin.ok("DELETE", "/v1/enclave/delete/tenant?force")
        answer = Tenant(client, "tenant").call("GET", "/v1/key/describe/k")
        assert (answer.status_code, answer.json()) == (404, NO_ENCLAVE)
        admin.ok("PUT", "/v1/enclave/create/tenant")  # the same name again: empty
        assert Tenant(client, "tenant").call("GET", "/v1/key/describe/k").status_code == 404
        admin.ok("DELETE", "/v1/enclave/delete/tenant")  # empty: no force needed


def test_the_header_is_read_in_any_case_and_a_held_enclave_stays_checked(
    stateful: StatefulServers,
) -> None:
    """The enclave a worker already holds is found from the header alone (no query
    string): in any letter case, and never in place of a check the request still needs."""
    server = stateful.start()
    with server.client(stateful.admin) as client:
        client.put("/v1/enclave/create/tenant").raise_for_status()
        for header in ("Kes-Enclave", "KES-ENCLAVE", "kes-enclave"):
            created = client.put(f"/v1/key/create/k-{header}", headers={header: "tenant"})
            assert created.status_code == 200, created.text
        listing = client.get("/v1/key/list/*", headers={"kEs-EnClAvE": "tenant"}).json()
        assert listing == {"names": ["k-KES-ENCLAVE", "k-Kes-Enclave", "k-kes-enclave"]}
        assert client.get("/v1/key/list/*").json() == {"names": []}  # none in default
        both = client.get(  # held, but a query string is still compared with the header
            "/v1/key/list/*", headers={"Kes-Enclave": "tenant"}, params={"enclave": "default"}
        )
        assert both.status_code == 400
        first = client.get("/v1/key/list/*", headers={"Kes-Enclave": "tenant", "X": "1"})
        other = client.get("/v1/key/list/*", headers={"Kes-Enclave": "default", "x-b": "kes"})
        assert first.status_code == other.status_code == 200
        assert len(first.json()["names"]) == 3 and other.json() == {"names": []}


def _assign(admin: Tenant, policy: str, allow: list[str], identity: str) -> None:
    """A run-time policy and its identity (the legacy API's write routes), in the
    admin's enclave."""
    admin.ok("POST", f"/v1/policy/write/{policy}", {"allow": allow})
    admin.ok("POST", f"/v1/identity/assign/{policy}/{identity}")


ALL_PATHS = [
    ("PUT", "/v1/key/create/k"),
    ("PUT", "/v1/key/generate/k"),
    ("PUT", "/v1/key/decrypt/k"),
    ("GET", "/v1/key/list/*"),
    ("GET", "/v1/key/describe/k"),
    ("PUT", "/v1/key/rotate/k"),
    ("GET", "/v1/policy/list/*"),
    ("GET", "/v1/identity/list/*"),
    ("GET", "/v1/status"),
    ("PUT", "/v1/enclave/create/x"),
    ("GET", "/v1/enclave/list/*"),
    ("DELETE", "/v1/enclave/delete/tenant-b"),
]


@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
def test_an_identity_acts_only_in_its_enclave(
    stateful: StatefulServers, pki: PKI, http2: bool
) -> None:
    """An identity of A is refused everything of B and of default, whatever path it
    sends; an unknown enclave is a 403 for it (names do not leak), a 404 for the admin.
    Its policy and assignment are kept in A: they survive a restart."""
    member = pki.client("tenant-a-app")
    server = stateful.start()
    with server.client(stateful.admin, http2=http2) as client:
        Tenant(client, None).ok("PUT", "/v1/enclave/create/tenant-a")
        Tenant(client, None).ok("PUT", "/v1/enclave/create/tenant-b")
        admin_a = Tenant(client, "tenant-a")
        _assign(admin_a, "app", ["/v1/key/*", "/v1/policy/*", "/v1/status"], member.identity)
        Tenant(client, "tenant-b").ok("PUT", "/v1/key/create/k")
        assert Tenant(client, "tenant-b").ok("GET", "/v1/policy/list/*")["names"] == []

    def check(server: RunningServer) -> None:
        with server.client(member, http2=http2) as client:
            a = Tenant(client, "tenant-a")
            a.ok("PUT", "/v1/key/create/k")
            dek = a.ok("PUT", "/v1/key/generate/k", {})
            a.ok("PUT", "/v1/key/decrypt/k", {"ciphertext": dek["ciphertext"]})
            assert a.ok("GET", "/v1/policy/list/*")["names"] == ["app"]
            a.ok("GET", "/v1/status")
            me = client.get("/v1/identity/self/describe", headers={"Kes-Enclave": "tenant-a"})
            assert me.json()["policy"] == "app"
            a.call("DELETE", "/v1/key/delete/k")
            for enclave in ("tenant-b", None, "missing"):
                other = Tenant(client, enclave)
                for method, path in ALL_PATHS:
                    answer = other.call(method, path)
                    assert (answer.status_code, answer.json()) == (403, NOT_ALLOWED), (
                        enclave,
                        path,
                    )
            for method, path in ALL_PATHS[-3:]:  # enclave administration: the admin's
                answer = a.call(method, path)
                assert (answer.status_code, answer.json()) == (403, NOT_ALLOWED), path
        with server.client(stateful.admin, http2=http2) as client:
            assert Tenant(client, "tenant-b").ok("GET", "/v1/key/list/*")["names"] == ["k"]

    check(server)
    check(stateful.restart(server))


def test_run_time_policies_persist_in_their_enclave(stateful: StatefulServers, pki: PKI) -> None:
    """The legacy API's write routes keep policies and identities in the request's
    enclave; the config file's policies apply to ``default`` only and stay read-only."""
    app, other = pki.client("rt-app"), pki.client("rt-other")
    config_policy = (
        f"policy:\n  from-config:\n    allow: ['/v1/key/*']\n    identities: [{other.identity}]\n"
    )
    server = stateful.start(config_policy)
    with server.client(stateful.admin) as client:
        default = Tenant(client, None)
        default.ok("PUT", "/v1/enclave/create/tenant")
        tenant = Tenant(client, "tenant")
        assert default.ok("GET", "/v1/policy/list/*")["names"] == ["from-config"]
        assert tenant.ok("GET", "/v1/policy/list/*")["names"] == []
        answer = default.call("POST", "/v1/policy/write/from-config", {"allow": []})
        assert answer.json() == {"message": "policy already exists"}
        _assign(tenant, "reader", ["/v1/key/list/*"], app.identity)
        default.ok("POST", f"/v1/identity/assign/from-config/{app.identity}")
        policy = tenant.ok("GET", "/v1/policy/read/reader")
        assert policy["allow"] == {"/v1/key/list/*": {}}
        assert tenant.ok("GET", f"/v1/identity/describe/{app.identity}")["policy"] == "reader"
    server = stateful.restart(server, config_policy)
    with server.client(app) as client:
        assert Tenant(client, "tenant").call("GET", "/v1/key/list/*").status_code == 200
        assert Tenant(client, "tenant").call("PUT", "/v1/key/create/x").status_code == 403
        assert Tenant(client, None).call("PUT", "/v1/key/create/x").status_code == 200
    with server.client(other) as client:  # the config file's identity: default only
        assert Tenant(client, None).call("PUT", "/v1/key/create/y").status_code == 200
        assert Tenant(client, "tenant").call("GET", "/v1/key/list/*").status_code == 403
    with server.client(stateful.admin) as client:
        tenant = Tenant(client, "tenant")
        tenant.ok("DELETE", f"/v1/identity/forget/{app.identity}")
        tenant.ok("DELETE", "/v1/policy/delete/reader")
        assert tenant.call("GET", "/v1/policy/read/reader").status_code == 404
    with server.client(app) as client:
        assert Tenant(client, "tenant").call("GET", "/v1/key/list/*").status_code == 403


# ------------------------------------------------------------------ stateless mode
def test_a_stateless_server_warns_once_per_enclave_and_serves_as_before(
    server_factory: Callable[..., RunningServer], pki: PKI
) -> None:
    server = server_factory()
    admin = pki.client("admin")
    with server.client(admin) as client:
        assert client.post("/v1/key/create/k").status_code == 200
        for _ in range(3):
            for enclave in ("tenant-a", "tenant-b"):
                answer = client.post("/v1/key/generate/k", params={"enclave": enclave}, json={})
                assert answer.status_code == 200 and "version" not in answer.json()
        assert client.post("/v1/key/rotate/k").status_code == 404  # stateful mode's only
        assert client.get("/v1/enclave/list/*").status_code == 404
        listing = client.get("/v1/key/list/*", headers={"Kes-Enclave": "tenant-c"})
        assert listing.json() == {"names": ["k"]}  # one key space
    assert server.stop() == 0
    stderr = server.output()[1]
    for enclave in ("tenant-a", "tenant-b"):
        assert stderr.count(f"enclave '{enclave}' ignored") == 1, stderr


# ------------------------------------------------------------------ workers
@pytest.mark.timeout(180)
def test_a_write_on_one_worker_is_seen_by_the_other(stateful: StatefulServers, pki: PKI) -> None:
    """Every worker has its ring cache and enclave contexts (hour-long expiry here):
    each write is answered only once no worker can serve what it replaced."""
    from test_worker_consistency import HOURS, spread_connections

    member = pki.client("workers-app")
    server = stateful.start(HOURS, workers=2)
    conns = spread_connections(server, server.ssl_context(stateful.admin))
    apps = spread_connections(server, server.ssl_context(member))
    assert len({c.worker for c in conns}) == 2
    writer, q = conns[0], "?enclave=tenant"

    def everywhere(method: str, path: str, body: object = None) -> set[tuple[int, str]]:
        """The (status, version or message) every admin connection answers."""
        seen = set()
        for conn in conns:
            status, answer = conn.call(method, path, body)
            seen.add((status, answer.get("version") or answer.get("message", "")))
        return seen

    assert writer.call("PUT", "/v1/enclave/create/tenant")[0] == 200
    assert writer.call("PUT", f"/v1/key/create/k{q}")[0] == 200
    assert everywhere("PUT", f"/v1/key/generate/k{q}", {}) == {(200, "1")}
    for n in range(2, 5):  # each rotation from another worker's connection
        status, answer = conns[n % len(conns)].call("PUT", f"/v1/key/rotate/k{q}")
        assert (status, answer["version"]) == (200, str(n))
        assert everywhere("PUT", f"/v1/key/generate/k{q}", {}) == {(200, str(n))}
    status, dek = writer.call("PUT", f"/v1/key/generate/k{q}", {})

    for app in apps:  # the identity is nobody's yet: every worker's context says so
        assert app.call("GET", f"/v1/key/list/*{q}")[0] == 403
    policy = {"allow": ["/v1/key/list/*", "/v1/key/decrypt/*"]}
    assert writer.call("POST", f"/v1/policy/write/app{q}", policy)[0] == 200
    assert writer.call("POST", f"/v1/identity/assign/app/{member.identity}{q}")[0] == 200
    for app in apps:
        assert app.call("GET", f"/v1/key/list/*{q}") == (200, {"names": ["k"]})
    assert conns[-1].call("DELETE", f"/v1/identity/forget/{member.identity}{q}")[0] == 200
    for app in apps:
        assert app.call("GET", f"/v1/key/list/*{q}")[0] == 403

    assert writer.call("DELETE", "/v1/enclave/delete/tenant?force")[0] == 200
    assert everywhere("PUT", f"/v1/key/generate/k{q}", {}) == {(404, "enclave does not exist")}
    assert conns[-1].call("PUT", "/v1/enclave/create/tenant")[0] == 200
    assert conns[-1].call("PUT", f"/v1/key/create/k{q}")[0] == 200
    assert everywhere("PUT", f"/v1/key/generate/k{q}", {}) == {(200, "1")}  # a new key
    body = {"ciphertext": dek["ciphertext"]}
    assert everywhere("PUT", f"/v1/key/decrypt/k{q}", body) == {
        (400, "decryption failed: ciphertext is not authentic")
    }


# ------------------------------------------------------------------ key versions
def _decrypt(kes: Tenant, name: str, dek: dict, version: str | None = None) -> httpx.Response:
    body = {"ciphertext": dek["ciphertext"], "context": CONTEXT}
    if version is not None:
        body["version"] = version
    return kes.call("PUT", f"/v1/key/decrypt/{name}", body)


def _opens(kes: Tenant, name: str, dek: dict, version: str | None = None) -> bool:
    answer = _decrypt(kes, name, dek, version)
    assert answer.status_code in (200, 400), answer.text
    return answer.status_code == 200 and answer.json()["plaintext"] == dek["plaintext"]


@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
def test_rotation_keeps_every_old_ciphertext_across_a_restart(
    stateful: StatefulServers, http2: bool
) -> None:
    server = stateful.start()
    deks: dict[str, dict] = {}
    with server.client(stateful.admin, http2=http2) as client:
        kes = Tenant(client, None)
        kes.ok("PUT", "/v1/key/create/k")
        for n in range(1, 5):
            if n > 1:
                assert kes.ok("PUT", "/v1/key/rotate/k") == {"version": str(n)}
            dek = kes.ok("PUT", "/v1/key/generate/k", {"context": CONTEXT, "version": "1"})
            assert dek["version"] == str(n)  # the latest, whatever the request says
            deks[dek["version"]] = dek
        assert kes.ok("PUT", "/v1/key/encrypt/k", {"plaintext": "aGk="})["version"] == "4"
        assert kes.ok("PUT", "/v1/key/hmac/k", {"message": "aGk="})["version"] == "4"
        info = kes.ok("GET", "/v1/key/describe/k")
        assert (info["version"], info["min_version"], info["versions"]) == (
            "4",
            "1",
            ["1", "2", "3", "4"],
        )

    server = stateful.restart(server)
    with server.client(stateful.admin, http2=http2) as client:
        kes = Tenant(client, None)
        for number, dek in deks.items():
            assert _opens(kes, "k", dek)  # found by trying, newest first
            assert _opens(kes, "k", dek, number)  # named
            other = str(int(number) % 4 + 1)
            assert not _opens(kes, "k", dek, other)  # another version: not authentic
        items = [{"ciphertext": d["ciphertext"], "context": CONTEXT} for d in deks.values()]
        bulk = kes.ok("POST", "/v1/key/bulk/decrypt/k", items)  # the legacy API too
        assert [b["plaintext"] for b in bulk] == [d["plaintext"] for d in deks.values()]


def test_deleted_and_too_old_versions_and_bad_versions(stateful: StatefulServers, pki: PKI) -> None:
    server = stateful.start()
    with server.client(stateful.admin) as client:
        kes = Tenant(client, None)
        kes.ok("PUT", "/v1/key/create/k")
        v1 = kes.ok("PUT", "/v1/key/generate/k", {"context": CONTEXT})
        kes.ok("PUT", "/v1/key/rotate/k")
        v2 = kes.ok("PUT", "/v1/key/generate/k", {"context": CONTEXT})
        kes.ok("PUT", "/v1/key/rotate/k")

        def error(method: str, path: str, body: object = None) -> tuple[int, str]:
            answer = kes.call(method, path, body)
            return answer.status_code, answer.json()["message"]

        kes.ok("PUT", "/v1/key/version/minimum/k/2")
        assert kes.ok("GET", "/v1/key/describe/k")["min_version"] == "2"
        body = {"ciphertext": v1["ciphertext"], "context": CONTEXT, "version": "1"}
        too_old = (400, "key version is below the minimum decryption version")
        assert error("PUT", "/v1/key/decrypt/k", body) == too_old
        assert not _opens(kes, "k", v1)  # not tried any more
        assert _opens(kes, "k", v2)
        kes.ok("PUT", "/v1/key/version/minimum/k/1")  # lowered again: it decrypts
        assert _opens(kes, "k", v1) and _opens(kes, "k", v1, "1")

        kes.ok("DELETE", "/v1/key/version/delete/k/1")
        assert kes.ok("GET", "/v1/key/describe/k")["versions"] == ["2", "3"]
        assert error("PUT", "/v1/key/decrypt/k", body) == (404, "key version does not exist")
        assert not _opens(kes, "k", v1) and _opens(kes, "k", v2)

        assert error("DELETE", "/v1/key/version/delete/k/1")[0] == 404  # gone already
        minimum = (400, "minimum version must be between 1 and the latest version")
        assert error("PUT", "/v1/key/version/minimum/k/4") == minimum
        assert error("PUT", "/v1/key/version/minimum/k/0") == minimum
        assert error("PUT", "/v1/key/rotate/missing") == (404, "key does not exist")
        assert error("PUT", "/v1/key/version/minimum/missing/1") == (404, "key does not exist")
        not_a_number = (400, "key version is not a number")
        for bad in ("x", "-1", "1.5", "+2", "٣", "1" * 20):
            assert error("PUT", f"/v1/key/version/minimum/k/{bad}") == not_a_number, bad
            assert error("DELETE", f"/v1/key/version/delete/k/{bad}") == not_a_number, bad
            body = {"ciphertext": v2["ciphertext"], "context": CONTEXT, "version": bad}
            assert error("PUT", "/v1/key/decrypt/k", body) == not_a_number, bad
            assert error("PUT", "/v1/key/decrypt/missing", body) == not_a_number, bad
        assert error("DELETE", "/v1/key/version/delete/k")[1] == not_a_number[1]
        body = {"ciphertext": v2["ciphertext"], "version": 2}  # a string field
        assert error("PUT", "/v1/key/decrypt/k", body) == (400, "invalid request body")
        assert _opens(kes, "k", v2, "0002")  # decimal, leading zeros and all

        kes.ok("PUT", "/v1/key/create/d")  # the latest of d's three versions goes
        kes.ok("PUT", "/v1/key/rotate/d")
        d2 = kes.ok("PUT", "/v1/key/generate/d", {"context": CONTEXT})
        kes.ok("PUT", "/v1/key/rotate/d")
        kes.ok("DELETE", "/v1/key/version/delete/d/3")
        info = kes.ok("GET", "/v1/key/describe/d")
        assert (info["version"], info["versions"]) == ("2", ["1", "2"])
        assert kes.ok("PUT", "/v1/key/generate/d", {"context": CONTEXT})["version"] == "2"
        assert kes.ok("PUT", "/v1/key/rotate/d") == {"version": "4"}  # 3 is never given again
        assert _opens(kes, "d", d2, "2")
        kes.ok("PUT", "/v1/key/create/solo")
        assert error("DELETE", "/v1/key/version/delete/solo/1") == (
            400, "the only key version cannot be deleted: delete the key")  # fmt: skip

    user = pki.client("versions-user")  # rotation and versions are policy-controlled
    with server.client(stateful.admin) as client:
        _assign(Tenant(client, None), "use", ["/v1/key/generate/*"], user.identity)
    with server.client(user) as client:
        kes = Tenant(client, None)
        assert kes.ok("PUT", "/v1/key/generate/k", {})["version"] == "3"
        for method, path in [
            ("PUT", "/v1/key/rotate/k"),
            ("DELETE", "/v1/key/version/delete/k/2"),
            ("PUT", "/v1/key/version/minimum/k/3"),
        ]:
            assert kes.call(method, path).status_code == 403, path


# ------------------------------------------------------------------ the audit log
def _audit_requests(server: RunningServer, paths: set[str], count: int) -> list[dict]:
    """The ``request`` objects of the audit lines (stdout) for ``paths``, in order."""
    deadline = time.monotonic() + 10
    while True:
        lines = server.stdout.read_text().splitlines()
        found = [json.loads(line)["request"] for line in lines if line.startswith('{"time"')]
        found = [r for r in found if r["path"] in paths]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_each_audit_line_names_the_enclave_of_its_request(
    stateful: StatefulServers, pki: PKI
) -> None:
    """2023 KES's audit lines named the enclave (docs/compat/observability.md §2.4): an
    operator tells tenants apart in one log. The enclave is written after ``ip``, as
    there; enclave administration names its enclave in the path only."""
    server = stateful.start("log:\n  audit: on\n")
    with server.client(stateful.admin) as c:
        Tenant(c, None).ok("PUT", "/v1/enclave/create/audit-a")
        Tenant(c, "audit-a", "header").ok("POST", "/v1/key/create/audited")
        Tenant(c, "audit-a", "query").call("POST", "/v1/key/create/audited")  # 400: exists
        Tenant(c, None).call("POST", "/v1/key/generate/audited")  # 404 in default
        Tenant(c, "no-such").call("POST", "/v1/key/generate/audited")  # 404 enclave
        r = Tenant(c, 'x","enclave":"forged').call("POST", "/v1/key/generate/audited")
        assert r.status_code == 400  # an invalid name: never written to the log
    paths = {"/v1/enclave/create/audit-a", "/v1/key/create/audited", "/v1/key/generate/audited"}
    requests = _audit_requests(server, paths, 6)
    assert [(r.get("enclave"), r["path"]) for r in requests] == [
        (None, "/v1/enclave/create/audit-a"),
        ("audit-a", "/v1/key/create/audited"),
        ("audit-a", "/v1/key/create/audited"),
        ("default", "/v1/key/generate/audited"),
        ("no-such", "/v1/key/generate/audited"),
        (None, "/v1/key/generate/audited"),
    ]
    assert list(requests[1]) == ["ip", "enclave", "path", "identity"]
