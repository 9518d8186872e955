"""Who may run which KMS API command in one enclave (docs/kms-api.md, "Who may"): the
server's admin (SysAdmin), the enclave's KMS identities by privilege (Admin, User) and
a User's policy of command names on name patterns. The KES API's policies play no part.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable

from pykes.auth.policy import Policy
from pykes.errors import APIError
from pykes.kms.commands import Command
from pykes.kms.errors import ERR_PERMISSION
from pykes.store.records import IdentityRecord, PolicyRecord


class Privilege(enum.IntEnum):
    """kms-go's privilege numbers (what an ``IdentityResponse`` carries)."""

    SYS_ADMIN = 1
    ADMIN = 2
    USER = 3


PRIVILEGES = {"SysAdmin": Privilege.SYS_ADMIN, "Admin": Privilege.ADMIN, "User": Privilege.USER}

SYS_ADMIN_ONLY = frozenset(c for c in Command if c < Command.KEY_CREATE)
"""Cluster and enclave commands: the server's admin's alone."""

ADMIN_ONLY = frozenset(
    (Command.POLICY_CREATE, Command.POLICY_DELETE, Command.POLICY_ASSIGN,
     Command.IDENTITY_CREATE, Command.IDENTITY_DELETE)
)  # fmt: skip
"""What changes who may do what: an Admin's, never a User's (whatever its policy says):
a User cannot widen its own rights."""

GRANTABLE = frozenset(c.text for c in Command if c not in SYS_ADMIN_ONLY and c not in ADMIN_ONLY)
"""The command names a KMS policy may allow or deny."""


def rule(command: str, pattern: str) -> str:
    """A policy entry as stored: ``KEY:GENERATE/minio-*`` (command name, name pattern)."""
    return f"{command}/{pattern}"


class KMSAccess:
    """The KMS identities and policies of one enclave, checked per command."""

    __slots__ = ("admin", "identities", "policies", "_rules")

    def __init__(
        self, admin: str, policies: Iterable[PolicyRecord], identities: Iterable[IdentityRecord]
    ) -> None:
        self.admin = admin
        self.policies = {p.name: p for p in policies}
        self.identities = {i.identity: i for i in identities}
        self._rules = {p.name: Policy(p.name, p.allow, p.deny) for p in self.policies.values()}

    def privilege(self, identity: str) -> Privilege | None:
        if identity and identity == self.admin:
            return Privilege.SYS_ADMIN
        record = self.identities.get(identity)
        return Privilege(record.privilege) if record is not None else None

    def check(self, identity: str, command: Command, name: str) -> None:
        """Raise 403 ``access denied`` unless ``identity`` may run ``command`` on
        ``name`` (a key, policy or identity name, or a list's prefix)."""
        check_name = self.name_check(identity, command)
        if check_name is not None:
            check_name(name)

    def name_check(self, identity: str, command: Command) -> Callable[[str], None] | None:
        """What decides whether ``identity`` may run ``command`` on a name: ``None`` when
        every name is allowed (the admin; an enclave Admin), else a check that raises
        403 for a name its User policy does not allow. Raises 403 at once when no name
        is. A batch asks once, then checks each frame's name."""
        privilege = self.privilege(identity)
        if privilege is Privilege.SYS_ADMIN:
            return None
        if privilege is None or command in SYS_ADMIN_ONLY:
            raise _denied()
        if privilege is Privilege.ADMIN:
            return None
        if command in ADMIN_ONLY:
            raise _denied()
        policy = self._rules.get(self.identities[identity].policy)
        if policy is None:
            raise _denied()
        command_text = command.text

        def check_name(name: str) -> None:
            if not policy.allows(rule(command_text, name)):
                raise _denied()

        return check_name


def _denied() -> APIError:
    return APIError(ERR_PERMISSION.status, ERR_PERMISSION.message)
