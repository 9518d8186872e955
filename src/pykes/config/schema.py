"""Each config setting declared once, on the field of the dataclass that holds it.

A field made with :func:`text`, :func:`duration`, :func:`section`, … carries its YAML
path (relative to its section), how the value is decoded, its default and its checks
with their error texts. From the dataclasses come both the YAML decoding tree
(:func:`yaml_tree`) and the validated objects (:func:`build`). Checks run in field
order, so a section lists its fields in the order the Go server checks them; an
empty or zero value means the field's default, as in Go.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from pykes.config.decode import Bool, Duration, ListOf, MapOf, Ptr, Str, StrList, Struct
from pykes.config.decode import Field as Node
from pykes.errors import ConfigError
from pykes.goformat.duration import SECOND, format_duration

T = TypeVar("T")
Raw = dict[str, Any]
_SETTING = "pykes.config.setting"


class Invalid(Exception):
    """A check failed; the message is the end of the error text, after the prefixes of
    the sections it lies in (``kesconf: `` + ``invalid vault keystore: ``)."""


@dataclass(frozen=True)
class Context:
    """Where a value is built: its section's decoded mapping, the section's error
    prefix and, for an entry of a :func:`table`, the entry's key."""

    raw: Raw
    errors: str
    key: str = ""


@dataclass(frozen=True)
class Rule:
    """A check across fields, run just before the first field read from the YAML key
    ``before``; ``check`` gets the section's decoded mapping and the values built so far."""

    before: str
    check: Callable[[Raw, dict[str, Any]], None]


def exclusive(keys: Sequence[str], many: str, missing: str | None = None) -> Rule:
    """At most one (exactly one, if ``missing`` is given) of the optional sub-sections
    ``keys`` may be present; checked before any field of theirs."""

    def check(raw: Raw, built: dict[str, Any]) -> None:
        present = [key for key in keys if raw[key] is not None]
        if not present and missing is not None:
            raise Invalid(missing)
        if len(present) > 1:
            raise Invalid(many)

    return Rule(keys[0], check)


@dataclass(frozen=True)
class Section:
    """What a config dataclass declares besides its fields (its ``yaml`` class attribute).

    ``errors`` is added to the error prefix of the enclosing section; ``optional`` names
    sub-mappings (of flattened fields) that count only when present; ``known`` are keys
    decoded but not kept (no "unknown key" warning); ``banner`` is the start-up line of
    a keystore, filled from the fields.
    """

    errors: str = ""
    optional: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    known: Mapping[str, Node] = dataclasses.field(default_factory=dict)
    banner: str = ""


@dataclass(frozen=True)
class Setting:
    """How one field is read: its YAML path (default: the field name), the decoder and
    the checks of its value."""

    path: str | None = None

    def node(self) -> Node:
        raise NotImplementedError

    def build(self, value: Any, ctx: Context) -> Any:
        return value


@dataclass(frozen=True)
class Text(Setting):
    """A string. ``required``: the error text when it is empty (only while the sibling
    ``when`` is set, if given); ``parse`` turns the text into the value (``default`` is
    then the value of a missing key); ``check`` validates the value, default applied."""

    default: Any = ""
    required: str | None = None
    when: str | None = None
    parse: Callable[[str], Any] | None = None
    check: Callable[[str], object] | None = None
    env: bool = True

    def node(self) -> Node:
        return Str(self.env)

    def build(self, value: str, ctx: Context) -> Any:
        if self.required and not value and (self.when is None or ctx.raw[self.when]):
            raise Invalid(self.required)
        if self.parse is not None:
            return self.parse(value)
        value = value or self.default
        if self.check is not None:
            self.check(value)
        return value


@dataclass(frozen=True)
class Plain(Setting):
    """A value kept as decoded (a bool, a list of strings)."""

    decoder: Node = dataclasses.field(default_factory=Bool)

    def node(self) -> Node:
        return self.decoder


@dataclass(frozen=True)
class Span(Setting):
    """A Go duration, kept as float seconds; zero (or negative, without a ``negative``
    error text) means ``default``. The error text may name ``{duration}`` (as Go's
    ``%v`` prints it), ``{ns}`` (``%d``) and the ``{key}`` of the table entry."""

    default: float = 0.0
    negative: str | None = None

    def node(self) -> Node:
        return Duration()

    def build(self, ns: int, ctx: Context) -> float:
        if ns < 0 and self.negative is not None:
            raise Invalid(self.negative.format(duration=format_duration(ns), ns=ns, key=ctx.key))
        return ns / SECOND if ns > 0 else self.default


@dataclass(frozen=True)
class Nested(Setting):
    """A mapping built into ``cls``; ``optional``: None when absent or null."""

    cls: type = object
    optional: bool = False

    def node(self) -> Node:
        tree = yaml_tree(self.cls)
        return Ptr(tree) if self.optional else tree

    def build(self, value: Raw, ctx: Context) -> Any:
        return build(self.cls, value, ctx.errors)


@dataclass(frozen=True)
class Table(Setting):
    """A mapping of names to sections ``cls``, in document order, without the keys
    ``reserved`` (declared by other fields); ``check`` validates the whole table."""

    cls: type = object
    reserved: tuple[str, ...] = ()
    check: Callable[[dict[str, Any]], None] | None = None

    def node(self) -> Node:
        return MapOf(yaml_tree(self.cls))

    def build(self, value: Raw, ctx: Context) -> dict[str, Any]:
        entries = {
            key: build(self.cls, entry, ctx.errors, key)
            for key, entry in value.items()
            if key not in self.reserved
        }
        if self.check is not None:
            self.check(entries)
        return entries


