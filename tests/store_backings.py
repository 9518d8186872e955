"""The engines the store's tests run on, and what a test reads of their storage: an SQLite
file (its bytes on disk), and a K/V v2 engine of a real OpenBao server (every secret,
every stored version and its metadata, read through the API as root).

A second process opens the same store with :func:`open_engine` and the spec and
environment that :meth:`writer` gives (tests/store_writer.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Protocol

from pykes.config import VaultAppRoleConfig, VaultKeyStoreConfig
from pykes.store import Engine, SQLiteEngine
from pykes.store.vault import VaultEngine
from vault_harness import VaultServer

_VAULT_ENV = "PYKES_TEST_VAULT"  # the engine's settings, for a second process


class Backing(Protocol):
    kind: str

    async def open(self) -> Engine:
        """A new engine (a new connection) on the same storage."""
        ...

    def writer(self) -> tuple[str, dict[str, str]]:
        """The engine spec and the environment of a second process (store_writer.py)."""
        ...

    def at_rest(self) -> dict[str, bytes]:
        """Everything stored, by where it is."""
        ...


class SQLiteBacking:
    kind = "sqlite"

    def __init__(self, db: Path) -> None:
        self.db = db

    async def open(self) -> Engine:
        return await SQLiteEngine.open(str(self.db))

    def writer(self) -> tuple[str, dict[str, str]]:
        return str(self.db), {}

    def at_rest(self) -> dict[str, bytes]:
        return {path.name: path.read_bytes() for path in sorted(self.db.parent.iterdir())}

    def snapshot(self) -> dict[str, str]:
        return {name: hashlib.sha256(data).hexdigest() for name, data in self.at_rest().items()}


class VaultBacking:
    kind = "vault"

    def __init__(self, server: VaultServer, config: VaultKeyStoreConfig) -> None:
        self.server = server
        self.config = config

    async def open(self) -> Engine:
        return await VaultEngine.connect(self.config)

    def writer(self) -> tuple[str, dict[str, str]]:
        approle = self.config.approle
        assert approle is not None
        settings = {
            "endpoint": self.config.endpoint,
            "engine": self.config.engine,
            "prefix": self.config.prefix,
            "approle": [approle.engine, approle.id, approle.secret],
        }
        return "vault", {_VAULT_ENV: json.dumps(settings)}

    def at_rest(self) -> dict[str, bytes]:
        """Every secret of the engine as root reads it: its metadata and each version K/V
        v2 still has (as JSON)."""
        engine = self.config.engine
        status, body = self.server.api(
            "GET", f"{engine}/metadata/", params={"scan": "true"}, allow=(404,)
        )
        found: dict[str, bytes] = {}
        for path in body["data"]["keys"] if status == 200 else []:
            metadata = self.server.read(f"{engine}/metadata/{path}")
            assert metadata is not None
            found[f"{path} metadata"] = json.dumps(metadata, sort_keys=True).encode()
            for version in metadata["versions"]:
                _, secret = self.server.api(
                    "GET", f"{engine}/data/{path}", params={"version": version}, allow=(404,)
                )
                found[f"{path} v{version}"] = json.dumps(secret["data"], sort_keys=True).encode()
        return found

    def snapshot(self) -> dict[str, bytes]:
        return self.at_rest()


async def open_engine(spec: str) -> Engine:
    """The engine a second process opens: ``vault`` (its settings in the environment) or
    the path of an SQLite file."""
    if spec != "vault":
        return await SQLiteEngine.open(spec)
    settings = json.loads(os.environ[_VAULT_ENV])
    mount, role_id, secret_id = settings.pop("approle")
    approle = VaultAppRoleConfig(engine=mount, id=role_id, secret=secret_id)
    return await VaultEngine.connect(VaultKeyStoreConfig(version="v2", approle=approle, **settings))
