"""Backup and restore of a stateful store as docs/backup.md describes them (issue 23): a
real stateful pykes holds keys in two enclaves and keeps writing while the store is
copied (``kes store backup``, or the ``sqlite3`` shell's ``.backup``); the copy, placed in
a new directory with the seal key, serves a new server that decrypts every ciphertext
made before the backup; with another seal key that server refuses to start."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import PKI, RunningServer, config_yaml, free_port, kes_command, start_server
from pykes.client import Client
from pykes.pki import APIKey
from pykes.store import generate_seal_key
from stateful_store import new_store_dir, stateful_config
from test_cli_support import clean_env, error_line, run_kes


@dataclass
class Site:
    """A store directory (``pykes.db``, ``root.seal``) and the config serving it."""

    root: Path
    pki: PKI
    admin: APIKey

    def config(self, seal: Path | None = None) -> Path:
        config = self.root / "config.yml"
        seal_line = f"file: {seal}" if seal else ""
        config.write_text(stateful_config(self.pki, self.admin.identity, self.root, seal_line))
        return config

    def start(self) -> RunningServer:
        run = self.root / "run"
        run.mkdir(exist_ok=True)
        return start_server(run, self.pki, self.config().read_text())

    def client(self, server: RunningServer, enclave: str = "") -> Client:
        ca = str(self.pki.server_cert)
        return Client(server.url, api_key=self.admin, ca_file=ca, enclave=enclave)


@pytest.fixture
def site(tmp_path: Path, pki: PKI) -> Iterator[Site]:
    yield Site(new_store_dir(tmp_path / "site"), pki, APIKey.generate())


class Writer(threading.Thread):
    """Creates keys in enclave ``b`` until stopped; ``acked`` holds (name, time of the
    200) for every key the server acknowledged."""

    def __init__(self, client: Client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.acked: list[tuple[str, float]] = []
        self.tried: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            name = f"live-{i:05d}"
            self.tried.append(name)
            self.client.create_key(name)
            self.acked.append((name, time.monotonic()))
            i += 1


def _store_files(root: Path) -> dict[str, bytes]:
    return {p.name: hashlib.sha256(p.read_bytes()).digest() for p in root.glob("pykes.db*")}


def _sqlite3_backup(db: Path, out: Path) -> None:
    subprocess.run(["sqlite3", str(db), f".backup '{out}'"], check=True, timeout=60)


METHODS = ["kes", pytest.param("sqlite3", marks=pytest.mark.skipif(
    shutil.which("sqlite3") is None, reason="no sqlite3 shell on this machine"))]  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
def test_backup_while_serving_and_restore(
    site: Site, tmp_path: Path, pki: PKI, method: str
) -> None:
    server = site.start()
    made: list[tuple[str, str, bytes, bytes, str]] = []  # enclave, key, ciphertext, plain, ver
    try:
        with site.client(server) as admin:
            admin.create_enclave("a")
            admin.create_enclave("b")
        for enclave in ("a", "b"):
            with site.client(server, enclave) as kes:
                for name in ("k1", "k2"):
                    kes.create_key(name)
                    dek = kes.generate_key(name, b"ctx")
                    made.append((enclave, name, dek.ciphertext, dek.plaintext, dek.version))
                assert kes.rotate_key("k1") == "2"
                dek = kes.generate_key("k1", b"ctx")
                made.append((enclave, "k1", dek.ciphertext, dek.plaintext, dek.version))

        backup = tmp_path / "backup" / "pykes-backup.db"
        backup.parent.mkdir()
        with site.client(server, "b") as live:
            writer = Writer(live)
            writer.start()
            while len(writer.acked) < 20:  # the server is busy writing
                time.sleep(0.01)
            started = time.monotonic()
            if method == "kes":
                r = run_kes("store", "backup", "--config", str(site.config()), str(backup),
                            env=clean_env())  # fmt: skip
                assert r.returncode == 0, r.stderr
                assert r.stdout.startswith(f"Backed up {site.root / 'pykes.db'} to {backup} (")
            else:
                _sqlite3_backup(site.root / "pykes.db", backup)
            writer.halt.set()
            writer.join(30)
        assert not writer.is_alive()
        acked_before = {name for name, at in writer.acked if at < started}
        assert len(acked_before) >= 20 and len(writer.acked) > len(acked_before)
    finally:
        assert server.stop() == 0
    if method == "kes":
        assert backup.stat().st_mode & 0o777 == 0o600
        assert sorted(p.name for p in backup.parent.iterdir()) == [backup.name]  # one file

    # Restore: the copy and the seal key into a new directory, a new server on them.
    restored = Site(tmp_path / "restored", pki, site.admin)
    restored.root.mkdir()
    shutil.copy(backup, restored.root / "pykes.db")
    shutil.copy(site.root / "root.seal", restored.root / "root.seal")
    server = restored.start()
    try:
        with restored.client(server) as admin:
            assert sorted(admin.list_enclaves()) == ["a", "b", "default"]
        for enclave, name, ciphertext, plaintext, version in made:
            with restored.client(server, enclave) as kes:
                assert kes.decrypt(name, ciphertext, b"ctx") == plaintext
                assert kes.decrypt(name, ciphertext, b"ctx", version=version) == plaintext
        with restored.client(server, "b") as kes:
            live = set(kes.list_keys("live*"))
            # Everything acknowledged before the backup began is in it; nothing else but
            # keys the writer asked for; every one opens (no torn record).
            assert acked_before <= live <= set(writer.tried)
            for name in sorted(live)[-3:]:
                dek = kes.generate_key(name)
                assert kes.decrypt(name, dek.ciphertext) == dek.plaintext
            with restored.client(server, "a") as a:
                assert sorted(a.list_keys()) == ["k1", "k2"]
    finally:
        assert server.stop() == 0

    # The copy without its seal key is useless: another key refuses to start, one line,
    # and leaves the restored files byte-identical.
    before = _store_files(restored.root)
    assert "pykes.db" in before
    other = tmp_path / "other.seal"
    other.write_text(generate_seal_key().text() + "\n")
    config = restored.config(seal=other)
    done = subprocess.run(
        kes_command("server", "--config", str(config), "--addr", f"127.0.0.1:{free_port()}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("wrong seal key"), done.stderr
    assert _store_files(restored.root) == before


def test_backup_refusals(site: Site, tmp_path: Path, pki: PKI) -> None:
    server = site.start()
    assert server.stop() == 0
    out = tmp_path / "out.db"
    out.write_bytes(b"keep me")
    backup = ("store", "backup", "--config", str(site.config()))
    assert error_line(run_kes(*backup, str(out), env=clean_env())) == (
        f"backup: '{out}' exists already"
    )
    assert out.read_bytes() == b"keep me"  # never overwritten
    nowhere = tmp_path / "no-such-dir" / "out.db"
    assert error_line(run_kes(*backup, str(nowhere), env=clean_env())) == (
        f"backup: the directory of '{nowhere}' does not exist"
    )

    stateless = tmp_path / "stateless.yml"
    stateless.write_text(config_yaml(pki, "disabled", tmp_path / "keys"))
    r = run_kes("store", "backup", "--config", str(stateless), str(tmp_path / "x.db"),
                env=clean_env())  # fmt: skip
    assert error_line(r) == f"the config '{stateless}' has no 'store' section with 'sqlite'"

    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as db:  # a database, not a store
        db.execute("CREATE TABLE t (x)")
    (site.root / "pykes.db").unlink()
    shutil.copy(other, site.root / "pykes.db")
    r = run_kes(*backup, str(tmp_path / "y.db"), env=clean_env())
    assert error_line(r) == f"backup: '{site.root / 'pykes.db'}' is not a pykes store"
    (site.root / "pykes.db").unlink()
    r = run_kes(*backup, str(tmp_path / "z.db"), env=clean_env())
    assert error_line(r).startswith("backup: cannot open the SQLite database")
    assert not (site.root / "pykes.db").exists()  # a missing store is not created
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == [
        "other.db",
        "out.db",
    ]
