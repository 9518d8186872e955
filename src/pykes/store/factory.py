"""Opening the store a config's ``store`` section describes (docs/stateful.md)."""

from __future__ import annotations

import sqlite3

from pykes.config.store import SealConfig, StoreConfig
from pykes.store.enclaves import EnclaveStore
from pykes.store.engine import Engine
from pykes.store.errors import EngineError
from pykes.store.seal import Seal, SoftwareSeal
from pykes.store.sqlite import SQLiteEngine
from pykes.store.vault import VaultEngine
from pykes.vault.http import VaultError


def seal_of(config: SealConfig) -> Seal:
    """The seal a ``store.seal`` section names; ``SealError`` (one line) if its key is
    missing or malformed."""
    if config.file:
        return SoftwareSeal.from_file(config.file)
    return SoftwareSeal.from_env(config.env)


async def open_store(config: StoreConfig, *, created_by: str = "") -> EnclaveStore:
    """Open (or create, with its ``default`` enclave made by ``created_by``) the store.

    The seal key is read first: a missing or malformed one (``SealError``) leaves the
    engine's files untouched, not even created; so does a wrong one (the store is only
    read). ``EngineError`` (one line too) for a database that is not a pykes store or
    cannot be used, or an OpenBao/Vault that refuses the login or is not set up for a
    store."""
    seal = seal_of(config.seal)
    engine = await _open_engine(config)
    return await EnclaveStore.open(engine, seal, created_by=created_by)  # closes it on error


async def _open_engine(config: StoreConfig) -> Engine:
    if config.vault is not None:
        try:
            return await VaultEngine.connect(config.vault)
        except (VaultError, ValueError) as err:
            raise EngineError(f"store: {err}") from None
    assert config.sqlite is not None  # the config requires one engine
    path = config.sqlite.path
    try:
        return await SQLiteEngine.open(path)
    except (sqlite3.Error, ValueError) as err:  # ValueError: not a pykes store
        raise EngineError(f"store: cannot open the SQLite database '{path}': {err}") from None
