"""In-memory keystore for ``kes server --dev`` (docs/compat/keystore.md §4.2)."""

from __future__ import annotations

from pykes.errors import KeyExistsError, KeyNotFoundError
from pykes.keystore.listing import byte_order_key, list_page

_LATENCY = 0.001


class MemoryKeyStore:
    """A dict-backed keystore; all state is lost when the process exits.

    Every operation runs synchronously on the event loop, so no locking is needed.
    """

    description = "In Memory"

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}

    async def status(self) -> float:
        """Always reachable; fixed latency of 1 ms."""
        return _LATENCY

    async def create(self, name: str, value: bytes) -> None:
        """Store ``value`` unless ``name`` exists (then KeyExistsError)."""
        if name in self._keys:
            raise KeyExistsError()
        self._keys[name] = bytes(value)

    async def get(self, name: str) -> bytes:
        """Return the value or raise KeyNotFoundError."""
        try:
            return self._keys[name]
        except KeyError:
            raise KeyNotFoundError() from None

    async def delete(self, name: str) -> None:
        """Remove ``name``; a missing name raises KeyNotFoundError."""
        try:
            del self._keys[name]
        except KeyError:
            raise KeyNotFoundError() from None

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """All sorted matching names for ``n <= 0``; otherwise one page of ``n``."""
        if n <= 0:
            names = [x for x in self._keys if x.startswith(prefix)]
            names.sort(key=byte_order_key)
            return names, ""
        return list_page(self._keys, prefix, n)

    async def close(self) -> None:
        """Nothing to release."""
