"""Stateful mode's store as the API uses it: one enclave's key rings (``EnclaveKeys``, a
context's ``keys``) read through the worker's ring cache, and every write published to
every worker before it is answered (keystore/changes.py).

What a write publishes: a key ring as ``<enclave>/<key>``; an enclave's policies and
identities as ``<enclave>`` (its contexts are rebuilt, api/tenants.py); an enclave's
deletion as "any key" (a later enclave of that name must not see its rings).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any

from pykes.crypto import KeyType
from pykes.errors import IdentityNotFoundError, PolicyNotFoundError
from pykes.keystore import KeyCache
from pykes.store import DEFAULT_ENCLAVE, EnclaveInfo, EnclaveStore, KeyRing
from pykes.store.records import IdentityRecord, PolicyRecord


class RingSource:
    """The store's key rings as the ring cache reads them, by ``<enclave>/<key>``; the
    read side of a keystore only (writes go through ``KeyCache.write``)."""

    def __init__(self, store: EnclaveStore) -> None:
        self._store = store
        self.description = store.description

    async def get(self, path: str) -> KeyRing:
        enclave, _, name = path.partition("/")
        return await self._store.get_key(enclave, name)

    async def status(self) -> float:
        """The time one read of the store takes (the ``default`` enclave's record)."""
        start = time.perf_counter()
        await self._store.describe_enclave(DEFAULT_ENCLAVE)
        return time.perf_counter() - start

    async def close(self) -> None:
        """Nothing: the worker owns the store and closes it after its states."""


def ring_cache(store: EnclaveStore, **options: Any) -> KeyCache[KeyRing]:
    """A worker's cache of ``store``'s key rings; ``options`` are ``KeyCache``'s (the
    expiry durations and the shared ``changes``)."""
    return KeyCache(RingSource(store), decode=_as_read, **options)  # type: ignore[arg-type]


def _as_read(ring: KeyRing) -> KeyRing:
    return ring


class EnclaveKeys:
    """One enclave's key rings: what handlers reach as ``ctx.keys`` in stateful mode."""

    __slots__ = ("enclave", "_prefix", "_store", "_rings")

    def __init__(self, enclave: str, store: EnclaveStore, rings: KeyCache[KeyRing]) -> None:
        self.enclave = enclave
        self._prefix = enclave + "/"
        self._store = store
        self._rings = rings

    @property
    def description(self) -> str:
        return self._store.description

    def get(self, name: str) -> Awaitable[KeyRing]:
        """The ring ``name`` (not a coroutine of its own: the cache's, one frame less)."""
        return self._rings.get(self._prefix + name)

    def _write(self, name: str, write: Coroutine[Any, Any, KeyRing]) -> Awaitable[KeyRing]:
        return self._rings.write(self._prefix + name, write)

    def create(self, name: str, key_type: KeyType, created_by: str) -> Awaitable[KeyRing]:
        return self._write(name, self._store.create_key(self.enclave, name, key_type, created_by))

    def import_(
        self, name: str, key: bytes, key_type: KeyType, created_by: str
    ) -> Awaitable[KeyRing]:
        imported = self._store.import_key(self.enclave, name, key, key_type, created_by)
        return self._write(name, imported)

    def rotate(self, name: str, created_by: str) -> Awaitable[KeyRing]:
        return self._write(name, self._store.rotate_key(self.enclave, name, created_by))

    def delete_version(self, name: str, version: int) -> Awaitable[KeyRing]:
        return self._write(name, self._store.delete_key_version(self.enclave, name, version))

    def set_min_version(self, name: str, version: int) -> Awaitable[KeyRing]:
        return self._write(name, self._store.set_min_version(self.enclave, name, version))

    async def delete(self, name: str) -> None:
        await self._rings.write(self._prefix + name, self._store.delete_key(self.enclave, name))

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """Up to ``n`` names (all if ``n <= 0``) and the one to continue at (``""``: done)."""
        names = await self._store.list_keys(self.enclave, prefix)
        if 0 < n < len(names):
            return names[:n], names[n]
        return names, ""

    async def status(self) -> float:
        return await self._rings.status()


class StoredEnclaves:
    """A worker's handle on the store: enclaves, their key rings (``keys``) and their
    policies and identities, every change published to every worker."""

    def __init__(self, store: EnclaveStore, rings: KeyCache[KeyRing]) -> None:
        self.store = store
        self.rings = rings

    def keys(self, enclave: str) -> EnclaveKeys:
        return EnclaveKeys(enclave, self.store, self.rings)

    # --- an enclave's policies and identities ---------------------------------------

    async def records(
        self, enclave: str, *, kms: bool = False
    ) -> tuple[list[PolicyRecord], list[IdentityRecord]]:
        """Every policy and identity of ``enclave`` (``EnclaveNotFoundError`` if none);
        ``kms``: the KMS API's."""
        store = self.store
        policies = []
        for name in await store.list_policies(enclave, kms=kms):
            with contextlib.suppress(PolicyNotFoundError):  # deleted meanwhile
                policies.append(await store.get_policy(enclave, name, kms=kms))
        identities = []
        for identity in await store.list_identities(enclave, kms=kms):
            with contextlib.suppress(IdentityNotFoundError):  # forgotten meanwhile
                identities.append(await store.get_identity(enclave, identity, kms=kms))
        return policies, identities

    async def write_policy(
        self,
        enclave: str,
        name: str,
        allow: Sequence[str],
        deny: Sequence[str],
        identities: Sequence[str],
        created_by: str,
        *,
        new: bool = False,
    ) -> None:
        """Create (``new``: only create) or replace a policy and assign it to ``identities``."""
        write = self.store.put_policy(enclave, name, allow, deny, created_by, new=new)
        await self.rings.write(enclave, write)
        for identity in identities:
            await self.assign(enclave, identity, name, created_by)

    async def delete_policy(self, enclave: str, name: str) -> None:
        """Delete a policy and forget the identities assigned to it."""
        await self.rings.write(enclave, self.store.delete_policy(enclave, name))
        for identity in (await self.records(enclave))[1]:
            if identity.policy == name:
                with contextlib.suppress(IdentityNotFoundError):
                    await self.forget(enclave, identity.identity)

    async def assign(
        self,
        enclave: str,
        identity: str,
        policy: str,
        created_by: str,
        *,
        stored: bool = True,
        new: bool = False,
    ) -> None:
        """Assign ``policy`` to ``identity``; ``stored``: the policy is in the store
        (not the config file's); ``new``: only an identity not assigned yet."""
        store = self.store
        write = store.put_identity(
            enclave, identity, policy, created_by, stored_policy=stored, new=new
        )
        await self.rings.write(enclave, write)

    async def forget(self, enclave: str, identity: str) -> None:
        await self.rings.write(enclave, self.store.delete_identity(enclave, identity))

    # --- the KMS API's policies and identities (apart from the KES API's) -----------

    async def write_kms_policy(
        self, enclave: str, name: str, allow: Sequence[str], deny: Sequence[str], created_by: str
    ) -> None:
        write = self.store.put_policy(enclave, name, allow, deny, created_by, kms=True)
        await self.rings.write(enclave, write)

    async def delete_kms_policy(self, enclave: str, name: str) -> None:
        """Delete a KMS policy; the identities assigned to it keep their privilege and
        have no policy (a policy created later under that name grants them nothing)."""
        await self.rings.write(enclave, self.store.delete_policy(enclave, name, kms=True))
        for identity in (await self.records(enclave, kms=True))[1]:
            if identity.policy == name:
                with contextlib.suppress(IdentityNotFoundError):
                    await self.write_kms_identity(enclave, identity, policy="")

    async def write_kms_identity(
        self, enclave: str, identity: IdentityRecord, *, policy: str | None = None
    ) -> None:
        """Write ``identity`` (its ``policy`` replaced when given; a named policy must
        exist: ``PolicyNotFoundError``)."""
        write = self.store.put_identity(
            enclave,
            identity.identity,
            identity.policy if policy is None else policy,
            identity.created_by,
            kms=True,
            privilege=identity.privilege,
        )
        await self.rings.write(enclave, write)

    async def delete_kms_identity(self, enclave: str, identity: str) -> None:
        write = self.store.delete_identity(enclave, identity, kms=True)
        await self.rings.write(enclave, write)

    # --- enclaves ----------------------------------------------------------------

    async def create_enclave(self, name: str, created_by: str) -> EnclaveInfo:
        return await self.store.create_enclave(name, created_by)

    async def describe_enclave(self, name: str) -> EnclaveInfo:
        return await self.store.describe_enclave(name)

    async def list_enclaves(self, prefix: str) -> list[str]:
        return await self.store.list_enclaves(prefix)

    async def delete_enclave(self, name: str, *, force: bool) -> None:
        """Its rings leave every worker's cache ("any key"): an enclave created later
        under the same name must not see them."""
        await self.rings.write(None, self.store.delete_enclave(name, force=force))
