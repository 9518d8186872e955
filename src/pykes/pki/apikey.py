"""KES API keys (docs/compat/auth.md §7), and the KMS API's in the same class.

An API key is ``kes:v1:`` + standard base64 of ``0x00 ‖ seed(32)``: a compact Ed25519
private key. Its identity is the SHA-256 of the public key's DER SPKI, i.e. exactly the
identity the server computes from the certificate derived from it
(:func:`client_certificate`). The kms-go client's (aead.dev/mtls) ``k1:`` + unpadded
base64url of the seed is the same key in another spelling, with the same identity;
its ``k2:`` + unpadded base64url of a private scalar is an ECDSA key (P-256, P-384 or
P-521 by the scalar's 32, 48 or 66 bytes), which has no ``kes:v1:`` spelling.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
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
    "ECDSA_API_KEY_PREFIX",
    "KMS_API_KEY_PREFIX",
    "APIKey",
    "client_certificate",
]

API_KEY_PREFIX = "kes:v1:"
KMS_API_KEY_PREFIX = "k1:"
ECDSA_API_KEY_PREFIX = "k2:"
#: DER prefix of every Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32-byte key follows.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_TYPE_ED25519 = 0
_SEED_SIZE = 32
_STD_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_KMS_SEED = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes in unpadded base64url
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# aead.dev/mtls's curves, by the size of the private scalar (k2: keys)
_CURVES: dict[int, type[ec.EllipticCurve]] = {32: ec.SECP256R1, 48: ec.SECP384R1, 66: ec.SECP521R1}
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class APIKey:
    """An Ed25519 (or, from a ``k2:`` key, ECDSA) key pair in API-key form.

    ``str(key)`` is the secret ``kes:v1:…`` text (an ECDSA key's ``k2:…``);
    ``repr(key)`` only shows the identity.
    """

    __slots__ = ("_seed", "identity", "private_key")

    identity: str
    private_key: PrivateKey

    def __init__(self, private_key: PrivateKey) -> None:
        """Wrap an Ed25519 private key, or an ECDSA one of aead.dev/mtls's curves (see
        also :meth:`parse` and :meth:`generate`)."""
        if isinstance(private_key, Ed25519PrivateKey):
            self._seed = private_key.private_bytes_raw()
            public = private_key.public_key().public_bytes_raw()
            self.identity = hashlib.sha256(ED25519_SPKI_PREFIX + public).hexdigest()
        elif isinstance(private_key, ec.EllipticCurvePrivateKey) and any(
            isinstance(private_key.curve, curve) for curve in _CURVES.values()
        ):
            size = (private_key.curve.key_size + 7) // 8
            self._seed = private_key.private_numbers().private_value.to_bytes(size, "big")
            spki = private_key.public_key().public_bytes(*_SPKI)
            self.identity = hashlib.sha256(spki).hexdigest()
        else:
            raise TypeError("invalid API key: not an Ed25519 or P-256/384/521 private key")
        self.private_key = private_key

    @classmethod
    def parse(cls, text: str) -> APIKey:
        """Parse ``kes:v1:<base64>`` (or the bare base64 part), or a KMS API key
        ``k1:<base64url>`` (Ed25519) or ``k2:<base64url>`` (ECDSA).

        Raises :class:`ValueError` (``invalid API key: …``) for malformed keys; the
        message never contains the key text.
        """
        s = text.strip()
        if s.startswith(KMS_API_KEY_PREFIX):
            return cls._parse_kms(s.removeprefix(KMS_API_KEY_PREFIX))
        if s.startswith(ECDSA_API_KEY_PREFIX):
            return cls._parse_ecdsa(s.removeprefix(ECDSA_API_KEY_PREFIX))
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
    def _parse_ecdsa(cls, scalar: str) -> APIKey:
        curve = _CURVES.get(len(scalar) * 3 // 4)
        if curve is None or len(scalar) % 4 == 1 or not _BASE64URL.fullmatch(scalar):
            raise ValueError("invalid API key: not a k2 key of 32, 48 or 66 bytes in base64url")
        value = int.from_bytes(base64.urlsafe_b64decode(scalar + "=" * (-len(scalar) % 4)))
        try:  # 0 < value < the curve's order
            return cls(ec.derive_private_key(value, curve()))
        except ValueError:
            raise ValueError("invalid API key: not a private key of its curve") from None

    @classmethod
    def generate(cls) -> APIKey:
        """Generate a new random API key (32 random seed bytes)."""
        return cls(Ed25519PrivateKey.generate())

    def __str__(self) -> str:
        """Return the secret ``kes:v1:…`` text (51 characters); an ECDSA key's ``k2:…``."""
        if not isinstance(self.private_key, Ed25519PrivateKey):
            return self.kms_text()
        raw = bytes([_TYPE_ED25519]) + self._seed
        return API_KEY_PREFIX + base64.b64encode(raw).decode("ascii")

    def kms_text(self) -> str:
        """The secret ``k1:…`` text of the same key: the KMS API's spelling (kms-go); an
        ECDSA key's ``k2:…``."""
        ed25519 = isinstance(self.private_key, Ed25519PrivateKey)
        prefix = KMS_API_KEY_PREFIX if ed25519 else ECDSA_API_KEY_PREFIX
        return prefix + base64.urlsafe_b64encode(self._seed).decode().rstrip("=")

    def __repr__(self) -> str:
        return f"APIKey(identity={self.identity!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, APIKey):
            return NotImplemented
        return type(self.private_key) is type(other.private_key) and hmac.compare_digest(
            self._seed, other._seed
        )

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
