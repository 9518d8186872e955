"""Policy APIs: /v1/policy/{describe,read,list}/ (docs/compat/api.md §5.15–§5.17).

Policies come from the config file (``created_at`` = the server start time in the
local zone, ``created_by`` = the admin identity) and, with the legacy API, from
``/v1/policy/write`` (ephemeral: their own write time and writer). A config policy
wins a name clash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pykes.api.handlers.common import listing_prefix, require_name
from pykes.api.messages import Request, Response
from pykes.auth.policy import Policy
from pykes.errors import PolicyNotFoundError
from pykes.goformat.json import go_json
from pykes.goformat.timestamp import format_rfc3339_nano

if TYPE_CHECKING:
    from pykes.api.context import Context


@dataclass(frozen=True, slots=True)
class FoundPolicy:
    policy: Policy
    created_at_ns: int
    created_by: str


def lookup(ctx: Context, resource: str) -> FoundPolicy:
    """The policy named by ``resource`` (400 for a bad name, 404 when unknown)."""
    name = require_name("policy name", resource)
    policy = ctx.policies.get(name)
    if policy is not None:
        return FoundPolicy(policy, ctx.facts.start_ns, ctx.admin)
    store = ctx.authorizer.ephemeral
    entry = store.snapshot().policies.get(name) if store is not None else None
    if entry is None:
        raise PolicyNotFoundError()
    return FoundPolicy(entry.policy, entry.created_at_ns, entry.created_by)


def all_names(ctx: Context) -> set[str]:
    names = set(ctx.policies)
    store = ctx.authorizer.ephemeral
    if store is not None:
        names.update(store.snapshot().policies)
    return names


def patterns(values: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """Go encodes the pattern sets as objects: ``{"<pattern>": {}}``, keys sorted."""
    return {p: {} for p in sorted(set(values))}


async def describe(ctx: Context, req: Request) -> Response:
    found = lookup(ctx, req.resource)
    return Response(
        200,
        go_json(
            {
                "name": found.policy.name,
                "created_at": format_rfc3339_nano(found.created_at_ns, local=True),
                "created_by": found.created_by,
            }
        ),
    )


async def read(ctx: Context, req: Request) -> Response:
    found = lookup(ctx, req.resource)
    policy = found.policy
    out: dict[str, object] = {"name": policy.name}
    if policy.allow:
        out["allow"] = patterns(policy.allow)
    if policy.deny:
        out["deny"] = patterns(policy.deny)
    out["created_at"] = format_rfc3339_nano(found.created_at_ns, local=True)
    out["created_by"] = found.created_by
    return Response(200, go_json(out))


async def list_(ctx: Context, req: Request) -> Response:
    prefix = listing_prefix(req.resource)
    names = sorted(n for n in all_names(ctx) if n.startswith(prefix))
    return Response(200, go_json({"names": names, "continue_at": ""}))
