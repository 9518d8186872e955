"""``kes migrate`` from a stateless fs keystore into an enclave of a stateful store (issue
23): the Go KES fs keystore files of tests/vectors/ and keys a stateless pykes encrypted
with become version 1 of key rings, byte for byte, and a real stateful pykes decrypts
every old ciphertext over mTLS through the SDK. Expected plaintexts and HMACs come from
Go (vectors.json) or from the stateless server, never from the stateful one."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import (
    PKI,
    RunningServer,
    config_yaml,
    kes_command,
    spec_vectors,
    start_server,
    until,
)
from pykes.client import Client, DecryptError, KeyNotFound
from pykes.config import load_config
from pykes.crypto import decode_key_version, encode_key_version, generate_key_version
from pykes.pki import APIKey
from pykes.store import EnclaveStore, generate_seal_key
from pykes.store.factory import open_store
from stateful_store import new_store_dir, stateful_config
from test_cli_support import clean_env, error_line, run_kes

LEGACY_KEY = os.urandom(32)
LEGACY_VALUE = json.dumps(
    {
        "bytes": base64.b64encode(LEGACY_KEY).decode(),
        "algorithm": "AES256",
        "created_at": "2021-04-01T10:00:00Z",
        "created_by": "legacy-admin",
    }
).encode()


@dataclass
class Migration:
    """A stateless fs keystore (``src``) and a stateful store (``root``), their configs
    naming the same admin."""

    tmp: Path
    pki: PKI
    admin: APIKey

    @property
    def src(self) -> Path:
        return self.tmp / "src-keys"

    @property
    def root(self) -> Path:
        return self.tmp / "store"

    @property
    def src_config(self) -> Path:
        return self.tmp / "src.yml"

    @property
    def dst_config(self) -> Path:
        return self.tmp / "dst.yml"

    def stateful_yaml(self) -> str:
        return stateful_config(self.pki, self.admin.identity, self.root)

    def migrate(self, *args: str, **env: str):
        return run_kes(
            "migrate", "--from", str(self.src_config), "--to", str(self.dst_config), *args,
            env=clean_env(**env),
        )  # fmt: skip

    def client(self, server: RunningServer, enclave: str = "") -> Client:
        ca = str(self.pki.server_cert)
        return Client(server.url, api_key=self.admin, ca_file=ca, enclave=enclave)

    async def open_store(self) -> EnclaveStore:
        """The target store, opened through the library as the CLI opens it."""
        config = load_config(str(self.dst_config)).store
        assert config is not None
        return await open_store(config)


@pytest.fixture
def migration(tmp_path: Path, pki: PKI) -> Iterator[Migration]:
    m = Migration(tmp_path, pki, APIKey.generate())
    m.src.mkdir()
    new_store_dir(m.root)
    m.src_config.write_text(config_yaml(pki, m.admin.identity, m.src))
    m.dst_config.write_text(m.stateful_yaml())
    yield m


def _store_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.glob("pykes.db*")))


def _ring_value(m: Migration, enclave: str, name: str) -> tuple[list[int], bytes]:
    async def read() -> tuple[list[int], bytes]:
        store = await m.open_store()
        try:
            ring = await store.get_key(enclave, name)
            return list(ring.versions), ring.versions.encoded(1)
        finally:
            await store.close()

    return asyncio.run(read())


def test_go_keystore_into_an_enclave_of_a_serving_store(migration: Migration) -> None:
    """The store is served while the migration writes into it (new keys need no
    restart: a worker caches no missing key); afterwards the stateful server decrypts
    every ciphertext Go KES and a stateless pykes made, and gives Go's HMACs."""
    m, vectors = migration, spec_vectors()
    go_keys = {k["name"]: k for k in vectors["keys"]}
    for name, key in go_keys.items():
        (m.src / name).write_text(key["fs_keystore_file"]["content"])
    (m.src / "legacy").write_bytes(LEGACY_VALUE)
    made = {f"pykes-{i:02d}": encode_key_version(generate_key_version()) for i in range(20)}
    for name, value in made.items():
        (m.src / name).write_bytes(value)
    source_values = {p.name: p.read_bytes() for p in m.src.iterdir()}

    # A stateless pykes on the source keystore encrypts with every key.
    (m.tmp / "stateless").mkdir()
    stateless = start_server(m.tmp / "stateless", m.pki, m.src_config.read_text())
    old: list[tuple[str, bytes, bytes, bytes]] = []  # key, ciphertext, context, plaintext
    with m.client(stateless) as kes:
        for name in source_values:
            context = f"bucket/{name}".encode()
            dek = kes.generate_key(name, context)
            assert dek.version == ""  # a stateless server names no version
            old.append((name, dek.ciphertext, context, dek.plaintext))
            old.append((name, kes.encrypt(name, b"message of " + name.encode()), b"", b""))
    assert stateless.stop() == 0

    (m.tmp / "stateful").mkdir()
    server = start_server(m.tmp / "stateful", m.pki, m.stateful_yaml())
    try:
        r = m.migrate("-e", "tenant-a")
        assert error_line(r) == (
            "enclave 'tenant-a' does not exist in the target store. "
            "Use '--create-enclave' to create it"
        )
        with m.client(server) as admin:
            assert list(admin.list_enclaves()) == ["default"]  # nothing was created

        r = m.migrate("--create-enclave", KES_ENCLAVE="tenant-a")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[-1] == f"Migrated {len(source_values):6d} keys successfully!"

        # The key material is sealed: no Go key, legacy key or HMAC key in the files.
        stored = _store_bytes(m.root)
        secrets = [LEGACY_KEY]
        for key in go_keys.values():
            secrets.append(bytes.fromhex(key["key_hex"]))
            secrets.append(bytes.fromhex(key["fs_keystore_file"]["decoded_hmac_key_hex"]))
        for secret in secrets:
            for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
                assert form not in stored

        with m.client(server, "tenant-a") as kes, m.client(server) as default:
            assert sorted(kes.list_keys()) == sorted(source_values)
            for vector in vectors["vectors"]:  # Go KES's ciphertexts
                context = base64.b64decode(vector["context_b64"] or "")
                ciphertext = base64.b64decode(vector["ciphertext_b64"])
                plaintext = base64.b64decode(vector["plaintext_b64"])
                assert kes.decrypt(vector["key"], ciphertext, context) == plaintext
                assert kes.decrypt(vector["key"], ciphertext, context, version=1) == plaintext
            for legacy in vectors["decrypt_legacy"]:  # Go's older ciphertext encodings
                body = legacy["exchange"]["request_body"]
                ciphertext = base64.b64decode(body["ciphertext"])
                context = base64.b64decode(body.get("context") or "")
                expected = base64.b64decode(legacy["expected_plaintext_b64"])
                assert kes.decrypt(legacy["key"], ciphertext, context) == expected
            for mac in vectors["hmac"]:  # the HMAC key came along too
                got = kes.hmac(mac["key"], base64.b64decode(mac["message_b64"]))
                assert (got.hex(), got.version) == (mac["hmac_hex"], "1")
            for name, ciphertext, context, plaintext in old:  # the stateless pykes's
                expected = plaintext or b"message of " + name.encode()
                assert kes.decrypt(name, ciphertext, context) == expected
            for name, key in go_keys.items():
                info = kes.describe_key(name)
                assert (info.version, info.versions) == ("1", ("1",))
                assert info.created_by == key["fs_keystore_file"]["decoded_created_by"]
            legacy_info = kes.describe_key("legacy")
            assert (legacy_info.created_by, legacy_info.created_at.year) == ("legacy-admin", 2021)
            with pytest.raises(KeyNotFound):
                default.describe_key("vector-aes256")  # the keys went to tenant-a only

            assert kes.rotate_key("vector-chacha20") == "2"  # a migrated key rotates
            new = kes.generate_key("vector-chacha20")
            assert new.version == "2"
            for name, ciphertext, context, plaintext in old:
                expected = plaintext or b"message of " + name.encode()
                assert kes.decrypt(name, ciphertext, context) == expected
    finally:
        server.stop()

    # Byte for byte: each ring's version 1 is the source file, legacy JSON included.
    for name in ("vector-aes256", "legacy", "pykes-07"):
        versions, value = _ring_value(m, "tenant-a", name)
        assert versions == [1] and value == source_values[name]


