"""A new stateful store for the tests: a directory with a fresh seal key (``root.seal``,
mode 0600) for ``pykes.db``, and the config that serves it."""

from __future__ import annotations

from pathlib import Path

from conftest import PKI
from pykes.store import generate_seal_key


def new_store_dir(root: Path) -> Path:
    """``root`` (created if missing) holding a fresh seal key; the store itself is created
    by the first server or command that opens it."""
    root.mkdir(parents=True, exist_ok=True)
    seal = root / "root.seal"
    seal.write_text(generate_seal_key().text() + "\n")
    seal.chmod(0o600)
    return root


def store_yaml(root: Path, seal: str = "") -> str:
    """The ``store:`` block of the SQLite store in ``root`` (``seal``: another seal line)."""
    return (
        f"store:\n  sqlite:\n    path: {root / 'pykes.db'}\n"
        f"  seal:\n    {seal or 'file: ' + str(root / 'root.seal')}\n"
    )


def stateful_config(pki: PKI, admin: str, root: Path, seal: str = "") -> str:
    """A server config: ``admin`` (an identity), the test PKI's server TLS, the store."""
    return (
        f"admin:\n  identity: {admin}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
        f"{store_yaml(root, seal)}"
    )
