"""The ``store`` section: stateful mode's sealed store (docs/stateful.md), instead of a
``keystore``. Its names are fixed (issue 23: tools outside the repository write them)::

    store:
      sqlite:
        path: ./pykes.db        # created on first start
      seal:
        file: ./root.seal       # or  env: NAME  — "kes:v1:aes256:<base64 of 32 bytes>"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pykes.config.schema import Invalid, Rule, Section, exclusive, section, text


@dataclass
class SQLiteStoreConfig:
    """``store.sqlite``: the embedded engine, one database file (and its WAL)."""

    yaml: ClassVar[Section] = Section("invalid sqlite store: ")
    path: str = text(required="no path specified")


def _one_seal_key(raw: dict[str, Any], built: dict[str, Any]) -> None:
    given = [name for name in ("file", "env") if raw[name]]
    if not given:
        raise Invalid("no seal key specified (want 'file' or 'env')")
    if len(given) > 1:
        raise Invalid("more than one seal key specified (want 'file' or 'env')")


@dataclass
class SealConfig:
    """``store.seal``: where the seal key is — a file, or the environment variable named
    by ``env`` (its name, not the key)."""

    yaml: ClassVar[Section] = Section("invalid seal: ", rules=(Rule("file", _one_seal_key),))
    file: str = text()
    env: str = text()


@dataclass
class StoreConfig:
    """``store``: an engine (``sqlite`` now) and the seal of its root key."""

    yaml: ClassVar[Section] = Section(
        "invalid store config: ",
        rules=(exclusive(("sqlite",), many="more than one engine specified",
                         missing="no engine specified (want 'sqlite')"),),
    )  # fmt: skip
    sqlite: SQLiteStoreConfig | None = section(SQLiteStoreConfig, optional=True)
    seal: SealConfig = section(SealConfig)

    @property
    def description(self) -> str:
        """The start-up banner's line."""
        assert self.sqlite is not None
        return f"SQLite: {self.sqlite.path}"
