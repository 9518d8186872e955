"""Policies and per-request authorization (spec/auth.md §2–§5).

Pattern semantics (current KES, since the 2023 rewrite): an empty pattern never
matches; a pattern ending in ``*`` matches every path that starts with the pattern
minus that ``*`` (plain string prefix, may cross ``/``); any other pattern must equal
the path. Deny patterns are checked before allow patterns; the default is deny.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from pykes.errors import ERR_NOT_ALLOWED, APIError

if TYPE_CHECKING:
    from pykes.auth.ephemeral import EphemeralStore

__all__ = ["Authorizer", "Policy", "match"]


def match(pattern: str, path: str) -> bool:
    """Report whether ``pattern`` matches the URL ``path`` (spec/auth.md §4)."""
    if not pattern:
        return False
    if pattern[-1] == "*":
        return path.startswith(pattern[:-1])
    return pattern == path


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


class Authorizer:
    """Decides whether an identity may access a URL path (spec/auth.md §3).

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
