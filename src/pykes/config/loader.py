"""Reading and validating the server config file (spec/config.md §1–§4).

Processing order follows the Go server so that the first error reported is the same:
YAML syntax → ``version`` → decoding (``${VAR}`` errors abort at once, type errors are
reported after decoding) → admin → tls → proxy/policy identities vs. admin and proxies
→ cache → log levels → API timeouts → predefined keys → keystore → address → policy
and identity names and double assignments.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from pykes.config.backends import KEYSTORE_SCHEMA, build_keystore
from pykes.config.decode import (
    Bool,
    Decoder,
    Duration,
    ListOf,
    MapOf,
    Str,
    StrList,
    Struct,
    is_null,
)
from pykes.config.legacy import translate
from pykes.config.levels import parse_log_level
from pykes.config.model import (
    DEFAULT_ADDRESS,
    DEFAULT_CACHE_ANY,
    DEFAULT_CACHE_UNUSED,
    DEFAULT_PROXY_CERT_HEADER,
    APIRouteConfig,
    CacheConfig,
    PolicyConfig,
    ServerConfig,
    TLSConfig,
)
from pykes.config.oneline import one_line_errors
from pykes.errors import ConfigError
from pykes.goformat.duration import SECOND, format_duration
from pykes.goformat.oserror import go_os_error
from pykes.names import valid_name

Raw = dict[str, Any]

_LEGACY_ON = frozenset(("", "on", "true", "yes"))
_LEGACY_OFF = frozenset(("off", "false", "no"))


class _APISection(MapOf):
    """``api``: per-route overrides keyed by route path, plus the scalar
    ``legacy: on|off`` switch of the legacy API (docs/legacy-api.md)."""

    def decode(self, dec: Decoder, node: yaml.Node, path: str) -> dict[str, Any]:
        if is_null(node) or not isinstance(node, yaml.MappingNode):
            return super().decode(dec, node, path)
        return {
            key: (
                Str().decode(dec, vnode, f"{path}.{key}")
                if key == "legacy"
                else self.value.decode(dec, vnode, f"{path}.{key}")
            )
            for key, _, vnode in dec.pairs(node, path)
        }


SCHEMA = Struct(
    version=Str(env=False),  # checked by _check_version; listed so it is a known key
    address=Str(),
    admin=Struct(identity=Str()),
    tls=Struct(
        key=Str(),
        cert=Str(),
        ca=Str(),
        password=Str(),
        auth=Str(),
        proxy=Struct(identities=StrList(), header=Struct(cert=Str())),
    ),
    policy=MapOf(Struct(allow=StrList(env=False), deny=StrList(env=False), identities=StrList())),
    cache=Struct(expiry=Struct(any=Duration(), unused=Duration(), offline=Duration())),
    api=_APISection(Struct(skip_auth=Bool(), timeout=Duration())),
    log=Struct(error=Str(), audit=Str()),
    keys=ListOf(Struct(name=Str())),
    keystore=KEYSTORE_SCHEMA,
)


#: Called with (dotted path, line) for every key the schema does not know.
UnknownKeyHandler = Callable[[str, int], None]


def warn_unknown_keys(path: str) -> UnknownKeyHandler:
    """A handler printing one ``WARNING:`` line per unknown key of the file ``path``:
    Go ignores unknown keys silently, so a typo (``tls: cetr:``) would go unnoticed."""

    def warn(key: str, line: int) -> None:
        print(f"WARNING: {path}: line {line}: unknown key '{key}' is ignored", file=sys.stderr)

    return warn


@one_line_errors
def load_config(
    path: str,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
    on_unknown_key: UnknownKeyHandler | None = None,
) -> ServerConfig:
    """Read, parse and validate the config file at ``path``.

    A file that cannot be read gives Go's text, e.g.
    ``open /etc/kes.yml: no such file or directory``. ``overrides`` and
    ``on_unknown_key`` are as in :func:`parse_config`.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ConfigError(go_os_error(path, exc)) from None
    data, legacy = translate(path, data)
    if legacy is not None:
        print(
            f"WARNING: '{path}' uses {legacy}; it is read as the equivalent v1 config "
            "(admin.identity, keystore:, policy allow:, cache.expiry.any). Please migrate.",
            file=sys.stderr,
        )
    return parse_config(data, environ, overrides, on_unknown_key)


