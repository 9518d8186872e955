"""Config section → connected keystore (spec/config.md §3, keystore.md §4).

Each backend lives in its own module ``pykes.keystore.<kind>`` exposing
``async def connect(config) -> KeyStore``; it is imported only when configured, so the
vendor SDK of one backend is never loaded for another. ``connect`` performs the
backend's start-up checks (login, health probe) and raises on failure, which aborts
start-up or a reload with one clear line.
"""

from __future__ import annotations

import importlib
from typing import Any

from pykes.keystore.base import KeyStore

BACKEND_MODULES: dict[str, str] = {
    "fs": "pykes.keystore.fs",
    "vault": "pykes.keystore.vault",
    "aws": "pykes.keystore.aws",
    "gcp": "pykes.keystore.gcp",
    "azure": "pykes.keystore.azure",
    "fortanix": "pykes.keystore.fortanix",
    "gemalto": "pykes.keystore.gemalto",
    "entrust": "pykes.keystore.entrust",
}


class UnsupportedKeyStoreError(Exception):
    pass


async def connect_keystore(config: Any) -> KeyStore:
    """Connect the keystore described by a ``pykes.config`` keystore section."""
    name = BACKEND_MODULES.get(config.kind)
    if name is None:
        raise UnsupportedKeyStoreError(f"keystore '{config.kind}' is not supported")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        raise UnsupportedKeyStoreError(
            f"keystore '{config.kind}' is not supported by this pykes version yet"
        ) from None
    store: KeyStore = await module.connect(config)
    return store
