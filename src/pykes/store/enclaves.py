"""The stateful store's operations: enclaves, and the key rings, policies and identities
inside them. Every change is a check-and-set write on the engine, retried when another
writer (a task, a process, a node) changed the record first: no update is lost.

Creating a record in an enclave is followed by a rewrite of the enclave's record (a
*confirmation*), so that a concurrent deletion of the enclave either sees the new
record (and refuses, or sweeps it with ``force``) or fails its own check-and-set; if
the enclave is gone, the creation is undone and reports ``enclave does not exist``.
The ``default`` enclave is never deleted and needs no confirmation.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pykes.crypto import KeyType, generate_key_version, import_key_version
from pykes.errors import (
    APIError,
    IdentityNotFoundError,
    KeyExistsError,
    KeyNotFoundError,
    PolicyNotFoundError,
)
from pykes.names import valid_name
from pykes.store.engine import Engine, Record, VersionConflict
from pykes.store.errors import (
    DefaultEnclaveError,
    EnclaveExistsError,
    EnclaveNotEmptyError,
    EnclaveNotFoundError,
    IdentityExistsError,
    InvalidNameError,
    PolicyExistsError,
    RotatedKeyError,
    StoreConflictError,
)
from pykes.store.records import (
    EnclaveInfo,
    IdentityRecord,
    KeyRing,
    PolicyRecord,
    decode_identity,
    decode_key_ring,
    decode_policy,
    encode_identity,
    encode_key_ring,
    encode_policy,
)
from pykes.store.seal import Seal
from pykes.store.sealed import Enclave, SealedStore

DEFAULT_ENCLAVE = "default"
"""The enclave created with the store: where requests without an enclave go."""

ATTEMPTS = 64
"""Check-and-set attempts on one record before :class:`StoreConflictError`."""

_PREFIX_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Kind(Generic[T]):
    """One kind of an enclave's records: its folder, codec and errors."""

    folder: str
    label: str  # how an invalid name is called in the error text
    encode: Callable[[T], bytes]
    decode: Callable[[str, bytes], T]
    not_found: Callable[[], APIError]


_KEYS = _Kind("key", "key name", encode_key_ring, decode_key_ring, KeyNotFoundError)
_POLICIES = _Kind("policy", "policy name", encode_policy, decode_policy, PolicyNotFoundError)
_IDENTITIES = _Kind("identity", "identity", encode_identity, decode_identity, IdentityNotFoundError)
# The KMS API's policies (command/key-name patterns) and identities (with a privilege):
# records of their own, which the KES API never reads (docs/kms-api.md).
_KMS_POLICIES = _Kind(
    "kms-policy", "policy name", encode_policy, decode_policy, PolicyNotFoundError
)
_KMS_IDENTITIES = _Kind(
    "kms-identity", "identity", encode_identity, decode_identity, IdentityNotFoundError
)
_FOLDERS = tuple(k.folder for k in (_KEYS, _POLICIES, _IDENTITIES, _KMS_POLICIES, _KMS_IDENTITIES))


def _policies(kms: bool) -> _Kind[PolicyRecord]:
    return _KMS_POLICIES if kms else _POLICIES


def _identities(kms: bool) -> _Kind[IdentityRecord]:
    return _KMS_IDENTITIES if kms else _IDENTITIES


