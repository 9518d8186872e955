"""The key changes every worker of a node must see: a generation counter and a ring of
the names written last, in memory shared by all worker processes (issue 19).

The master creates one :class:`KeyChanges` before it forks (an anonymous
``MAP_SHARED`` mapping, like the metrics table and the legacy API's policies), so a
worker started later, or replacing a dead one, shares it too.

Layout: ``generation`` (uint64) ‖ ``slots`` records of ``_SLOT`` bytes; the record of
generation *g* is at index *g* % ``slots``: a uint16 length and the changed name's
UTF-8 bytes, or the length ``_EVERY_KEY`` for "any key may have changed". A writer
fills the record and only then stores the new generation, both under an exclusive
POSIX record lock (``fcntl.lockf`` on an unlinked temporary file opened before the
fork: the kernel drops it with its process, so a writer that dies never leaves the
ring locked). A reader compares the generation with the one it saw last: one 8-byte
load per request while nothing changed; when behind, it reads the records it missed
under the shared lock.
"""

from __future__ import annotations

import fcntl
import mmap
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

__all__ = ["DEFAULT_SLOTS", "KeyChanges"]

# A worker that misses more writes than this between two of its requests drops its whole
# cache once (it cannot tell which names changed); 512 records are 96 KiB.
DEFAULT_SLOTS = 512
# Bytes per record: a name is a key name (at most 80 ASCII characters) or, in stateful
# mode, "<enclave>/<key>" (at most 161); a longer one is recorded as "any key".
_SLOT = 192
_LENGTH = struct.Struct("=H")
_MAX_NAME = _SLOT - _LENGTH.size
_EVERY_KEY = 0xFFFF


class KeyChanges:
    """The shared record of which key names changed; create it before forking."""

    def __init__(self, slots: int = DEFAULT_SLOTS) -> None:
        self.slots = slots
        # MAP_SHARED | MAP_ANONYMOUS; pages are only committed once written.
        self._map = mmap.mmap(-1, 8 + slots * _SLOT)
        # The generation, read by every cache lookup: ``generation[0]``.
        self.generation = memoryview(self._map)[:8].cast("Q")
        self._lockfile: IO[bytes] = tempfile.TemporaryFile(prefix="pykes-key-changes-")  # noqa: SIM115

    @contextmanager
    def _lock(self, mode: int) -> Iterator[None]:
        fcntl.lockf(self._lockfile.fileno(), mode)
        try:
            yield
        finally:
            fcntl.lockf(self._lockfile.fileno(), fcntl.LOCK_UN)

    def _record(self, generation: int) -> int:
        return 8 + (generation % self.slots) * _SLOT

    def publish(self, name: str | None) -> None:
        """Record that key ``name`` changed (``None``: any key may have). Call it after
        the backend write and before the write is answered."""
        raw = name.encode() if name is not None else b""
        length = len(raw) if name is not None and len(raw) <= _MAX_NAME else _EVERY_KEY
        with self._lock(fcntl.LOCK_EX):
            generation = self.generation[0] + 1
            start = self._record(generation)
            _LENGTH.pack_into(self._map, start, length)
            if length != _EVERY_KEY:
                start += _LENGTH.size
                self._map[start : start + length] = raw
            self.generation[0] = generation  # published: readers look at this only

    def since(self, generation: int) -> tuple[int, set[str] | None]:
        """The current generation and the names changed after ``generation``; ``None``
        instead of the names when any key may have changed (or the ring was overrun)."""
        with self._lock(fcntl.LOCK_SH):
            current = self.generation[0]
            if current - generation > self.slots:
                return current, None
            names: set[str] = set()
            for changed in range(generation + 1, current + 1):
                start = self._record(changed)
                (length,) = _LENGTH.unpack_from(self._map, start)
                if length == _EVERY_KEY:
                    return current, None
                start += _LENGTH.size
                names.add(self._map[start : start + length].decode())
        return current, names
