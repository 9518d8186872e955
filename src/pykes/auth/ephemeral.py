"""Policies and assignments made at run time through the legacy API (docs/compat/api.md §7.2).

They are *ephemeral* (lost when the server stops, as in the v0.x servers) and shared
by every worker of ``--workers N``: the master creates one anonymous shared mapping
before it forks, so a write acknowledged by one worker is seen by the next request
on any other worker.

Layout of the mapping: ``generation`` (uint64) ‖ ``length`` (uint64) ‖ two buffers of
``capacity`` bytes; generation *g* is the JSON in buffer *g* % 2. A writer fills the
other buffer and only then publishes the new header, so a writer killed half-way
leaves the current state intact. Writers serialise through a POSIX record lock
(``fcntl.lockf``) on an unlinked temporary file opened before the fork: record locks
belong to a process (a forked worker does not share its parent's lock, unlike
``flock`` on an inherited descriptor) and die with it, so a crashed worker never
leaves the store locked. A writer rewrites the blob and then bumps the generation
while it holds the lock; a reader compares the 8-byte generation with the one it
decoded last and only when it changed takes the shared lock and decodes again. So
the request path costs one 8-byte read when nothing changed — and nothing at all for
identities that the config file assigns (the authorizer looks there first).
"""

from __future__ import annotations

import fcntl
import json
import mmap
import struct
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import IO, Protocol, TypeVar

from pykes.auth.policy import Policy

__all__ = [
    "DEFAULT_CAPACITY",
    "Assignment",
    "EphemeralPolicy",
    "EphemeralStore",
    "FixedPolicies",
    "RunTimePolicies",
    "Snapshot",
    "StoreFullError",
]

DEFAULT_CAPACITY = 4 << 20  # bytes of serialized state (policies + assignments)
_HEADER = struct.Struct("=QQ")  # generation, length of the JSON blob

T = TypeVar("T")


class StoreFullError(Exception):
    """The serialized state would not fit into the shared region."""


@dataclass(frozen=True, slots=True)
class EphemeralPolicy:
    policy: Policy
    created_at_ns: int
    created_by: str


@dataclass(frozen=True, slots=True)
class Assignment:
    policy: str  # policy name (an ephemeral policy or one from the config file)
    created_at_ns: int
    created_by: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One decoded generation of the state (read-only mappings)."""

    generation: int
    policies: Mapping[str, EphemeralPolicy]
    assignments: Mapping[str, Assignment]


_EMPTY = Snapshot(0, MappingProxyType({}), MappingProxyType({}))


def _encode(
    policies: Mapping[str, EphemeralPolicy], assignments: Mapping[str, Assignment]
) -> bytes:
    doc = {
        "p": {
            n: [list(p.policy.allow), list(p.policy.deny), p.created_at_ns, p.created_by]
            for n, p in policies.items()
        },
        "a": {i: [a.policy, a.created_at_ns, a.created_by] for i, a in assignments.items()},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _decode(generation: int, blob: bytes) -> Snapshot:
    if not blob:
        return Snapshot(generation, _EMPTY.policies, _EMPTY.assignments)
    doc = json.loads(blob)
    policies = {
        n: EphemeralPolicy(Policy(n, tuple(allow), tuple(deny)), at, by)
        for n, (allow, deny, at, by) in doc["p"].items()
    }
    assignments = {i: Assignment(p, at, by) for i, (p, at, by) in doc["a"].items()}
    return Snapshot(generation, MappingProxyType(policies), MappingProxyType(assignments))


class RunTimePolicies(Protocol):
    """What the authorizer reads of the policies and assignments made at run time."""

    def snapshot(self) -> Snapshot: ...


@dataclass(frozen=True, slots=True)
class FixedPolicies:
    """Run-time policies that never change under a reader: a stateful enclave's, read
    from its store (a new set is read when a write changes them, api/tenants.py)."""

    current: Snapshot

    def snapshot(self) -> Snapshot:
        return self.current


class EphemeralStore:
    """The shared ephemeral state; create it before forking the workers."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        # MAP_SHARED | MAP_ANONYMOUS; pages are only committed once written.
        self._map = mmap.mmap(-1, _HEADER.size + 2 * capacity)
        self._generation = memoryview(self._map)[:8].cast("Q")
        self._lockfile: IO[bytes] = tempfile.TemporaryFile(prefix="pykes-ephemeral-")  # noqa: SIM115
        self._snapshot = _EMPTY

    @contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        fd = self._lockfile.fileno()
        fcntl.lockf(fd, mode)
        try:
            yield
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)

    def _read(self) -> Snapshot:
        """Decode the current generation (call with a lock held)."""
        generation, length = _HEADER.unpack_from(self._map, 0)
        if generation == self._snapshot.generation:
            return self._snapshot
        start = self._buffer(generation)
        return _decode(generation, self._map[start : start + length])

    def _buffer(self, generation: int) -> int:
        return _HEADER.size + (generation % 2) * self.capacity

    def snapshot(self) -> Snapshot:
        """The current state; decoded again only when another write happened."""
        snap = self._snapshot
        if self._generation[0] == snap.generation:
            return snap
        with self._locked(fcntl.LOCK_SH):
            snap = self._snapshot = self._read()
        return snap

    def update(self, change: Callable[[dict[str, EphemeralPolicy], dict[str, Assignment]], T]) -> T:
        """Apply ``change`` to mutable copies of the current state under the exclusive
        lock and publish the result. If ``change`` raises, nothing is written."""
        with self._locked(fcntl.LOCK_EX):
            current = self._snapshot = self._read()
            policies = dict(current.policies)
            assignments = dict(current.assignments)
            result = change(policies, assignments)
            blob = _encode(policies, assignments)
            if len(blob) > self.capacity:
                raise StoreFullError(
                    f"ephemeral policy store is full ({self.capacity} bytes): "
                    "delete policies or forget identities first"
                )
            generation = current.generation + 1
            start = self._buffer(generation)
            self._map[start : start + len(blob)] = blob
            _HEADER.pack_into(self._map, 0, generation, len(blob))
            self._snapshot = Snapshot(
                generation, MappingProxyType(policies), MappingProxyType(assignments)
            )
        return result

    def close(self) -> None:
        self._generation.release()
        self._map.close()
        self._lockfile.close()
