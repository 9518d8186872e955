"""Opening the store a config's ``store`` section describes (docs/stateful.md)."""

from __future__ import annotations

import sqlite3

from pykes.config.store import SealConfig, StoreConfig
from pykes.store.enclaves import EnclaveStore
from pykes.store.errors import EngineError
from pykes.store.seal import Seal, SoftwareSeal
from pykes.store.sqlite import SQLiteEngine


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
    cannot be used."""
    seal = seal_of(config.seal)
    assert config.sqlite is not None  # the only engine yet (the config requires one)
    path = config.sqlite.path
    try:
        engine = await SQLiteEngine.open(path)
    except (sqlite3.Error, ValueError) as err:  # ValueError: not a pykes store
        raise EngineError(f"store: cannot open the SQLite database '{path}': {err}") from None
    return await EnclaveStore.open(engine, seal, created_by=created_by)
