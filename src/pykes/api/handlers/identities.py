"""Identity APIs: /v1/identity/{describe,list}/ and /v1/identity/self/describe
(docs/compat/api.md §5.18–§5.20).

Identities are assigned by the config file (``created_at`` = the server start time,
``created_by`` = the admin) or, with the legacy API, by ``/v1/identity/assign``
(ephemeral: their own assignment time and assigner). The config file wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pykes.api.handlers.common import listing_prefix, require_name
from pykes.api.handlers.policies import patterns
from pykes.api.messages import Request, Response
from pykes.auth.policy import Policy
from pykes.errors import IdentityNotFoundError
from pykes.goformat.json import go_json
from pykes.goformat.timestamp import format_rfc3339_nano

if TYPE_CHECKING:
    from pykes.api.context import Context


@dataclass(frozen=True, slots=True)
class IdentityInfo:
    identity: str
    admin: bool
    policy: str  # "" for the admin
    created_at_ns: int
    created_by: str


def assigned(ctx: Context, identity: str) -> tuple[Policy, int, str] | None:
    """The policy of a non-admin identity with its assignment time and assigner."""
    authorizer = ctx.authorizer
    if identity in authorizer.assignments:
        policy = authorizer.policy_of(identity)
        return (policy, ctx.facts.start_ns, ctx.admin) if policy is not None else None
    store = authorizer.ephemeral
    if store is None:
        return None
    entry = store.snapshot().assignments.get(identity)
    policy = authorizer.policy_of(identity) if entry is not None else None
    if entry is None or policy is None:
        return None
    return policy, entry.created_at_ns, entry.created_by


def all_identities(ctx: Context) -> list[IdentityInfo]:
    """The admin and every assigned identity (config file and run time), sorted."""
    rows = {ctx.admin: IdentityInfo(ctx.admin, True, "", ctx.facts.start_ns, "")}
    names = set(ctx.authorizer.assignments)
    store = ctx.authorizer.ephemeral
    if store is not None:
        names.update(store.snapshot().assignments)
    for identity in names:
        found = assigned(ctx, identity) if identity != ctx.admin else None
        if found is not None:
            policy, at, by = found
            rows[identity] = IdentityInfo(identity, False, policy.name, at, by)
    return [rows[i] for i in sorted(rows)]


async def describe(ctx: Context, req: Request) -> Response:
    identity = require_name("identity", req.resource)
    if ctx.authorizer.is_admin(identity):
        created_at = format_rfc3339_nano(ctx.facts.start_ns, local=True)
        return Response(200, go_json({"admin": True, "created_at": created_at}))
    found = assigned(ctx, identity)
    if found is None:
        raise IdentityNotFoundError()
    policy, at, by = found
    return Response(
        200,
        go_json(
            {
                "policy": policy.name,
                "created_at": format_rfc3339_nano(at, local=True),
                "created_by": by,
            }
        ),
    )


async def list_(ctx: Context, req: Request) -> Response:
    prefix = listing_prefix(req.resource)
    names = [r.identity for r in all_identities(ctx) if r.identity.startswith(prefix)]
    return Response(200, go_json({"identities": names, "continue_at": ""}))


async def self_describe(ctx: Context, req: Request) -> Response:
    """Works for every identity, not just the admin (fixes the Go server's 404, docs/compat/api.md
    §5.20), in the flat shape the Go SDK's ``DescribeSelf`` decodes."""
    identity = req.identity
    if identity and ctx.authorizer.is_admin(identity):
        created_at = format_rfc3339_nano(ctx.facts.start_ns, local=True)
        return Response(
            200, go_json({"identity": identity, "admin": True, "created_at": created_at})
        )
    found = assigned(ctx, identity) if identity else None
    if found is None:
        raise IdentityNotFoundError()
    policy, at, by = found
    out: dict[str, object] = {
        "identity": identity,
        "created_at": format_rfc3339_nano(at, local=True),
        "created_by": by,
        "policy": policy.name,
    }
    if policy.allow:
        out["allow"] = patterns(policy.allow)
    if policy.deny:
        out["deny"] = patterns(policy.deny)
    return Response(200, go_json(out))
