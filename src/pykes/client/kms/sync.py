"""The blocking KMS API client: every method is a one-line call of a :mod:`.ops`
builder, sent by the KES SDK's transport (load balancing, retries, TLS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message

from pykes.client.kms import ops
from pykes.client.kms.ops import Rules
from pykes.client.sync import SyncBase
from pykes.kms.commands import Command
from pykes.kms.pb import response_pb2 as rs


class KMSClient(SyncBase):
    """A client of the KMS API (kms-go's protocol) of a stateful pykes (blocking).

    ``KMSClient(endpoints, api_key="k1:…" | "kes:v1:…" | cert_file=…, key_file=…,
    [ca_file=… | insecure=True], [enclave=…])`` — the KES SDK's constructor
    (``docs/kms-api.md``, "Python client"). Key, policy and identity commands act in
    ``enclave`` (``""``: the server's ``default``; :meth:`in_enclave` for another);
    enclave commands are the server admin's. Answers are the protocol's messages
    (:mod:`pykes.kms.pb.response_pb2`); errors are typed (:mod:`.errors`).
    """

    enclave_in_header = False

    # ------------------------------------------------------------------ batches
    def batch(self, command: Command, requests: Sequence[Message]) -> list[Any]:
        """Send 1 to 256 ``command`` requests (messages of :mod:`pykes.kms.pb.request_pb2`)
        in one HTTP request: their answers, in order (``None`` for commands that answer
        nothing). One failing command fails the whole batch: its error is raised with
        ``batch_size`` and a note saying so, and the commands before it stay done."""
        return self._call(ops.batch(self._enclave, command, requests))

    # ------------------------------------------------------------------ server
    def version(self) -> rs.VersionResponse:
        """The server's version (``/version``, JSON or protobuf)."""
        return self._call(ops.version())

    def live(self) -> bool:
        """``True`` while the server answers (``/v1/health/live``); errors raise."""
        return self._call(ops.live())

    def ready(self, write: bool = False) -> bool:
        """``True`` when the server can serve reads (``write``: writes); else it raises
        (e.g. ``APIError(503, "store is unavailable")``)."""
        return self._call(ops.ready(write))

    def cluster_status(self) -> rs.ClusterStatusResponse:
        """The cluster as the node asked sees it: pykes nodes share a store engine and
        know no peers, so ``NodesUp`` holds that node alone (docs/kms-api.md, "Cluster").
        The other cluster commands are not supported by pykes (``batch`` sends them)."""
        return self._call(ops.cluster_status())

    # ------------------------------------------------------------------ enclaves
    def create_enclave(self, name: str) -> None:
        """Create an enclave; :class:`EnclaveExists`."""
        self._call(ops.create_enclave(name))

    def delete_enclave(self, name: str) -> None:
        """Delete an empty enclave; :class:`EnclaveNotFound`."""
        self._call(ops.delete_enclave(name))

    def enclave_status(self, name: str) -> rs.EnclaveStatusResponse:
        return self._call(ops.enclave_status(name))

    def list_enclaves(
        self, prefix: str = "", continue_at: str = "", limit: int = 0
    ) -> rs.ListEnclavesResponse:
        """One page of enclaves; its ``ContinueAt`` is the next page's (``""``: done)."""
        return self._call(ops.list_enclaves(prefix, continue_at, limit))

    # ------------------------------------------------------------------ keys
    def create_key(self, name: str, key_type: str = "") -> None:
        """Create a key (version 1) of ``key_type`` (``AES256``, ``ChaCha20``; ``""``:
        the server's default); :class:`KeyExists`."""
        self._call(ops.create_key(self._enclave, name, key_type, False))

    def add_key_version(self, name: str) -> None:
        """A new latest version of key ``name`` (a rotation); :class:`KeyNotFound`."""
        self._call(ops.create_key(self._enclave, name, "", True))

    def import_key(self, name: str, key: bytes, key_type: str = "") -> None:
        """Import 32 key bytes as version 1 of key ``name``; :class:`KeyExists`."""
        self._call(ops.import_key(self._enclave, name, key, key_type))

    def delete_key(self, name: str, version: int = 0, all_versions: bool = False) -> None:
        """Delete version ``version`` of a key (0: the latest), or the key with
        ``all_versions``."""
        self._call(ops.delete_key(self._enclave, name, version, all_versions))

    def key_status(self, name: str, version: int = 0) -> rs.KeyStatusResponse:
        """Name, version, type, creation of a key's version (0: the latest)."""
        return self._call(ops.key_status(self._enclave, name, version))

    def encrypt(
        self, name: str, plaintext: bytes, associated_data: bytes = b"", version: int = 0
    ) -> rs.EncryptResponse:
        """``Ciphertext`` of ``plaintext`` and the ``Version`` that made it (0: latest)."""
        return self._call(ops.encrypt(self._enclave, name, plaintext, associated_data, version))

    def decrypt(
        self, name: str, ciphertext: bytes, version: int, associated_data: bytes = b""
    ) -> rs.DecryptResponse:
        """``Plaintext`` of ``ciphertext``, made by version ``version`` (1 or more) of
        the key; :class:`DecryptError` if it is not authentic."""
        return self._call(ops.decrypt(self._enclave, name, ciphertext, version, associated_data))

    def generate_key(
        self, name: str, associated_data: bytes = b"", length: int = 0, version: int = 0
    ) -> rs.GenerateKeyResponse:
        """A data key of ``length`` bytes (0: 32, at most 1024): ``Plaintext``,
        ``Ciphertext`` and the ``Version`` that encrypted it (0: the latest)."""
        return self._call(ops.generate_key(self._enclave, name, associated_data, length, version))

    def mac(self, name: str, message: bytes, version: int = 0) -> rs.MACResponse:
        """HMAC-SHA256 of ``message`` with a key version (0: the latest)."""
        return self._call(ops.mac(self._enclave, name, message, version))

    def list_keys(
        self, prefix: str = "", continue_at: str = "", limit: int = 0
    ) -> rs.ListKeysResponse:
        """One page of keys, each as its latest version's status."""
        return self._call(ops.list_keys(self._enclave, prefix, continue_at, limit))

    def list_key_versions(
        self, name: str, continue_at: str = "", limit: int = 0
    ) -> rs.ListKeysResponse:
        """One page of key ``name``'s versions, ascending from ``continue_at`` (a number)."""
        return self._call(ops.list_key_versions(self._enclave, name, continue_at, limit))

    # ------------------------------------------------------------------ policies
    def create_policy(
        self, name: str, allow: Rules | None = None, deny: Rules | None = None
    ) -> None:
        """Create or replace a policy: ``{command name: name patterns}``, e.g.
        ``allow={"KEY:GENERATE": ["minio-*"]}``."""
        self._call(ops.create_policy(self._enclave, name, allow, deny))

    def delete_policy(self, name: str) -> None:
        self._call(ops.delete_policy(self._enclave, name))

    def assign_policy(self, identity: str, policy: str) -> None:
        """Assign ``policy`` to ``identity`` (``h1:…`` or a KES hex identity)."""
        self._call(ops.assign_policy(self._enclave, identity, policy))

    def get_policy(self, name: str) -> rs.PolicyResponse:
        return self._call(ops.get_policy(self._enclave, name))

    def policy_status(self, name: str) -> rs.PolicyStatusResponse:
        return self._call(ops.policy_status(self._enclave, name))

    def list_policies(
        self, prefix: str = "", continue_at: str = "", limit: int = 0
    ) -> rs.ListPoliciesResponse:
        return self._call(ops.list_policies(self._enclave, prefix, continue_at, limit))

    # ------------------------------------------------------------------ identities
    def create_identity(self, identity: str, privilege: str = "User") -> None:
        """Create or replace ``identity`` (``h1:…`` or hex) as ``Admin`` or ``User``."""
        self._call(ops.create_identity(self._enclave, identity, privilege))

    def delete_identity(self, identity: str) -> None:
        self._call(ops.delete_identity(self._enclave, identity))

    def identity_status(self, identity: str) -> rs.IdentityResponse:
        return self._call(ops.identity_status(self._enclave, identity))

    def list_identities(
        self, prefix: str = "", continue_at: str = "", limit: int = 0
    ) -> rs.ListIdentitiesResponse:
        return self._call(ops.list_identities(self._enclave, prefix, continue_at, limit))