@one_line_errors
def parse_config(
    text: str | bytes,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
    on_unknown_key: UnknownKeyHandler | None = None,
) -> ServerConfig:
    """Parse and validate a config document; raises :class:`ConfigError` (one line).

    ``environ`` (default ``os.environ``) resolves ``${VAR}`` references. Only the first
    YAML document is read (like Go's decoder); an empty document is an empty config.
    ``overrides`` maps ``"admin.identity"``, ``"tls.key"``, ``"tls.cert"``, ``"tls.auth"``
    to values that replace the file's before validation (``kes server --root/--key/
    --cert/--auth``), so a file may leave them out and every check still applies.
    ``on_unknown_key`` is called for each ignored key (in document order), before any
    error is raised: a misspelt key often explains the error.
    """
    root = _compose(text)
    _check_version(root)
    dec = Decoder(os.environ if environ is None else environ)
    raw: Raw = SCHEMA.zero() if root is None else SCHEMA.decode(dec, root, "")
    if on_unknown_key is not None:
        for key, line in dec.unknown_keys:
            on_unknown_key(key, line)
    if dec.errors:
        raise ConfigError(dec.errors[0])
    for dotted, value in (overrides or {}).items():
        section, _, name = dotted.partition(".")
        raw[section][name] = value
    return _build(raw)


def _compose(text: str | bytes) -> yaml.Node | None:
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        return loader.get_node() if loader.check_node() else None
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_error(err)) from None
    except RecursionError:
        raise ConfigError("yaml: exceeded max depth") from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_error(err: yaml.YAMLError) -> str:
    """One line for a PyYAML error, in the style of yaml.v3 (``yaml: line N: …``)."""
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        text = ": ".join(p for p in (err.context, err.problem) if p)
        return "yaml: " + " ".join(f"{where}{text or 'invalid document'}".split())
    if isinstance(err, yaml.reader.ReaderError):
        if isinstance(err.character, str):
            what = f"unacceptable character #x{ord(err.character):04x}: {err.reason}"
        else:  # an undecodable byte
            what = f"invalid {err.encoding} encoding: {err.reason}"
        return f"yaml: {what} (at byte/character {err.position})"
    return "yaml: " + " ".join(str(err).split())


def _check_version(root: yaml.Node | None) -> None:
    """``version`` must be absent, empty or ``v1`` (taken literally, never substituted)."""
    if not isinstance(root, yaml.MappingNode):
        return
    for knode, vnode in root.value:
        if isinstance(knode, yaml.ScalarNode) and knode.value == "version":
            if not isinstance(vnode, yaml.ScalarNode):
                line = vnode.start_mark.line + 1
                raise ConfigError(f"kesconf: invalid config version at line '{line}'")
            if vnode.value not in ("", "v1"):
                raise ConfigError(f"edge: invalid server config version '{vnode.value}'")
            return


def split_address(address: str) -> tuple[str, int]:
    """Split ``[host]:port`` like Go's ``net.SplitHostPort`` and check host and port.

    The host must be empty or an IP literal (``'<host>' is not a valid IP address``);
    the port must be a decimal number 0–65535.
    """
    host, port = _split_host_port(address)
    if host:
        try:
            if "%" in host:  # Go's net.ParseIP accepts no IPv6 zone
                raise ValueError(host)
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"'{host}' is not a valid IP address") from None
    if not (port.isascii() and port.isdigit() and int(port) <= 65535):
        raise ConfigError(f"invalid address '{address}': invalid port '{port}'")
    return host, int(port)


