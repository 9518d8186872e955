"""Read-your-writes across the ``--workers N`` processes of one server (issue 19).

Everything is real: ``kes server`` with forked workers on a filesystem keystore, mTLS
connections spread over the workers by SO_REUSEPORT. Which worker holds a connection
is read from ``/proc`` (the server-side socket's inode among each worker's
descriptors), so a test cannot pass by talking to one worker only.

Once a create, import or delete was answered 200, no connection may see the old key:
a describe answering an old ``created_at``, a 200 for a deleted key, or a data key
whose ciphertext does not open under the key bytes imported last are *stale*.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import signal
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import PKI, RunningServer, start_server, until
from pykes.crypto import KeyType, import_key_version
from pykes.errors import DecryptError
from vault_harness import find_binary, kes_config, keystore_yaml, start_dev_server

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")

HOURS = "cache:\n  expiry:\n    any: 5h\n    unused: 5h\n"
MIN_CONNECTIONS = 8
CONTEXT = base64.b64encode(b'{"bucket":"issue-19"}').decode()


# ------------------------------------------------------------------ which worker serves
def _children(pid: int) -> list[int]:
    """The worker processes of the master ``pid`` (or the master itself, if it has
    none: one worker serves in-process)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry))
    return found or [pid]


def _socket_inode(server_port: int, client_port: int) -> str:
    """The inode of the server side of the TCP connection 127.0.0.1:client_port."""
    local = f"0100007F:{server_port:04X}"
    remote = f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[1] == local and cols[2] == remote:
            return cols[9]
    raise AssertionError(f"no server socket for client port {client_port}")


def _owner(inode: str, pids: list[int]) -> int:
    target = f"socket:[{inode}]"
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(fd_dir / fd) == target:
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker holds {target}")


# ------------------------------------------------------------------ keep-alive client
@dataclass
class Conn:
    """One keep-alive mTLS connection and the worker process that serves it."""

    http: http.client.HTTPSConnection
    worker: int = 0

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        payload = json.dumps(body).encode() if body is not None else b""
        self.http.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = self.http.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data.strip() else {}


def _connect(server: RunningServer, ctx: ssl.SSLContext) -> Conn:
    conn = Conn(http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=20))
    assert conn.call("GET", "/version")[0] == 200  # accepted by some worker
    return conn


