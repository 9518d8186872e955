"""``--pin``: the servers on one half of the CPUs, kesload on the other."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

#: ``--pin``: the CPUs of the servers (pykes and the yardsticks) and of kesload; empty
#: without ``--pin``. Set once by ``cli.main``.
PIN: dict[str, frozenset[int]] = {}


def pin_cpus(available: Sequence[int]) -> dict[str, frozenset[int]]:
    """``--pin``'s split of ``available`` CPUs: the first half (at least one) for the
    servers, the rest for kesload — so the client does not take the server's CPU."""
    cpus = sorted(available)
    if len(cpus) < 2:
        raise SystemExit("--pin needs at least 2 CPUs")
    half = max(1, len(cpus) // 2)
    return {"server": frozenset(cpus[:half]), "client": frozenset(cpus[half:])}


def pinned(role: str) -> Callable[[], None] | None:
    """A ``preexec_fn`` that binds the child to ``PIN[role]`` (None when not pinning)."""
    cpus = PIN.get(role)
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)
