"""Key versions: secret key, HMAC key and KES encryption (docs/compat/crypto.md §1, §3, §7).

Encryption of plaintext ``P`` with associated data ``A`` under the 32-byte key ``K``::

    R = 28 random bytes; IV = R[0:16]; N = R[16:28]
    AES256:   K' = HMAC-SHA256(K, IV)   → AES-256-GCM(K', N)
    ChaCha20: K' = HChaCha20(K, IV)     → ChaCha20-Poly1305(K', N)   (IETF, 12-byte N)
    output = Seal(K', N, P, A) ‖ IV ‖ N      (ciphertext ‖ 16-byte tag ‖ 28 bytes)

Decryption first normalizes the legacy formats (see ``ciphertext``); the stored key's
type alone decides the cipher.

Secrets in our own buffers are ``bytearray``s zeroed after use where Python allows:
data keys (``new_data_key``), decrypted plaintexts (``decrypt`` → the caller wipes) and
HChaCha20-derived keys. Not wipeable: the AES per-message key (``HMAC.finalize``
returns immutable ``bytes``), the master key of a ``KeyVersion`` (decoded from immutable
``bytes``; OpenSSL keeps its own copies in contexts it cleanses when freed).
"""

from __future__ import annotations

import enum
import os
import struct
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.hmac import HMAC

from pykes.crypto.ciphertext import parse_ciphertext
from pykes.crypto.hchacha import hchacha20
from pykes.crypto.rng import data_key, nonce_bytes, secret_bytes
from pykes.errors import ERR_HMAC_UNSUPPORTED, APIError, DecryptError

KEY_SIZE = 32
_RANDOM_SIZE = 28  # IV (16) + nonce (12), appended to every ciphertext
_TAG_SIZE = 16
_ZERO_KEY = struct.Struct(f"{KEY_SIZE}x")  # packing only pad bytes writes zeros
_SHA256 = SHA256()


class KeyType(enum.IntEnum):
    """The type of a secret key; the value is the protobuf ``SecretKey.Type``."""

    AES256 = 1
    CHACHA20 = 2

    @property
    def text(self) -> str:
        """The name returned by describe: ``AES256`` or ``ChaCha20``."""
        return "AES256" if self is KeyType.AES256 else "ChaCha20"


_CIPHER_NAMES = {
    "AES256": KeyType.AES256,
    "AES256-GCM_SHA256": KeyType.AES256,
    "ChaCha20": KeyType.CHACHA20,
    "XCHACHA20-POLY1305": KeyType.CHACHA20,
}


def parse_cipher_name(name: str) -> KeyType:
    """Map an import cipher / legacy algorithm name (case-sensitive) to a KeyType."""
    try:
        return _CIPHER_NAMES[name]
    except (KeyError, TypeError):
        raise ValueError("unsupported cipher name") from None


def wipe(buf: bytearray | memoryview) -> None:
    """Overwrite a mutable buffer with zeros, in place."""
    size = len(buf)
    if size == KEY_SIZE:
        _ZERO_KEY.pack_into(buf, 0)  # a memset (50 ns; a slice assignment costs 300 ns)
    else:
        buf[:] = bytes(size)


new_data_key = data_key
"""32 random bytes in a new ``bytearray`` (``pykes.crypto.rng``: a per-process pool of
OS randomness, no immutable copy left behind). The caller wipes it after use."""
new_secret = secret_bytes
"""``n`` random bytes in a new ``bytearray``, read from the OS; the caller wipes it."""


def _hmac_context(key: bytes) -> HMAC:
    """An HMAC-SHA256 context keyed with ``key``; ``.copy()`` skips the key schedule."""
    return HMAC(key, _SHA256)


_AES256 = KeyType.AES256  # an enum member lookup per request costs more than the check


def _aead(key_type: KeyType, prf: HMAC | None, key: bytes, iv: bytes) -> AESGCM | ChaCha20Poly1305:
    """The AEAD with the one-time key derived from ``key`` (or its HMAC ``prf``) and ``iv``.
    ``KeyVersion`` derives an AES key from its ``prf`` itself (one call less per request)."""
    if key_type is _AES256:
        mac = prf.copy() if prf is not None else _hmac_context(key)
        mac.update(iv)
        return AESGCM(mac.finalize())  # immutable bytes: cannot be wiped
    derived = hchacha20(key, iv)
    try:
        return ChaCha20Poly1305(derived)  # copies the key into its own context
    finally:
        _ZERO_KEY.pack_into(derived, 0)  # = wipe(derived), without the call


