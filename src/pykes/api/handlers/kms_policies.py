"""The KMS API's policy commands (301–306) in the path's enclave: policies of command
names (``KEY:GENERATE``, …) on name patterns, kept apart from the KES API's policies
(docs/kms-api.md, "Who may"). Writes are an Admin's (pykes.api.kms_access)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pykes.api.handlers.common import require_name
from pykes.api.handlers.enclaves import stored_enclaves
from pykes.api.handlers.kms_listing import can_match, page
from pykes.api.handlers.kms_stamps import stamped
from pykes.api.kms_access import GRANTABLE, rule
from pykes.errors import APIError, PolicyNotFoundError
from pykes.kms.identity import to_kes
from pykes.kms.pb import request_pb2 as rq
from pykes.kms.pb import response_pb2 as rs
from pykes.kms.pb import rule_pb2
from pykes.names import valid_prefix
from pykes.store.records import IdentityRecord, PolicyRecord

if TYPE_CHECKING:
    from pykes.api.context import Context
    from pykes.api.messages import Request

MAX_RULES = 1024
"""Command/pattern pairs a policy holds at most (allow and deny together)."""


def _name(name: str) -> str:
    return require_name("policy name", name)


def _rules(rules: Mapping[str, rule_pb2.RuleSet]) -> list[str]:
    """The stored form (``COMMAND/pattern``) of a policy's allow or deny map: command
    names a policy may grant, patterns of a name with at most a trailing ``*`` (KES's
    pattern rule); empty patterns are ignored, as the client does."""
    out = []
    for command, rule_set in rules.items():
        if command not in GRANTABLE:
            raise APIError(400, f"policy command '{command}' is invalid or cannot be granted")
        for pattern in rule_set.Rules:
            if not pattern:
                continue
            if pattern == "*" or (valid_prefix(pattern) and "*" not in pattern[:-1]):
                out.append(rule(command, pattern))
            else:
                raise APIError(400, f"policy pattern '{pattern}' is invalid")
    return sorted(out)


def _rule_sets(rules: tuple[str, ...]) -> dict[str, rule_pb2.RuleSet]:
    sets: dict[str, rule_pb2.RuleSet] = {}
    for entry in rules:
        command, _, pattern = entry.partition("/")
        sets.setdefault(command, rule_pb2.RuleSet()).Rules[pattern].SetInParent()
    return sets


def _status(policy: PolicyRecord) -> rs.PolicyStatusResponse:
    status = rs.PolicyStatusResponse(Name=policy.name)
    return stamped(status, policy.created_at_ns, policy.created_by)


async def create(ctx: Context, req: Request, m: rq.CreatePolicyRequest) -> None:
    """Create or replace a policy (its identities keep it)."""
    allow, deny = _rules(m.Allow), _rules(m.Deny)
    if len(allow) + len(deny) > MAX_RULES:
        raise APIError(400, f"a policy holds at most {MAX_RULES} rules")
    await stored_enclaves(ctx).write_kms_policy(ctx.tenant, _name(m.Name), allow, deny,
                                                req.identity)  # fmt: skip


async def delete(ctx: Context, req: Request, m: rq.DeletePolicyRequest) -> None:
    """404 ``policy does not exist``; its identities are left without a policy."""
    await stored_enclaves(ctx).delete_kms_policy(ctx.tenant, _name(m.Name))


async def assign(ctx: Context, req: Request, m: rq.AssignPolicyRequest) -> None:
    """Assign an existing policy to an existing identity of the enclave (404 for either)."""
    enclaves = stored_enclaves(ctx)
    identity = await get_identity(ctx, m.Identity)
    await enclaves.write_kms_identity(ctx.tenant, identity, policy=_name(m.Policy))


async def get(ctx: Context, req: Request, m: rq.PolicyRequest) -> rs.PolicyResponse:
    policy = await stored_enclaves(ctx).store.get_policy(ctx.tenant, _name(m.Name), kms=True)
    status = _status(policy)
    answer = rs.PolicyResponse(Name=status.Name, CreatedBy=status.CreatedBy)
    answer.CreatedAt.CopyFrom(status.CreatedAt)
    for target, rules in ((answer.Allow, policy.allow), (answer.Deny, policy.deny)):
        for command, rule_set in _rule_sets(rules).items():
            target[command].CopyFrom(rule_set)
    return answer


async def status(ctx: Context, req: Request, m: rq.PolicyRequest) -> rs.PolicyStatusResponse:
    return _status(await stored_enclaves(ctx).store.get_policy(ctx.tenant, _name(m.Name), kms=True))


async def list_(ctx: Context, req: Request, m: rq.ListRequest) -> rs.ListPoliciesResponse:
    answer = rs.ListPoliciesResponse()
    if not can_match(m.Prefix):
        return answer
    store = stored_enclaves(ctx).store
    all_names = await store.list_policies(ctx.tenant, m.Prefix, kms=True)
    names, answer.ContinueAt = page(sorted(all_names), m.Prefix, m.ContinueAt, m.Limit)
    for name in names:
        with contextlib.suppress(PolicyNotFoundError):  # deleted meanwhile
            answer.Policies.append(_status(await store.get_policy(ctx.tenant, name, kms=True)))
    return answer


def kes_identity(identity: str) -> str:
    """The KES (hex) form of a client's ``h1:`` identity (400 if it is not one)."""
    try:
        return to_kes(identity)
    except ValueError:
        raise APIError(400, f"identity '{identity}' is invalid") from None


async def get_identity(ctx: Context, identity: str) -> IdentityRecord:
    """The KMS identity ``identity`` (``h1:``) of the enclave: 404 if none."""
    store = stored_enclaves(ctx).store
    return await store.get_identity(ctx.tenant, kes_identity(identity), kms=True)
