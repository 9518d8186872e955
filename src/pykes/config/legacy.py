"""Configuration files of older KES releases (docs/compat/config.md §7), read by translating
them to the v1 layout before the v1 parser sees them.

* v0.4 – v0.7: TOML (chosen by the ``.toml`` extension): ``root``, ``[tls]``,
  ``[policy.NAME] paths/identities``, ``[cache.expiry] all/unused``, ``[log.*] file``,
  ``[keystore.fs]``, ``[keystore.vault]`` (``address``, ``name`` = K/V prefix,
  ``approle.retry``, ``status.ping``), ``[keystore.aws.secrets_manager]``.
* v0.8 – v0.13: YAML with ``root:``, the keystore under ``keys:`` (``keys.fs.path``,
  ``keys.vault.*``, ``keys.aws.secretsmanager.*``, ``keys.gemalto.keysecure.*``),
  ``policy.NAME.paths``, ``log.error/audit: on|off``.
* v0.14 – v0.17: ``keystore:`` and ``keys:`` (predefined key names) as today, but still
  ``root:`` and, up to v0.14, ``policy.NAME.paths``.

A v1 file is passed through untouched (so its error messages keep their line numbers).
``translate`` says what it recognised, for one deprecation line at start-up.
"""

from __future__ import annotations

import tomllib
from typing import Any

import yaml

_BACKENDS = ("fs", "vault", "aws", "gemalto", "gcp", "azure", "fortanix", "entrust", "generic")


def translate(path: str, data: bytes) -> tuple[bytes, str | None]:
    """(v1 document, description of the legacy format or None if it is already v1)."""
    if path.endswith(".toml"):
        try:
            doc = tomllib.loads(data.decode("utf-8", "replace"))
        except tomllib.TOMLDecodeError as err:
            from pykes.errors import ConfigError

            raise ConfigError(f"toml: {err}") from None
        return _convert(doc, "toml"), "the TOML format of KES v0.4–v0.7"
    try:
        doc = yaml.load(data, Loader=_MergeOnceLoader)  # a SafeLoader subclass
    except Exception:
        # Not only YAMLError: PyYAML's constructors raise plain ValueError/IndexError for
        # bad tagged scalars (`a: !!int ''`, `!!int version`, `!!timestamp 2020-13-45`).
        # The v1 parser (which only composes) reports or accepts the document.
        return data, None
    if not isinstance(doc, dict) or not _is_legacy_yaml(doc):
        return data, None
    legacy = "the YAML layout of KES v0.8–v0.17 (root:, keys: backends, paths:)"
    return _convert(doc, "yaml"), legacy


class _MergeOnceLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose ``<<`` merges keep one entry per key (the one that
    wins anyway). PyYAML keeps every merged duplicate, so `a1: &a1 {<<: [*a0, *a0]}`,
    `a2: &a2 {<<: [*a1, *a1]}`, … doubles per line: 30 lines took hours."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        super().flatten_mapping(node)
        seen: set[tuple[str, str]] = set()
        kept: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in reversed(node.value):  # the last occurrence of a key wins
            if isinstance(key, yaml.ScalarNode):
                if (key.tag, key.value) in seen:
                    continue
                seen.add((key.tag, key.value))
            kept.append((key, value))
        node.value = kept[::-1]


def _convert(doc: dict[str, Any], kind: str) -> bytes:
    """The v1 YAML of a legacy document; a value YAML cannot hold (a TOML local time,
    `[tls] key = 07:32:00`) is a config error, not a crash."""
    try:
        return _dump(_to_v1(doc))
    except (yaml.YAMLError, RecursionError) as err:
        from pykes.errors import ConfigError

        value = err.args[1] if len(err.args) > 1 else None
        what = f" of type {type(value).__name__}" if value is not None else ""
        raise ConfigError(f"{kind}: unsupported value{what} in a legacy config") from None