class EnclaveStore:
    """Enclaves and their keys, policies and identities, sealed on an engine.

    Open it with :meth:`open`; every method is a coroutine. Errors a client caused are
    ``APIError``s with the status and text to send (``pykes.store.errors``);
    ``RecordNotAuthentic`` means a stored record was tampered with or moved.
    """

    def __init__(self, sealed: SealedStore) -> None:
        self._sealed = sealed
        self._engine = sealed.engine
        self.description = sealed.engine.description

    @classmethod
    async def open(cls, engine: Engine, seal: Seal, *, created_by: str = "") -> EnclaveStore:
        """Open the store on ``engine`` (which it then owns) with ``seal``. A new store
        gets its root key and the ``default`` enclave (created by ``created_by``); an
        existing one is only read: a seal that does not fit raises ``SealError``, closes
        the engine and writes nothing."""
        try:
            store = cls(await SealedStore.open(engine, seal))
            if await store._sealed.enclave(DEFAULT_ENCLAVE) is None:
                with contextlib.suppress(EnclaveExistsError):  # another process came first
                    await store.create_enclave(DEFAULT_ENCLAVE, created_by)
        except BaseException:
            await engine.close()
            raise
        return store

    async def close(self) -> None:
        await self._engine.close()

    # --- enclaves -----------------------------------------------------------------

    async def create_enclave(self, name: str, created_by: str = "") -> EnclaveInfo:
        """Raises ``EnclaveExistsError`` (400 ``enclave already exists``)."""
        _check_name("enclave name", name)
        info = EnclaveInfo(name, time.time_ns(), created_by)
        return (await self._sealed.create_enclave(info)).info

    async def describe_enclave(self, name: str) -> EnclaveInfo:
        return (await self._enclave(name)).info

    async def list_enclaves(self, prefix: str = "") -> list[str]:
        return await self._sealed.list_enclaves(_check_prefix(prefix))

    async def delete_enclave(self, name: str, *, force: bool = False) -> None:
        """Delete an enclave: refused for ``default`` and, without ``force``, for an
        enclave holding any key, policy or identity. With ``force``, its records go with
        it (unreadable from the moment the enclave record is gone: their key was in it)."""
        _check_name("enclave name", name)
        if name == DEFAULT_ENCLAVE:
            raise DefaultEnclaveError()
        for attempt in range(ATTEMPTS):
            enclave = await self._enclave(name)
            if not force:
                for folder in _FOLDERS:
                    if await self._engine.list(enclave.folder(folder)):
                        raise EnclaveNotEmptyError()
            try:
                await self._engine.delete(enclave.path, enclave.record.version)
            except VersionConflict:  # a record was created in it meanwhile: look again
                await _backoff(attempt)
                continue
            for folder in _FOLDERS:
                await self._sweep(enclave.folder(folder))
            return
        raise StoreConflictError()

    # --- keys -----------------------------------------------------------------------

    async def create_key(
        self, enclave: str, name: str, key_type: KeyType = KeyType.AES256, created_by: str = ""
    ) -> KeyRing:
        """A new key ring with a random version 1; ``KeyExistsError`` if the name is taken."""
        ring = KeyRing.new(name, generate_key_version(key_type, created_by))
        return await self._change(_KEYS, enclave, name, _must_be_new(ring))

    async def import_key(
        self,
        enclave: str,
        name: str,
        key: bytes,
        key_type: KeyType = KeyType.AES256,
        created_by: str = "",
    ) -> KeyRing:
        """A new key ring whose version 1 is ``key`` (32 bytes, else ``ValueError``)."""
        ring = KeyRing.new(name, import_key_version(key, key_type, created_by))
        return await self._change(_KEYS, enclave, name, _must_be_new(ring))

    async def import_stored_key(
        self, enclave: str, name: str, value: bytes, *, replace: bool = False
    ) -> KeyRing:
        """A new key ring whose version 1 is ``value``, a stateless keystore's stored
        key, byte for byte (``kes migrate``): what the key encrypted there decrypts here.
        ``KeyExistsError`` if the name is taken, unless ``replace``: then a key that was
        never rotated is replaced, a rotated one never (``RotatedKeyError``: its other
        versions may still be needed). ``ValueError`` if ``value`` is not a key."""
        ring = KeyRing.of_stored(name, value)

        def adopt(current: KeyRing | None) -> KeyRing:
            if current is not None:
                if not replace:
                    raise KeyExistsError()
                if current.last_given != 1:  # a version 2 is or was there
                    raise RotatedKeyError(current.last_given)
            return ring

        return await self._change(_KEYS, enclave, name, adopt)

    async def get_key(self, enclave: str, name: str) -> KeyRing:
        return await self._get(_KEYS, enclave, name)

    async def rotate_key(self, enclave: str, name: str, created_by: str = "") -> KeyRing:
        """Add a random version of the latest version's type; ``ring.latest`` is its
        number. ``TooManyVersionsError`` at ``MAX_VERSIONS``."""

        def rotate(ring: KeyRing) -> KeyRing:
            return ring.rotated(generate_key_version(ring.current.key_type, created_by))

        return await self._change(_KEYS, enclave, name, _must_exist(_KEYS, rotate))

    async def delete_key_version(self, enclave: str, name: str, version: int) -> KeyRing:
        """Forget one version: what it encrypted no longer decrypts. The latest too (the
        one before it is the latest then, its number is never given again); never a
        key's only version (``OnlyVersionError``: delete the key)."""

        def delete(ring: KeyRing) -> KeyRing:
            return ring.without_version(version)

        return await self._change(_KEYS, enclave, name, _must_exist(_KEYS, delete))

    async def set_min_version(self, enclave: str, name: str, version: int) -> KeyRing:
        """Versions below ``version`` stay stored but no longer decrypt (can be lowered
        again)."""

        def set_min(ring: KeyRing) -> KeyRing:
            return ring.with_min_version(version)

        return await self._change(_KEYS, enclave, name, _must_exist(_KEYS, set_min))

    async def delete_key(self, enclave: str, name: str) -> None:
        await self._delete(_KEYS, enclave, name)

    async def list_keys(self, enclave: str, prefix: str = "") -> list[str]:
        return await self._list(_KEYS, enclave, prefix)

    # --- policies -------------------------------------------------------------------

    # ``kms``: the KMS API's policies and identities, kept apart from the KES API's.

    async def put_policy(
        self,
        enclave: str,
        name: str,
        allow: Sequence[str] = (),
        deny: Sequence[str] = (),
        created_by: str = "",
        *,
        new: bool = False,
        kms: bool = False,
    ) -> PolicyRecord:
        """Create or replace a policy; ``new``: create only (``PolicyExistsError``)."""
        policy = PolicyRecord(name, tuple(allow), tuple(deny), time.time_ns(), created_by)
        change = _put(policy, new, PolicyExistsError)
        return await self._change(_policies(kms), enclave, name, change)

    async def get_policy(self, enclave: str, name: str, *, kms: bool = False) -> PolicyRecord:
        return await self._get(_policies(kms), enclave, name)

    async def delete_policy(self, enclave: str, name: str, *, kms: bool = False) -> None:
        await self._delete(_policies(kms), enclave, name)

    async def list_policies(
        self, enclave: str, prefix: str = "", *, kms: bool = False
    ) -> list[str]:
        return await self._list(_policies(kms), enclave, prefix)

    # --- identities -----------------------------------------------------------------

    async def put_identity(
        self,
        enclave: str,
        identity: str,
        policy: str,
        created_by: str = "",
        *,
        stored_policy: bool = True,
        new: bool = False,
        kms: bool = False,
        privilege: int = 0,
    ) -> IdentityRecord:
        """Assign ``policy`` to ``identity``. The policy must exist in the enclave
        (``PolicyNotFoundError``) unless ``stored_policy`` is false: a policy kept outside
        the store (the config file's, in ``default``). ``new``: only an identity without
        a policy in the enclave (``IdentityExistsError``). A KMS identity (``kms``) has a
        ``privilege`` and may have no policy ("")."""
        if policy or not kms:
            _check_name("policy name", policy)
            if stored_policy:
                await self.get_policy(enclave, policy, kms=kms)
        record = IdentityRecord(identity, policy, time.time_ns(), created_by, privilege)
        change = _put(record, new, IdentityExistsError)
        return await self._change(_identities(kms), enclave, identity, change)

    async def get_identity(
        self, enclave: str, identity: str, *, kms: bool = False
    ) -> IdentityRecord:
        return await self._get(_identities(kms), enclave, identity)

    async def delete_identity(self, enclave: str, identity: str, *, kms: bool = False) -> None:
        await self._delete(_identities(kms), enclave, identity)

    async def list_identities(
        self, enclave: str, prefix: str = "", *, kms: bool = False
    ) -> list[str]:
        return await self._list(_identities(kms), enclave, prefix)

    # --- one record, checked and set ---------------------------------------------

    async def _enclave(self, name: str) -> Enclave:
        _check_name("enclave name", name)
        enclave = await self._sealed.enclave(name)
        if enclave is None:
            raise EnclaveNotFoundError()
        return enclave

    async def _read(self, kind: _Kind[T], enclave: Enclave, name: str) -> tuple[T, int] | None:
        found = await self._sealed.read(enclave, kind.folder, name)
        return None if found is None else (kind.decode(name, found[0]), found[1])

    async def _get(self, kind: _Kind[T], enclave_name: str, name: str) -> T:
        enclave = await self._enclave(enclave_name)
        found = await self._read(kind, enclave, _check_name(kind.label, name))
        if found is None:
            raise kind.not_found()
        return found[0]

    async def _change(
        self, kind: _Kind[T], enclave_name: str, name: str, change: Callable[[T | None], T]
    ) -> T:
        """Write ``change(current)`` (``None`` for a missing record) with check-and-set,
        reading again and retrying when another writer came first."""
        enclave = await self._enclave(enclave_name)
        _check_name(kind.label, name)
        for attempt in range(ATTEMPTS):
            found = await self._read(kind, enclave, name)
            current, version = (None, 0) if found is None else found
            new = change(current)
            try:
                written = await self._sealed.write(
                    enclave, kind.folder, name, kind.encode(new), version
                )
            except VersionConflict:
                await _backoff(attempt)
                continue
            if version == 0:
                await self._confirm(enclave, kind.folder, name, written)
            return new
        raise StoreConflictError()

    async def _delete(self, kind: _Kind[T], enclave_name: str, name: str) -> None:
        enclave = await self._enclave(enclave_name)
        _check_name(kind.label, name)
        for attempt in range(ATTEMPTS):
            found = await self._read(kind, enclave, name)
            if found is None:
                raise kind.not_found()
            try:
                await self._sealed.remove(enclave, kind.folder, name, found[1])
                return
            except VersionConflict:
                await _backoff(attempt)
        raise StoreConflictError()

    async def _list(self, kind: _Kind[T], enclave_name: str, prefix: str) -> list[str]:
        enclave = await self._enclave(enclave_name)
        return await self._sealed.names(enclave, kind.folder, _check_prefix(prefix))

    async def _confirm(self, enclave: Enclave, folder: str, name: str, version: int) -> None:
        """After creating ``folder/name`` (at ``version``) in ``enclave``: rewrite the
        enclave record as it is, so that a deletion that listed the enclave before the new
        record fails its check-and-set. If the rewrite conflicts, the record changed after
        ours was written — by another confirmation (which stops such a deletion as well)
        or by the deletion itself (then the enclave is gone: undo, and say so)."""
        if enclave.name == DEFAULT_ENCLAVE:
            return
        record = await self._engine.get(enclave.path)
        if record is not None and _same(record, enclave):
            try:
                await self._engine.put(enclave.path, record.value, record.version)
                return
            except VersionConflict:
                if _same(await self._engine.get(enclave.path), enclave):
                    return
        with contextlib.suppress(VersionConflict):
            await self._sealed.remove(enclave, folder, name, version)
        raise EnclaveNotFoundError()

    async def _sweep(self, folder: str) -> None:
        """Delete what is left in a deleted enclave's folder (sealed under a key that is
        gone; a crash midway leaves records nothing lists)."""
        for path in await self._engine.list(folder):
            record = await self._engine.get(path)
            if record is not None:
                with contextlib.suppress(VersionConflict):
                    await self._engine.delete(path, record.version)


