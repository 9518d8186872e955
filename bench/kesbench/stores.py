"""Where the bench server keeps its keys: the stateless ``fs`` keystore, or a stateful
store whose rows act in a named enclave (``Kes-Enclave``), one entry per store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: The enclave the stateful rows act in: a named one, as MinIO and 2023 KES clients
#: select it, not ``default``.
BENCH_ENCLAVE = "bench"


@dataclass(frozen=True)
class Store:
    """One way to keep the bench key. ``config`` writes what the store needs in the
    server's directory and returns the config file's section for it; ``enclave`` is
    the enclave the rows name (None: no header, the stateless server)."""

    name: str  # a row id's suffix (none for ``fs``)
    what: str
    config: Callable[[Path], str]
    enclave: str | None = None

    @property
    def stateful(self) -> bool:
        return self.enclave is not None


def _fs_config(workdir: Path) -> str:
    (workdir / "keys").mkdir()
    return f"keystore:\n  fs:\n    path: {workdir / 'keys'}\n"


def _sqlite_config(workdir: Path) -> str:
    from pykes.store.seal import generate_seal_key

    seal = workdir / "root.seal"
    seal.write_text(generate_seal_key().text() + "\n")
    seal.chmod(0o600)
    return f"store:\n  sqlite:\n    path: {workdir / 'pykes.db'}\n  seal:\n    file: {seal}\n"


FS = Store("fs", "stateless: the fs keystore, no enclave", _fs_config)
SQLITE = Store(
    "sqlite",
    f"stateful: the SQLite store (WAL, fsync), enclave '{BENCH_ENCLAVE}' by Kes-Enclave",
    _sqlite_config,
    enclave=BENCH_ENCLAVE,
)
# TODO(issue 23, branch i23vault): an "openbao" entry — `store.vault:` on a real
# `bao server -dev` (tests/vault_harness.py starts one; the bench has no Vault rows yet),
# started before the pykes server and stopped after it, so that its rows are
# `{generate,decrypt}-c*-h*-openbao` beside the SQLite ones.

#: Every store by name; ``fs`` first (the stateless rows the others are held against).
STORES: dict[str, Store] = {store.name: store for store in (FS, SQLITE)}
#: The stores the stateful rows run on, and the operations they run.
STATEFUL_STORES = tuple(name for name, store in STORES.items() if store.stateful)
STATEFUL_OPS = ("generate", "decrypt")
