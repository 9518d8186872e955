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
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import sys
from dataclasses import dataclass

MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4
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
    if _locked_flags is None:
        return
    err = _mlockall(_locked_flags)
    if err:
        print(
            f"WARNING: worker {os.getpid()} cannot lock memory: mlockall: {os.strerror(err)}",
            file=sys.stderr,
            flush=True,
        )


def is_locked() -> bool:
    return _locked_flags is not None


__all__ = ["LockResult", "is_locked", "lock_memory", "permission", "relock_after_fork"]
