"""Reading the server config file (docs/compat/config.md §1–§4): file → legacy formats →
YAML nodes → decoded values → validated :class:`ServerConfig`.

Processing order follows the Go server so that the first error reported is the same:
YAML syntax → ``version`` → decoding (``${VAR}`` errors abort at once, type errors are
reported after decoding) → the checks of the fields, in the order ``ServerConfig``
lists them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from pykes.config.decode import Decoder
from pykes.config.legacy import translate
from pykes.config.model import ServerConfig
from pykes.config.oneline import one_line_errors
from pykes.config.schema import build, yaml_tree
from pykes.errors import ConfigError
from pykes.goformat.oserror import go_os_error

SCHEMA = yaml_tree(ServerConfig)


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
    raw: dict[str, Any] = SCHEMA.zero() if root is None else SCHEMA.decode(dec, root, "")
    if on_unknown_key is not None:
        for key, line in dec.unknown_keys:
            on_unknown_key(key, line)
    if dec.errors:
        raise ConfigError(dec.errors[0])
    for dotted, value in (overrides or {}).items():
        section, _, name = dotted.partition(".")
        raw[section][name] = value
    return build(ServerConfig, raw)


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
