"""Identities of X.509 certificates (docs/compat/auth.md §1).

An identity is the lowercase hex SHA-256 of the certificate's ``SubjectPublicKeyInfo``
DER bytes *exactly as they appear in the certificate*. The SPKI is sliced out of the
TBSCertificate with a minimal DER walker instead of re-encoding the parsed key, because
re-encoding changes the bytes for e.g. compressed EC points or RSA-PSS parameters and
would then yield a different identity than the Go server.

This module also holds the tiny PEM decoder shared by the rest of :mod:`pykes.auth`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from cryptography import x509

__all__ = [
    "PEMBlock",
    "decode_pem_blocks",
    "identity_of_certificate",
    "identity_of_pem_file",
    "identity_of_spki",
    "is_ca_certificate",
    "spki_of_certificate",
]

#: What ``cryptography``'s certificate parsing raises for malformed input (it is not
#: only ValueError); catch these wherever untrusted certificate bytes are loaded.
X509_PARSE_ERRORS = (
    ValueError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)
_TAG_SEQUENCE = 0x30
_TAG_INTEGER = 0x02
_TAG_CONTEXT_0 = 0xA0  # [0] EXPLICIT (constructed) - the TBSCertificate version


def _read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read one DER TLV header at ``pos``; return ``(tag, value_start, value_end)``.

    Only single-byte tags and definite lengths are accepted (DER forbids the rest).
    Raises :class:`ValueError` if the element does not fit into ``data[pos:end]``.
    """
    if pos + 2 > end:
        raise ValueError("x509: malformed certificate: truncated DER element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("x509: malformed certificate: unsupported multi-byte DER tag")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise ValueError("x509: malformed certificate: indefinite DER length")
        if count > 4 or pos + count > end:
            raise ValueError("x509: malformed certificate: invalid DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise ValueError("x509: malformed certificate: truncated DER element")
    return tag, pos, pos + length


def _expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """Read a TLV with the given tag; return ``(value_start, value_end)``."""
    got, start, stop = _read_tlv(data, pos, end)
    if got != tag:
        raise ValueError(f"x509: malformed certificate: invalid {what}")
    return start, stop


def spki_of_certificate(cert_der: bytes) -> bytes:
    """Return the raw ``SubjectPublicKeyInfo`` TLV bytes of a DER certificate.

    Walks ``Certificate SEQ -> tbsCertificate SEQ -> [0] version (optional) -> serial
    -> signature AlgId -> issuer -> validity -> subject -> subjectPublicKeyInfo``.
    Raises :class:`ValueError` for malformed DER.
    """
    data = bytes(cert_der)
    cert_start, cert_end = _expect(data, 0, len(data), _TAG_SEQUENCE, "certificate")
    if cert_end != len(data):
        raise ValueError("x509: malformed certificate: trailing data")
    pos, tbs_end = _expect(data, cert_start, cert_end, _TAG_SEQUENCE, "tbs certificate")

    tag, _, stop = _read_tlv(data, pos, tbs_end)
    if tag == _TAG_CONTEXT_0:  # optional version
        pos = stop
    _, pos = _expect(data, pos, tbs_end, _TAG_INTEGER, "serial number")
    for what in ("signature algorithm", "issuer", "validity", "subject"):
        _, pos = _expect(data, pos, tbs_end, _TAG_SEQUENCE, what)
    _, spki_end = _expect(data, pos, tbs_end, _TAG_SEQUENCE, "subject public key info")
    return data[pos:spki_end]


def identity_of_spki(spki_der: bytes) -> str:
    """Return the identity (lowercase hex SHA-256) of raw ``SubjectPublicKeyInfo`` DER."""
    return hashlib.sha256(spki_der).hexdigest()


def identity_of_certificate(cert_der: bytes) -> str:
    """Return the KES identity of a DER-encoded X.509 certificate.

    = lowercase hex SHA-256 over the certificate's raw SPKI bytes (64 characters).
    Raises :class:`ValueError` on malformed DER.
    """
    return identity_of_spki(spki_of_certificate(cert_der))


def is_ca_certificate(cert_der: bytes) -> bool:
    """Report whether the certificate has basicConstraints with ``cA = TRUE``.

    Raises :class:`ValueError` if the certificate cannot be parsed — also for what
    ``cryptography`` reports with its own exception types (an unknown X.509 version,
    a repeated extension), which must not escape from the TLS identity lookup.
    """
    try:
        cert = x509.load_der_x509_certificate(bytes(cert_der))
        ext = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    except X509_PARSE_ERRORS as err:
        raise ValueError(f"x509: malformed certificate: {err}") from None
    return bool(ext.value.ca)


@dataclass(frozen=True)
class PEMBlock:
    """One decoded PEM block: its type (``CERTIFICATE``, ``PRIVATE KEY``…), headers, DER."""

    type: str
    headers: dict[str, str] = field(default_factory=dict)
    der: bytes = b""


_PEM_RE = re.compile(
    rb"-----BEGIN ([^\r\n-]*)-----\r?\n((?:[^-]|-(?!----))*)-----END \1-----",
)


def _parse_pem_body(body: bytes) -> tuple[dict[str, str], bytes] | None:
    """Split a PEM body into RFC 1421 headers and decoded bytes; None if malformed."""
    headers: dict[str, str] = {}
    lines = body.splitlines()
    index = 0
    if lines and b":" in lines[0]:
        while index < len(lines) and lines[index].strip():
            key, sep, value = lines[index].decode("latin-1").partition(":")
            if not sep:
                return None
            headers[key.strip()] = value.strip()
            index += 1
    payload = b"".join(line.strip() for line in lines[index:])
    try:
        return headers, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_pem_blocks(data: bytes) -> list[PEMBlock]:
    """Decode every well-formed PEM block in ``data`` (malformed blocks are skipped)."""
    blocks: list[PEMBlock] = []
    for m in _PEM_RE.finditer(bytes(data)):
        parsed = _parse_pem_body(m.group(2))
        if parsed is not None:
            headers, der = parsed
            blocks.append(PEMBlock(m.group(1).decode("latin-1"), headers, der))
    return blocks


def identity_of_pem_file(path: str) -> str:
    """Return the identity of the first ``CERTIFICATE`` block in a PEM file.

    Raises :class:`OSError` if the file cannot be read and :class:`ValueError` if it
    contains no (valid) certificate.
    """
    with open(path, "rb") as f:
        data = f.read()
    for block in decode_pem_blocks(data):
        if block.type == "CERTIFICATE":
            return identity_of_certificate(block.der)
    raise ValueError(f"'{path}' does not contain a PEM-encoded certificate")