@dataclass(frozen=True)
class Names(Setting):
    """A list of ``- name: <name>`` entries, kept as the names; ``check`` validates them."""

    check: Callable[[list[str]], None] | None = None

    def node(self) -> Node:
        return ListOf(Struct(name=Str()))

    def build(self, value: list[Raw], ctx: Context) -> list[str]:
        entries = [entry["name"] for entry in value]
        if self.check is not None:
            self.check(entries)
        return entries


@dataclass(frozen=True)
class OneOf(Setting):
    """Exactly one of several sections, each at its YAML path (absent or null: not
    chosen), tried in the order given; the ``known`` keys are decoded and ignored."""

    choices: Mapping[str, type] = dataclasses.field(default_factory=dict)
    known: Mapping[str, Node] = dataclasses.field(default_factory=dict)
    missing: str = ""
    many: str = ""
    # A sibling section that stands instead of this one: when it is given, none of the
    # choices may be (``both`` is the error) and the value is None.
    instead: str = ""
    both: str = ""

    def node(self) -> Node:
        tree = Struct(**self.known)
        for path, cls in self.choices.items():
            _place(tree, path, Ptr(yaml_tree(cls)), optional=True)
        return tree

    def build(self, value: Raw, ctx: Context) -> Any:
        if self.instead and ctx.raw[self.instead] is not None:
            if any(_lookup(value, path) is not None for path in self.choices):
                raise Invalid(self.both)
            return None
        chosen = None
        for path, cls in self.choices.items():
            section = _lookup(value, path)
            if section is None:
                continue
            if chosen is not None:
                raise Invalid(self.many)
            chosen = build(cls, section, ctx.errors)
        if chosen is None:
            raise Invalid(self.missing)
        return chosen


def _declare(setting: Setting, **default: Any) -> Any:
    return dataclasses.field(metadata={_SETTING: setting}, **default)


def text(path: str | None = None, **options: Any) -> Any:
    """A string field (:class:`Text`)."""
    setting = Text(path, **options)
    return _declare(setting, default=setting.default)


def texts(path: str | None = None, *, env: bool = True) -> Any:
    """A list of strings (:class:`Plain`)."""
    return _declare(Plain(path, StrList(env)), default_factory=list)


def flag(path: str | None = None) -> Any:
    """A bool (:class:`Plain`)."""
    return _declare(Plain(path, Bool()), default=False)


def duration(path: str | None = None, *, default: float = 0.0, negative: str | None = None) -> Any:
    """A Go duration in float seconds (:class:`Span`)."""
    return _declare(Span(path, default, negative), default=default)


def section(cls: type, path: str | None = None, *, optional: bool = False) -> Any:
    """A nested section (:class:`Nested`)."""
    setting = Nested(path, cls, optional)
    return _declare(setting, default=None) if optional else _declare(setting, default_factory=cls)


def table(cls: type, path: str | None = None, **options: Any) -> Any:
    """A table of sections (:class:`Table`)."""
    return _declare(Table(path, cls, **options), default_factory=dict)


def names(path: str | None, check: Callable[[list[str]], None]) -> Any:
    """A list of names (:class:`Names`)."""
    return _declare(Names(path, check), default_factory=list)


def one_of(choices: Mapping[str, type], *, factory: Callable[[], Any], **options: Any) -> Any:
    """One section of several (:class:`OneOf`); ``factory`` makes the default."""
    return _declare(OneOf(None, choices, **options), default_factory=factory)


def yaml_tree(cls: type) -> Struct:
    """The decoding tree of the YAML mapping of section ``cls``."""
    spec: Section = cls.yaml
    tree = Struct(**spec.known)
    for f in fields(cls):
        setting = f.metadata.get(_SETTING)
        if setting is not None:
            path = setting.path or f.name
            _place(tree, path, setting.node(), path.partition(".")[0] in spec.optional)
    return tree


def _place(tree: Struct, path: str, node: Node, optional: bool = False) -> None:
    """Put ``node`` at the dotted ``path`` of ``tree``; ``optional``: each mapping on
    the way counts only when present (yaml.v3's pointer fields)."""
    *parents, last = path.split(".")
    children = tree.fields
    for name in parents:
        child = children.get(name)
        if child is None:
            child = children[name] = Ptr(Struct()) if optional else Struct()
        children = _children(child)
    if isinstance(node, MapOf) and last in children:
        node.fixed.update(_children(children[last]))  # keys declared before the table
    children[last] = node


def _children(node: Node) -> dict[str, Node]:
    if isinstance(node, Ptr):
        return node.struct.fields
    if isinstance(node, MapOf):
        return node.fixed
    assert isinstance(node, Struct)
    return node.fields


def _lookup(raw: Raw, path: str) -> Any:
    """The decoded value at ``path``; None below an absent optional mapping, and for a
    key not decoded (a fixed key of a table that is not written)."""
    value: Any = raw
    for name in path.split("."):
        if value is None:
            return None
        value = value.get(name)
    return value


def build(cls: type[T], raw: Raw, errors: str = "", key: str = "") -> T:
    """The object ``cls`` of its decoded YAML mapping ``raw``, every check applied in
    field order; a failed check raises :class:`ConfigError` (prefix ``errors``). A
    value absent (None) keeps the field's default."""
    spec: Section = cls.yaml
    ctx = Context(raw, errors + spec.errors, key)
    values: dict[str, Any] = {}
    rules = list(spec.rules)
    try:
        for f in fields(cls):
            setting = f.metadata.get(_SETTING)
            if setting is None:
                continue
            path = setting.path or f.name
            for rule in [rule for rule in rules if rule.before == path.partition(".")[0]]:
                rules.remove(rule)
                rule.check(raw, values)
            value = _lookup(raw, path)
            if value is not None:
                values[f.name] = setting.build(value, ctx)
    except Invalid as err:
        raise ConfigError(ctx.errors + str(err)) from None
    return cls(**values)