def test_merge_force_and_refusals(migration: Migration) -> None:
    m = migration
    for name in ("app-1", "app-2", "db-1"):
        (m.src / name).write_bytes(encode_key_version(generate_key_version()))

    r = m.migrate("app-?")  # into `default` of a store the migration creates
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "Migrated      2 keys successfully!"
    assert error_line(m.migrate()) == "key already exists"  # app-1, as the stateless migrate
    r = m.migrate("--merge")
    assert r.stdout.splitlines()[-1] == "Migrated      1 keys successfully!"  # db-1 only
    r = m.migrate("--merge")
    assert r.stdout.splitlines()[-1] == "Migration succeeded! No keys migrated."

    # --force replaces a key that was never rotated, byte for byte …
    (m.src / "app-1").write_bytes(encode_key_version(generate_key_version()))
    r = m.migrate("--force", "app-1")
    assert r.stdout.splitlines()[-1] == "Migrated      1 keys successfully!"
    assert _ring_value(m, "default", "app-1") == ([1], (m.src / "app-1").read_bytes())

    # … and never a rotated one: its other versions may still decrypt data.
    async def rotate() -> None:
        store = await m.open_store()
        try:
            await store.rotate_key("default", "app-2")
        finally:
            await store.close()

    asyncio.run(rotate())
    versions_before = _ring_value(m, "default", "app-2")
    assert error_line(m.migrate("--force", "app-2")) == (
        "cannot replace key 'app-2' in enclave 'default': it has been rotated (latest "
        "version 2) and '--force' replaces only keys that never were; delete it first"
    )
    assert _ring_value(m, "default", "app-2") == versions_before
    assert versions_before[0] == [1, 2]

    # A value that is no key stops the migration without storing anything of it.
    (m.src / "junk").write_bytes(b"not a key")
    assert error_line(m.migrate("junk")) == "key 'junk' cannot be migrated: invalid key encoding"
    assert b"not a key" not in _store_bytes(m.root)

    # Enclaves: only for a store; names checked.
    stateless_target = m.tmp / "fs-target.yml"
    stateless_target.write_text(config_yaml(m.pki, "disabled", m.tmp / "fs-target"))
    to_fs = ("migrate", "--from", str(m.src_config), "--to", str(stateless_target))
    assert error_line(run_kes(*to_fs, "-e", "a", "app-1", env=clean_env())) == (
        "cannot use '-e / --enclave' and '--to' flag"
    )
    assert error_line(run_kes(*to_fs, "--create-enclave", env=clean_env())) == (
        "'--create-enclave' needs a '--to' config with a 'store' section"
    )
    r = run_kes(*to_fs, "app-1", env=clean_env(KES_ENCLAVE="a"))  # used by kes commands
    assert r.returncode == 0, r.stderr  # the variable is no flag: ignored here
    assert error_line(m.migrate("-e", "bad!", "--create-enclave")) == (
        "enclave name 'bad!' is empty, too long or contains invalid characters"
    )
    r = run_kes(
        "migrate", "--from", str(m.dst_config), "--to", str(stateless_target), env=clean_env()
    )
    assert error_line(r) == (
        f"the source config '{m.dst_config}' has no 'keystore' section: "
        "kes migrate copies the keys of a stateless keystore"
    )


