"""Where ``kes migrate`` writes: the keystore of a stateless ``--to`` config, an enclave
of a stateful config's store (docs/stateful.md, "Migrating a keystore into an enclave"),
or an enclave of a KMS server (``-s/-e/-a``: the KMS API, docs/kms-api.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Protocol

from pykes.cli.common import CLIError, env
from pykes.errors import APIError, KeyExistsError

if TYPE_CHECKING:
    from pykes.client.kms import AsyncKMSClient
    from pykes.config.model import Config
    from pykes.keystore import KeyStore
    from pykes.store import EnclaveStore


class Target(Protocol):
    async def copy(self, name: str, value: bytes, *, merge: bool, force: bool) -> bool:
        """Store ``value`` as key ``name``; False if it existed and ``merge`` skipped it.
        ``KeyExistsError`` if it existed and neither flag was given."""
        ...

    async def close(self) -> None: ...


class KeystoreTarget:
    """A stateless keystore: the raw value is created; ``force`` deletes and re-creates."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store

    async def copy(self, name: str, value: bytes, *, merge: bool, force: bool) -> bool:
        try:
            await self._store.create(name, value)
        except KeyExistsError:
            if merge:
                return False
            if not force:
                raise
            await self._store.delete(name)
            await self._store.create(name, value)
        return True

    async def close(self) -> None:
        await self._store.close()


class EnclaveTarget:
    """An enclave of a stateful store: each value becomes version 1 of a key ring, byte
    for byte. ``force`` replaces a key that was never rotated and stops at one that was
    (its other versions may still decrypt data)."""

    def __init__(self, store: EnclaveStore, enclave: str) -> None:
        self._store = store
        self.enclave = enclave

    async def copy(self, name: str, value: bytes, *, merge: bool, force: bool) -> bool:
        from pykes.store.errors import RotatedKeyError

        try:
            await self._store.import_stored_key(self.enclave, name, value, replace=force)
        except KeyExistsError:
            if merge:
                return False
            raise
        except RotatedKeyError as err:
            raise CLIError(
                f"cannot replace key '{name}' in enclave '{self.enclave}': it has been "
                f"rotated (latest version {err.latest}) and '--force' replaces only keys "
                "that never were; delete it first"
            ) from None
        except ValueError as err:  # generic: never the value
            raise CLIError(f"key '{name}' cannot be migrated: {err}") from None
        return True

    async def close(self) -> None:
        await self._store.close()


class KMSTarget:
    """An enclave of a KMS server, through its KMS API (kms-go's protocol), as Go's
    ``kes migrate -s`` writes it: each value is decoded and its key imported with its
    type (``ImportKey`` has no field for the HMAC key, creation time or creator: the
    server makes a new HMAC key). ``force`` deletes every version and imports again.
    Errors name the server as kms-go's do (``"host": key already exists``)."""

    def __init__(self, client: AsyncKMSClient, host: str) -> None:
        self._client = client
        self._host = host

    async def copy(self, name: str, value: bytes, *, merge: bool, force: bool) -> bool:
        from pykes.cli.connect import reported
        from pykes.client.kms import KeyExists
        from pykes.crypto import decode_key_version

        try:
            key = decode_key_version(value)
        except ValueError as err:  # generic: never the value
            raise CLIError(f"key '{name}' cannot be migrated: {err}") from None
        key_type = key.key_type.text
        with reported(f"{json.dumps(self._host)}: "):
            try:
                await self._client.import_key(name, key.key, key_type)
            except KeyExists:
                if merge:
                    return False
                if not force:
                    raise
                await self._client.delete_key(name, all_versions=True)
                await self._client.import_key(name, key.key, key_type)
        return True

    async def close(self) -> None:
        await self._client.aclose()


async def open_kms_target(server: str, enclave: str, api_key: str, insecure: bool) -> KMSTarget:
    """Enclave ``enclave`` of the KMS server ``server`` (one endpoint, as Go's CLI
    passes it; a scheme is dropped), authenticated by ``api_key`` (``k1:…``, or a KES
    ``kes:v1:…`` key). The server certificate is verified as by every ``kes`` command:
    against the system roots, which honour ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``,
    unless ``insecure``."""
    from pykes.client.kms import AsyncKMSClient
    from pykes.pki import APIKey

    try:
        key = APIKey.parse(api_key)
    except ValueError as err:
        raise CLIError(f"parsing API key: {err}") from None
    host = server.strip().removeprefix("http://").removeprefix("https://")
    try:
        client = AsyncKMSClient(
            ["https://" + host], api_key=key, insecure=insecure, enclave=enclave
        )
    except (OSError, ValueError) as err:
        raise CLIError(str(err)) from None
    return KMSTarget(client, host)


async def open_target(cfg: Config, enclave: str | None, create_enclave: bool) -> Target:
    """The target ``cfg`` describes. ``enclave`` is the ``-e`` flag (None: not given),
    for a store only; without it, the enclave variables of the other commands
    (``$KES_ENCLAVE``, ``$MINIO_KMS_KES_ENCLAVE``), else ``default``."""
    if cfg.store is None:
        from pykes.keystore.factory import connect_keystore

        if enclave is not None:  # Go's error: -e names a MinIO KMS enclave there
            raise CLIError("cannot use '-e / --enclave' and '--to' flag")
        if create_enclave:
            raise CLIError("'--create-enclave' needs a '--to' config with a 'store' section")
        return KeystoreTarget(await connect_keystore(cfg.keystore))
    from pykes.cli.connect import ENCLAVE_VARS
    from pykes.store import DEFAULT_ENCLAVE
    from pykes.store.errors import EnclaveNotFoundError
    from pykes.store.factory import open_store

    name = enclave or env(*ENCLAVE_VARS) or DEFAULT_ENCLAVE
    store = await open_store(cfg.store, created_by=cfg.admin_identity)
    try:
        try:
            await store.describe_enclave(name)
        except EnclaveNotFoundError:
            if not create_enclave:
                raise CLIError(
                    f"enclave '{name}' does not exist in the target store. "
                    "Use '--create-enclave' to create it"
                ) from None
            await store.create_enclave(name, cfg.admin_identity)
    except BaseException as err:
        await store.close()
        if isinstance(err, APIError):  # an invalid name
            raise CLIError(err.message) from None
        raise
    return EnclaveTarget(store, name)
