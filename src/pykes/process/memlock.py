"""Locking the server's memory so key material is never swapped to disk (issue 9).

``mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)`` through libc, *where permitted*:
with ``CAP_IPC_LOCK`` (root) or an unlimited ``RLIMIT_MEMLOCK``. A finite limit is not
used even if today's memory fits: with ``MCL_FUTURE`` every later allocation that
crosses the limit fails with ``ENOMEM`` (a worker dies under load), so a key server is
better off not locking and saying so.

``MCL_ONFAULT`` (Linux ≥ 4.4) locks pages as they are touched instead of faulting in
every mapping at once: a page that ever held a secret was touched, so it is locked all
the same, but reserved-and-unused memory (thread stacks, malloc arenas) costs nothing.
Without it, locking populates every mapping at once — and in a forked worker breaks the
copy-on-write sharing with the master for every writable page: master + 4 workers went
from 71 MB to 316 MB PSS (with ``MCL_ONFAULT``: 71 MB, the same as unlocked).

Memory locks are not inherited by ``fork()``: each worker calls :func:`relock_after_fork`.

Locked pages cannot be given back with ``madvise(MADV_DONTNEED)``, which is how glibc's
``malloc_trim`` returns freed heap: without help a locked worker keeps its heap at the
high-water mark of its busiest moment. :func:`heap_unlocked` unlocks just the heap for
the trim (process/memtrim.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import sys
from collections.abc import Iterator
from dataclasses import dataclass

MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4
MLOCK_ONFAULT = 1  # mlock2() flag
CAP_IPC_LOCK = 14

_locked_flags: int | None = None  # set in the process that locked; inherited by fork


@dataclass(frozen=True)
class LockResult:
    """``locked`` or the one-line reason why not."""

    locked: bool
    reason: str = ""


def _has_cap_ipc_lock() -> bool:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_IPC_LOCK & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def permission() -> str:
    """'' if locking is permitted here, else why not (one line)."""
    if not sys.platform.startswith("linux"):
        return f"mlockall is not supported on {sys.platform}"
    if _has_cap_ipc_lock():
        return ""
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY:
        return ""
    return f"no CAP_IPC_LOCK and RLIMIT_MEMLOCK is {soft} bytes, not unlimited"


def _mlockall(flags: int) -> int:
    """0 on success, else the errno."""
    libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols include libc's
    if libc.mlockall(ctypes.c_int(flags)) == 0:
        return 0
    return ctypes.get_errno()


def lock_memory(on_fault: bool = True) -> LockResult:
    """Lock current and future pages of this process, if permitted."""
    global _locked_flags
    reason = permission()
    if reason:
        return LockResult(False, reason)
    flags = MCL_CURRENT | MCL_FUTURE | (MCL_ONFAULT if on_fault else 0)
    err = _mlockall(flags)
    if err == errno.EINVAL and on_fault:  # a kernel older than 4.4: no MCL_ONFAULT
        flags &= ~MCL_ONFAULT
        err = _mlockall(flags)
    if err:
        return LockResult(False, f"mlockall: {os.strerror(err)}")
    _locked_flags = flags
    return LockResult(True)


def relock_after_fork() -> None:
    """In a forked worker: lock again if the master had locked (locks are per process)."""
    global _locked_flags
    if _locked_flags is None:
        return
    err = _mlockall(_locked_flags)
    if err:
        _locked_flags = None  # this worker is not locked (is_locked, unlocked)
        print(
            f"WARNING: worker {os.getpid()} cannot lock memory: mlockall: {os.strerror(err)}",
            file=sys.stderr,
            flush=True,
        )


def is_locked() -> bool:
    return _locked_flags is not None


def heap_ranges() -> list[tuple[int, int]]:
    """(start, end) of this process's ``[heap]`` mapping (glibc's main malloc arena)."""
    ranges = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                if line.rstrip().endswith("[heap]"):
                    start, _, end = line.split(maxsplit=1)[0].partition("-")
                    ranges.append((int(start, 16), int(end, 16)))
    except (OSError, ValueError):
        pass
    return ranges


def _relock(libc: ctypes.CDLL, start: int, size: int) -> int:
    """Lock ``size`` bytes at ``start`` as :func:`lock_memory` did; 0 or the errno."""
    addr, length = ctypes.c_void_p(start), ctypes.c_size_t(size)
    mlock2 = getattr(libc, "mlock2", None)  # glibc ≥ 2.27; else (or if it fails) mlock
    on_fault = _locked_flags is not None and _locked_flags & MCL_ONFAULT
    if on_fault and mlock2 is not None and mlock2(addr, length, MLOCK_ONFAULT) == 0:
        return 0
    if libc.mlock(addr, length) == 0:
        return 0
    return ctypes.get_errno()


@contextlib.contextmanager
def heap_unlocked() -> Iterator[None]:
    """Unlock the ``[heap]`` mapping for the duration of the block, then lock it again.

    For :func:`pykes.process.memtrim.malloc_trim` only: the kernel refuses
    ``madvise(MADV_DONTNEED)`` on locked pages, so in a locked process glibc cannot hand
    freed heap pages back and RSS stays at its high-water mark after a burst of
    connections (measured: 4 workers kept ~100 MB after 1,000 connections). Only the
    heap is unlocked — Python's own small-object arenas, the stacks and every other
    mapping stay locked — and only for the trim (a few milliseconds, no Python code of
    the event loop runs in it); a heap page is swapped out in that window only if the
    machine is short of memory at that very moment. A no-op in a process that did not
    lock."""
    if _locked_flags is None:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for start, end in heap_ranges():
        libc.munlock(ctypes.c_void_p(start), ctypes.c_size_t(end - start))
    try:
        yield
    finally:
        for start, end in heap_ranges():  # the trim may have shrunk the heap
            err = _relock(libc, start, end - start)
            if err:
                print(
                    f"WARNING: process {os.getpid()} cannot lock its heap again: "
                    f"mlock: {os.strerror(err)}",
                    file=sys.stderr,
                    flush=True,
                )


__all__ = [
    "LockResult",
    "is_locked",
    "lock_memory",
    "permission",
    "heap_ranges",
    "heap_unlocked",
    "relock_after_fork",
]
