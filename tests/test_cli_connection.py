"""Connection settings of the client commands (docs/compat/cli.md §2): env var lookup order,
credential rules and their exact errors, certificate/key files, TLS verification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PKI, free_port
from pykes.pki import encrypt_private_key_pem_legacy, new_identity_certificate
from test_cli_support import KesServer, clean_env, error_line, run_kes, start_kes


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[KesServer]:
    server = start_kes(tmp_path_factory.mktemp("cli-conn"), pki)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin_files(kes: KesServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate + key file for the admin's Ed25519 key (same identity)."""
    root = tmp_path_factory.mktemp("admin-files")
    cert, key, identity = new_identity_certificate(private_key=kes.admin.private_key)
    assert identity == kes.admin.identity
    (root / "admin.crt").write_bytes(cert)
    (root / "admin.key").write_bytes(key)
    return root / "admin.crt", root / "admin.key"


def whoami(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[1]  # "Identity    <id>"


def test_credential_rules(kes: KesServer, admin_files: tuple[Path, Path]) -> None:
    cert, key = (str(p) for p in admin_files)
    server = kes.endpoint

    def err(**env: str) -> str:
        return error_line(run_kes("key", "ls", env=clean_env(MINIO_KES_SERVER=server, **env)))

    # Each message names the variable of the README and dev banner first, then Go's.
    assert err() == "no API key specified. Consider setting KES_API_KEY or MINIO_KES_API_KEY"
    api_key = str(kes.admin)
    assert err(MINIO_KES_API_KEY=api_key, MINIO_KES_KEY_FILE=key) == (
        "API key and private key file cannot be used at the same time"
    )
    assert err(MINIO_KES_API_KEY=api_key, MINIO_KES_CERT_FILE=cert) == (
        "API key and certificate file cannot be used at the same time"
    )
    assert err(MINIO_KES_KEY_FILE=key) == (
        "no certificate file specified. Consider setting KES_CLIENT_CERT or MINIO_KES_CERT_FILE"
    )
    assert err(KES_CLIENT_CERT=cert) == (
        "no private key file specified. Consider setting KES_CLIENT_KEY or MINIO_KES_KEY_FILE"
    )
    assert err(MINIO_KES_API_KEY="kes:v1:nonsense").startswith("parsing API key: ")
    # ... and every variable named works.
    ca = str(kes.server.pki.server_cert)
    for env in (
        {"KES_API_KEY": api_key},
        {"MINIO_KES_API_KEY": api_key},
        {"KES_CLIENT_CERT": cert, "KES_CLIENT_KEY": key},
        {"MINIO_KES_CERT_FILE": cert, "MINIO_KES_KEY_FILE": key},
    ):
        r = run_kes("key", "ls", env=clean_env(MINIO_KES_SERVER=server, SSL_CERT_FILE=ca, **env))
        assert r.returncode == 0, (env, r.stderr)


def test_api_key_and_server_variables(kes: KesServer) -> None:
    ca = str(kes.server.pki.server_cert)
    dead = f"127.0.0.1:{free_port()}"
    for env in (
        {"KES_SERVER": kes.endpoint, "KES_API_KEY": str(kes.admin)},
        {"MINIO_KMS_KES_ENDPOINT": kes.endpoint, "MINIO_KMS_KES_API_KEY": str(kes.admin)},
        # the first *set* variable wins; a comma list is a multi-endpoint client
        {
            "MINIO_KES_SERVER": f"http://{dead}, {kes.endpoint}",
            "KES_SERVER": "bogus:1",
            "MINIO_KES_API_KEY": str(kes.admin),
            "KES_API_KEY": "kes:v1:invalid",
        },
    ):
        r = run_kes("identity", "info", env=clean_env(SSL_CERT_FILE=ca, **env))
        assert whoami(r) == kes.admin.identity, env
    # set-but-empty MINIO_KES_SERVER shadows KES_SERVER: the default 127.0.0.1:7373 is used
    r = run_kes(
        "identity",
        "info",
        env=clean_env(
            SSL_CERT_FILE=ca,
            MINIO_KES_SERVER="",
            KES_SERVER=kes.endpoint,
            MINIO_KES_API_KEY=str(kes.admin),
        ),
    )
    assert r.returncode == 1 and "127.0.0.1:7373" in r.stderr


def test_certificate_and_key_files(
    kes: KesServer, admin_files: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = admin_files
    ca = str(kes.server.pki.server_cert)
    for cert_var, key_var in (
        ("MINIO_KES_CERT_FILE", "MINIO_KES_KEY_FILE"),
        ("KES_CLIENT_CERT", "KES_CLIENT_KEY"),
        ("MINIO_KES_CLIENT_CERT", "MINIO_KES_CLIENT_KEY"),
        ("KES_CLIENT_TLS_CERT_FILE", "KES_CLIENT_TLS_KEY_FILE"),  # v0.4-v0.8 names
    ):
        env = clean_env(
            MINIO_KES_SERVER=kes.endpoint,
            SSL_CERT_FILE=ca,
            **{cert_var: str(cert), key_var: str(key)},
        )
        assert whoami(run_kes("identity", "info", env=env)) == kes.admin.identity

    encrypted = tmp_path / "admin-enc.key"
    encrypted.write_bytes(encrypt_private_key_pem_legacy(key.read_bytes(), b"s3cret"))
    env = clean_env(
        MINIO_KES_SERVER=kes.endpoint,
        SSL_CERT_FILE=ca,
        MINIO_KES_CERT_FILE=str(cert),
        MINIO_KES_KEY_FILE=str(encrypted),
    )
    r = run_kes("identity", "info", env=env, stdin="s3cret\n")
    assert whoami(r) == kes.admin.identity
    assert "Enter password for private key: " in r.stderr
    wrong = run_kes("identity", "info", env=env, stdin="wrong\n")
    assert wrong.returncode == 1 and wrong.stderr.endswith("Error: incorrect password\n")


def test_server_verification(kes: KesServer) -> None:
    env = clean_env(MINIO_KES_SERVER=kes.endpoint, MINIO_KES_API_KEY=str(kes.admin))
    r = run_kes("key", "ls", env=env)  # system roots only: the test CA is unknown
    assert "CERTIFICATE_VERIFY_FAILED" in error_line(r)
    r = run_kes("key", "ls", "--json", "-k", env=env)
    assert r.returncode == 0 and isinstance(json.loads(r.stdout), list)
