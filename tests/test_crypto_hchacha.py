"""HChaCha20 via ``cryptography``'s ChaCha20 keystream, cross-checked against an
independent pure-Python ChaCha core (the RFC 8439 quarter round written out), on random
inputs. The fixed vectors of docs/compat/crypto.md are in test_crypto.py."""

from __future__ import annotations

import os
import struct

from pykes.crypto import hchacha20

_MASK = 0xFFFFFFFF
_SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)  # "expand 32-byte k"
_KEY = struct.Struct("<8I")
_INPUT = struct.Struct("<4I")
_OUTPUT = struct.Struct("<8I")

# One double round: four column rounds, then four diagonal rounds.
_QUARTER_ROUNDS = (
    (0, 4, 8, 12),
    (1, 5, 9, 13),
    (2, 6, 10, 14),
    (3, 7, 11, 15),
    (0, 5, 10, 15),
    (1, 6, 11, 12),
    (2, 7, 8, 13),
    (3, 4, 9, 14),
)


def reference_hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """Return the 32-byte HChaCha20 output for a 32-byte key and a 16-byte input."""
    if len(key) != 32 or len(nonce16) != 16:
        raise ValueError("hchacha20: key must be 32 bytes and input 16 bytes")
    x = [*_SIGMA, *_KEY.unpack(key), *_INPUT.unpack(nonce16)]
    for _ in range(10):
        for a, b, c, d in _QUARTER_ROUNDS:
            xa = (x[a] + x[b]) & _MASK
            xd = x[d] ^ xa
            xd = ((xd << 16) | (xd >> 16)) & _MASK
            xc = (x[c] + xd) & _MASK
            xb = x[b] ^ xc
            xb = ((xb << 12) | (xb >> 20)) & _MASK
            xa = (xa + xb) & _MASK
            xd ^= xa
            xd = ((xd << 8) | (xd >> 24)) & _MASK
            xc = (xc + xd) & _MASK
            xb ^= xc
            x[a], x[b], x[c], x[d] = xa, ((xb << 7) | (xb >> 25)) & _MASK, xc, xd
    return _OUTPUT.pack(x[0], x[1], x[2], x[3], x[12], x[13], x[14], x[15])


def test_matches_reference_core_on_random_inputs() -> None:
    for _ in range(500):
        key, nonce = os.urandom(32), os.urandom(16)
        assert hchacha20(key, nonce) == reference_hchacha20(key, nonce)


def test_reference_core_matches_the_xchacha_draft_vector() -> None:
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    expected = "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"
    assert reference_hchacha20(key, nonce).hex() == expected
