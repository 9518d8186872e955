"""Self-signed certificates and (legacy-encrypted) private keys.

docs/compat/cli.md §3 (``--dev`` certificate), auth.md §8 (``kes identity new``),
docs/compat/config.md (``tls.key`` / ``tls.password``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pykes.pki import (
    APIKey,
    encrypt_private_key_pem_legacy,
    identity_of_certificate,
    load_private_key_pem,
    new_identity_certificate,
    self_signed_server_certificate,
)
from pykes.pki.certs import _derive_legacy_key

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


def _public_der(key) -> bytes:
    return key.public_key().public_bytes(DER, SPKI)


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return ips, san.get_values_for_type(x509.DNSName)


def _common_name(cert: x509.Certificate) -> str:
    (attr,) = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attr.value)


def _pem_of(key, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(PEM, fmt, serialization.NoEncryption())


def _same_key(a, b) -> bool:
    return _public_der(a) == _public_der(b)


# --- `kes server --dev` certificate -------------------------------------------------


def test_server_certificate_fields() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert_pem, key_pem = self_signed_server_certificate(["127.0.0.1", "::1", "10.1.2.3"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert _public_der(key) == cert.public_key().public_bytes(DER, SPKI)
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")

    assert _common_name(cert) == "localhost"
    assert cert.issuer == cert.subject
    ips, dns = _sans(cert)
    assert ips == ["127.0.0.1", "::1", "10.1.2.3"]
    assert dns == []  # dev mode: IP SANs only
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert before <= cert.not_valid_before_utc <= dt.datetime.now(dt.UTC)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=90)
    assert 0 < cert.serial_number < 2**128


def test_server_certificate_dns_names_and_days() -> None:
    cert_pem, _ = self_signed_server_certificate(
        ["192.0.2.1"], dns_names=["kes.example", "localhost"], days=7, common_name="kes"
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert _sans(cert) == (["192.0.2.1"], ["kes.example", "localhost"])
    assert _common_name(cert) == "kes"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=7)


def test_server_certificate_serves_tls(tmp_path: Path) -> None:
    """The dev certificate works for a real TLS 1.2+ handshake with IP hostname checks."""
    cert_pem, key_pem = self_signed_server_certificate(["127.0.0.1"])
    (tmp_path / "c.pem").write_bytes(cert_pem)
    (tmp_path / "k.pem").write_bytes(key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cadata=cert_pem.decode())

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.recv(2) == b"ok"
            peer = tls.getpeercert(binary_form=True)
            assert peer is not None
            server_spki = x509.load_pem_x509_certificate(cert_pem).public_key()
            expected = hashlib.sha256(server_spki.public_bytes(DER, SPKI)).hexdigest()
            assert identity_of_certificate(peer) == expected
    finally:
        thread.join(10)
        listener.close()


# --- `kes identity new --key --cert` ------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "key_class"),
    [
        ("ed25519", ed25519.Ed25519PrivateKey),
        ("ecdsa", ec.EllipticCurvePrivateKey),
        ("rsa", rsa.RSAPrivateKey),
    ],
)
def test_new_identity_certificate(key_type: str, key_class: type) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert_pem, key_pem, identity = new_identity_certificate(key_type=key_type)
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)

    assert isinstance(key, key_class)
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8
    if key_type == "ecdsa":
        assert isinstance(key.curve, ec.SECP256R1)
    if key_type == "rsa":
        assert key.key_size == 2048
    assert identity == hashlib.sha256(_public_der(key)).hexdigest()
    assert identity == identity_of_certificate(cert.public_bytes(DER))
    assert _common_name(cert) == identity  # no subject -> CN = identity
    assert cert.issuer == cert.subject
    assert 0 < cert.serial_number < 2**128
    assert cert.version == x509.Version.v3
    assert before <= cert.not_valid_before_utc <= dt.datetime.now(dt.UTC)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=720)

    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_new_identity_certificate_options() -> None:
    cert_pem, _, identity = new_identity_certificate(
        subject="Client-1",
        ips=["192.168.0.182", "10.0.0.92"],
        dns=["client.example"],
        expiry_seconds=3600.0,
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert _common_name(cert) == "Client-1"
    assert identity_of_certificate(cert.public_bytes(DER)) == identity
    assert _sans(cert) == (["192.168.0.182", "10.0.0.92"], ["client.example"])
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=1)


def test_new_identity_certificate_for_api_key() -> None:
    key = APIKey.generate()
    cert_pem, key_pem, identity = new_identity_certificate(private_key=key.private_key)
    assert identity == key.identity
    loaded = load_private_key_pem(key_pem)
    assert isinstance(loaded, ed25519.Ed25519PrivateKey)
    assert str(APIKey(loaded)) == str(key)  # `kes identity <key file>` -> API key
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert identity_of_certificate(cert.public_bytes(DER)) == key.identity


def test_new_identity_certificate_rejects_unknown_key_type() -> None:
    with pytest.raises(ValueError):
        new_identity_certificate(key_type="dsa")


def test_subject_string_type_follows_go() -> None:
    """Printable subjects use PrintableString (like Go), others UTF8String."""
    for subject, tag in [("Client-1", 0x13), ("client_1", 0x0C), ("Grüße", 0x0C)]:
        cert_pem, _, _ = new_identity_certificate(subject=subject)
        cert = x509.load_pem_x509_certificate(cert_pem)
        assert _common_name(cert) == subject
        encoded = subject.encode()
        raw = cert.public_bytes(DER)
        assert bytes([tag, len(encoded)]) + encoded in raw


# --- legacy (RFC 1423) PEM encryption -------------------------------------------------

HEADER_RE = re.compile(
    rb"-----BEGIN (?P<type>[A-Z ]+)-----\n"
    rb"Proc-Type: 4,ENCRYPTED\n"
    rb"DEK-Info: AES-256-CBC,(?P<iv>[0-9a-f]{32})\n\n"
)


def _all_key_pems():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    pkcs8, trad = serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL
    return [
        ("PRIVATE KEY", ed_key, _pem_of(ed_key, pkcs8)),
        ("PRIVATE KEY", ec_key, _pem_of(ec_key, pkcs8)),
        ("PRIVATE KEY", rsa_key, _pem_of(rsa_key, pkcs8)),
        ("EC PRIVATE KEY", ec_key, _pem_of(ec_key, trad)),
        ("RSA PRIVATE KEY", rsa_key, _pem_of(rsa_key, trad)),
    ]


@pytest.mark.parametrize(
    ("block_type", "key", "plain"),
    _all_key_pems(),
    ids=["pkcs8-ed25519", "pkcs8-ecdsa", "pkcs8-rsa", "sec1-ecdsa", "pkcs1-rsa"],
)
def test_legacy_encryption_round_trip_and_openssl_compat(block_type, key, plain) -> None:
    encrypted = encrypt_private_key_pem_legacy(plain, b"s3cret")
    m = HEADER_RE.match(encrypted)
    assert m is not None, encrypted[:120]
    assert m.group("type").decode() == block_type
    assert encrypted.rstrip().endswith(f"-----END {block_type}-----".encode())
    assert plain.split(b"\n")[1] not in encrypted

    # Our loader.
    assert _same_key(load_private_key_pem(encrypted, b"s3cret"), key)
    assert _same_key(load_private_key_pem(encrypted, "s3cret"), key)
    # OpenSSL (through cryptography) reads the same format: compatible KDF, cipher, padding.
    assert _same_key(serialization.load_pem_private_key(encrypted, b"s3cret"), key)
    with pytest.raises((ValueError, TypeError)):
        serialization.load_pem_private_key(encrypted, b"wrong")

    required = r"^https: private key is encrypted: password required$"
    for missing in (None, b"", ""):
        with pytest.raises(ValueError, match=required):
            load_private_key_pem(encrypted, missing)


def test_legacy_encryption_uses_fresh_iv() -> None:
    plain = _pem_of(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8)
    first = encrypt_private_key_pem_legacy(plain, b"pw")
    second = encrypt_private_key_pem_legacy(plain, b"pw")
    assert HEADER_RE.match(first).group("iv") != HEADER_RE.match(second).group("iv")


def test_wrong_password_rejected() -> None:
    plain = _pem_of(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
    encrypted = encrypt_private_key_pem_legacy(plain, b"right")
    for attempt in [b"wrong", b"Right", b"righ", b"right\n"]:
        with pytest.raises(ValueError):
            load_private_key_pem(encrypted, attempt)


def test_evp_bytes_to_key_known_answer() -> None:
    # `openssl enc -aes-256-cbc -md md5 -pass pass:secret -S 0001020304050607 -P`
    key = _derive_legacy_key(b"secret", bytes.fromhex("0001020304050607"), 32)
    expected = "035FB8145B73CF111570DC936112BE9C375A5D3D8B915BC213BDBEF9DBFB7851"
    assert key.hex().upper() == expected
    # The 3DES variant (24 bytes) is a prefix of the same stream.
    assert _derive_legacy_key(b"secret", bytes.fromhex("0001020304050607"), 24) == key[:24]


# Produced by `openssl ec -aes256 -passout pass:secret` (OpenSSL 3.0) from KAT_PLAIN.
KAT_PLAIN = b"""-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIBySJGxYwiFaD1B9jhx5549Gpxfgfwm8jQEYtBjL1L5roAoGCCqGSM49
AwEHoUQDQgAErtDRT3iM3MWTX9nNRkvAJotp+XO6MsP9Y2IMC1ZXoV9GaSdSB5It
u2U4hdh2P3GB/5uZoaAx0Wt4c4gn7YOCsA==
-----END EC PRIVATE KEY-----
"""
KAT_ENCRYPTED = b"""-----BEGIN EC PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-256-CBC,F9BC52F72A5968FB88C253BF297B0994

