"""Decoding composed YAML nodes with Go ``yaml.v3`` semantics.

The config is composed with PyYAML (``yaml.compose``-style, so every node keeps its
line) and decoded against a tree of the decoders below, which ``pykes.config.schema``
derives from the config dataclasses (mirroring the Go structs of ``kesconf``):

* keys are matched exactly (case-sensitive); unknown keys are ignored (and collected,
  so that the server can warn about them: a typo is not an error, as in Go);
* a ``null`` value (empty, ``~``, ``null``) leaves the zero value; an optional section
  (:class:`Ptr`) counts as present only when it is a non-null value;
* string fields take the raw text of any scalar; duplicate keys are an error;
* fields marked ``env`` accept a whole-scalar ``${NAME}`` reference
  (docs/compat/config.md §1); the substituted text is then decoded as if written
  there, keeping the quoting style of the reference (so ``${FLAG}`` with ``FLAG=yes``
  is a bool, an empty variable is the zero value).

Errors: a missing environment variable aborts at once (as in Go); type errors and
duplicate keys are collected and the first one is reported after decoding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from pykes.errors import ConfigError
from pykes.goformat.duration import DurationError, parse_duration_ns
from pykes.goformat.text import go_quote, go_trim_space

NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(("true", "True", "TRUE"))
_FALSE = frozenset(("false", "False", "FALSE"))
# yaml.v3 accepts the YAML 1.1 spellings when the target type is bool.
_TRUE_11 = frozenset(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"))
_FALSE_11 = frozenset(("n", "N", "no", "No", "NO", "off", "Off", "OFF"))
_INT = re.compile(r"[-+]?(0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)\Z")
_FLOAT = re.compile(
    r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?\Z"
    r"|[-+]?\.(inf|Inf|INF)\Z|\.(nan|NaN|NAN)\Z"
)
_MERGE_TAG = "tag:yaml.org,2002:merge"


def line_of(node: yaml.Node) -> int:
    """The 1-based line of a node (as yaml.v3 reports it)."""
    return node.start_mark.line + 1


def is_quoted(node: yaml.ScalarNode) -> bool:
    """Quoted or block scalars are always strings (yaml.v3 ``indicatedString``)."""
    return node.style is not None


def is_null(node: yaml.Node) -> bool:
    """A plain ``null`` scalar: empty, ``~``, ``null``, ``Null``, ``NULL``."""
    return isinstance(node, yaml.ScalarNode) and not is_quoted(node) and node.value in NULLS


def _short_tag(node: yaml.Node) -> str:
    """yaml.v3's short tag of a node, used in type error texts."""
    if isinstance(node, yaml.MappingNode):
        return "!!map"
    if isinstance(node, yaml.SequenceNode):
        return "!!seq"
    value = node.value
    if is_quoted(node):
        return "!!str"
    if value in NULLS:
        return "!!null"
    if value in _TRUE or value in _FALSE:
        return "!!bool"
    if _INT.match(value):
        return "!!int"
    if _FLOAT.match(value):
        return "!!float"
    return "!!str"


