"""Per-request authorization: the admin, the config file's assignments and the legacy
API's run-time ones decide whether an identity may reach a path (docs/compat/auth.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from pykes.auth.policy import Policy, wider_pattern
from pykes.errors import ERR_NOT_ALLOWED, APIError

if TYPE_CHECKING:
    from pykes.auth.ephemeral import RunTimePolicies

__all__ = ["Authorizer"]


class Authorizer:
    """Decides whether an identity may access a URL path (docs/compat/auth.md §3).

    ``policies`` maps policy names to policies; ``assignments`` maps identities to
    policy names (both from the config file). Every assigned policy name must exist
    (:class:`ValueError`). ``ephemeral`` holds the policies and assignments made at run
    time through the legacy API (shared memory; in stateful mode, the enclave's store);
    it is consulted only for identities the config file does not assign, so the
    config's identities pay nothing for it.
    """

    __slots__ = ("admin", "policies", "assignments", "ephemeral", "_by_identity")

    def __init__(
        self,
        admin: str,
        policies: Mapping[str, Policy],
        assignments: Mapping[str, str],
        ephemeral: RunTimePolicies | None = None,
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
