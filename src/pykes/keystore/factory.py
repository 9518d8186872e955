"""Config section → connected keystore (docs/compat/config.md §3, keystore.md §4).

Each backend lives in its own module ``pykes.keystore.<kind>`` exposing
``async def connect(config) -> KeyStore``; it is imported only when configured, so the
vendor SDK of one backend is never loaded for another. The cloud backends' SDKs are
the package's extras (``pykes[aws]``, ``pykes[gcp]``, ``pykes[azure]``): without its
extra a backend fails with one line naming the extra. ``connect`` performs the
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


#: The package extra that installs a backend's vendor SDK (pyproject.toml).
BACKEND_EXTRAS: dict[str, str] = {"aws": "aws", "gcp": "gcp", "azure": "azure"}


class UnsupportedKeyStoreError(Exception):
    pass


class MissingExtraError(UnsupportedKeyStoreError):
    """The configured backend's SDK is not installed; the message says what to install."""


async def connect_keystore(config: Any) -> KeyStore:
    """Connect the keystore described by a ``pykes.config`` keystore section."""
    name = BACKEND_MODULES.get(config.kind)
    if name is None:
        raise UnsupportedKeyStoreError(f"keystore '{config.kind}' is not supported")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name == name:
            raise UnsupportedKeyStoreError(
                f"keystore '{config.kind}' is not supported by this pykes version yet"
            ) from None
        missing = err.name or ""
        extra = BACKEND_EXTRAS.get(config.kind)
        if extra is None or missing.split(".")[0] in ("", "pykes"):
            raise  # a bug, not an uninstalled SDK
        raise MissingExtraError(
            f"keystore '{config.kind}' needs the {extra} extra (no module named "
            f"'{missing}'): pip install 'pykes[{extra}]'"
        ) from None
    store: KeyStore = await module.connect(config)
    return store
