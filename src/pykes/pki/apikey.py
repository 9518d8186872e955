"""KES API keys (docs/compat/auth.md §7), and the KMS API's in the same class.

An API key is ``kes:v1:`` + standard base64 of ``0x00 ‖ seed(32)``: a compact Ed25519
private key. Its identity is the SHA-256 of the Ed25519 public key's DER SPKI, i.e.
exactly the identity the server computes from the certificate derived from it
(:func:`client_certificate`). The kms-go client's (aead.dev/mtls) ``k1:`` + unpadded
base64url of the seed is the same key in another spelling, with the same identity.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID

from pykes.pki.certs import (
    build_self_signed_certificate,
    certificate_to_pem,
    private_key_to_pem,
)

__all__ = [
    "API_KEY_PREFIX",
    "ED25519_SPKI_PREFIX",
    "KMS_API_KEY_PREFIX",
    "APIKey",
    "client_certificate",
]

API_KEY_PREFIX = "kes:v1:"
KMS_API_KEY_PREFIX = "k1:"
#: DER prefix of every Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32-byte key follows.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_TYPE_ED25519 = 0
_SEED_SIZE = 32
_STD_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_KMS_SEED = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes in unpadded base64url


class APIKey:
    """An Ed25519 key pair in KES API-key form.

    ``str(key)`` is the secret ``kes:v1:…`` text; ``repr(key)`` only shows the identity.
    """

    __slots__ = ("_seed", "identity", "private_key")

    identity: str
    private_key: Ed25519PrivateKey

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        """Wrap an Ed25519 private key (see also :meth:`parse` and :meth:`generate`)."""
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("invalid API key: not an Ed25519 private key")
        self.private_key = private_key
        self._seed = private_key.private_bytes_raw()
        public = private_key.public_key().public_bytes_raw()
        self.identity = hashlib.sha256(ED25519_SPKI_PREFIX + public).hexdigest()

    @classmethod
    def parse(cls, text: str) -> APIKey:
        """Parse ``kes:v1:<base64>`` (or the bare base64 part), or a KMS API key
        ``k1:<base64url>``.

        Raises :class:`ValueError` (``invalid API key: …``) for malformed keys; the
        message never contains the key text.
        """
        s = text.strip()
        if s.startswith(KMS_API_KEY_PREFIX):
            return cls._parse_kms(s.removeprefix(KMS_API_KEY_PREFIX))
        if s.startswith("k2:"):  # aead.dev/mtls's ECDSA keys
            raise ValueError("invalid API key: k2 (ECDSA) keys are not supported")
        s = s.removeprefix(API_KEY_PREFIX)
        if not _STD_BASE64.fullmatch(s):  # padded std base64, as Go's StdEncoding
            raise ValueError("invalid API key: illegal base64 data")
        raw = base64.b64decode(s)
        if len(raw) != 1 + _SEED_SIZE:
            raise ValueError("invalid API key: invalid length")
        if raw[0] != _TYPE_ED25519:
            raise ValueError("invalid API key: unsupported type")
        return cls(Ed25519PrivateKey.from_private_bytes(raw[1:]))

    @classmethod
    def _parse_kms(cls, seed: str) -> APIKey:
        # as Go's base64.RawURLEncoding (not strict: the last character's 2 unused bits
        # are ignored, by Python's decoder too)
        if not _KMS_SEED.fullmatch(seed):
            raise ValueError("invalid API key: not a k1 key of 32 bytes in unpadded base64url")
        return cls(Ed25519PrivateKey.from_private_bytes(base64.urlsafe_b64decode(seed + "=")))

    @classmethod
    def generate(cls) -> APIKey:
        """Generate a new random API key (32 random seed bytes)."""
        return cls(Ed25519PrivateKey.generate())

    def __str__(self) -> str:
        """Return the secret ``kes:v1:…`` text (51 characters)."""
        raw = bytes([_TYPE_ED25519]) + self._seed
        return API_KEY_PREFIX + base64.b64encode(raw).decode("ascii")

    def kms_text(self) -> str:
        """The secret ``k1:…`` text of the same key: the KMS API's spelling (kms-go)."""
        return KMS_API_KEY_PREFIX + base64.urlsafe_b64encode(self._seed).decode().rstrip("=")

    def __repr__(self) -> str:
        return f"APIKey(identity={self.identity!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, APIKey):
            return NotImplemented
        return hmac.compare_digest(self._seed, other._seed)

    def __hash__(self) -> int:
        return hash(self.identity)


def client_certificate(key: APIKey) -> tuple[bytes, bytes]:
    """Return ``(cert PEM, PKCS#8 key PEM)`` for mTLS with an API key.

    Mirrors the SDK's ``GenerateCertificate`` (docs/compat/auth.md §7.1): self-signed v3,
    random serial < 2^128, ``CN=<identity>``, valid now … now + 90 days, Ed25519,
    keyUsage digitalSignature, EKU clientAuth, basicConstraints cA=false.
    """
    now = dt.datetime.now(dt.UTC)
    der = build_self_signed_certificate(
        key.private_key,
        common_name=key.identity,
        not_before=now,
        not_after=now + dt.timedelta(days=90),
        ext_key_usage=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    return certificate_to_pem(der), private_key_to_pem(key.private_key)
