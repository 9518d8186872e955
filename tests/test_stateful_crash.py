"""A stateful pykes killed with SIGKILL (master and workers at once) while 32 clients
import 1,000 keys into two enclaves over mTLS: after a restart on the same store every
import that was answered 200 is there with the bytes it imported, and every record the
store holds opens (issue 23). Expected key material comes from the test, never from the
server: each data key generated after the restart is opened locally with the bytes the
test imported."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from conftest import PKI, RunningServer
from pykes.crypto import KeyType, import_key_version
from test_stateful import StatefulServers, Tenant, stateful  # noqa: F401 - the fixture
from test_worker_consistency import _children

WRITES = 1000
CLIENTS = 32
ENCLAVES = (None, "crash")  # default, and a named enclave


def _material(i: int) -> bytes:
    return hashlib.sha256(f"crash test key {i}".encode()).digest()


def _enclave(i: int) -> str | None:
    return ENCLAVES[i % len(ENCLAVES)]


def _kill_everything(server: RunningServer) -> None:
    """SIGKILL the master and every worker at once: no process may finish its work."""
    victims = [p for p in _children(server.proc.pid) if p != server.proc.pid]
    for pid in [server.proc.pid, *victims]:
        os.kill(pid, signal.SIGKILL)
    server.proc.wait()
    for pid in victims:  # reparented: wait until they are gone
        while os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid):
            time.sleep(0.01)


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()[0]
    except OSError:
        return "Z"


def test_sigkill_during_1000_concurrent_imports_loses_no_acknowledged_key(
    stateful: StatefulServers,  # noqa: F811 - the fixture
    pki: PKI,
) -> None:
    server = stateful.start(workers=2)
    with server.client(stateful.admin) as admin:
        Tenant(admin, None).ok("PUT", "/v1/enclave/create/crash")

    acknowledged: set[int] = set()
    lock = threading.Lock()
    local = threading.local()

    def import_one(i: int) -> None:
        if not hasattr(local, "client"):
            local.client = server.client(stateful.admin)
        body = {"key": base64.b64encode(_material(i)).decode(), "cipher": "AES256"}
        try:
            r = Tenant(local.client, _enclave(i)).call("PUT", f"/v1/key/import/k{i}", body)
        except httpx.HTTPError:
            return  # the server died under it: not acknowledged
        if r.status_code == 200:
            with lock:
                acknowledged.add(i)

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(import_one, i) for i in range(WRITES)]
        deadline = time.monotonic() + 60
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            time.sleep(0.005)
        _kill_everything(server)
        for f in futures:
            f.result()
    assert 300 <= len(acknowledged) < WRITES, len(acknowledged)  # the kill landed mid-way

    db = stateful.root / "pykes.db"
    with sqlite3.connect(db) as conn:  # the files SQLite left: whole, WAL included
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    server = stateful.start(workers=2)
    context = base64.b64encode(b"after the crash").decode()
    with server.client(stateful.admin) as admin:
        for enclave in ENCLAVES:
            listed = Tenant(admin, enclave).ok("GET", "/v1/key/list/*")
            names = set(listed["names"])  # one page: every stored ring, each must open
            for name in names:
                Tenant(admin, enclave).ok("GET", f"/v1/key/describe/{name}")
            wanted = {f"k{i}" for i in acknowledged if _enclave(i) == enclave}
            assert wanted <= names, sorted(wanted - names)[:5]
        for i in sorted(acknowledged):
            dek = Tenant(admin, _enclave(i)).ok(
                "POST", f"/v1/key/generate/k{i}", {"context": context}
            )
            key = import_key_version(_material(i), KeyType.AES256)
            opened = key.decrypt(base64.b64decode(dek["ciphertext"]), base64.b64decode(context))
            assert bytes(opened) == base64.b64decode(dek["plaintext"]), i
