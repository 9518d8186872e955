"""``kes migrate --server … --enclave … --api-key …`` (issue 24): the real ``kes`` CLI
imports the keys of a Go-written fs keystore (the files Go KES stored, tests/vectors/)
into an enclave of a real stateful pykes through its KMS API over mTLS, as Go's
cmd/kes/migrate.go does; Go's ciphertexts then decrypt through both APIs. Expected
plaintexts come from Go (vectors.json), never from pykes."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import PKI, ClientIdentity, RunningServer, config_yaml, spec_vectors
from pykes.client import Client
from pykes.client.kms import KeyNotFound, KMSClient
from pykes.kms.identity import from_kes
from pykes.pki import APIKey
from stateful_store import new_store_dir
from test_cli_support import clean_env, error_line, run_kes
from test_stateful import StatefulServers

ADMIN_KEY = APIKey.generate()
ENCLAVE = "tenant-m"


@dataclass
class KMSMigration:
    """A Go-written fs keystore (``src``, its config ``src_config``) and a serving
    stateful pykes whose enclave ``ENCLAVE`` has ``migrator`` as an Admin identity."""

    tmp: Path
    pki: PKI
    server: RunningServer
    migrator: APIKey

    @property
    def src(self) -> Path:
        return self.tmp / "go-keys"

    @property
    def src_config(self) -> Path:
        return self.tmp / "src.yml"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def migrate(self, *args: str, flags: bool = True, **env: str) -> subprocess.CompletedProcess:
        """``kes migrate --from src.yml`` with ``-s/-e/-a`` (``flags``) and ``args``;
        the server's certificate trusted through ``SSL_CERT_FILE`` unless ``env`` says
        otherwise."""
        target = ("-s", self.host, "-e", ENCLAVE, "-a", self.migrator.kms_text()) if flags else ()
        env.setdefault("SSL_CERT_FILE", str(self.pki.server_cert))
        return run_kes(
            "migrate", "--from", str(self.src_config), *target, *args, env=clean_env(**env)
        )

    def kms(self) -> KMSClient:
        ca = str(self.pki.server_cert)
        return KMSClient(self.server.url, api_key=ADMIN_KEY, ca_file=ca, enclave=ENCLAVE)

    def kes(self) -> Client:
        ca = str(self.pki.server_cert)
        return Client(self.server.url, api_key=ADMIN_KEY, ca_file=ca, enclave=ENCLAVE)


@pytest.fixture
def migration(tmp_path: Path, pki: PKI) -> Iterator[KMSMigration]:
    root = new_store_dir(tmp_path / "store")
    admin = ClientIdentity(Path(), Path(), ADMIN_KEY.identity)  # the API key's identity
    server = StatefulServers(root, pki, admin).start()
    try:
        m = KMSMigration(tmp_path, pki, server, APIKey.generate())
        m.src.mkdir()
        for key in spec_vectors()["keys"]:  # the bytes Go KES wrote, not pykes's encoding
            (m.src / key["name"]).write_text(key["fs_keystore_file"]["content"])
        m.src_config.write_text(config_yaml(pki, "disabled", m.src))
        with m.kms() as kms:
            kms.create_enclave(ENCLAVE)
            kms.create_identity(from_kes(m.migrator.identity), "Admin")
        yield m
    finally:
        server.stop()


def _last_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Starting key migration:\n\n"), result.stdout
    return result.stdout.splitlines()[-1]


def _check_go_ciphertexts(m: KMSMigration) -> None:
    """Every ciphertext Go KES made (before any migration) decrypts in the enclave
    through the KES API (``Kes-Enclave``) and the KMS API (version 1)."""
    vectors = spec_vectors()["vectors"]
    with m.kes() as kes, m.kms() as kms:
        for vector in vectors:
            context = base64.b64decode(vector["context_b64"] or "")
            ciphertext = base64.b64decode(vector["ciphertext_b64"])
            plaintext = base64.b64decode(vector["plaintext_b64"])
            assert kes.decrypt(vector["key"], ciphertext, context) == plaintext
            answer = kms.decrypt(vector["key"], ciphertext, 1, context)
            assert answer.Plaintext == plaintext
    assert {v["key"] for v in vectors} == {"vector-aes256", "vector-chacha20"}


def test_go_keystore_into_a_kms_enclave(migration: KMSMigration) -> None:
    m, go_keys = migration, {k["name"]: k for k in spec_vectors()["keys"]}
    assert _last_line(m.migrate()) == "Migrated      2 keys successfully!"
    with m.kms() as kms:
        assert sorted(k.Name for k in kms.list_keys().Keys) == sorted(go_keys)
        for name, key in go_keys.items():
            status = kms.key_status(name)
            assert (status.Version, status.Type) == (1, key["cipher"])
        with pytest.raises(KeyNotFound):  # into the named enclave only
            kms.in_enclave("default").key_status("vector-aes256")
    _check_go_ciphertexts(m)

    # Again, without a flag: Go's error for the first existing key (kms-go names the
    # server that answered, as "host": …); nothing changes.
    assert error_line(m.migrate()) == f'"{m.host}": key already exists'

    # --merge (the target from $MINIO_KMS_*): only the new key moves.
    copy = m.src / "vector-aes256-copy"
    copy.write_bytes((m.src / "vector-aes256").read_bytes())  # Go's bytes, a new name
    target = {
        "MINIO_KMS_SERVER": m.host,
        "MINIO_KMS_ENCLAVE": ENCLAVE,
        "MINIO_KMS_API_KEY": m.migrator.kms_text(),
    }
    assert _last_line(m.migrate("--merge", flags=False, **target)) == (
        "Migrated      1 keys successfully!"
    )
    assert _last_line(m.migrate("--merge")) == "Migration succeeded! No keys migrated."

    # --force replaces: a rotated key loses its versions and is the source's again.
    with m.kms() as kms:
        kms.add_key_version("vector-aes256")
        assert kms.key_status("vector-aes256").Version == 2
    assert _last_line(m.migrate("--force", "vector-aes256*")) == (
        "Migrated      2 keys successfully!"
    )
    with m.kms() as kms:
        versions = kms.list_key_versions("vector-aes256").Keys
        assert [s.Version for s in versions] == [1]
        assert kms.key_status("vector-aes256").Version == 1
    _check_go_ciphertexts(m)
    with m.kes() as kes:  # the copy is Go's key too
        vector = next(v for v in spec_vectors()["vectors"] if v["key"] == "vector-aes256")
        context = base64.b64decode(vector["context_b64"] or "")
        ciphertext = base64.b64decode(vector["ciphertext_b64"])
        plaintext = base64.b64decode(vector["plaintext_b64"])
        assert kes.decrypt("vector-aes256-copy", ciphertext, context) == plaintext


def test_server_certificate_and_errors_stop_the_migration(migration: KMSMigration) -> None:
    """Go verifies the server against the system roots unless ``-k``; pykes does the
    same (``SSL_CERT_FILE`` names a CA, as for every other ``kes`` command)."""
    m = migration
    line = error_line(m.migrate(SSL_CERT_FILE=str(m.tmp / "none.pem")))
    assert line.startswith(f'"{m.host}": ') and "CERTIFICATE_VERIFY_FAILED" in line
    assert line.endswith(
        "(-k skips verifying the server certificate; "
        "SSL_CERT_FILE=<file> trusts the CA certificate in <file>)"
    ), line
    with m.kms() as kms:
        assert list(kms.list_keys().Keys) == []

    # The server's errors, as Go prints them.
    denied = f'"{m.host}": access denied: insufficient permissions'
    assert error_line(m.migrate("-a", APIKey.generate().kms_text())) == denied
    assert error_line(m.migrate("-e", "nowhere")) == denied
    admin = ADMIN_KEY.kms_text()  # the server's admin sees which enclaves exist
    r = m.migrate("-e", "nowhere", "-a", admin)
    assert error_line(r) == f'"{m.host}": enclave does not exist'
    r = m.migrate("-s", f"https://{m.host}", "-e", "nowhere", "-a", admin)  # the scheme is dropped
    assert error_line(r) == f'"{m.host}": enclave does not exist'
    assert error_line(m.migrate("-a", "k1:not-a-key")).startswith("parsing API key: ")

    # -k skips verification: the migration goes through.
    r = m.migrate("-k", "vector-chacha20", SSL_CERT_FILE=str(m.tmp / "none.pem"))
    assert _last_line(r) == "Migrated      1 keys successfully!"
    with m.kms() as kms:
        assert [k.Name for k in kms.list_keys().Keys] == ["vector-chacha20"]
