"""Certificates and private keys: self-signed certificates, legacy PEM encryption.

* :func:`self_signed_server_certificate` — the ephemeral ``kes server --dev``
  certificate (docs/compat/cli.md §3).
* :func:`new_identity_certificate` — ``kes identity new --key --cert`` (docs/compat/auth.md §8).
* :func:`build_self_signed_certificate` — the shared builder, modelled on Go's
  ``x509.CreateCertificate`` as used by the KES SDK's ``GenerateCertificate``.
* :func:`encrypt_private_key_pem_legacy` / :func:`load_private_key_pem` — RFC 1423
  ``Proc-Type: 4,ENCRYPTED`` PEM keys (Go's ``x509.EncryptPEMBlock`` /
  ``DecryptPEMBlock``) used by ``kes identity new --encrypt`` and ``tls.password``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pykes.pki.identity import PEMBlock, decode_pem_blocks, identity_of_certificate

__all__ = [
    "build_self_signed_certificate",
    "certificate_to_pem",
    "encrypt_private_key_pem_legacy",
    "load_private_key_pem",
    "new_identity_certificate",
    "private_key_to_pem",
    "random_serial_number",
    "self_signed_server_certificate",
]

# Go's asn1 marshals a string as PrintableString when every character is in this set
# (no '*' or '&') and as UTF8String otherwise.
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")


def random_serial_number() -> int:
    """Return a random certificate serial number in ``[1, 2^128)``.

    Go uses ``rand.Int(2^128)``; zero is excluded because X.509 (and ``cryptography``)
    require a positive serial number.
    """
    return secrets.randbelow((1 << 128) - 1) + 1


def _common_name(value: str) -> x509.Name:
    """Return ``CN=value`` encoded with the ASN.1 string type Go would choose."""
    asn1_type = _ASN1Type.PrintableString if _PRINTABLE.fullmatch(value) else None
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value, asn1_type)])


def _signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.HashAlgorithm | None:
    """Hash used by Go for the key's signature (none for Ed25519/Ed448, SHA-256 else)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = key.curve.key_size
        if size > 384:
            return hashes.SHA512()
        return hashes.SHA384() if size > 256 else hashes.SHA256()
    if isinstance(key, rsa.RSAPrivateKey):
        return hashes.SHA256()
    raise TypeError(f"unsupported private key type: {type(key).__name__}")


def build_self_signed_certificate(
    private_key: CertificateIssuerPrivateKeyTypes,
    *,
    common_name: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ext_key_usage: Sequence[x509.ObjectIdentifier],
    ips: Sequence[str] = (),
    dns_names: Sequence[str] = (),
) -> bytes:
    """Create a self-signed, non-CA certificate and return its DER bytes.

    The layout mirrors Go's ``x509.CreateCertificate`` for a template with
    ``KeyUsage: DigitalSignature``, ``ExtKeyUsage``, ``BasicConstraintsValid: true``:
    extensions keyUsage (critical), extKeyUsage, basicConstraints (critical, cA=false),
    then subjectAltName (DNS names before IPs); no key identifiers.
    """
    name = _common_name(common_name)
    builder = (
        x509.CertificateBuilder()
        .serial_number(random_serial_number())
        .subject_name(name)
        .issuer_name(name)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .public_key(private_key.public_key())
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if ext_key_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ext_key_usage)), False)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(private_key, _signature_hash(private_key))
    return cert.public_bytes(serialization.Encoding.DER)


