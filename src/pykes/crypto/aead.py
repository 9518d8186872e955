"""Sealed values at rest: AES-256-GCM (or ChaCha20-Poly1305) under a 32-byte key with a
fresh random 96-bit nonce, laid out ``nonce ‖ ciphertext ‖ tag`` (+28 bytes).

The stateful store seals its root key, its enclave keys and every record with these two
functions; the associated data binds a sealed value to where it belongs. Random nonces
are safe for up to 2**32 values under one key (NIST SP 800-38D §8.3): the store writes
far fewer (a write is an administrative change, never a request to encrypt data).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from pykes.crypto.keys import KEY_SIZE, KeyType

NONCE_SIZE = 12
OVERHEAD = NONCE_SIZE + 16  # nonce + tag
_CIPHERS = {KeyType.AES256: AESGCM, KeyType.CHACHA20: ChaCha20Poly1305}


class NotAuthentic(ValueError):
    """A sealed value that does not open: another key, other associated data, or changed
    bytes. Carries no part of the value or the key."""


def seal(
    key: bytes, plaintext: bytes, associated_data: bytes, cipher: KeyType = KeyType.AES256
) -> bytes:
    """``plaintext`` sealed under ``key``, bound to ``associated_data``."""
    if len(key) != KEY_SIZE:
        raise ValueError("invalid key length")
    nonce = os.urandom(NONCE_SIZE)
    return nonce + _CIPHERS[cipher](key).encrypt(nonce, plaintext, associated_data)


def unseal(
    key: bytes, sealed: bytes, associated_data: bytes, cipher: KeyType = KeyType.AES256
) -> bytes:
    """The plaintext of a value made by :func:`seal` with the same key, associated data
    and cipher; :class:`NotAuthentic` otherwise."""
    if len(key) != KEY_SIZE:
        raise ValueError("invalid key length")
    if len(sealed) < OVERHEAD:
        raise NotAuthentic("sealed value is too short")
    aead = _CIPHERS[cipher](key)
    try:
        return aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], associated_data)
    except InvalidTag:
        raise NotAuthentic("sealed value is not authentic") from None
