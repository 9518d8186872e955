"""``kes identity …`` and ``kes tool identity …`` (docs/compat/cli.md §6, auth.md §7–§8)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import PKI, config_yaml, start_server
from pykes.kms.identity import from_kes
from pykes.pki import APIKey
from test_auth_apikey import K2_VECTORS
from test_cli_support import READER_ALLOW, KesServer, clean_env, error_line, run_kes, start_kes

VECTORS = {  # docs/compat/auth.md §7
    "kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw": (
        "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb"
    ),
    "kes:v1:AMxvd2uV1l5dDSRwuKZxSjuM5BDemlr+685+JAHA1TuJ": (
        "ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7"
    ),
}


def kes_offline(*args: str, stdin: str | None = None):
    return run_kes(*args, env=clean_env(), stdin=stdin)


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[KesServer]:
    server = start_kes(tmp_path_factory.mktemp("cli-identity"), pki)
    yield server
    server.stop()


def test_api_keys_and_identities_offline() -> None:
    r = kes_offline("identity")
    assert r.returncode == 0 and not r.stdout.endswith("\n")
    key = APIKey.parse(r.stdout)  # a fresh, valid API key
    assert len(r.stdout) == 51
    for api_key, identity in VECTORS.items():
        assert kes_offline("identity", api_key).stdout == identity
        assert kes_offline("identity", "of", api_key).stdout == identity
    assert kes_offline("identity", "of", str(key)).stdout == key.identity
    assert error_line(kes_offline("identity", "of", "kes:v1:sbDvZ3Nd")).startswith(
        "invalid API key"
    )
    assert error_line(kes_offline("identity", "of")) == (
        "no API key or certificate specified. See 'kes identity of --help'"
    )


def _k1(api_key: str) -> str:
    """The kms-go client's spelling of a ``kes:v1:`` key: ``k1:`` + unpadded base64url of
    the same Ed25519 seed (the byte after the type byte)."""
    seed = base64.b64decode(api_key.removeprefix("kes:v1:"))[1:]
    return "k1:" + base64.urlsafe_b64encode(seed).decode().rstrip("=")


def test_kms_api_keys_for_minio_and_kes_migrate() -> None:
    """``kes identity new --kms`` prints a ``k1:`` key (MinIO's ``MINIO_KMS_API_KEY``,
    ``kes migrate --api-key``) with its identity; ``kes identity of`` reads ``k1:``."""
    for api_key, identity in VECTORS.items():
        assert kes_offline("identity", "of", _k1(api_key)).stdout == identity
        assert kes_offline("identity", _k1(api_key)).stdout == identity
    k2, h1 = K2_VECTORS[0]  # an ECDSA key of aead.dev/mtls: its identity, in hex
    assert from_kes(kes_offline("identity", "of", k2).stdout) == h1
    r = kes_offline("identity", "new", "--kms")
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    [k1] = {w for w in words if w.startswith("k1:")}  # the key, and in the hint
    assert "kes:v1:" not in r.stdout
    seed = base64.urlsafe_b64decode(k1.removeprefix("k1:") + "=")
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    identity = hashlib.sha256(spki).hexdigest()
    assert identity in words and f"kes identity of {k1}" in r.stdout


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_identity_new_files(tmp_path: Path, pki: PKI) -> None:
    key_file, cert_file = tmp_path / "client.key", tmp_path / "client.crt"
    r = kes_offline(
        "identity",
        "new",
        "--key",
        str(key_file),
        "--cert",
        str(cert_file),
        "--ip",
        "127.0.0.1",
        "--dns",
        "localhost,kes.example",
        "--expiry",
        "48h",
        "Client-1",
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    api_key = APIKey.parse(lines[2].strip())
    identity = lines[8].strip()
    assert identity == api_key.identity
    assert f"The generated TLS private key is stored at: {key_file}" in lines
    assert lines[-1].strip() == f"kes identity of {cert_file}"

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert_file.stat().st_mode) == 0o644
    cert = _cert(cert_file)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Client-1"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "kes.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert abs(lifetime - dt.timedelta(hours=48)) < dt.timedelta(minutes=1)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    # the private key file is the API key's key; identity = SHA-256 of the SPKI
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert hashlib.sha256(spki).hexdigest() == identity
    assert kes_offline("identity", "of", str(cert_file)).stdout == identity
    assert kes_offline("identity", str(cert_file)).stdout == identity
    assert kes_offline("identity", str(key_file)).stdout == str(api_key)

    # the server computes the same identity from the certificate: make it the admin
    root = tmp_path / "srv"
    root.mkdir()
    server = start_server(root, pki, config_yaml(pki, identity, root / "keys"))
    try:
        env = clean_env(
            MINIO_KES_SERVER=f"127.0.0.1:{server.port}",
            MINIO_KES_CERT_FILE=str(cert_file),
            MINIO_KES_KEY_FILE=str(key_file),
            SSL_CERT_FILE=str(pki.server_cert),
        )
        info = run_kes("identity", "info", env=env)
        assert info.stdout.splitlines()[0] == f"Identity    {identity}"
        assert "Role        Admin" in info.stdout.splitlines()
        r = run_kes("key", "create", "made-with-new-identity", env=env)
        assert r.returncode == 0, r.stderr
    finally:
        server.stop()

    assert (
        error_line(kes_offline("identity", "new", "--key", str(key_file), "--cert", str(cert_file)))
        == "private key already exists. Use --force to overwrite it"
    )
    key_file.chmod(0o644)
    r = kes_offline("identity", "new", "--key", str(key_file), "--cert", str(cert_file), "-f")
    assert r.returncode == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    new_identity = kes_offline("identity", "of", str(cert_file)).stdout
    assert new_identity != identity
    cn = _cert(cert_file).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == new_identity  # no subject: CN = identity


def test_identity_new_encrypted_and_flag_errors(tmp_path: Path) -> None:
    key_file, cert_file = tmp_path / "enc.key", tmp_path / "enc.crt"
    args = ("identity", "new", "--key", str(key_file), "--cert", str(cert_file), "--encrypt")
    mismatch = kes_offline(*args, stdin="one\ntwo\n")
    assert mismatch.returncode == 1
    assert mismatch.stderr.splitlines()[-1] == "Error: passwords don't match"
    assert not key_file.exists()
    r = kes_offline(*args, stdin="pw\npw\n")
    assert r.returncode == 0, r.stderr
    pem = key_file.read_text()
    assert "Proc-Type: 4,ENCRYPTED" in pem and "DEK-Info: AES-256-CBC," in pem
    assert error_line(kes_offline("identity", "new", "--ip", "10.0.0.1")) == (
        "'--ip' requires a private key and certificate file. Set the '--cert' and '--key' flag"
    )
    assert error_line(kes_offline("identity", "new", "--key", "k")) == (
        "private key file specified but no certificate file. Set the '--cert' flag"
    )
    assert error_line(
        kes_offline("identity", "new", "--key", "a", "--cert", "b", "--ip", "nope")
    ).startswith('invalid argument "nope" for "--ip" flag')
    r = kes_offline("identity", "new")
    assert (
        r.returncode == 0 and "Your API key:" in r.stdout and "kes identity of kes:v1:" in r.stdout
    )


def test_identity_info_and_ls(kes: KesServer) -> None:
    r = kes.kes("identity", "info", api_key=kes.user)
    lines = r.stdout.splitlines()
    assert lines[0] == f"Identity    {kes.user.identity}"
    assert "Role        User" in lines
    assert f"Created By  {kes.admin.identity}" in lines
    assert "Policy      reader" in lines
    bullets = [line.strip() for line in lines if line.strip().startswith("·")]
    assert bullets[: len(READER_ALLOW)] == [f"· {p}" for p in READER_ALLOW]

    r = kes.kes("identity", "info", kes.user.identity)
    assert r.stdout.splitlines()[1] == "Policy      reader"
    r = kes.kes("identity", "info", "--json")
    assert json.loads(r.stdout) == {
        "identity": kes.admin.identity,
        "admin": True,
        "created_at": json.loads(r.stdout)["created_at"],
    }
    assert error_line(kes.kes("identity", "info", "ab" * 32)) == "identity does not exist"

    r = kes.kes("identity", "ls")
    assert r.stdout == "Identity\n" + "".join(
        f"{i}\n" for i in sorted([kes.admin.identity, kes.user.identity])
    )
    r = kes.kes("identity", "ls", "--json", kes.user.identity[:6] + "*")
    assert json.loads(r.stdout) == [kes.user.identity]


def test_tool_identity_alias(tmp_path: Path) -> None:
    key_file, cert_file = tmp_path / "old.key", tmp_path / "old.crt"
    r = kes_offline(
        "tool",
        "identity",
        "new",
        "--key",
        str(key_file),
        "--cert",
        str(cert_file),
        "-t",
        "1h",
        "--server",
        "Old-Client",
    )
    assert r.returncode == 0, r.stderr
    identity = kes_offline("identity", "of", str(cert_file)).stdout
    assert kes_offline("tool", "identity", "of", str(cert_file)).stdout == identity
    spki = (
        _cert(cert_file)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    r = run_kes(
        "tool",
        "identity",
        "of",
        "--hash",
        "SHA512",
        "-",
        env=clean_env(),
        stdin=cert_file.read_text(),
    )
    assert r.stdout == hashlib.sha512(spki).hexdigest()
