"""The sealed layer: the root key behind the seal, each enclave's key behind the root key,
and every value behind its enclave's key — with the record's path as associated data,
so a value copied to another name or enclave does not open.

Layout of the engine's paths (names are visible in the store, values never are)::

    meta/root                                  root key, wrapped by the seal
    enclaves/<enclave>                         enclave key + description, under the root key
    enclave/<enclave>/<generation>/<kind>/<name>   a key ring, policy or identity,
                                               under the enclave key

``<generation>`` is random per enclave creation: the records of a deleted enclave that
a crash left behind never show in an enclave created later under the same name (they
are sealed under a key that no longer exists).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field

from pykes.crypto.aead import NotAuthentic, seal, unseal
from pykes.store.engine import Engine, Record, VersionConflict
from pykes.store.errors import EnclaveExistsError, RecordNotAuthentic, SealError
from pykes.store.records import EnclaveInfo
from pykes.store.seal import Seal

ROOT_PATH = "meta/root"
ENCLAVES = "enclaves/"
_FORMAT = b"\x01"  # the first byte of the root record and of every sealed value
_KEY_SIZE = 32


@dataclass(frozen=True, slots=True)
class Enclave:
    """An opened enclave record: its description, key and generation, and the record as
    stored (``record`` identifies this very enclave: a new one under the same name is
    sealed with a fresh nonce)."""

    info: EnclaveInfo
    key: bytes = field(repr=False)
    generation: str
    record: Record = field(repr=False)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def path(self) -> str:
        return ENCLAVES + self.info.name

    def folder(self, kind: str) -> str:
        """Where this enclave's records of ``kind`` live (ends in ``/``)."""
        return f"enclave/{self.info.name}/{self.generation}/{kind}/"


class SealedStore:
    """An engine whose values are sealed; opened with :meth:`open`."""

    def __init__(self, engine: Engine, root_key: bytes) -> None:
        self.engine = engine
        self._root_key = root_key

    @classmethod
    async def open(cls, engine: Engine, seal: Seal) -> SealedStore:
        """Unwrap the store's root key with ``seal``; in a new store, create it first.

        Raises :class:`SealError` (one line, nothing written) when the seal does not
        unwrap the stored root key.
        """
        record = await engine.get(ROOT_PATH)
        if record is None:
            if await engine.list(ENCLAVES):
                raise SealError(f"store: {engine.description} has enclaves but no root key")
            root_key = os.urandom(_KEY_SIZE)
            try:
                await engine.put(ROOT_PATH, _FORMAT + await seal.wrap(root_key), 0)
                return cls(engine, root_key)
            except VersionConflict:  # another process created the store at the same time
                record = await engine.get(ROOT_PATH)
            if record is None:
                raise SealError(f"store: {engine.description}: the root key vanished")
        if record.value[:1] != _FORMAT:
            raise SealError(f"store: {engine.description}: unknown root key format")
        root_key = await seal.unwrap(record.value[1:])
        if len(root_key) != _KEY_SIZE:
            raise SealError(f"store: {engine.description}: the unsealed root key is invalid")
        return cls(engine, root_key)

    # --- enclaves: sealed under the root key ----------------------------------------

    async def enclave(self, name: str) -> Enclave | None:
        path = ENCLAVES + name
        record = await self.engine.get(path)
        if record is None:
            return None
        fields = json.loads(open_value(self._root_key, path, record.value))
        info = EnclaveInfo(name, int(fields["created_at"]), str(fields["created_by"]))
        key = base64.b64decode(fields["key"])
        return Enclave(info, key, str(fields["generation"]), record)

    async def create_enclave(self, info: EnclaveInfo) -> Enclave:
        """Raises :class:`EnclaveExistsError` if the name is taken."""
        path = ENCLAVES + info.name
        key, generation = os.urandom(_KEY_SIZE), os.urandom(8).hex()
        fields = {
            "key": base64.b64encode(key).decode(),
            "generation": generation,
            "created_at": info.created_at_ns,
            "created_by": info.created_by,
        }
        value = seal_value(self._root_key, path, json.dumps(fields).encode())
        try:
            version = await self.engine.put(path, value, 0)
        except VersionConflict:
            raise EnclaveExistsError() from None
        return Enclave(info, key, generation, Record(value, version))

    async def list_enclaves(self, prefix: str) -> list[str]:
        return [path[len(ENCLAVES) :] for path in await self.engine.list(ENCLAVES + prefix)]

    # --- an enclave's records: sealed under the enclave key ------------------------

    async def read(self, enclave: Enclave, kind: str, name: str) -> tuple[bytes, int] | None:
        """The plaintext of an enclave's record and its version, or None."""
        path = enclave.folder(kind) + name
        record = await self.engine.get(path)
        if record is None:
            return None
        return open_value(enclave.key, path, record.value), record.version

    async def write(
        self, enclave: Enclave, kind: str, name: str, plaintext: bytes, expected_version: int
    ) -> int:
        path = enclave.folder(kind) + name
        value = seal_value(enclave.key, path, plaintext)
        return await self.engine.put(path, value, expected_version)

    async def remove(self, enclave: Enclave, kind: str, name: str, expected_version: int) -> None:
        await self.engine.delete(enclave.folder(kind) + name, expected_version)

    async def names(self, enclave: Enclave, kind: str, prefix: str) -> list[str]:
        folder = enclave.folder(kind)
        return [path[len(folder) :] for path in await self.engine.list(folder + prefix)]


def seal_value(key: bytes, path: str, plaintext: bytes) -> bytes:
    return _FORMAT + seal(key, plaintext, path.encode())


def open_value(key: bytes, path: str, value: bytes) -> bytes:
    """Raises :class:`RecordNotAuthentic` unless ``value`` was sealed at ``path`` under
    ``key`` (and is unchanged)."""
    if value[:1] != _FORMAT:
        raise RecordNotAuthentic(path)
    try:
        return unseal(key, value[1:], path.encode())
    except NotAuthentic:
        raise RecordNotAuthentic(path) from None