DKiZ8f2QC00Ipz3shu5DsDU/VHOknLx+Ex/uD68etvLUMpV7MpbCJtnavsuKzAfq
i3DyObEHLSK52kgg50qL+yhpld+bfTDfv/gummWT9e7eo9JduPG85wdKJm2MeJKW
fTSCePugG0ssx96M+PRJhtDBeUy7MNKR2ldXwTu9BbI=
-----END EC PRIVATE KEY-----
"""


def test_loads_openssl_encrypted_key_known_answer() -> None:
    expected = serialization.load_pem_private_key(KAT_PLAIN, password=None)
    assert _same_key(load_private_key_pem(KAT_ENCRYPTED, b"secret"), expected)
    with pytest.raises(ValueError):
        load_private_key_pem(KAT_ENCRYPTED, b"Secret")


def test_loads_cryptography_traditional_encrypted_keys() -> None:
    for key in [ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)]:
        encrypted = key.private_bytes(
            PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"pw"),
        )
        assert b"Proc-Type: 4,ENCRYPTED" in encrypted
        assert _same_key(load_private_key_pem(encrypted, b"pw"), key)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
@pytest.mark.parametrize("cipher", ["-aes128", "-aes192", "-aes256", "-des3"])
def test_loads_openssl_cli_ciphers(cipher: str) -> None:
    result = subprocess.run(
        ["openssl", "genrsa", cipher, "-traditional", "-passout", "pass:pw", "1024"],
        capture_output=True,
    )
    if result.returncode != 0:
        pytest.skip(f"openssl genrsa {cipher} -traditional unsupported: {result.stderr!r}")
    assert b"Proc-Type: 4,ENCRYPTED" in result.stdout
    # Reference: OpenSSL's own decryption (cryptography lacks e.g. legacy AES-192).
    public_der = subprocess.run(
        ["openssl", "pkey", "-passin", "pass:pw", "-pubout", "-outform", "DER"],
        input=result.stdout,
        capture_output=True,
        check=True,
    ).stdout
    assert _public_der(load_private_key_pem(result.stdout, b"pw")) == public_der


# --- private key loading ---------------------------------------------------------------


def test_loads_unencrypted_formats() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    pkcs8, trad = serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL
    for key, fmt in [(ed_key, pkcs8), (ec_key, pkcs8), (ec_key, trad), (rsa_key, trad)]:
        assert _same_key(load_private_key_pem(_pem_of(key, fmt)), key)
        # A password for an unencrypted key is ignored.
        assert _same_key(load_private_key_pem(_pem_of(key, fmt), b"unused"), key)


def test_first_private_key_block_is_used() -> None:
    first = ec.generate_private_key(ec.SECP256R1())
    second = ed25519.Ed25519PrivateKey.generate()
    cert_pem, _, _ = new_identity_certificate()
    data = (
        b"# comment\n"
        + cert_pem
        + _pem_of(first, serialization.PrivateFormat.TraditionalOpenSSL)
        + _pem_of(second, serialization.PrivateFormat.PKCS8)
    )
    assert _same_key(load_private_key_pem(data), first)


def test_private_key_errors() -> None:
    cert_pem, _, _ = new_identity_certificate()
    with pytest.raises(ValueError):
        load_private_key_pem(cert_pem)  # no key block
    with pytest.raises(ValueError):
        load_private_key_pem(b"")
    with pytest.raises(ValueError):
        load_private_key_pem(b"-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n")
    pkcs8_encrypted = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert pkcs8_encrypted.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(ValueError):  # PKCS#8 encryption is not supported (as in KES)
        load_private_key_pem(pkcs8_encrypted, b"pw")


def test_unknown_dek_info_rejected() -> None:
    plain = _pem_of(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
    encrypted = encrypt_private_key_pem_legacy(plain, b"pw")
    for bad in [b"DEK-Info: AES-512-CBC,", b"DEK-Info: AES-256-CBC,zz"]:
        broken = re.sub(rb"DEK-Info: AES-256-CBC,", bad, encrypted)
        with pytest.raises(ValueError):
            load_private_key_pem(broken, b"pw")
    short_iv = re.sub(rb"(DEK-Info: AES-256-CBC,)([0-9a-f]{32})", rb"\g<1>00", encrypted)
    with pytest.raises(ValueError):
        load_private_key_pem(short_iv, b"pw")


def test_ipv6_and_ipv4_sans_round_trip() -> None:
    cert_pem, _ = self_signed_server_certificate(["::1", "127.0.0.1"])
    ips, _ = _sans(x509.load_pem_x509_certificate(cert_pem))
    assert [ipaddress.ip_address(ip) for ip in ips] == [
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("127.0.0.1"),
    ]