class Decoder:
    """Decoding state: the environment for ``${VAR}`` and the collected type errors."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.errors: list[str] = []
        self.unknown_keys: list[tuple[str, int]] = []  # (dotted path, line) of ignored keys
        self._merging: set[int] = set()  # ids of the maps being merged (cycle guard)
        self._merged: dict[int, list[tuple[str, yaml.Node, yaml.Node]]] = {}  # by map id

    def type_error(self, node: yaml.Node, path: str, into: str, value: str | None = None) -> None:
        """Record a yaml.v3-style "cannot unmarshal" error naming the field."""
        what = _short_tag(node)
        if isinstance(node, yaml.ScalarNode):
            text = node.value if value is None else value
            text = text[:7] + "..." if len(text) > 10 else text
            what += f" `{text}`"
        self.fail(node, path, f"cannot unmarshal {what} into {into}")

    def fail(self, node: yaml.Node, path: str, reason: str) -> None:
        """Record a decoding error for the field at ``path``."""
        where = f"'{path}'" if path else "config"
        self.errors.append(f"kesconf: invalid {where} in line '{line_of(node)}': {reason}")

    def scalar(self, node: yaml.ScalarNode, env: bool) -> tuple[str, bool]:
        """The scalar text (after ``${VAR}`` substitution if ``env``) and its quoting."""
        value = node.value
        if env:
            trimmed = go_trim_space(value)
            if trimmed.startswith("${") and trimmed.endswith("}"):
                name = go_trim_space(trimmed[2:-1])
                if name not in self.environ:
                    raise ConfigError(
                        f"kesconf: referenced env. variable '{name}' "
                        f"in line '{line_of(node)}' not found"
                    )
                value = self.environ[name]
        return value, is_quoted(node)

    def pairs(self, node: yaml.MappingNode, path: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """The (key, key node, value node) entries of a mapping, merges (``<<``) applied.

        Duplicate keys are reported like yaml.v3 does; non-scalar keys are skipped.
        """
        keynodes = [k for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        for i, first in enumerate(keynodes):  # same pair order as yaml.v3
            for later in keynodes[i + 1 :]:
                if later.value == first.value:
                    self.fail(
                        later,
                        path,
                        f"mapping key {go_quote(later.value)} already defined "
                        f"at line {line_of(first)}",
                    )
        explicit: list[tuple[str, yaml.Node, yaml.Node]] = []
        merged: list[tuple[str, yaml.Node, yaml.Node]] = []
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                continue
            if knode.tag == _MERGE_TAG and not is_quoted(knode):
                merged.extend(self._merge_sources(vnode, path))
                continue
            explicit.append(("" if is_null(knode) else knode.value, knode, vnode))
        keys = {key for key, _, _ in explicit}
        return explicit + [entry for entry in merged if entry[0] not in keys]

    def _merge_sources(self, vnode: yaml.Node, path: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
        out: list[tuple[str, yaml.Node, yaml.Node]] = []
        for src in sources:
            if not isinstance(src, yaml.MappingNode):
                self.fail(src, path, "map merge requires map or sequence of maps as the value")
                continue
            # `tls: &a {<<: *a}` merges a map into itself: PyYAML composes the cycle,
            # yaml.v3 rejects it ("anchor … value contains itself"); never recurse.
            if id(src) in self._merging:
                self.fail(src, path, "map merge: anchor value contains itself")
                continue
            # Each merged map is expanded once: `a1: &a1 {<<: [*a0, *a0]}`, `a2: … *a1 …`
            # … would otherwise take 2^n steps (yaml.v3: "excessive aliasing").
            entries = self._merged.get(id(src))
            if entries is None:
                self._merging.add(id(src))
                try:
                    entries = self._merged[id(src)] = self.pairs(src, path)
                finally:
                    self._merging.discard(id(src))
            out.extend(e for e in entries if e[0] not in {k for k, _, _ in out})
        return out


class Field:
    """A schema element: knows its zero value and how to decode a node."""

    into = "value"

    def zero(self) -> Any:
        raise NotImplementedError

    def decode(self, dec: Decoder, node: yaml.Node, path: str) -> Any:
        raise NotImplementedError


class Str(Field):
    """A string; ``env=True`` allows ``${VAR}``."""

    into = "string"

    def __init__(self, env: bool = True) -> None:
        self.env = env

    def zero(self) -> str:
        return ""

    def decode(self, dec: Decoder, node: yaml.Node, path: str) -> str:
        if is_null(node):
            return ""
        if not isinstance(node, yaml.ScalarNode):
            dec.type_error(node, path, self.into)
            return ""
        value, quoted = dec.scalar(node, self.env)
        return "" if not quoted and value in NULLS else value


class Bool(Field):
    """A bool (``true``/``false`` and the YAML 1.1 spellings), ``${VAR}`` allowed.

    A quoted ``"true"``/``"false"`` is also accepted (yaml.v3 rejects it; accepting a
    superset keeps every Go-valid config valid).
    """

    into = "bool"

    def zero(self) -> bool:
        return False

    def decode(self, dec: Decoder, node: yaml.Node, path: str) -> bool:
        if is_null(node):
            return False
        if not isinstance(node, yaml.ScalarNode):
            dec.type_error(node, path, self.into)
            return False
        value, quoted = dec.scalar(node, env=True)
        if not quoted and value in NULLS:
            return False
        if value in _TRUE or value in _TRUE_11:
            return True
        if value in _FALSE or value in _FALSE_11:
            return False
        dec.type_error(node, path, self.into, value)
        return False


class Duration(Field):
    """A Go duration string, decoded to integer nanoseconds; ``${VAR}`` allowed."""

    into = "time.Duration"

    def zero(self) -> int:
        return 0

    def decode(self, dec: Decoder, node: yaml.Node, path: str) -> int:
        if is_null(node):
            return 0
        if not isinstance(node, yaml.ScalarNode):
            dec.type_error(node, path, self.into)
            return 0
        value, quoted = dec.scalar(node, env=True)
        if not quoted and value in NULLS:
            return 0
        try:
            return parse_duration_ns(value)
        except DurationError as err:
            dec.type_error(node, path, self.into, value)
            dec.errors[-1] += f" ({err})"
            return 0


class Struct(Field):
    """A mapping with known keys; decodes to a dict holding every field (zero if unset)."""

    into = "mapping"

    def __init__(self, **fields: Field) -> None:
        self.fields = fields

    def zero(self) -> dict[str, Any]:
        return {name: f.zero() for name, f in self.fields.items()}

    def decode(self, dec: Decoder, node: yaml.Node, path: str) -> dict[str, Any]:
        out = self.zero()
        if is_null(node):
            return out
        if not isinstance(node, yaml.MappingNode):
            dec.type_error(node, path, self.into)
            return out
        for key, knode, vnode in dec.pairs(node, path):
            field = self.fields.get(key)
            dotted = f"{path}.{key}" if path else key
            if field is not None:
                out[key] = field.decode(dec, vnode, dotted)
            else:
                dec.unknown_keys.append((dotted, line_of(knode)))
        return out


class Ptr(Field):
    """An optional section: ``None`` when absent or null, else the decoded struct."""

    def __init__(self, struct: Struct) -> None:
        self.struct = struct
        self.into = struct.into

    def zero(self) -> None:
        return None

    def decode(self, dec: Decoder, node: yaml.Node, path: str) -> dict[str, Any] | None:
        if is_null(node):
            return None
        return self.struct.decode(dec, node, path)


class MapOf(Field):
    """A mapping with arbitrary (non-substituted) string keys, in document order; the
    keys in ``fixed`` have a decoder of their own (``api.legacy`` among the routes)."""

    into = "mapping"

    def __init__(self, value: Field, fixed: dict[str, Field] | None = None) -> None:
        self.value = value
        self.fixed = fixed if fixed is not None else {}

    def zero(self) -> dict[str, Any]:
        return {}

    def decode(self, dec: Decoder, node: yaml.Node, path: str) -> dict[str, Any]:
        if is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            dec.type_error(node, path, self.into)
            return {}
        return {
            key: self.fixed.get(key, self.value).decode(dec, vnode, f"{path}.{key}")
            for key, _, vnode in dec.pairs(node, path)
        }


class ListOf(Field):
    """A sequence of schema elements."""

    into = "list"

    def __init__(self, item: Field) -> None:
        self.item = item

    def zero(self) -> list[Any]:
        return []

    def decode(self, dec: Decoder, node: yaml.Node, path: str) -> list[Any]:
        if is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            dec.type_error(node, path, self.into)
            return []
        return [self.item.decode(dec, item, f"{path}[{i}]") for i, item in enumerate(node.value)]


class StrList(ListOf):
    """A list of strings (``env`` applies to each element)."""

    into = "list of strings"

    def __init__(self, env: bool = True) -> None:
        super().__init__(Str(env))