def _same(record: Record | None, enclave: Enclave) -> bool:
    """Whether ``record`` is still ``enclave``'s (not deleted, nor created anew)."""
    return record is not None and record.value == enclave.record.value


def _must_be_new(ring: KeyRing) -> Callable[[KeyRing | None], KeyRing]:
    def create(current: KeyRing | None) -> KeyRing:
        if current is not None:
            raise KeyExistsError()
        return ring

    return create


def _must_exist(kind: _Kind[T], change: Callable[[T], T]) -> Callable[[T | None], T]:
    def update(current: T | None) -> T:
        if current is None:
            raise kind.not_found()
        return change(current)

    return update


def _check_name(label: str, name: str) -> str:
    if not valid_name(name):
        raise InvalidNameError(label, name)
    return name


def _put(record: T, new: bool, exists: Callable[[], APIError]) -> Callable[[T | None], T]:
    """The change of a put: ``record``, or with ``new`` ``exists()`` raised over a record
    already there (checked inside the check-and-set loop: two creators, one wins)."""

    def change(current: T | None) -> T:
        if new and current is not None:
            raise exists()
        return record

    return change


def _check_prefix(prefix: str) -> str:
    if len(prefix) > 80 or not _PREFIX_CHARS.issuperset(prefix):
        raise ValueError(f"store: invalid listing prefix {prefix!r}")
    return prefix


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
