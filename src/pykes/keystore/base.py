"""The keystore protocol every backend implements (docs/compat/keystore.md §1), and
two helpers the backends share: start-up with clean-up, values as text.

KES is stateless: all keys live in one external keystore. Values are opaque byte
strings (the encoded key), names are key names. Backends signal the two canonical
conditions with :class:`~pykes.errors.KeyExistsError` and
:class:`~pykes.errors.KeyNotFoundError`, and an unreachable backend with
:class:`~pykes.errors.KeyStoreUnreachable`; any other exception is opaque to the API
layer and becomes a 5xx response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, runtime_checkable


@runtime_checkable
class KeyStore(Protocol):
    """An async key/value store holding encoded keys.

    ``description`` is the human-readable banner text, e.g. ``"Filesystem: /var/lib/kes"``.
    """

    description: str

    async def status(self) -> float:
        """Return the round-trip latency in seconds.

        Raises :class:`~pykes.errors.KeyStoreUnreachable` when the backend cannot be
        reached; any other exception means "reachable but unhealthy".
        """
        ...

    async def create(self, name: str, value: bytes) -> None:
        """Store ``value`` under ``name`` only if no such entry exists.

        Raises :class:`~pykes.errors.KeyExistsError` if the name is taken. There is no
        overwrite operation.
        """
        ...

    async def get(self, name: str) -> bytes:
        """Return the value stored under ``name`` or raise
        :class:`~pykes.errors.KeyNotFoundError`."""
        ...

    async def delete(self, name: str) -> None:
        """Remove ``name``. Whether a missing name raises
        :class:`~pykes.errors.KeyNotFoundError` is backend-dependent."""
        ...

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """Return up to ``n`` sorted names starting with ``prefix`` and the name to
        continue at (``""`` at the end). ``n <= 0`` means "backend default"."""
        ...

    async def close(self) -> None:
        """Release background tasks and connections."""
        ...


def utf8_text(prefix: str, name: str, value: bytes) -> str:
    """``value`` as text, for backends that store strings. Raises ValueError naming the
    key, outside the ``except`` so that the UnicodeDecodeError (which holds the whole
    value) never travels along as ``__context__``."""
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        pass
    raise ValueError(f"{prefix}: value of '{name}' is not UTF-8 text")


class _Closable(Protocol):
    async def close(self) -> None: ...


StoreT = TypeVar("StoreT", bound=_Closable)


async def connected(store: StoreT, *steps: Callable[[StoreT], Awaitable[Any]]) -> StoreT:
    """Run a new store's start-up ``steps`` (e.g. ``Store.login``) on it in order; if one
    fails, close the store (its HTTP pool, renewal task) before the error propagates."""
    try:
        for step in steps:
            await step(store)
    except BaseException:
        await store.close()
        raise
    return store