def spread_connections(server: RunningServer, ctx: ssl.SSLContext) -> list[Conn]:
    """At least MIN_CONNECTIONS connections, at least MIN_CONNECTIONS / workers (≥ 2) on
    every worker: new connections are opened until each worker has its share."""
    workers = _children(server.proc.pid)
    share = max(2, -(-MIN_CONNECTIONS // len(workers)))
    per_worker: dict[int, list[Conn]] = {pid: [] for pid in workers}
    for _ in range(100 * share * len(workers)):
        if all(len(conns) >= share for conns in per_worker.values()):
            break
        conn = _connect(server, ctx)
        client_port = conn.http.sock.getsockname()[1]
        conn.worker = _owner(_socket_inode(server.port, client_port), workers)
        if len(per_worker[conn.worker]) < share:
            per_worker[conn.worker].append(conn)
        else:
            conn.http.close()
    assert all(len(conns) >= share for conns in per_worker.values()), "a worker got no share"
    return [conn for conns in per_worker.values() for conn in conns]


@pytest.fixture
def admin_ctx(pki: PKI) -> Callable[[RunningServer], ssl.SSLContext]:
    return lambda server: server.ssl_context(pki.client("admin"))


def _workers_of(conns: list[Conn]) -> int:
    return len({c.worker for c in conns})


# ------------------------------------------------------------------ the checks
@dataclass
class Staleness:
    """Answers that showed a key's state from before an acknowledged write."""

    answers: int = 0  # any stale answer (describe, generate, decrypt)
    data_keys: int = 0  # data keys made under a deleted key (or old key bytes)
    requests: int = 0
    current: dict[str, str] = field(default_factory=dict)  # per name: its created_at
    retired: dict[str, set[str]] = field(default_factory=dict)  # per name: deleted ones
    imported: dict[str, bytes] = field(default_factory=dict)  # per name: the bytes imported last

    def check_current(self, conns: list[Conn], name: str, key: bytes | None) -> None:
        """Every connection describes the same, newest incarnation of ``name``, and its
        data keys open under ``key`` (the bytes imported last; None: a created key)."""
        seen: set[str] = set()
        for conn in conns:
            status, info = conn.call("GET", f"/v1/key/describe/{name}")
            assert status == 200 or status == 404, (status, info)
            if status != 200 or info["created_at"] in self.retired.get(name, ()):
                self.answers += 1
            else:
                seen.add(info["created_at"])
            for _ in range(2):  # warm every worker's cache, then hit it
                status, dek = conn.call("POST", f"/v1/key/generate/{name}", {"context": CONTEXT})
                self.requests += 1
                if status != 200:
                    self.answers += 1
                elif key is not None and not _opens_under(key, dek):
                    self.answers += 1
                    self.data_keys += 1
            self.requests += 1
        if len(seen) > 1:  # two incarnations answered after the same write
            self.answers += 1
        self.current[name] = seen.pop() if seen else ""

    def retire(self, name: str) -> None:
        """``name`` is about to be deleted: its current incarnation becomes stale."""
        self.retired.setdefault(name, set()).add(self.current.pop(name, ""))

    def check_deleted(self, conns: list[Conn], name: str) -> None:
        for conn in conns:
            status, _ = conn.call("GET", f"/v1/key/describe/{name}")
            self.answers += status != 404
            status, _ = conn.call("POST", f"/v1/key/generate/{name}", {"context": CONTEXT})
            if status == 200:
                self.answers += 1
                self.data_keys += 1
            else:
                assert status == 404
            self.requests += 2


def _opens_under(key: bytes, dek: dict[str, str]) -> bool:
    version = import_key_version(key, KeyType.AES256)
    ciphertext = base64.b64decode(dek["ciphertext"])
    try:
        plaintext = version.decrypt(ciphertext, base64.b64decode(CONTEXT))
    except DecryptError:
        return False
    return bytes(plaintext) == base64.b64decode(dek["plaintext"])


def churn(
    writer: Conn,
    conns: list[Conn],
    names: list[str],
    rounds: int,
    seen: Staleness | None = None,
    create: bool = True,
) -> Staleness:
    """Create the keys (unless ``create`` is false: they exist, in ``seen``), use them
    everywhere, then ``rounds`` times: delete, check that every connection sees them
    gone, re-import new bytes, check every connection uses the new bytes. The writer's
    worker changes with every write."""
    seen = seen if seen is not None else Staleness()
    for name in names if create else ():
        assert writer.call("POST", f"/v1/key/create/{name}")[0] == 200
        seen.check_current(conns, name, None)
    for r in range(rounds):
        for i, name in enumerate(names):
            author = conns[(r * len(names) + i) % len(conns)]  # a different worker each time
            seen.retire(name)
            assert author.call("DELETE", f"/v1/key/delete/{name}")[0] == 200
            seen.check_deleted(conns, name)
            key = seen.imported[name] = os.urandom(32)
            body = {"key": base64.b64encode(key).decode(), "cipher": "AES256"}
            assert author.call("POST", f"/v1/key/import/{name}", body)[0] == 200
            seen.check_current(conns, name, key)
    return seen


def _report(label: str, seen: Staleness, conns: list[Conn]) -> None:
    workers = sorted({c.worker for c in conns})
    print(
        f"\n{label}: {len(conns)} connections on {len(workers)} workers, "
        f"{seen.requests} requests: {seen.answers} stale answers, "
        f"{seen.data_keys} data keys under a deleted key"
    )


# ------------------------------------------------------------------ tests
@pytest.mark.timeout(240)
@pytest.mark.parametrize("expiry", ["default", "hours"])
@pytest.mark.parametrize("workers", [None, 4], ids=["default-workers", "4-workers"])
def test_deleted_key_is_gone_on_every_worker(
    server_factory, admin_ctx, workers: int | None, expiry: str
) -> None:
    """The issue's loop: create, use from ≥ 8 connections on every worker, delete and
    re-import (new bytes) in a loop: 0 stale answers, 0 data keys under a deleted key."""
    server = server_factory(HOURS if expiry == "hours" else "", workers=workers)
    conns = spread_connections(server, admin_ctx(server))
    assert len({c.worker for c in conns}) == len(_children(server.proc.pid)) >= 2
    seen = churn(conns[0], conns, [f"k{i}" for i in range(3)], rounds=4)
    _report(f"workers={workers or 'default'} expiry={expiry}", seen, conns)
    assert (seen.answers, seen.data_keys) == (0, 0)


@contextlib.contextmanager
def vault_backed_server(tmp_path: Path, pki: PKI, workers: int) -> Iterator[RunningServer]:
    """``kes server`` on a fresh OpenBao dev server (K/V v2), hour-long cache expiry."""
    bao = start_dev_server(tmp_path / "bao")
    config = (
        f"version: v1\nadmin:\n  identity: {pki.client('admin').identity}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
        f"{HOURS}log:\n  audit: off\n{keystore_yaml(kes_config(bao, 2))}"
    )
    server = start_server(tmp_path, pki, config, workers=workers)
    try:
        yield server
    finally:
        server.stop()
        bao.stop()


needs_bao = pytest.mark.skipif(find_binary() is None, reason="no bao binary")


@pytest.mark.timeout(240)
@needs_bao
def test_deleted_key_is_gone_on_every_worker_with_vault(
    tmp_path: Path, pki: PKI, admin_ctx
) -> None:
    """The same loop on OpenBao, where every cache miss takes a Vault round trip."""
    with vault_backed_server(tmp_path, pki, workers=4) as server:
        conns = spread_connections(server, admin_ctx(server))
        assert _workers_of(conns) == 4
        seen = churn(conns[0], conns, [f"v{i}" for i in range(3)], rounds=3)
    _report("vault, workers=4 expiry=hours", seen, conns)
    assert (seen.answers, seen.data_keys) == (0, 0)


@dataclass
class Answer:
    started: float
    ended: float
    status: int
    dek: dict


def _use_until(stop: threading.Event, conn: Conn, name: str, answers: list[Answer]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        status, dek = conn.call("POST", f"/v1/key/generate/{name}", {"context": CONTEXT})
        answers.append(Answer(started, time.monotonic(), status, dek))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", ["fs", pytest.param("vault", marks=needs_bao)])
def test_no_stale_answer_while_the_key_is_in_use(
    tmp_path: Path, pki: PKI, server_factory, admin_ctx, backend: str
) -> None:
    """Threads generate under one key without pause on connections spread over 4
    workers while it is deleted and re-imported: every answer to a request made
    between a write's 200 and the start of the next write shows that write's state
    (answers overlapping a write may show either state and are not judged)."""
    with contextlib.ExitStack() as stack:
        if backend == "fs":
            server = server_factory(HOURS + "log:\n  audit: off\n", workers=4)
        else:
            server = stack.enter_context(vault_backed_server(tmp_path, pki, workers=4))
        conns = spread_connections(server, admin_ctx(server))
        writer = _connect(server, admin_ctx(server))
        states: list[tuple[float, float, bytes | None]] = []  # (write sent, its 200, key)

        def write(method: str, path: str, key: bytes | None) -> None:
            sent = time.monotonic()
            body = {"key": base64.b64encode(key).decode(), "cipher": "AES256"} if key else None
            assert writer.call(method, path, body)[0] == 200
            states.append((sent, time.monotonic(), key))

        write("POST", "/v1/key/import/busy", os.urandom(32))
        stop = threading.Event()
        answers: list[list[Answer]] = [[] for _ in conns]
        threads = [
            threading.Thread(target=_use_until, args=(stop, conn, "busy", out))
            for conn, out in zip(conns, answers, strict=True)
        ]
        for thread in threads:
            thread.start()
        try:
            for _ in range(8):
                time.sleep(0.15)
                write("DELETE", "/v1/key/delete/busy", None)
                time.sleep(0.15)
                write("POST", "/v1/key/import/busy", os.urandom(32))
            time.sleep(0.15)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    judged = stale = 0
    ends = [sent for sent, _, _ in states[1:]] + [float("inf")]
    for answer in (a for per_conn in answers for a in per_conn):
        for (_, acked, key), next_sent in zip(states, ends, strict=True):
            if acked <= answer.started and answer.ended <= next_sent:
                judged += 1
                if key is None:
                    stale += answer.status != 404
                else:
                    stale += answer.status != 200 or not _opens_under(key, answer.dek)
                break
    print(
        f"\n{backend}, 4 workers under load: {sum(map(len, answers))} answers, "
        f"{judged} made between writes: {stale} stale"
    )
    assert judged >= 200 and stale == 0


def _replace_worker(server: RunningServer, victim: int) -> None:
    os.kill(victim, signal.SIGKILL)
    until(lambda: victim not in _children(server.proc.pid), timeout=10)
    until(lambda: len(_children(server.proc.pid)) == 2, timeout=10)


@pytest.mark.timeout(240)
def test_reload_and_a_replaced_worker_bring_back_no_deleted_key(server_factory, admin_ctx) -> None:
    """After SIGHUP (a new cache in every worker) and after a worker was killed and
    replaced, the workers still see each other's writes at once; and a worker killed
    after its backend write but before it published the write (simulated: the key's
    file is removed behind the server's back) leaves no copy on the others."""
    server = server_factory(HOURS, workers=2)
    ctx = admin_ctx(server)
    names = ["r0", "r1"]
    conns = spread_connections(server, ctx)
    first = churn(conns[0], conns, names, rounds=1)

    server.proc.send_signal(signal.SIGHUP)
    until(lambda: server.output()[1].count("after SIGHUP signal completed") == 2, timeout=10)
    after_reload = churn(conns[0], conns, [f"{n}-hup" for n in names], rounds=2)

    victim = conns[0].worker
    orphan = "r-orphan"
    assert conns[0].call("POST", f"/v1/key/create/{orphan}")[0] == 200
    after_reload.check_current(conns, orphan, None)  # cached by every worker
    (server.config.parent / "keys" / orphan).unlink()  # the victim's unpublished delete
    for conn in conns:
        conn.http.close()
    _replace_worker(server, victim)
    conns = spread_connections(server, ctx)
    assert victim not in {c.worker for c in conns}
    for name in names:  # the new worker serves what the others do
        first.check_current(conns, name, first.imported[name])
    first.check_deleted(conns, orphan)
    after_kill = churn(conns[0], conns, names, rounds=2, seen=first, create=False)
    for label, seen in (("reload", after_reload), ("reload+kill", after_kill)):
        _report(label, seen, conns)
    stale = [(s.answers, s.data_keys) for s in (after_reload, after_kill)]
    assert stale == [(0, 0)] * 2


def _audit_events(server: RunningServer) -> Iterator[dict]:
    for line in server.stdout.read_text().splitlines():
        if line.startswith("{"):
            yield json.loads(line)


@pytest.mark.timeout(120)
def test_delete_and_the_first_404_after_it_are_audited(server_factory, admin_ctx) -> None:
    """The audit log (stdout, one JSON event per request) holds the delete and the first
    404 for the key that follows it, on whichever worker it was answered."""
    server = server_factory(workers=2)
    conns = spread_connections(server, admin_ctx(server))
    writer, other = conns[0], next(c for c in conns if c.worker != conns[0].worker)
    assert writer.call("POST", "/v1/key/create/audited")[0] == 200
    for conn in conns:
        assert conn.call("POST", "/v1/key/generate/audited", {})[0] == 200
    assert writer.call("DELETE", "/v1/key/delete/audited")[0] == 200
    assert other.call("POST", "/v1/key/generate/audited", {})[0] == 404

    def events() -> list[dict]:
        return [e for e in _audit_events(server) if e["request"]["path"].endswith("/audited")]

    def both_logged() -> bool:
        codes = [(e["request"]["path"], e["response"]["code"]) for e in events()]
        return ("/v1/key/delete/audited", 200) in codes and (
            "/v1/key/generate/audited",
            404,
        ) in codes

    until(both_logged, timeout=10)
    logged = events()
    delete = next(e for e in logged if e["request"]["path"] == "/v1/key/delete/audited")
    after = [e for e in logged if e["response"]["code"] == 404]
    assert len(after) == 1  # exactly the one 404 answered, with the admin's identity
    assert re.fullmatch(r"[0-9a-f]{64}", after[0]["request"]["identity"])
    assert delete["time"] <= after[0]["time"]  # same zone: RFC 3339 text sorts by time


@pytest.mark.timeout(240)
@pytest.mark.parametrize("workers", [None, 4], ids=["default-workers", "4-workers"])
def test_run_time_policies_and_identities_are_current_on_every_worker(
    server_factory, pki: PKI, admin_ctx, workers: int | None
) -> None:
    """The legacy API's run-time policies and assignments (auth/ephemeral.py): after
    each acknowledged write, kept-alive connections on every worker answer by it."""
    server = server_factory(workers=workers)
    app = pki.client("run-time-app")
    admins = spread_connections(server, admin_ctx(server))
    apps = spread_connections(server, server.ssl_context(app))
    assert _workers_of(admins) == _workers_of(apps) == len(_children(server.proc.pid)) >= 2
    assert admins[0].call("POST", "/v1/key/create/rt-key")[0] == 200
    allow = {"allow": ["/v1/key/generate/rt-*"]}
    deny = {"allow": ["/v1/key/generate/rt-*"], "deny": ["/v1/key/generate/rt-key"]}
    assign = f"/v1/identity/assign/rt-policy/{app.identity}"

    def generate(expected: int) -> tuple[list[Conn], str, str, int]:
        return apps, "POST", "/v1/key/generate/rt-key", expected

    steps = [  # a write, then what every connection must answer right after it
        ("POST", "/v1/policy/write/rt-policy", allow, [generate(403)]),
        ("POST", assign, None, [generate(200)]),
        ("POST", "/v1/policy/write/rt-policy", deny, [generate(403)]),
        ("POST", "/v1/policy/write/rt-policy", allow, [generate(200)]),
        (
            "DELETE",
            f"/v1/identity/forget/{app.identity}",
            None,
            [generate(403), (admins, "GET", f"/v1/identity/describe/{app.identity}", 404)],
        ),
        ("POST", assign, None, [generate(200)]),
        (
            "DELETE",
            "/v1/policy/delete/rt-policy",
            None,
            [generate(403), (admins, "GET", "/v1/policy/read/rt-policy", 404)],
        ),
    ]
    stale = checked = 0
    for r in range(3):
        for i, (method, path, body, checks) in enumerate(steps):
            writer = admins[(r * len(steps) + i) % len(admins)]  # a different worker each time
            assert writer.call(method, path, body)[0] == 200, path
            for readers, check, target, expected in checks:
                for conn in readers:
                    status = conn.call(check, target, {} if check == "POST" else None)[0]
                    stale += status != expected
                    checked += 1
    print(
        f"\nrun-time policies, workers={workers or 'default'}: {checked} checks on "
        f"{_workers_of(apps)} workers: {stale} stale answers"
    )
    assert stale == 0
