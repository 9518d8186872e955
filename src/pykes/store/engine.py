"""The engine protocol: where the stateful store keeps its records. SQLite on one node
(``store.sqlite``); OpenBao/Vault K/V v2 for many nodes (``store.vault``), with its native
check-and-set — so the protocol is shaped like K/V v2.

A record is an opaque byte value at a path, with a version: one more on every write, and
what ``put`` returns. A new record starts at 1, a record created again after a delete at
1 (SQLite) or after the deleted version (K/V v2 keeps a deleted secret's version count).
Every write names the version it expects (0: the path must hold no record) and fails with
:class:`VersionConflict` if the stored one differs: no write is ever lost to a concurrent
one.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Protocol, runtime_checkable

PATH_RE = re.compile(r"[0-9A-Za-z_-]+(/[0-9A-Za-z_-]+)*\Z", re.ASCII)
"""Paths are ASCII names joined by ``/``: they sort bytewise and need no quoting in a
KV v2 URL."""


class Record(NamedTuple):
    """A stored value and its version (≥ 1)."""

    value: bytes
    version: int


class VersionConflict(Exception):
    """A write's expected version is not the stored one (or the path exists when it was
    expected not to). Nothing was written."""

    def __init__(self, path: str, expected: int) -> None:
        super().__init__(f"store: record '{path}' is not at version {expected}")
        self.path = path
        self.expected = expected


@runtime_checkable
class Engine(Protocol):
    """Versioned records at paths; every call may be awaited from any task.

    ``list(prefix)`` returns, sorted bytewise, every path that starts with ``prefix``;
    callers only list inside one folder (``prefix`` up to its last ``/``) whose entries
    are records, never sub-folders — a K/V v2 engine serves it with a LIST of that
    folder. A write returns only once it is durable. Deleting a record twice at the same
    version may succeed twice (K/V v2); a write after a delete never succeeds on the
    deleted version.
    """

    description: str

    async def get(self, path: str) -> Record | None: ...

    async def put(self, path: str, value: bytes, expected_version: int) -> int:
        """Write ``value`` if the stored version is ``expected_version`` (0: no record);
        returns the new version."""
        ...

    async def delete(self, path: str, expected_version: int) -> None:
        """Remove the record if it is at ``expected_version``."""
        ...

    async def list(self, prefix: str) -> list[str]: ...

    async def close(self) -> None: ...


def check_path(path: str) -> str:
    if not PATH_RE.match(path):
        raise ValueError(f"store: invalid record path {path!r}")
    return path
