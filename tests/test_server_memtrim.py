"""Handing freed heap memory back to the kernel in a memory-locked server (issue 7):
the kernel refuses ``madvise(MADV_DONTNEED)`` on locked pages, so ``malloc_trim`` has to
unlock around the trim (process/memtrim.py, process/memlock.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pykes.process import memtrim


def _has_cap_ipc_lock() -> bool:
    status = Path("/proc/self/status").read_text()
    cap_eff = next(line for line in status.splitlines() if line.startswith("CapEff:"))
    return bool(int(cap_eff.split()[1], 16) >> 14 & 1)


# Runs in its own process: locking is per process and must not touch pytest's.
_LOCKED_TRIM = textwrap.dedent(
    """
    import ctypes
    from pykes.process import memlock, memtrim

    def heap_rss_locked():
        fields, in_heap = {}, False
        for line in open("/proc/self/smaps"):
            if "-" in line.split()[0]:
                in_heap = line.rstrip().endswith("[heap]")
            elif in_heap and line.split()[0] in ("Rss:", "Locked:"):
                fields[line.split()[0]] = fields.get(line.split()[0], 0) + int(line.split()[1])
        return fields["Rss:"], fields["Locked:"]

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])

    assert memlock.lock_memory().locked
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(16384) for _ in range(4000)]  # 64 MiB of heap, below top
    for b in blocks:
        ctypes.memset(b, 1, 16384)
    for b in blocks[:-1]:  # the last block pins the heap top: only interior pages free
        libc.free(b)
    before = status("VmRSS")
    libc.malloc_trim(0)  # what glibc alone can do while the pages are locked
    plain = status("VmRSS")
    with memlock.heap_unlocked():
        inside = status("VmLck")
    locked = status("VmLck")
    assert memtrim.malloc_trim()
    after = status("VmRSS")
    print(before, plain, after, locked - inside, *heap_rss_locked())
    """
)


@pytest.mark.skipif(not _has_cap_ipc_lock(), reason="needs CAP_IPC_LOCK (root)")
def test_malloc_trim_returns_freed_heap_of_a_locked_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LOCKED_TRIM], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    before, plain, after, heap_unlocked_kb, heap_rss, heap_locked = map(int, done.stdout.split())
    freed_kb = 4000 * 16
    assert before - plain < freed_kb // 4  # locked: glibc's own trim cannot release it
    assert before - after > freed_kb // 2  # unlock the heap, trim, lock again: released
    assert heap_unlocked_kb >= freed_kb  # only the heap was unlocked: it held the blocks
    assert heap_locked == heap_rss > 0  # and locked again


class _FakeConnections:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        return self.n


def test_burst_trimmer_trims_once_the_connections_are_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rss = [100 << 20]
    trims: list[int] = []
    monkeypatch.setattr(memtrim, "rss_bytes", lambda: rss[0])
    monkeypatch.setattr(memtrim, "malloc_trim", lambda: trims.append(rss[0]) or True)
    conns = _FakeConnections()
    trimmer = memtrim.BurstTrimmer(conns, min_growth=4 << 20)
    conns.n, rss[0] = 250, 130 << 20  # a burst: many connections, the heap grew
    assert not trimmer.check()
    assert not trimmer.check()  # a steady load never trims
    conns.n = 200
    assert not trimmer.check()  # still more than half of the peak
    conns.n = 3
    assert trimmer.check()  # the burst is over
    assert trims == [130 << 20]
    assert not trimmer.check()  # nothing new since
    conns.n, rss[0] = 0, 131 << 20
    assert not trimmer.check()  # connections fell again, but the heap did not grow