def test_a_wrong_seal_key_stops_before_anything_is_written(migration: Migration) -> None:
    m = migration
    (m.src / "k").write_bytes(encode_key_version(generate_key_version()))
    assert m.migrate().returncode == 0
    before = {p.name: p.read_bytes() for p in m.root.glob("pykes.db*")}
    (m.root / "root.seal").write_text(generate_seal_key().text() + "\n")
    (m.src / "k2").write_bytes(encode_key_version(generate_key_version()))
    line = error_line(m.migrate("--merge"))
    assert line.endswith("does not unseal this store's root key: wrong seal key"), line
    assert {p.name: p.read_bytes() for p in m.root.glob("pykes.db*")} == before
    assert json.dumps(line).count("kes:v1") == 0


def test_force_while_serving_is_seen_after_a_reload(migration: Migration) -> None:
    """A key replaced with ``--force`` under a serving server: a worker that cached the
    old ring keeps it (the CLI cannot reach the server's change record) until SIGHUP,
    whose reload starts with empty caches — what docs/stateful.md tells operators."""
    m = migration
    old_value = encode_key_version(generate_key_version())
    (m.src / "k").write_bytes(old_value)
    assert m.migrate().returncode == 0
    run = m.tmp / "stateful"
    run.mkdir()
    keep = "cache:\n  expiry:\n    any: 1h\n    unused: 1h\n"  # no expiry during the test
    server = start_server(run, m.pki, m.stateful_yaml() + keep)  # one worker: one cache
    try:
        with m.client(server) as kes:
            old = kes.encrypt("k", b"old")
            for _ in range(8):
                assert kes.decrypt("k", old) == b"old"  # the old ring is cached
            new_value = encode_key_version(generate_key_version())
            (m.src / "k").write_bytes(new_value)
            r = m.migrate("--force")
            assert r.stdout.splitlines()[-1] == "Migrated      1 keys successfully!"
            new = decode_key_version(new_value).encrypt(b"new")
            for _ in range(8):
                assert kes.decrypt("k", old) == b"old"  # still the cached, replaced ring
            server.proc.send_signal(signal.SIGHUP)
            done = "=> Reloading configuration after SIGHUP signal completed."
            until(lambda: done in server.stderr.read_text(), 20)
            for _ in range(8):
                assert kes.decrypt("k", new) == b"new"
                with pytest.raises(DecryptError):
                    kes.decrypt("k", old)
    finally:
        server.stop()


