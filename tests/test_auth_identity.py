"""Certificate identities: SHA-256 of the raw SPKI DER (docs/compat/auth.md §1)."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from pykes.pki import (
    decode_pem_blocks,
    identity_of_certificate,
    identity_of_pem_file,
    is_ca_certificate,
    spki_of_certificate,
)

DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


# --- helpers: certificates built independently of pykes ---------------------------


def _key(kind: str):
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise AssertionError(kind)


def _cert(key, *, cn: str = "test", serial: int = 1, days: int = 1, ca: bool | None = False):
    """Build a self-signed certificate with cryptography's own builder."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .public_key(key.public_key())
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def _spki_sha256(key) -> str:
    return hashlib.sha256(key.public_key().public_bytes(DER, SPKI)).hexdigest()


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(value)) + value


def _children(der: bytes) -> list[bytes]:
    """Split the content of a DER SEQUENCE into its complete child TLVs (test-only)."""
    assert der[0] == 0x30
    pos = 1
    if der[pos] < 0x80:
        length, pos = der[pos], pos + 1
    else:
        count = der[pos] & 0x7F
        length = int.from_bytes(der[pos + 1 : pos + 1 + count], "big")
        pos += 1 + count
    end = pos + length
    out = []
    while pos < end:
        start = pos
        pos += 1
        if der[pos] < 0x80:
            size, pos = der[pos], pos + 1
        else:
            count = der[pos] & 0x7F
            size = int.from_bytes(der[pos + 1 : pos + 1 + count], "big")
            pos += 1 + count
        pos += size
        out.append(der[start:pos])
    return out


def _resign_ecdsa(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, edit) -> bytes:
    """Rebuild ``cert`` with its TBS children changed by ``edit`` and sign it again."""
    parts = _children(cert.public_bytes(DER))  # [tbs, sigAlg, signature]
    tbs = _tlv(0x30, b"".join(edit(_children(parts[0]))))
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return _tlv(0x30, tbs + parts[1] + _tlv(0x03, b"\x00" + signature))


# --- identity of certificates -------------------------------------------------------


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa"])
def test_identity_is_sha256_of_spki(kind: str) -> None:
    key = _key(kind)
    der = _cert(key).public_bytes(DER)
    identity = identity_of_certificate(der)
    assert identity == _spki_sha256(key)
    assert len(identity) == 64 and identity == identity.lower()
    assert spki_of_certificate(der) == key.public_key().public_bytes(DER, SPKI)


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256", "rsa"])
def test_identity_stable_across_reissued_certificates(kind: str) -> None:
    key = _key(kind)
    a = _cert(key, cn="first", serial=1, days=1).public_bytes(DER)
    b = _cert(key, cn="second", serial=987654321, days=365, ca=None).public_bytes(DER)
    assert a != b
    assert identity_of_certificate(a) == identity_of_certificate(b)
    other = _cert(_key(kind)).public_bytes(DER)
    assert identity_of_certificate(other) != identity_of_certificate(a)


def test_ed25519_spki_is_44_bytes_with_spec_prefix() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    spki = spki_of_certificate(_cert(key).public_bytes(DER))
    assert len(spki) == 44
    assert spki[:12] == bytes.fromhex("302A300506032B6570032100")
    assert spki[12:] == key.public_key().public_bytes_raw()


