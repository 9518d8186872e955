"""Fuzzing certificate / identity parsing (``pykes.pki.identity``, ``pykes.pki.certs``).

Properties, on mutated real certificates and keys (made by ``cryptography``, PEM and
DER) and random bytes:

* ``identity_of_certificate`` returns 64 lowercase hex characters or raises
  ``ValueError``; whenever ``cryptography`` parses the same bytes (strict DER) and
  yields a public key, the identity equals the SHA-256 of that key's SPKI.
* ``decode_pem_blocks`` never raises; a PEM certificate's block is its DER.
* ``is_ca_certificate`` returns a bool or raises ``ValueError``.
* ``load_private_key_pem`` returns a private key or raises ``ValueError``.
* the TLS-proxy header parser (``pykes.auth.proxy``) answers a certificate or
  ``400 invalid client certificate`` and never raises.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import tempfile
from pathlib import Path
from urllib.parse import quote_from_bytes

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzz_corpus import corpus, edits, mutate, with_examples
from pykes.auth.proxy import ERR_INVALID, _parse_forwarded
from pykes.pki.certs import load_private_key_pem
from pykes.pki.identity import (
    decode_pem_blocks,
    identity_of_certificate,
    identity_of_pem_file,
    is_ca_certificate,
)

CERTS = corpus("certificate")
DER = [data for name, data in CERTS if name.endswith(".der")]
PEM = [data for name, data in CERTS if name.endswith(".pem")]
KEYS = corpus("private_key")
PASSWORD = b"fuzz-password"
HEX64 = re.compile(r"[0-9a-f]{64}")
DER_TOKENS = (b"\x30\x80", b"\x30\x84\xff\xff\xff\xff", b"\x30\x00", b"\x02\x01\x00", b"\xa0\x03",
              b"\x1f\xff", b"\x81", b"\x82\xff\xff", b"\x00\x00")  # fmt: skip
PEM_TOKENS = (b"-----BEGIN CERTIFICATE-----\n", b"-----END CERTIFICATE-----\n", b"-----",
              b"Proc-Type: 4,ENCRYPTED\n", b"DEK-Info: AES-256-CBC,00\n", b"DEK-Info: DES-CBC,",
              b"\n\n", b"=", b":", b"\r\n")  # fmt: skip
WORKDIR = Path(tempfile.mkdtemp(prefix="pykes-fuzz-identity-"))


def _reference_identity(der: bytes) -> str | None:
    """The identity by ``cryptography`` (re-encoded SPKI), or None if it rejects the DER."""
    try:
        key = x509.load_der_x509_certificate(der).public_key()
        spki = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except Exception:  # the reference may reject anything
        return None
    return hashlib.sha256(spki).hexdigest()


def _check_der(der: bytes) -> None:
    try:
        identity = identity_of_certificate(der)
    except ValueError as err:
        assert str(err), "empty error"
        reference = _reference_identity(der)
        assert reference is None, f"cryptography parses a certificate we reject: {err}"
    else:
        assert HEX64.fullmatch(identity), identity
        reference = _reference_identity(der)
        assert reference is None or reference == identity
    with contextlib.suppress(ValueError):
        assert is_ca_certificate(der) in (True, False)


@with_examples([{"index": i, "changes": []} for i in range(len(DER))])
@given(index=st.integers(0, len(DER) - 1), changes=edits)
def test_mutated_der_certificates(index: int, changes: list) -> None:
    _check_der(mutate(DER[index], changes, DER_TOKENS))


@given(data=st.binary(max_size=400))
def test_random_der(data: bytes) -> None:
    _check_der(data)


def _check_pem(data: bytes) -> None:
    blocks = decode_pem_blocks(data)
    for block in blocks:
        assert isinstance(block.type, str) and isinstance(block.der, bytes)
        if block.type == "CERTIFICATE":
            _check_der(block.der)
    first = next((b for b in blocks if b.type == "CERTIFICATE"), None)
    try:
        expected: str | None = identity_of_certificate(first.der) if first else None
    except ValueError:
        expected = None
    path = WORKDIR / "cert.pem"
    path.write_bytes(data)
    try:
        identity: str | None = identity_of_pem_file(str(path))
    except ValueError:
        identity = None
    assert identity == expected


@with_examples([{"index": i, "changes": []} for i in range(len(PEM))])
@given(index=st.integers(0, len(PEM) - 1), changes=edits)
def test_mutated_pem_certificates(index: int, changes: list) -> None:
    _check_pem(mutate(PEM[index], changes, PEM_TOKENS))


def test_seed_certificates_have_the_reference_identity() -> None:
    for name, der in CERTS:
        if name.endswith(".der") and not name.startswith("regress-"):
            assert identity_of_certificate(der) == _reference_identity(der)
    for pem in PEM:
        blocks = decode_pem_blocks(pem)
        reference = x509.load_pem_x509_certificates(pem)
        assert [b.der for b in blocks] == [
            c.public_bytes(serialization.Encoding.DER) for c in reference
        ]


def _check_key(data: bytes, password: bytes | None) -> None:
    try:
        key = load_private_key_pem(data, password)
    except ValueError as err:
        assert str(err)
        return
    assert key.public_key() is not None


@with_examples([{"index": i, "changes": [], "right": True} for i in range(len(KEYS))])
@given(index=st.integers(0, len(KEYS) - 1), changes=edits, right=st.booleans())
def test_mutated_private_keys(index: int, changes: list, right: bool) -> None:
    name, data = KEYS[index]
    if name.endswith(".der"):  # DER seeds: wrap as PEM so the PEM layer is reached
        pem = serialization.load_der_private_key(data, None).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        data = pem
    _check_key(mutate(data, changes, PEM_TOKENS), PASSWORD if right else b"wrong")


def test_encrypted_seed_keys_need_the_password() -> None:
    for name, data in KEYS:
        if b"ENCRYPTED" in data and not name.startswith("regress-"):
            assert load_private_key_pem(data, PASSWORD) is not None
            for wrong in (None, b""):
                try:
                    load_private_key_pem(data, wrong)
                except ValueError as err:
                    assert "password required" in str(err), name
                else:
                    raise AssertionError(f"{name} loaded without its password")


def _check_forwarded(value: bytes) -> None:
    """The TLS-proxy header parser (docs/compat/auth.md §10): a certificate or 400, no raise."""
    result = _parse_forwarded(value)
    if isinstance(result[0], int):
        assert result == ERR_INVALID
    else:
        identity, cert = result
        assert HEX64.fullmatch(identity) and isinstance(cert, x509.Certificate)


def _forwarded(pem: bytes) -> bytes:
    return quote_from_bytes(pem).encode()


@with_examples(
    [{"index": i, "changes": []} for i in range(len(PEM))]
    + [{"index": -1 - i, "changes": []} for i in range(len(DER))]
)
@given(index=st.integers(-len(DER), len(PEM) - 1), changes=edits)
def test_mutated_forwarded_certificates(index: int, changes: list) -> None:
    if index >= 0:
        pem = PEM[index]
    else:  # every DER seed (the regressions included) as a PEM block
        der = DER[-1 - index]
        pem = (
            b"-----BEGIN CERTIFICATE-----\n"
            + base64.encodebytes(der)
            + b"-----END CERTIFICATE-----\n"
        )
    _check_forwarded(mutate(_forwarded(pem), changes, PEM_TOKENS + (b"%", b"%zz", b"+")))
