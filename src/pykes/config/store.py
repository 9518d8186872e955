"""The ``store`` section: stateful mode's sealed store (docs/stateful.md), instead of a
``keystore``. Its names are fixed (issue 23: tools outside the repository write them)::

    store:
      sqlite:
        path: ./pykes.db        # created on first start
      # or  vault:  with the fields of keystore.vault (a K/V v2 engine), for many nodes
      seal:
        file: ./root.seal       # or  env: NAME  — "kes:v1:aes256:<base64 of 32 bytes>"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pykes.config.keystores import VaultKeyStoreConfig
from pykes.config.schema import Invalid, Rule, Section, exclusive, section, text


@dataclass
class SQLiteStoreConfig:
    """``store.sqlite``: the embedded engine, one database file (and its WAL)."""

    yaml: ClassVar[Section] = Section("invalid sqlite store: ")
    path: str = text(required="no path specified")


def _kv_v2(version: str) -> None:
    if version != "v2":
        raise Invalid(f"the store needs a K/V v2 engine (version: v2), not '{version}'")


def _no_transit(raw: dict[str, Any], built: dict[str, Any]) -> None:
    if raw["transit"] is not None:
        raise Invalid("'transit' is not used by the store: it seals its records itself")


@dataclass
class VaultStoreConfig(VaultKeyStoreConfig):
    """``store.vault``: the fields of ``keystore.vault`` (declared there once), on a K/V
    v2 engine (``version`` defaults to ``v2`` and must be it) and without ``transit``."""

    yaml: ClassVar[Section] = Section(
        "invalid vault store: ",
        rules=(*VaultKeyStoreConfig.yaml.rules, Rule("transit", _no_transit)),
    )
    version: str = text(default="v2", check=_kv_v2)


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
    """``store``: one engine (``sqlite`` or ``vault``) and the seal of its root key."""

    yaml: ClassVar[Section] = Section(
        "invalid store config: ",
        rules=(exclusive(("sqlite", "vault"),
                         many="'sqlite' and 'vault' are both specified: use one engine",
                         missing="no engine specified (want 'sqlite' or 'vault')"),),
    )  # fmt: skip
    sqlite: SQLiteStoreConfig | None = section(SQLiteStoreConfig, optional=True)
    vault: VaultStoreConfig | None = section(VaultStoreConfig, optional=True)
    seal: SealConfig = section(SealConfig)