def test_compressed_ec_point_hashes_raw_spki() -> None:
    """A certificate with a compressed EC point: the raw (compressed) SPKI is hashed."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    uncompressed_spki = public.public_bytes(DER, SPKI)
    point = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    algorithm_id = _children(uncompressed_spki)[0]  # ecPublicKey + prime256v1
    compressed_spki = _tlv(0x30, algorithm_id + _tlv(0x03, b"\x00" + point))
    assert len(compressed_spki) == 59

    def swap_spki(children: list[bytes]) -> list[bytes]:
        index = children.index(uncompressed_spki)
        return children[:index] + [compressed_spki] + children[index + 1 :]

    der = _resign_ecdsa(_cert(key), key, swap_spki)
    # The hand-made certificate is valid: cryptography parses it and the signature verifies.
    parsed = x509.load_der_x509_certificate(der)
    public.verify(parsed.signature, parsed.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    # Re-encoding the parsed key yields the uncompressed form - that would be wrong.
    assert parsed.public_key().public_bytes(DER, SPKI) == uncompressed_spki

    assert spki_of_certificate(der) == compressed_spki
    assert identity_of_certificate(der) == hashlib.sha256(compressed_spki).hexdigest()
    assert identity_of_certificate(der) != hashlib.sha256(uncompressed_spki).hexdigest()


def test_v1_certificate_without_version_field() -> None:
    key = ec.generate_private_key(ec.SECP256R1())

    def drop_version_and_extensions(children: list[bytes]) -> list[bytes]:
        assert children[0][0] == 0xA0 and children[-1][0] == 0xA3
        return children[1:-1]

    der = _resign_ecdsa(_cert(key), key, drop_version_and_extensions)
    assert x509.load_der_x509_certificate(der).version == x509.Version.v1
    assert identity_of_certificate(der) == _spki_sha256(key)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_identity_matches_openssl(tmp_path: Path) -> None:
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        + ["-nodes", "-subj", "/CN=x", "-days", "1"]
        + ["-keyout", str(key_file), "-out", str(cert_file)],
        check=True,
        capture_output=True,
    )
    spki = subprocess.run(
        ["openssl", "x509", "-in", str(cert_file), "-noout", "-pubkey"],
        check=True,
        capture_output=True,
    ).stdout
    spki_der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"],
        input=spki,
        check=True,
        capture_output=True,
    ).stdout
    assert identity_of_pem_file(str(cert_file)) == hashlib.sha256(spki_der).hexdigest()


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30",
        b"\x30\x03\x02\x01",  # truncated
        b"\x31\x00",  # SET instead of SEQUENCE
        b"\x30\x80\x00\x00",  # indefinite length
        b"\x30\x00",  # empty certificate
        b"\x30\x02\x30\x00",  # empty TBS
        b"\x30\x84\xff\xff\xff\xff",  # length beyond the data
        b"\x30\x89" + b"\x01" * 9,  # absurd length-of-length
        b"not a certificate",
    ],
)
def test_malformed_der_raises_value_error(der: bytes) -> None:
    with pytest.raises(ValueError):
        identity_of_certificate(der)


def test_trailing_data_and_wrong_field_tags_rejected() -> None:
    der = _cert(ec.generate_private_key(ec.SECP256R1())).public_bytes(DER)
    with pytest.raises(ValueError):
        identity_of_certificate(der + b"\x00")
    with pytest.raises(ValueError):
        identity_of_certificate(der[:-1])
    key = ec.generate_private_key(ec.SECP256R1())
    no_serial = _resign_ecdsa(_cert(key), key, lambda c: [c[0]] + c[2:])
    with pytest.raises(ValueError):
        identity_of_certificate(no_serial)


# --- CA detection ------------------------------------------------------------------


def test_is_ca_certificate() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    assert is_ca_certificate(_cert(key, ca=True).public_bytes(DER)) is True
    assert is_ca_certificate(_cert(key, ca=False).public_bytes(DER)) is False
    assert is_ca_certificate(_cert(key, ca=None).public_bytes(DER)) is False
    with pytest.raises(ValueError):
        is_ca_certificate(b"\x30\x00")


# --- PEM files -----------------------------------------------------------------------


def test_identity_of_pem_file_uses_first_certificate(tmp_path: Path) -> None:
    first, second = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    key_pem = first.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    content = (
        b"some text before\n"
        + key_pem
        + _cert(first).public_bytes(serialization.Encoding.PEM)
        + _cert(second).public_bytes(serialization.Encoding.PEM)
    )
    path = tmp_path / "chain.pem"
    path.write_bytes(content)
    assert identity_of_pem_file(str(path)) == _spki_sha256(first)


def test_identity_of_pem_file_without_certificate(tmp_path: Path) -> None:
    path = tmp_path / "empty.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError):
        identity_of_pem_file(str(path))
    with pytest.raises(OSError):
        identity_of_pem_file(str(tmp_path / "missing.pem"))


def test_decode_pem_blocks_skips_malformed_blocks() -> None:
    data = (
        b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
        b"-----BEGIN CERTIFICATE-----\nunterminated\n"
        b"-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\n"
        b"DEK-Info: AES-128-CBC,00\r\n\r\nQUJD\r\nREVG\r\n-----END RSA PRIVATE KEY-----\r\n"
        b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"
    )
    blocks = decode_pem_blocks(data)
    assert [(b.type, b.der) for b in blocks] == [
        ("RSA PRIVATE KEY", b"ABCDEF"),
        ("CERTIFICATE", b"ABC"),
    ]
    assert blocks[0].headers == {"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}
