"""The validated server configuration (spec/config.md §2).

All dataclasses can be built with keyword arguments only; the defaults are the
effective values the server uses when a field is not configured. Durations are float
seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pykes.config.keystores import KeyStoreConfig, MemKeyStoreConfig
from pykes.config.levels import LEVEL_INFO

DEFAULT_ADDRESS = "0.0.0.0:7373"
DEFAULT_PROXY_CERT_HEADER = "X-Tls-Client-Cert"
DEFAULT_CACHE_ANY = 300.0
DEFAULT_CACHE_UNUSED = 30.0
DEFAULT_CACHE_OFFLINE = 0.0


@dataclass
class TLSConfig:
    """``tls``: server key/cert paths (loaded by the server, not by the parser).

    ``auth`` is lower-cased and one of ``""``, ``"on"``, ``"off"`` (auth.md §6). The
    proxy settings are used by ``pykes.auth.proxy`` (auth.md §10).
    """

    key: str = ""
    cert: str = ""
    password: str = ""
    auth: str = ""
    ca: str = ""
    proxy_identities: list[str] = field(default_factory=list)
    proxy_cert_header: str = DEFAULT_PROXY_CERT_HEADER


@dataclass
class APIRouteConfig:
    """``api.<path>``: ``timeout`` in seconds, 0 = the route's default."""

    skip_auth: bool = False
    timeout: float = 0.0


@dataclass
class PolicyConfig:
    """``policy.<name>``: allow/deny path patterns and the assigned identities."""

    allow: list[str] = field(default_factory=list)
    deny: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)


@dataclass
class CacheConfig:
    """``cache.expiry``: effective expiry periods in seconds.

    Defaults follow the *documented intent*, not the Go bug of config.md §4 (where an
    unset ``unused`` overwrites ``any`` with 30 s): ``any`` unset/0 → 300 s, ``unused``
    unset/0 → 30 s, ``offline`` unset → 0 (offline caching disabled). So the table of
    §4 becomes: unset/unset → 300/30, 1h/unset → 3600/30, unset/20s → 300/20,
    5m/20s → 300/20.
    """

    any: float = DEFAULT_CACHE_ANY
    unused: float = DEFAULT_CACHE_UNUSED
    offline: float = DEFAULT_CACHE_OFFLINE


@dataclass
class ServerConfig:
    """A complete, validated ``kes server`` configuration file.

    ``api`` and ``policies`` keep the document order and the keys exactly as written
    (``api`` without its ``legacy`` switch, which is ``api_legacy``);
    ``log_error``/``log_audit`` are numeric ``slog`` levels; ``keys`` are the names of
    the predefined keys. A directly constructed config defaults to the in-memory
    keystore (the parser always sets one of the file backends).
    """

    address: str = DEFAULT_ADDRESS
    admin_identity: str = ""
    tls: TLSConfig = field(default_factory=TLSConfig)
    api: dict[str, APIRouteConfig] = field(default_factory=dict)
    policies: dict[str, PolicyConfig] = field(default_factory=dict)
    cache: CacheConfig = field(default_factory=CacheConfig)
    log_error: int = LEVEL_INFO
    log_audit: int = LEVEL_INFO
    keys: list[str] = field(default_factory=list)
    keystore: KeyStoreConfig = field(default_factory=MemKeyStoreConfig)
    api_legacy: bool = True  # `api.legacy: on|off` — the legacy API (docs/legacy-api.md)
