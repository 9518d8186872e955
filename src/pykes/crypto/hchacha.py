"""HChaCha20 (draft-irtf-cfrg-xchacha §2.2), the ChaCha20 key derivation of KES.

KES derives the one-time key of a ``ChaCha20`` key version as
``HChaCha20(key, iv[0:16])`` (docs/compat/crypto.md §3). HChaCha20 is the 20-round ChaCha
core on ``constants ‖ key ‖ input`` *without* the final feed-forward addition; the
output is words 0–3 and 12–15.

``cryptography`` has no HChaCha20, but its ChaCha20 stream cipher computes the same
core *with* the feed-forward: the first keystream block for the 16-byte nonce
``input`` (OpenSSL's counter ‖ nonce layout puts it in words 12–15) is
``core(state) + state``. Subtracting the known state words (the constants and
``input``) gives HChaCha20. Measured: ~6.6 µs per call against ~60 µs for a pure-Python
core, which made ChaCha20 keys ten times slower than AES keys.

The keystream block and the output (a derived key) live in ``bytearray``s: the block
is zeroed here, the output by the caller after use. The intermediate 32-bit words are
Python ints, which cannot be wiped.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

_MASK = 0xFFFFFFFF
_SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)  # "expand 32-byte k"
_BLOCK = struct.Struct("<16I")
_INPUT = struct.Struct("<4I")
_OUTPUT = struct.Struct("<8I")
_ZERO_BLOCK = bytes(64)
_WIPE_BLOCK = struct.Struct("64x")  # packing only pad bytes writes zeros: a memset


def hchacha20(key: bytes, nonce16: bytes) -> bytearray:
    """Return the 32-byte HChaCha20 output for a 32-byte key and a 16-byte input (a new
    ``bytearray`` the caller should zero once it is done with it)."""
    if len(key) != 32 or len(nonce16) != 16:
        raise ValueError("hchacha20: key must be 32 bytes and input 16 bytes")
    block = bytearray(64)
    encryptor = Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor()
    encryptor.update_into(_ZERO_BLOCK, block)
    w = _BLOCK.unpack(block)
    _WIPE_BLOCK.pack_into(block, 0)
    n = _INPUT.unpack(nonce16)
    out = bytearray(32)
    _OUTPUT.pack_into(
        out,
        0,
        (w[0] - _SIGMA[0]) & _MASK,
        (w[1] - _SIGMA[1]) & _MASK,
        (w[2] - _SIGMA[2]) & _MASK,
        (w[3] - _SIGMA[3]) & _MASK,
        (w[12] - n[0]) & _MASK,
        (w[13] - n[1]) & _MASK,
        (w[14] - n[2]) & _MASK,
        (w[15] - n[3]) & _MASK,
    )
    return out
