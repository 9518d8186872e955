"""Identity APIs: /v1/identity/{describe,list}/ and /v1/identity/self/describe
(api.md §5.18–§5.20)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykes.errors import IdentityNotFoundError
from pykes.gojson import go_json
from pykes.server.handlers.common import listing_prefix, require_name
from pykes.server.handlers.policies import patterns
from pykes.server.http import Request, Response
from pykes.timefmt import format_rfc3339_nano

if TYPE_CHECKING:
    from pykes.server.state import ServerState


async def describe(state: ServerState, req: Request) -> Response:
    identity = require_name("identity", req.resource)
    created_at = format_rfc3339_nano(state.start_ns, local=True)
    if state.authorizer.is_admin(identity):
        return Response(200, go_json({"admin": True, "created_at": created_at}))
    policy = state.authorizer.policy_of(identity)
    if policy is None:
        raise IdentityNotFoundError()
    return Response(
        200,
        go_json({"policy": policy.name, "created_at": created_at, "created_by": state.admin}),
    )


async def list_(state: ServerState, req: Request) -> Response:
    prefix = listing_prefix(req.resource)
    identities = set(state.authorizer.assignments)
    identities.add(state.admin)
    names = sorted(i for i in identities if i.startswith(prefix))
    return Response(200, go_json({"identities": names, "continue_at": ""}))


async def self_describe(state: ServerState, req: Request) -> Response:
    """Works for every identity, not just the admin (fixes the Go server's 404, api.md
    §5.20), in the flat shape the Go SDK's ``DescribeSelf`` decodes."""
    identity = req.identity
    created_at = format_rfc3339_nano(state.start_ns, local=True)
    if identity and state.authorizer.is_admin(identity):
        return Response(
            200, go_json({"identity": identity, "admin": True, "created_at": created_at})
        )
    policy = state.authorizer.policy_of(identity) if identity else None
    if policy is None:
        raise IdentityNotFoundError()
    out: dict[str, object] = {
        "identity": identity,
        "created_at": created_at,
        "created_by": state.admin,
        "policy": policy.name,
    }
    if policy.allow:
        out["allow"] = patterns(policy.allow)
    if policy.deny:
        out["deny"] = patterns(policy.deny)
    return Response(200, go_json(out))