def _split_host_port(hostport: str) -> tuple[str, str]:
    def fail(why: str) -> ConfigError:
        return ConfigError(f"address {hostport}: {why}")

    i = hostport.rfind(":")
    if i < 0:
        raise fail("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise fail("missing ']' in address")
        if end + 1 == len(hostport):
            raise fail("missing port in address")
        if end + 1 != i:
            if hostport[end + 1] == ":":
                raise fail("too many colons in address")
            raise fail("missing port in address")
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise fail("too many colons in address")
    if "[" in hostport[j:]:
        raise fail("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise fail("unexpected ']' in address")
    return host, hostport[i + 1 :]


def _check_identities(admin: str, proxies: list[str], policies: Raw) -> None:
    for proxy in proxies:
        if proxy == admin:
            raise ConfigError(f"kesconf: invalid tls proxy: identity '{proxy}' is already admin")
    for name, policy in policies.items():
        for identity in policy["identities"]:
            if identity == admin:
                raise ConfigError(
                    f"kesconf: invalid policy '{name}': identity '{identity}' is already admin"
                )
            if identity in proxies:
                raise ConfigError(
                    f"kesconf: invalid policy '{name}': identity '{identity}' "
                    "is already a TLS proxy"
                )


def _cache(expiry: Raw) -> CacheConfig:
    labels = (("any", "cache expiry"), ("unused", "cache unused expiry"))
    for key, label in (*labels, ("offline", "offline cache expiry")):
        if expiry[key] < 0:
            raise ConfigError(f"kesconf: invalid {label} '{format_duration(expiry[key])}'")
    return CacheConfig(
        any=expiry["any"] / SECOND if expiry["any"] else DEFAULT_CACHE_ANY,
        unused=expiry["unused"] / SECOND if expiry["unused"] else DEFAULT_CACHE_UNUSED,
        offline=expiry["offline"] / SECOND,
    )


def _api_legacy(paths: Raw) -> bool:
    """Remove and check ``api.legacy`` (default on)."""
    value = paths.pop("legacy", "")
    if value.strip().lower() in _LEGACY_ON:
        return True
    if value.strip().lower() in _LEGACY_OFF:
        return False
    raise ConfigError(f"kesconf: invalid api config: invalid legacy '{value}' (want on or off)")


def _api(paths: Raw) -> dict[str, APIRouteConfig]:
    for path, api in paths.items():
        if api["timeout"] < 0:  # Go prints the duration with %d: nanoseconds
            raise ConfigError(f"kesconf: invalid timeout '{api['timeout']}' for API '{path}'")
    return {
        path: APIRouteConfig(skip_auth=api["skip_auth"], timeout=api["timeout"] / SECOND)
        for path, api in paths.items()
    }


def _keys(entries: list[Raw]) -> list[str]:
    names: list[str] = []
    for entry in entries:
        if entry["name"] in names:
            raise ConfigError(
                f"kesconf: invalid key config: key '{entry['name']}' is defined multiple times"
            )
        names.append(entry["name"])
    for name in names:  # not checked by the Go server; recommended by crypto.md §8
        if not valid_name(name):
            raise ConfigError(
                f"kesconf: invalid key config: key name '{name}' "
                "is empty, too long or contains invalid characters"
            )
    return names


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


def _build(raw: Raw) -> ServerConfig:
    admin: str = raw["admin"]["identity"]
    if not admin:
        raise ConfigError("kesconf: invalid admin identity: no admin identity")
    tls = raw["tls"]
    if not tls["key"]:
        raise ConfigError("kesconf: invalid tls config: no private key")
    if not tls["cert"]:
        raise ConfigError("kesconf: invalid tls config: no certificate")
    auth = tls["auth"].lower()
    if auth not in ("", "on", "off"):
        raise ConfigError(f"kesconf: invalid tls config: invalid auth '{tls['auth']}'")
    proxies: list[str] = tls["proxy"]["identities"]
    _check_identities(admin, proxies, raw["policy"])
    cache = _cache(raw["cache"]["expiry"])
    log_error = parse_log_level(raw["log"]["error"])
    log_audit = parse_log_level(raw["log"]["audit"])
    api_legacy = _api_legacy(raw["api"])
    api = _api(raw["api"])
    keys = _keys(raw["keys"])
    keystore = build_keystore(raw["keystore"])
    address = raw["address"] or DEFAULT_ADDRESS
    split_address(address)
    policies = {
        name: PolicyConfig(allow=p["allow"], deny=p["deny"], identities=p["identities"])
        for name, p in raw["policy"].items()
    }
    _check_policy_names(policies)
    return ServerConfig(
        address=address,
        admin_identity=admin,
        tls=TLSConfig(
            key=tls["key"],
            cert=tls["cert"],
            password=tls["password"],
            auth=auth,
            ca=tls["ca"],
            proxy_identities=list(proxies),
            proxy_cert_header=tls["proxy"]["header"]["cert"] or DEFAULT_PROXY_CERT_HEADER,
        ),
        api=api,
        policies=policies,
        cache=cache,
        log_error=log_error,
        log_audit=log_audit,
        keys=keys,
        keystore=keystore,
        api_legacy=api_legacy,
    )
