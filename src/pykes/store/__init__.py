"""Stateful mode's storage: enclaves holding versioned keys, policies and identities,
sealed at rest on an engine (SQLite now, OpenBao/Vault KV v2 later), the root key behind
a seal (a key file or an environment variable now).

    engine = await SQLiteEngine.open("./pykes.db")
    store = await EnclaveStore.open(engine, SoftwareSeal.from_file("./root.seal"))
    ring = await store.create_key("default", "my-key")

Names of enclaves, keys, policies and identities are visible in the store's files;
values (key material, policies, assignments) never are.
"""

from pykes.store.enclaves import DEFAULT_ENCLAVE, EnclaveStore
from pykes.store.engine import Engine, Record, VersionConflict
from pykes.store.records import (
    MAX_VERSIONS,
    EnclaveInfo,
    IdentityRecord,
    KeyRing,
    KeyVersions,
    PolicyRecord,
)
from pykes.store.seal import Seal, SealKey, SoftwareSeal, generate_seal_key, parse_seal_key
from pykes.store.sqlite import SQLiteEngine

__all__ = [
    "DEFAULT_ENCLAVE",
    "MAX_VERSIONS",
    "EnclaveInfo",
    "EnclaveStore",
    "Engine",
    "IdentityRecord",
    "KeyRing",
    "KeyVersions",
    "PolicyRecord",
    "Record",
    "SQLiteEngine",
    "Seal",
    "SealKey",
    "SoftwareSeal",
    "VersionConflict",
    "generate_seal_key",
    "parse_seal_key",
]
