"""Policies and per-request authorization (docs/compat/auth.md §2–§5).

Pattern semantics (current KES, since the 2023 rewrite): an empty pattern never
matches; a pattern ending in ``*`` matches every path that starts with the pattern
minus that ``*`` (plain string prefix, may cross ``/``); any other pattern must equal
the path. Deny patterns are checked before allow patterns; the default is deny.

The legacy API adds two rules (docs/legacy-api.md): its write routes are reached only
through a pattern that names them (:meth:`Policy.allows_explicitly`), and a run-time
policy never allows more than its writer's (:func:`wider_pattern`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from pykes.errors import ERR_NOT_ALLOWED, APIError

if TYPE_CHECKING:
    from pykes.auth.ephemeral import EphemeralStore

__all__ = ["Authorizer", "Policy", "match", "wider_pattern"]


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


class Authorizer:
    """Decides whether an identity may access a URL path (docs/compat/auth.md §3).

    ``policies`` maps policy names to policies; ``assignments`` maps identities to
    policy names (both from the config file). Every assigned policy name must exist
    (:class:`ValueError`). ``ephemeral`` holds the policies and assignments made at run
    time through the legacy API; it is consulted only for identities the config file
    does not assign, so the config's identities pay nothing for it.
    """

    __slots__ = ("admin", "policies", "assignments", "ephemeral", "_by_identity")

    def __init__(
        self,
        admin: str,
        policies: Mapping[str, Policy],
        assignments: Mapping[str, str],
        ephemeral: EphemeralStore | None = None,
    ) -> None:
        by_identity: dict[str, Policy] = {}
        for identity, name in assignments.items():
            policy = policies.get(name)
            if policy is None:
                raise ValueError(f"identity '{identity}' is assigned to unknown policy '{name}'")
            by_identity[identity] = policy
        self.admin: str = admin
        self.policies: Mapping[str, Policy] = MappingProxyType(dict(policies))
        self.assignments: Mapping[str, str] = MappingProxyType(dict(assignments))
        self.ephemeral = ephemeral
        self._by_identity = by_identity

    def is_admin(self, identity: str) -> bool:
        """Plain, case-sensitive equality with the admin identity; "" is never admin."""
        return bool(identity) and identity == self.admin

    def policy_of(self, identity: str) -> Policy | None:
        """Return the policy assigned to ``identity`` (config file first), if any."""
        policy = self._by_identity.get(identity)
        if policy is None and self.ephemeral is not None and identity:
            return self._ephemeral_policy(identity)
        return policy

    def _ephemeral_policy(self, identity: str) -> Policy | None:
        assert self.ephemeral is not None
        snap = self.ephemeral.snapshot()
        assigned = snap.assignments.get(identity)
        if assigned is None:
            return None
        policy = self.policies.get(assigned.policy)  # the config wins a name clash
        if policy is None:
            entry = snap.policies.get(assigned.policy)
            policy = entry.policy if entry is not None else None
        return policy

    def authorize_explicitly(self, identity: str, path: str, route: str) -> None:
        """``authorize`` for a legacy write route: the admin, or a policy that names
        ``route`` (``Policy.allows_explicitly``), never a wildcard above it."""
        if self.is_admin(identity):
            return
        policy = self.policy_of(identity)
        if policy is None or not policy.allows_explicitly(path, route):
            raise APIError(ERR_NOT_ALLOWED.status, ERR_NOT_ALLOWED.message)

    def authorize_grant(self, identity: str, granted: Policy, explicit: tuple[str, ...]) -> None:
        """Refuse (403) unless ``identity`` is the admin or ``granted`` allows nothing
        its own policy does not (``wider_pattern``)."""
        if self.is_admin(identity):
            return
        policy = self.policy_of(identity)
        if policy is None or wider_pattern(granted, policy, explicit) is not None:
            raise APIError(ERR_NOT_ALLOWED.status, ERR_NOT_ALLOWED.message)

    def authorize(self, identity: str, path: str) -> None:
        """Allow the admin; otherwise require an assigned policy that allows ``path``.

        ``path`` is the percent-decoded URL path without query string. Raises
        ``APIError(403, "not authorized: insufficient permissions")`` (a fresh instance
        equal to :data:`pykes.errors.ERR_NOT_ALLOWED`) when access is denied.
        """
        if identity and identity == self.admin:
            return
        policy = self._by_identity.get(identity)
        if policy is None and self.ephemeral is not None and identity:
            policy = self._ephemeral_policy(identity)
        if policy is None or not policy.allows(path):
            raise APIError(ERR_NOT_ALLOWED.status, ERR_NOT_ALLOWED.message)
