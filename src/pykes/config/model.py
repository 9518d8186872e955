"""The server configuration file, field by field (docs/compat/config.md §2).

Each field declares its YAML path, default and checks (see ``pykes.config.schema``);
the fields hold the effective values, durations in float seconds. Fields are listed in
the order the Go server checks them, so that the first error reported is the same.
All dataclasses can also be built with keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pykes.config.address import split_address
from pykes.config.decode import Str
from pykes.config.keystores import BACKENDS, KES_SECTION, KeyStoreConfig, MemKeyStoreConfig
from pykes.config.levels import LEVEL_INFO, parse_log_level
from pykes.config.schema import (
    Invalid,
    Rule,
    Section,
    duration,
    flag,
    names,
    one_of,
    section,
    table,
    text,
    texts,
)
from pykes.config.store import StoreConfig
from pykes.errors import ConfigError
from pykes.names import valid_name

DEFAULT_ADDRESS = "0.0.0.0:7373"


def _tls_auth(value: str) -> str:
    auth = value.lower()
    if auth not in ("", "on", "off"):
        raise Invalid(f"invalid auth '{value}'")
    return auth


@dataclass
class TLSConfig:
    """``tls``: server key/cert paths (loaded by the server, not by the parser).

    ``auth`` is lower-cased and one of ``""``, ``"on"``, ``"off"`` (docs/compat/auth.md
    §6). The proxy settings are used by ``pykes.auth.proxy`` (docs/compat/auth.md §10).
    """

    yaml: ClassVar[Section] = Section("invalid tls config: ")
    key: str = text(required="no private key")
    cert: str = text(required="no certificate")
    password: str = text()
    auth: str = text(parse=_tls_auth)
    ca: str = text()
    proxy_identities: list[str] = texts("proxy.identities")
    proxy_cert_header: str = text("proxy.header.cert", default="X-Tls-Client-Cert")


@dataclass
class CacheConfig:
    """``cache.expiry``: effective expiry periods in seconds.

    Defaults follow the *documented intent*, not the Go bug of docs/compat/config.md §4
    (where an unset ``unused`` overwrites ``any`` with 30 s): ``any`` unset/0 → 300 s,
    ``unused`` unset/0 → 30 s, ``offline`` unset → 0 (offline caching disabled). So the
    table of §4 becomes: unset/unset → 300/30, 1h/unset → 3600/30, unset/20s → 300/20,
    5m/20s → 300/20.
    """

    yaml: ClassVar[Section] = Section()
    any: float = duration(default=300.0, negative="invalid cache expiry '{duration}'")
    unused: float = duration(default=30.0, negative="invalid cache unused expiry '{duration}'")
    offline: float = duration(negative="invalid offline cache expiry '{duration}'")


def _legacy_api_switch(value: str) -> bool:
    switch = value.strip().lower()
    if switch in ("", "on", "true", "yes"):
        return True
    if switch in ("off", "false", "no"):
        return False
    raise Invalid(f"invalid api config: invalid legacy '{value}' (want on or off)")


@dataclass
class APIRouteConfig:
    """``api.<path>``: ``timeout`` in seconds, 0 = the route's default."""

    yaml: ClassVar[Section] = Section()
    skip_auth: bool = flag()
    # Go prints this duration with %d: nanoseconds
    timeout: float = duration(negative="invalid timeout '{ns}' for API '{key}'")


def _check_key_names(key_names: list[str]) -> None:
    for i, name in enumerate(key_names):
        if name in key_names[:i]:
            raise Invalid(f"invalid key config: key '{name}' is defined multiple times")
    for name in key_names:  # not checked by the Go server; recommended by crypto.md §8
        if not valid_name(name):
            raise Invalid(
                f"invalid key config: key name '{name}' "
                "is empty, too long or contains invalid characters"
            )


@dataclass
class PolicyConfig:
    """``policy.<name>``: allow/deny path patterns and the assigned identities."""

    yaml: ClassVar[Section] = Section()
    allow: list[str] = texts(env=False)
    deny: list[str] = texts(env=False)
    identities: list[str] = texts()


def _check_policy_names(policies: dict[str, PolicyConfig]) -> None:
    assigned: set[str] = set()
    for name, policy in policies.items():
        if not valid_name(name):
            raise ConfigError(
                f"kes: policy name '{name}' is empty, too long or contains invalid characters"
            )
        for identity in policy.identities:
            if not valid_name(identity):
                raise ConfigError(
                    f"kes: identity '{identity}' is empty, too long or contains invalid characters"
                )
            if identity in assigned:
                raise ConfigError(
                    f"kes: cannot assign policy '{name}' to '{identity}': "
                    "identity already has a policy"
                )
            assigned.add(identity)


def _check_identities(raw: dict[str, Any], built: dict[str, Any]) -> None:
    """The admin is no TLS proxy, and neither has a policy."""
    admin: str = built["admin_identity"]
    proxies: list[str] = built["tls"].proxy_identities
    for proxy in proxies:
        if proxy == admin:
            raise Invalid(f"invalid tls proxy: identity '{proxy}' is already admin")
    for name, policy in raw["policy"].items():
        for identity in policy["identities"]:
            if identity == admin:
                raise Invalid(f"invalid policy '{name}': identity '{identity}' is already admin")
            if identity in proxies:
                raise Invalid(
                    f"invalid policy '{name}': identity '{identity}' is already a TLS proxy"
                )


@dataclass
class ServerConfig:
    """A complete, validated ``kes server`` configuration file.

    ``api`` and ``policies`` keep the document order and the keys exactly as written
    (``api`` without its ``legacy`` switch, which is ``api_legacy``: the legacy API of
    docs/legacy-api.md); ``log_error``/``log_audit`` are numeric ``slog`` levels;
    ``keys`` are the names of the predefined keys. A directly constructed config
    defaults to the in-memory keystore (the parser always sets one of the file
    backends). With a ``store`` (stateful mode) ``keystore`` is None. ``version`` must be
    absent, empty or ``v1``: the loader checks it first.
    """

    yaml: ClassVar[Section] = Section(
        "kesconf: ",
        rules=(Rule("cache", _check_identities),),
        known={"version": Str(env=False)},
    )
    admin_identity: str = text(
        "admin.identity", required="invalid admin identity: no admin identity"
    )
    tls: TLSConfig = section(TLSConfig)
    cache: CacheConfig = section(CacheConfig, "cache.expiry")
    log_error: int = text("log.error", parse=parse_log_level, default=LEVEL_INFO)
    log_audit: int = text("log.audit", parse=parse_log_level, default=LEVEL_INFO)
    api_legacy: bool = text("api.legacy", parse=_legacy_api_switch, default=True)
    api: dict[str, APIRouteConfig] = table(APIRouteConfig, reserved=("legacy",))
    keys: list[str] = names("keys", check=_check_key_names)
    # Stateful mode (docs/stateful.md): the sealed store holds the keys instead of a keystore.
    store: StoreConfig | None = section(StoreConfig, optional=True)
    keystore: KeyStoreConfig | None = one_of(
        BACKENDS,
        known={"kes": KES_SECTION},
        missing="no keystore specified",
        many="invalid keystore config: more than once keystore specified",
        factory=MemKeyStoreConfig,
        instead="store",
        both="'store' and 'keystore' are both specified: "
        "stateful mode keeps the keys in the store, use one of them",
    )
    address: str = text(default=DEFAULT_ADDRESS, check=split_address)
    policies: dict[str, PolicyConfig] = table(PolicyConfig, "policy", check=_check_policy_names)