def _pem(block_type: str, der: bytes, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """Encode one PEM block like Go's ``pem.Encode`` (64-column base64)."""
    b64 = base64.b64encode(der)
    lines = [f"-----BEGIN {block_type}-----\n".encode()]
    if headers:
        lines += [f"{k}: {v}\n".encode() for k, v in headers]
        lines.append(b"\n")
    lines += [b64[i : i + 64] + b"\n" for i in range(0, len(b64), 64)]
    lines.append(f"-----END {block_type}-----\n".encode())
    return b"".join(lines)


def private_key_to_pem(private_key: PrivateKeyTypes) -> bytes:
    """Return the unencrypted PKCS#8 PEM (``PRIVATE KEY``) of a private key."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_to_pem(der: bytes) -> bytes:
    """Return the PEM (``CERTIFICATE``) encoding of a DER certificate."""
    return _pem("CERTIFICATE", der)


def self_signed_server_certificate(
    ips: Sequence[str],
    dns_names: Sequence[str] = (),
    days: int = 90,
    common_name: str = "localhost",
) -> tuple[bytes, bytes]:
    """Return ``(cert PEM, PKCS#8 key PEM)`` of an ephemeral TLS server certificate.

    ECDSA P-256, ``CN=common_name``, SANs = ``dns_names`` and ``ips``, EKU serverAuth,
    keyUsage digitalSignature, cA=false, valid from now until now + ``days``.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    der = build_self_signed_certificate(
        key,
        common_name=common_name,
        not_before=now,
        not_after=now + dt.timedelta(days=days),
        ext_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH],
        ips=ips,
        dns_names=dns_names,
    )
    return certificate_to_pem(der), private_key_to_pem(key)


def _generate_key(key_type: str) -> CertificateIssuerPrivateKeyTypes:
    kind = key_type.lower()
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported key type '{key_type}': use ed25519, ecdsa or rsa")


def new_identity_certificate(
    *,
    key_type: str = "ed25519",
    subject: str | None = None,
    ips: Sequence[str] = (),
    dns: Sequence[str] = (),
    expiry_seconds: float = 720 * 3600,
    private_key: CertificateIssuerPrivateKeyTypes | None = None,
) -> tuple[bytes, bytes, str]:
    """Create a client identity: ``(cert PEM, PKCS#8 key PEM, identity)``.

    As ``kes identity new --key --cert`` (docs/compat/auth.md §8): self-signed, serial random
    < 2^128, ``CN = subject`` or the identity hex, validity now … now +
    ``expiry_seconds``, keyUsage digitalSignature, EKU clientAuth + serverAuth,
    basicConstraints cA=false, SANs from ``dns``/``ips``.

    ``key_type`` selects a fresh ``ed25519`` (default, like the CLI), ``ecdsa``
    (P-256) or ``rsa`` (2048 bit) key; pass ``private_key`` (e.g.
    ``APIKey.private_key``) to use an existing key instead.
    """
    key = private_key if private_key is not None else _generate_key(key_type)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = dt.datetime.now(dt.UTC)
    der = build_self_signed_certificate(
        key,
        common_name=subject if subject else hashlib.sha256(spki).hexdigest(),
        not_before=now,
        not_after=now + dt.timedelta(seconds=expiry_seconds),
        ext_key_usage=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
        ips=ips,
        dns_names=dns,
    )
    return certificate_to_pem(der), private_key_to_pem(key), identity_of_certificate(der)


# --- RFC 1423 legacy PEM encryption -------------------------------------------------

# DEK-Info cipher name -> (algorithm factory, key size in bytes, block size in bytes).
# The same set as Go's x509 rfc1423Algos.
_LEGACY_CIPHERS = {
    "DES-CBC": ("des", 8, 8),
    "DES-EDE3-CBC": ("3des", 24, 8),
    "AES-128-CBC": ("aes", 16, 16),
    "AES-192-CBC": ("aes", 24, 16),
    "AES-256-CBC": ("aes", 32, 16),
}


def _legacy_cipher(name: str, key: bytes, iv: bytes) -> Cipher:
    kind = _LEGACY_CIPHERS[name][0]
    if kind == "aes":
        return Cipher(algorithms.AES(key), modes.CBC(iv))
    # DES/3DES live in the "decrepit" module in newer cryptography releases.
    try:
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    except ImportError:  # pragma: no cover - older cryptography
        from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
    # Single DES = 3DES with K1 = K2 = K3.
    return Cipher(TripleDES(key * 3 if kind == "des" else key), modes.CBC(iv))


def _derive_legacy_key(password: bytes, salt: bytes, size: int) -> bytes:
    """OpenSSL ``EVP_BytesToKey`` with MD5 and one iteration (Go's ``deriveKey``)."""
    out = b""
    digest = b""
    while len(out) < size:
        digest = hashlib.md5(digest + password + salt, usedforsecurity=False).digest()
        out += digest
    return out[:size]


def encrypt_private_key_pem_legacy(key_pem: bytes, password: bytes) -> bytes:
    """Encrypt the first private-key PEM block with RFC 1423 AES-256-CBC.

    Equivalent to Go's ``x509.EncryptPEMBlock(rand, type, der, password,
    PEMCipherAES256)``: the block type is kept (``PRIVATE KEY`` for PKCS#8), headers are
    ``Proc-Type: 4,ENCRYPTED`` and ``DEK-Info: AES-256-CBC,<hex IV>``; the key is
    ``EVP_BytesToKey(MD5, password, salt = IV[:8])``; PKCS#7 padding.
    """
    block = _first_private_key_block(key_pem)
    iv = os.urandom(16)
    key = _derive_legacy_key(bytes(password), iv[:8], 32)
    pad = 16 - len(block.der) % 16
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(block.der + bytes([pad]) * pad) + encryptor.finalize()
    headers = [("Proc-Type", "4,ENCRYPTED"), ("DEK-Info", "AES-256-CBC," + iv.hex())]
    return _pem(block.type, ciphertext, headers)


def _decrypt_legacy(block: PEMBlock, password: bytes) -> bytes:
    """Decrypt an RFC 1423 encrypted PEM block (Go's ``x509.DecryptPEMBlock``)."""
    name, sep, iv_hex = block.headers.get("DEK-Info", "").partition(",")
    if not sep or name not in _LEGACY_CIPHERS:
        raise ValueError("x509: unknown encryption mode")
    try:
        iv = bytes.fromhex(iv_hex)
    except ValueError:
        raise ValueError("x509: malformed DEK-Info header") from None
    _, key_size, block_size = _LEGACY_CIPHERS[name]
    if len(iv) != block_size:
        raise ValueError("x509: incorrect IV size")
    data = block.der
    if not data or len(data) % block_size:
        raise ValueError("x509: encrypted PEM data is not a multiple of the block size")
    key = _derive_legacy_key(password, iv[:8], key_size)
    decryptor = _legacy_cipher(name, key, iv).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 0 < pad <= block_size or not hmac.compare_digest(plain[-pad:], bytes([pad]) * pad):
        raise ValueError("x509: decryption password incorrect")
    return plain[:-pad]


def _first_private_key_block(data: bytes) -> PEMBlock:
    """Return the first ``PRIVATE KEY`` / ``* PRIVATE KEY`` PEM block (as Go's KES)."""
    for block in decode_pem_blocks(data):
        if block.type == "PRIVATE KEY" or block.type.endswith(" PRIVATE KEY"):
            return block
    raise ValueError("https: no private key found")


def load_private_key_pem(data: bytes, password: bytes | str | None = None) -> PrivateKeyTypes:
    """Load the first ``PRIVATE KEY`` / ``* PRIVATE KEY`` block of ``data``.

    Accepts PKCS#8, PKCS#1 RSA and SEC1 EC keys. A legacy-encrypted block
    (``Proc-Type: 4,ENCRYPTED``) is decrypted with ``password``; a missing/empty
    password raises ``ValueError("https: private key is encrypted: password required")``.
    PKCS#8 ``ENCRYPTED PRIVATE KEY`` blocks are not supported (as in KES).
    """
    block = _first_private_key_block(data)
    der = block.der
    if block.headers.get("Proc-Type") == "4,ENCRYPTED":
        if not password:
            raise ValueError("https: private key is encrypted: password required")
        if isinstance(password, str):
            password = password.encode()
        der = _decrypt_legacy(block, password)
    if block.type == "ENCRYPTED PRIVATE KEY":
        raise ValueError("https: encrypted PKCS#8 private keys are not supported")
    try:
        return serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:  # e.g. an unknown EC curve
        raise ValueError(f"https: failed to parse private key: {err}") from None
    except InternalError:  # OpenSSL refusing the key data (an X448 OID on a 32-byte key)
        raise ValueError("https: failed to parse private key: invalid key data") from None