def _seal(
    key_type: KeyType, key: bytes, iv: bytes, nonce: bytes, plaintext: bytes, ad: bytes
) -> bytes:
    """Deterministic encryption with a given IV and nonce (for test vectors only)."""
    return _aead(key_type, None, key, iv).encrypt(nonce, plaintext, ad) + iv + nonce


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """One stored KES key. ``created_at_ns`` is Unix nanoseconds (UTC) or None for the
    zero time; ``hmac_key`` is None for keys read from the legacy JSON format."""

    key: bytes
    key_type: KeyType
    hmac_key: bytes | None
    created_at_ns: int | None
    created_by: str
    # Precomputed HMAC-SHA256 contexts (key schedule done once per cached key).
    _prf: HMAC | None = field(default=None, init=False, repr=False, compare=False)
    _mac: HMAC | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) != KEY_SIZE:
            raise ValueError("invalid secret key length")
        if self.key_type not in (KeyType.AES256, KeyType.CHACHA20):
            raise ValueError("invalid secret key type")
        object.__setattr__(self, "key_type", KeyType(self.key_type))
        if self.hmac_key is not None:
            if not isinstance(self.hmac_key, bytes) or len(self.hmac_key) != KEY_SIZE:
                raise ValueError("invalid HMAC key length")
            object.__setattr__(self, "_mac", _hmac_context(self.hmac_key))
        if self.key_type is KeyType.AES256:
            object.__setattr__(self, "_prf", _hmac_context(self.key))

    def __repr__(self) -> str:
        return (
            f"KeyVersion(key_type={self.key_type.text}, hmac={self.hmac_key is not None}, "
            f"created_by={self.created_by!r})"
        )

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        """Encrypt to the raw format ``ciphertext ‖ tag ‖ IV ‖ nonce`` (+44 bytes)."""
        random = nonce_bytes()
        prf = self._prf  # set for AES256 keys only
        if prf is not None:  # = _aead(...), inline
            mac = prf.copy()
            mac.update(random[:16])
            aead: AESGCM | ChaCha20Poly1305 = AESGCM(mac.finalize())
        else:
            aead = _aead(self.key_type, None, self.key, random[:16])
        return aead.encrypt(random[16:], plaintext, associated_data) + random

    def decrypt(self, ciphertext: bytes, associated_data: bytes = b"") -> bytearray:
        """Decrypt a raw, legacy JSON or MessagePack ciphertext into a new ``bytearray``
        the caller should ``wipe`` once it is done with it.

        Raises ``DecryptError`` (400 ``decryption failed: ciphertext is not authentic``)
        for every failure.
        """
        if ciphertext and ciphertext[0] in (0x95, 0x7B):
            ciphertext = parse_ciphertext(ciphertext)
        if len(ciphertext) < _RANDOM_SIZE + _TAG_SIZE:
            raise DecryptError()
        plaintext = bytearray(len(ciphertext) - _RANDOM_SIZE - _TAG_SIZE)
        try:
            prf = self._prf  # set for AES256 keys only
            if prf is not None:  # = _aead(...), inline
                mac = prf.copy()
                mac.update(ciphertext[-28:-12])
                aead: AESGCM | ChaCha20Poly1305 = AESGCM(mac.finalize())
            else:
                aead = _aead(self.key_type, None, self.key, ciphertext[-28:-12])
            aead.decrypt_into(ciphertext[-12:], ciphertext[:-28], associated_data, plaintext)
        except Exception:  # InvalidTag, or a malformed input the primitives reject
            wipe(plaintext)  # may hold unauthenticated plaintext
            raise DecryptError() from None
        return plaintext

    def hmac(self, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under the HMAC key; 409 for legacy keys without one."""
        if self._mac is None:
            raise APIError(ERR_HMAC_UNSUPPORTED.status, ERR_HMAC_UNSUPPORTED.message)
        mac = self._mac.copy()
        mac.update(message)
        return mac.finalize()


def generate_key_version(key_type: KeyType = KeyType.AES256, created_by: str = "") -> KeyVersion:
    """A new random key of ``key_type`` with a random HMAC key, created now."""
    return KeyVersion(
        os.urandom(KEY_SIZE), key_type, os.urandom(KEY_SIZE), time.time_ns(), created_by
    )


def import_key_version(key: bytes, key_type: KeyType, created_by: str = "") -> KeyVersion:
    """A key version from imported key bytes (exactly 32) with a fresh random HMAC key."""
    if len(key) != KEY_SIZE:
        raise ValueError("invalid key size")
    return KeyVersion(bytes(key), key_type, os.urandom(KEY_SIZE), time.time_ns(), created_by)
