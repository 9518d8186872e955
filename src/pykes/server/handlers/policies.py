"""Policy APIs: /v1/policy/{describe,read,list}/ (api.md §5.15–§5.17).

Policies come from the config file; ``created_at`` is the server start time (local
zone) and ``created_by`` the admin identity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykes.auth import Policy
from pykes.errors import PolicyNotFoundError
from pykes.gojson import go_json
from pykes.server.handlers.common import listing_prefix, require_name
from pykes.server.http import Request, Response
from pykes.timefmt import format_rfc3339_nano

if TYPE_CHECKING:
    from pykes.server.state import ServerState


def _policy(state: ServerState, req: Request) -> Policy:
    name = require_name("policy name", req.resource)
    policy = state.policies.get(name)
    if policy is None:
        raise PolicyNotFoundError()
    return policy


def patterns(values: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """Go encodes the pattern sets as objects: ``{"<pattern>": {}}``, keys sorted."""
    return {p: {} for p in sorted(set(values))}


async def describe(state: ServerState, req: Request) -> Response:
    policy = _policy(state, req)
    return Response(
        200,
        go_json(
            {
                "name": policy.name,
                "created_at": format_rfc3339_nano(state.start_ns, local=True),
                "created_by": state.admin,
            }
        ),
    )


async def read(state: ServerState, req: Request) -> Response:
    policy = _policy(state, req)
    out: dict[str, object] = {"name": policy.name}
    if policy.allow:
        out["allow"] = patterns(policy.allow)
    if policy.deny:
        out["deny"] = patterns(policy.deny)
    out["created_at"] = format_rfc3339_nano(state.start_ns, local=True)
    out["created_by"] = state.admin
    return Response(200, go_json(out))


async def list_(state: ServerState, req: Request) -> Response:
    prefix = listing_prefix(req.resource)
    names = sorted(n for n in state.policies if n.startswith(prefix))
    return Response(200, go_json({"names": names, "continue_at": ""}))