def _is_legacy_yaml(doc: dict[str, Any]) -> bool:
    if "root" in doc and "admin" not in doc:
        return True
    if isinstance(doc.get("keys"), dict):
        return True
    policies = doc.get("policy")
    return isinstance(policies, dict) and any(
        isinstance(p, dict) and "paths" in p for p in policies.values()
    )


def _dump(doc: dict[str, Any]) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False).encode()


def _to_v1(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in ("version", "address", "tls", "api"):
        if field in doc:
            out[field] = doc[field]
    tls = out.get("tls")
    if isinstance(tls, dict) and isinstance(tls.get("auth"), bool):  # YAML 1.1 `on`/`off`
        out["tls"] = {**tls, "auth": "on" if tls["auth"] else "off"}
    if "admin" in doc:
        out["admin"] = doc["admin"]
    elif "root" in doc:
        root = str(doc["root"] if doc["root"] is not None else "")
        out["admin"] = {"identity": "disabled" if root in ("", "_") else root}
    if isinstance(doc.get("policy"), dict):
        out["policy"] = {name: _policy(p) for name, p in doc["policy"].items()}
    if isinstance(doc.get("cache"), dict):
        out["cache"] = _cache(doc["cache"])
    if isinstance(doc.get("log"), dict):
        out["log"] = _log(doc["log"])
    keys = doc.get("keys")
    keystore = doc.get("keystore")
    if isinstance(keys, dict):  # v0.8 – v0.13: the backends lived under `keys:`
        keystore = keys
    elif isinstance(keys, list):
        out["keys"] = keys
    if isinstance(keystore, dict):
        out["keystore"] = {
            kind: _backend(kind, section)
            for kind, section in keystore.items()
            if kind in _BACKENDS and section is not None
        }
    return out


def _policy(policy: Any) -> Any:
    if not isinstance(policy, dict):
        return policy
    out = {k: v for k, v in policy.items() if k != "paths"}
    if "paths" in policy and "allow" not in policy:
        out["allow"] = policy["paths"]
    return out


def _cache(cache: dict[str, Any]) -> dict[str, Any]:
    expiry = cache.get("expiry")
    if not isinstance(expiry, dict):
        return cache
    expiry = dict(expiry)
    if "all" in expiry and "any" not in expiry:
        expiry["any"] = expiry.pop("all")
    return {**cache, "expiry": expiry}


def _log(log: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("error", "audit"):
        value = log.get(kind)
        if isinstance(value, dict):  # TOML [log.error] file = [...]: stderr/stdout now
            out[kind] = "on"
        elif isinstance(value, bool):  # YAML 1.1 read `on`/`off` as booleans
            out[kind] = "on" if value else "off"
        elif value is not None:
            out[kind] = value
    return out


def _rename(section: Any, names: dict[str, str]) -> Any:
    if not isinstance(section, dict):
        return section
    out: dict[str, Any] = {}
    for key, value in section.items():
        out[names.get(key, key)] = value
    return out


def _backend(kind: str, section: Any) -> Any:
    if kind == "vault" and isinstance(section, dict):
        vault = _rename(section, {"address": "endpoint", "name": "prefix"})
        if isinstance(vault.get("approle"), dict):
            vault["approle"] = {k: v for k, v in vault["approle"].items() if k != "retry"}
        if isinstance(vault.get("kubernetes"), dict):
            vault["kubernetes"] = {k: v for k, v in vault["kubernetes"].items() if k != "retry"}
        return vault
    if kind == "aws" and isinstance(section, dict):
        sm = section.get("secretsmanager", section.get("secrets_manager"))
        sm = _rename(sm, {"address": "endpoint", "kms_key_id": "kmskey"})
        if isinstance(sm, dict) and isinstance(sm.get("credentials"), dict):
            sm["credentials"] = _rename(
                sm["credentials"],
                {"access_key": "accesskey", "secret_key": "secretkey", "session_token": "token"},
            )
        return {"secretsmanager": sm}
    return section
