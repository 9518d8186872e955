"""The asyncio KMS API client: the :mod:`.ops` builders of
:class:`~pykes.client.kms.KMSClient`, sent by the KES SDK's asyncio transport."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message

from pykes.client.aio import AsyncBase
from pykes.client.kms import ops
from pykes.client.kms.ops import Rules
from pykes.kms.commands import Command
from pykes.kms.pb import response_pb2 as rs


class AsyncKMSClient(AsyncBase):
    """A client of the KMS API for asyncio: the constructor and methods of
    :class:`~pykes.client.kms.KMSClient`, as coroutines. Use ``async with`` or
    :meth:`aclose`."""

    enclave_in_header = False

    # ------------------------------------------------------------------ batches
    async def batch(self, command: Command, requests: Sequence[Message]) -> list[Any]:
        return await self._call(ops.batch(self._enclave, command, requests))

    # ------------------------------------------------------------------ server
    async def version(self) -> rs.VersionResponse:
        return await self._call(ops.version())

    async def live(self) -> bool:
        return await self._call(ops.live())

    async def ready(self, write: bool = False) -> bool:
        return await self._call(ops.ready(write))

    async def cluster_status(self) -> rs.ClusterStatusResponse:
        return await self._call(ops.cluster_status())

    # ------------------------------------------------------------------ enclaves
    async def create_enclave(self, name: str) -> None:
        await self._call(ops.create_enclave(name))

    async def delete_enclave(self, name: str) -> None:
        await self._call(ops.delete_enclave(name))

    async def enclave_status(self, name: str) -> rs.EnclaveStatusResponse:
        return await self._call(ops.enclave_status(name))

    async def list_enclaves(
        self, prefix: str = "", continue_at: str = "", limit: int = 0
    ) -> rs.ListEnclavesResponse:
        return await self._call(ops.list_enclaves(prefix, continue_at, limit))

    # ------------------------------------------------------------------ keys
    async def create_key(self, name: str, key_type: str = "") -> None:
        await self._call(ops.create_key(self._enclave, name, key_type, False))

    async def add_key_version(self, name: str) -> None:
        await self._call(ops.create_key(self._enclave, name, "", True))

    async def import_key(self, name: str, key: bytes, key_type: str = "") -> None:
        await self._call(ops.import_key(self._enclave, name, key, key_type))

    async def delete_key(self, name: str, version: int = 0, all_versions: bool = False) -> None:
        await self._call(ops.delete_key(self._enclave, name, version, all_versions))

    async def key_status(self, name: str, version: int = 0) -> rs.KeyStatusResponse:
        return await self._call(ops.key_status(self._enclave, name, version))

    async def encrypt(
        self, name: str, plaintext: bytes, associated_data: bytes = b"", version: int = 0
    ) -> rs.EncryptResponse:
        return await self._call(
            ops.encrypt(self._enclave, name, plaintext, associated_data, version)
        )

    async def decrypt(
        self, name: str, ciphertext: bytes, version: int, associated_data: bytes = b""
    ) -> rs.DecryptResponse:
        return await self._call(
            ops.decrypt(self._enclave, name, ciphertext, version, associated_data)
        )

    async def generate_key(
        self, name: str, associated_data: bytes = b"", length: int = 0, version: int = 0
    ) -> rs.GenerateKeyResponse:
        return await self._call(
            ops.generate_key(self._enclave, name, associated_data, length, version)
        )

    async def mac(self, name: str, message: bytes, version: int = 0) -> rs.MACResponse:
        return await self._call(ops.mac(self._enclave, name, message, version))

    async def list_keys(
        self, prefix: str = "", continue_at: str = "", limit: int = 0
    ) -> rs.ListKeysResponse:
        return await self._call(ops.list_keys(self._enclave, prefix, continue_at, limit))

    async def list_key_versions(
        self, name: str, continue_at: str = "", limit: int = 0
    ) -> rs.ListKeysResponse:
        return await self._call(ops.list_key_versions(self._enclave, name, continue_at, limit))

    # ------------------------------------------------------------------ policies
    async def create_policy(
        self, name: str, allow: Rules | None = None, deny: Rules | None = None
    ) -> None:
        await self._call(ops.create_policy(self._enclave, name, allow, deny))

    async def delete_policy(self, name: str) -> None:
        await self._call(ops.delete_policy(self._enclave, name))

    async def assign_policy(self, identity: str, policy: str) -> None:
        await self._call(ops.assign_policy(self._enclave, identity, policy))

    async def get_policy(self, name: str) -> rs.PolicyResponse:
        return await self._call(ops.get_policy(self._enclave, name))

    async def policy_status(self, name: str) -> rs.PolicyStatusResponse:
        return await self._call(ops.policy_status(self._enclave, name))

    async def list_policies(
        self, prefix: str = "", continue_at: str = "", limit: int = 0
    ) -> rs.ListPoliciesResponse:
        return await self._call(ops.list_policies(self._enclave, prefix, continue_at, limit))

    # ------------------------------------------------------------------ identities
    async def create_identity(self, identity: str, privilege: str = "User") -> None:
        await self._call(ops.create_identity(self._enclave, identity, privilege))

    async def delete_identity(self, identity: str) -> None:
        await self._call(ops.delete_identity(self._enclave, identity))

    async def identity_status(self, identity: str) -> rs.IdentityResponse:
        return await self._call(ops.identity_status(self._enclave, identity))

    async def list_identities(
        self, prefix: str = "", continue_at: str = "", limit: int = 0
    ) -> rs.ListIdentitiesResponse:
        return await self._call(ops.list_identities(self._enclave, prefix, continue_at, limit))
