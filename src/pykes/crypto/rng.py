"""Per-process pools of OS randomness for the per-request draws (data keys, IV + nonce).

Two system calls per generate request (a read of ``/dev/urandom`` for the data key,
``getrandom`` for IV + nonce) cost more than the bytes: one read of 2–3.5 KiB from
the OS is split into 64–128 draws. The bytes are the kernel CSPRNG's, nothing is
derived or expanded in Python.

* **Threads**: a draw is one ``deque.popleft`` (atomic under the GIL), so no two
  callers ever get the same bytes.
* **Fork**: a child must never reuse its parent's unconsumed bytes (two workers would
  hand out equal data keys and nonces): ``os.register_at_fork`` wipes and drops the
  pools in the child, which refills from the OS on its first draw.
* **Secrets**: data keys are ``bytearray``s the caller wipes after use; the refill
  buffer they are cut from is zeroed at once. Unused data keys wait in the pool
  (at most ``_KEYS_PER_REFILL``), as they would in any CSPRNG's state; dropped pools
  are wiped first.
"""

from __future__ import annotations

import io
import os
import struct
from collections import deque

KEY_SIZE = 32
RANDOM_SIZE = 28  # IV (16) + nonce (12) of one ciphertext: public, appended to it
_KEYS_PER_REFILL = 64  # 2 KiB
_RANDOMS_PER_REFILL = 128  # 3.5 KiB
_ZERO_KEY = struct.Struct(f"{KEY_SIZE}x")  # packing only pad bytes writes zeros

_keys: deque[bytearray] = deque()
_urandom: io.FileIO | None = None
_randoms: deque[bytes] = deque()


def data_key() -> bytearray:
    """32 fresh random bytes in a new ``bytearray``; the caller wipes it after use."""
    try:
        return _keys.popleft()
    except IndexError:
        return _refill_keys()


def secret_bytes(size: int) -> bytearray:
    """``size`` fresh random bytes in a new ``bytearray`` (data keys of other sizes than
    32: rare, so read from the OS each time); the caller wipes it after use."""
    block = bytearray(size)
    _read_random(block)
    return block


def nonce_bytes() -> bytes:
    """28 fresh random bytes (a ciphertext's IV ‖ nonce): public, never reused."""
    try:
        return _randoms.popleft()
    except IndexError:
        return _refill_randoms()


def _read_random(block: bytearray) -> None:
    """Fill ``block`` from the OS without an immutable copy (``os.urandom`` returns
    ``bytes`` that could not be wiped)."""
    global _urandom
    try:
        if _urandom is None:
            _urandom = open("/dev/urandom", "rb", buffering=0)  # noqa: SIM115 - kept open
        if _urandom.readinto(block) == len(block):
            return
    except OSError:
        _urandom = None
    block[:] = os.urandom(len(block))  # no /dev/urandom: the portable way


def _refill_keys() -> bytearray:
    block = bytearray(KEY_SIZE * _KEYS_PER_REFILL)
    _read_random(block)
    keys = [block[i : i + KEY_SIZE] for i in range(0, len(block), KEY_SIZE)]
    block[:] = bytes(len(block))
    first = keys.pop()
    _keys.extend(keys)
    return first


def _refill_randoms() -> bytes:
    block = os.urandom(RANDOM_SIZE * _RANDOMS_PER_REFILL)
    randoms = [block[i : i + RANDOM_SIZE] for i in range(0, len(block), RANDOM_SIZE)]
    first = randoms.pop()
    _randoms.extend(randoms)
    return first


def reset() -> None:
    """Wipe and drop both pools (after a fork, in the child; tests)."""
    while _keys:
        try:
            _ZERO_KEY.pack_into(_keys.popleft(), 0)
        except IndexError:  # another thread took the last one
            break
    _randoms.clear()


os.register_at_fork(after_in_child=reset)
