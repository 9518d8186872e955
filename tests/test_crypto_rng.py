"""The per-process pools of OS randomness (pykes.crypto.rng)."""

from __future__ import annotations

import os
import threading

from pykes.crypto import new_data_key, rng


def test_draws_are_fresh_and_of_the_right_type() -> None:
    keys = [rng.data_key() for _ in range(500)]  # several refills
    nonces = [rng.nonce_bytes() for _ in range(500)]
    assert all(isinstance(k, bytearray) and len(k) == 32 for k in keys)
    assert all(isinstance(n, bytes) and len(n) == 28 for n in nonces)
    assert len({bytes(k) for k in keys}) == 500
    assert len(set(nonces)) == 500
    assert isinstance(new_data_key(), bytearray)


def test_a_forked_child_never_repeats_its_parents_bytes() -> None:
    rng.data_key(), rng.nonce_bytes()  # the pools hold unconsumed bytes now
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its first draws, then leave at once
        try:
            os.write(write_end, bytes(rng.data_key()) + rng.nonce_bytes())
        finally:
            os._exit(0)
    os.close(write_end)
    child = b""
    while chunk := os.read(read_end, 128):
        child += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    parent = bytes(rng.data_key()) + rng.nonce_bytes()  # the parent's next draws
    assert len(child) == 60
    assert child[:32] != parent[:32] and child[32:] != parent[32:]


def test_reset_wipes_the_pooled_keys() -> None:
    rng.data_key()
    pooled = list(rng._keys)
    assert pooled and any(any(k) for k in pooled)
    rng.reset()
    assert not rng._keys and not rng._randoms
    assert all(not any(k) for k in pooled)  # zeroed in place


def test_threads_never_share_a_draw() -> None:
    rng.reset()
    seen: list[bytes] = []

    def draw() -> None:
        seen.extend(rng.nonce_bytes() for _ in range(2000))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == len(set(seen)) == 8000
