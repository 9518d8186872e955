"""The ``kes server`` configuration file (docs/compat/config.md).

``load_config(path)`` / ``parse_config(text)`` return a validated :class:`ServerConfig`
or raise :class:`pykes.errors.ConfigError` with a one-line message (the Go server's
text wherever the spec gives one).
"""

from __future__ import annotations

from pykes.config.address import split_address
from pykes.config.keystores import (
    AWSKeyStoreConfig,
    AzureKeyStoreConfig,
    EntrustKeyStoreConfig,
    FortanixKeyStoreConfig,
    FSKeyStoreConfig,
    GCPKeyStoreConfig,
    GemaltoKeyStoreConfig,
    KeyStoreConfig,
    MemKeyStoreConfig,
    VaultAppRoleConfig,
    VaultKeyStoreConfig,
    VaultKubernetesConfig,
    VaultTLSConfig,
    VaultTransitConfig,
)
from pykes.config.levels import (
    LEVEL_DEBUG,
    LEVEL_ERROR,
    LEVEL_INFO,
    LEVEL_OFF,
    LEVEL_WARN,
    parse_log_level,
)
from pykes.config.loader import load_config, parse_config
from pykes.config.model import (
    DEFAULT_ADDRESS,
    APIRouteConfig,
    CacheConfig,
    PolicyConfig,
    ServerConfig,
    TLSConfig,
)

__all__ = [
    "DEFAULT_ADDRESS",
    "LEVEL_DEBUG",
    "LEVEL_ERROR",
    "LEVEL_INFO",
    "LEVEL_OFF",
    "LEVEL_WARN",
    "APIRouteConfig",
    "AWSKeyStoreConfig",
    "AzureKeyStoreConfig",
    "CacheConfig",
    "EntrustKeyStoreConfig",
    "FSKeyStoreConfig",
    "FortanixKeyStoreConfig",
    "GCPKeyStoreConfig",
    "GemaltoKeyStoreConfig",
    "KeyStoreConfig",
    "MemKeyStoreConfig",
    "PolicyConfig",
    "ServerConfig",
    "TLSConfig",
    "VaultAppRoleConfig",
    "VaultKeyStoreConfig",
    "VaultKubernetesConfig",
    "VaultTLSConfig",
    "VaultTransitConfig",
    "load_config",
    "parse_config",
    "parse_log_level",
    "split_address",
]
