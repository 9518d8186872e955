"""Policy values and their pattern rules (docs/compat/auth.md §2, §4–§5).

Pattern semantics (current KES, since the 2023 rewrite): an empty pattern never
matches; a pattern ending in ``*`` matches every path that starts with the pattern
minus that ``*`` (plain string prefix, may cross ``/``); any other pattern must equal
the path. Deny patterns are checked before allow patterns; the default is deny.

The legacy API adds two rules (docs/legacy-api.md): its write routes are reached only
through a pattern that names them (:meth:`Policy.allows_explicitly`), and a run-time
policy never allows more than its writer's (:func:`wider_pattern`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Policy", "match", "wider_pattern"]


def match(pattern: str, path: str) -> bool:
    """Report whether ``pattern`` matches the URL ``path`` (docs/compat/auth.md §4)."""
    if not pattern:
        return False
    if pattern[-1] == "*":
        return path.startswith(pattern[:-1])
    return pattern == path


def _literal(pattern: str) -> str:
    """A pattern without its trailing ``*`` (the prefix of the paths it matches)."""
    return pattern[:-1] if pattern.endswith("*") else pattern


def _compile(patterns: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Split patterns into exact paths and prefixes (empty patterns are dropped)."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for p in patterns:
        if not p:
            continue
        if p[-1] == "*":
            prefixes.append(p[:-1])
        else:
            exact.add(p)
    return frozenset(exact), tuple(prefixes)


@dataclass(frozen=True)
class Policy:
    """A named set of allow and deny patterns.

    ``allows`` is equivalent to "no deny pattern matches and some allow pattern
    matches" under :func:`match`, but precompiled into a set lookup plus one
    ``str.startswith`` with a tuple of prefixes per list.
    """

    name: str
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    _allow_exact: frozenset[str] = field(init=False, repr=False, compare=False)
    _allow_prefix: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _deny_exact: frozenset[str] = field(init=False, repr=False, compare=False)
    _deny_prefix: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Accept any iterable of strings (e.g. lists from a YAML loader).
        allow, deny = tuple(self.allow), tuple(self.deny)
        object.__setattr__(self, "allow", allow)
        object.__setattr__(self, "deny", deny)
        allow_exact, allow_prefix = _compile(allow)
        deny_exact, deny_prefix = _compile(deny)
        object.__setattr__(self, "_allow_exact", allow_exact)
        object.__setattr__(self, "_allow_prefix", allow_prefix)
        object.__setattr__(self, "_deny_exact", deny_exact)
        object.__setattr__(self, "_deny_prefix", deny_prefix)

    def denies(self, path: str) -> bool:
        """Report whether some deny pattern matches ``path``."""
        return path in self._deny_exact or path.startswith(self._deny_prefix)

    def allows(self, path: str) -> bool:
        """Evaluate the policy: deny patterns first, then allow patterns, default deny."""
        if path in self._deny_exact or path.startswith(self._deny_prefix):
            return False
        return path in self._allow_exact or path.startswith(self._allow_prefix)

    def allows_explicitly(self, path: str, route: str) -> bool:
        """``allows``, through an allow pattern that names ``route`` (a path prefix
        ending in ``/``): the pattern without its ``*`` starts with ``route``. So
        ``/v1/policy/write/*`` and ``/v1/policy/write/app-*`` name
        ``/v1/policy/write/``; ``/v1/policy/*``, ``/v1/*`` and ``/v1/policy/write*``
        do not. Deny patterns apply as always."""
        if self.denies(path):
            return False
        return any(match(p, path) and _literal(p).startswith(route) for p in self.allow)


def wider_pattern(policy: Policy, limit: Policy, explicit: tuple[str, ...] = ()) -> str | None:
    """The first allow pattern through which ``policy`` allows a path that ``limit``
    does not; None when ``policy`` allows nothing more than ``limit``. A pattern that
    names one of the ``explicit`` routes (see ``Policy.allows_explicitly``) must lie
    within a pattern of ``limit`` that names it too.

    Sound, not complete: a prefix pattern must lie within one prefix pattern of
    ``limit`` (never a union of several), and every deny pattern of ``limit`` that
    reaches into it must be denied by ``policy`` as well."""
    for pattern in policy.allow:
        if pattern and not _within(pattern, policy, limit, explicit):
            return pattern
    return None


def _within(pattern: str, policy: Policy, limit: Policy, explicit: tuple[str, ...]) -> bool:
    """Every path ``policy`` allows through ``pattern`` is allowed by ``limit``."""
    prefix = _literal(pattern)
    route = next((r for r in explicit if prefix.startswith(r)), None)
    if not pattern.endswith("*"):  # one path
        if policy.denies(pattern):
            return True
        return limit.allows_explicitly(pattern, route) if route else limit.allows(pattern)
    # every path that starts with ``prefix`` and that ``policy`` does not deny
    if _denies_all(policy, prefix):
        return True
    if not any(
        p.endswith("*") and prefix.startswith(p[:-1]) and (route is None or p.startswith(route))
        for p in limit.allow
    ):
        return False
    for denied in limit.deny:
        if not denied:
            continue  # (never matches)
        if not denied.endswith("*"):
            if denied.startswith(prefix) and not policy.denies(denied):
                return False
            continue
        both = _longer_if_nested(prefix, denied[:-1])  # the paths both patterns match
        if both is not None and not _denies_all(policy, both):
            return False
    return True


def _denies_all(policy: Policy, prefix: str) -> bool:
    """``policy`` denies every path that starts with ``prefix``."""
    return any(d.endswith("*") and prefix.startswith(d[:-1]) for d in policy.deny)


def _longer_if_nested(a: str, b: str) -> str | None:
    """The longer of two prefixes when one starts with the other, else None."""
    if a.startswith(b):
        return a
    return b if b.startswith(a) else None