def test_a_killed_migration_into_an_enclave_completes_with_merge(migration: Migration) -> None:
    """SIGKILL part-way: every key already written is whole (one check-and-set write per
    key), and ``--merge`` migrates exactly the rest, byte for byte."""
    m, count = migration, 1000
    values = {
        f"key-{i:04d}": LEGACY_VALUE if i % 100 == 7 else encode_key_version(generate_key_version())
        for i in range(count)
    }
    for name, value in values.items():
        (m.src / name).write_bytes(value)
    r = m.migrate("-e", "t", "--create-enclave", "none")  # the store and the enclave only
    assert r.stdout.splitlines()[-1] == "Migration succeeded! No keys migrated."

    args = ("migrate", "--from", str(m.src_config), "--to", str(m.dst_config), "-e", "t")
    proc = subprocess.Popen(
        kes_command(*args), env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    # Observed from outside, read-only (the test's view; the CLI writes through the library).
    with contextlib.closing(sqlite3.connect(f"file:{m.root / 'pykes.db'}?mode=ro", uri=True)) as db:
        deadline = time.monotonic() + 60
        written = 0
        while written < 50 and time.monotonic() < deadline and proc.poll() is None:
            query = "SELECT count(*) FROM records WHERE path LIKE 'enclave/t/%/key/%'"
            written = db.execute(query).fetchone()[0]
            time.sleep(0.002)
    proc.kill()
    proc.wait()

    async def names() -> list[str]:
        store = await m.open_store()
        try:
            names = await store.list_keys("t")
            for name in names:  # every record opens: none is torn
                assert (await store.get_key("t", name)).versions.encoded(1) == values[name]
            return names
        finally:
            await store.close()

    copied = asyncio.run(names())
    assert 50 <= len(copied) < count, len(copied)  # really interrupted part-way
    assert error_line(m.migrate("-e", "t")) == "key already exists"
    r = m.migrate("-e", "t", "--merge")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"Migrated {count - len(copied):6d} keys successfully!"
    assert sorted(asyncio.run(names())) == sorted(values)
