"""Enclave administration in stateful mode, in 2023 KES's shapes (docs/stateful.md):
``/v1/enclave/{create,describe,delete,list}/``, for the server's admin only.

Errors: ``400 enclave already exists``, ``404 enclave does not exist``, the enclave-name
rule's 400; deleting ``default`` or, without ``?force``, an enclave that holds any key,
policy or identity is a 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykes.api.handlers.common import query_flag, require_name
from pykes.api.messages import EMPTY_OK, Request, Response
from pykes.errors import ERR_NOT_ALLOWED, APIError
from pykes.goformat.json import go_json
from pykes.goformat.timestamp import format_rfc3339_nano
from pykes.names import pattern_prefix, valid_prefix

if TYPE_CHECKING:
    from pykes.api.context import Context
    from pykes.api.stored import StoredEnclaves
    from pykes.auth.authorizer import Authorizer


def admin_only(authorizer: Authorizer, req: Request) -> None:
    """The authorization step of these routes (``Route.authorize``): the admin, no policy."""
    if not authorizer.is_admin(req.identity):
        raise APIError(ERR_NOT_ALLOWED.status, ERR_NOT_ALLOWED.message)


def stored_enclaves(ctx: Context) -> StoredEnclaves:
    if ctx.enclaves is None:  # (routed in stateful mode only)
        raise APIError(501, "not implemented")
    return ctx.enclaves


def _name(req: Request) -> str:
    return require_name("enclave name", req.resource)


async def create(ctx: Context, req: Request) -> Response:
    """``PUT /v1/enclave/create/<name>`` (POST too)."""
    await stored_enclaves(ctx).create_enclave(_name(req), req.identity)
    return EMPTY_OK


async def describe(ctx: Context, req: Request) -> Response:
    """``GET /v1/enclave/describe/<name>``: ``name``, ``created_at``, ``created_by``."""
    info = await stored_enclaves(ctx).describe_enclave(_name(req))
    out = {"name": info.name, "created_at": format_rfc3339_nano(info.created_at_ns)}
    if info.created_by:
        out["created_by"] = info.created_by
    return Response(200, go_json(out))


async def delete(ctx: Context, req: Request) -> Response:
    """``DELETE /v1/enclave/delete/<name>[?force]``: ``force`` (or ``force=true``) deletes
    an enclave with everything in it."""
    await stored_enclaves(ctx).delete_enclave(_name(req), force=query_flag(req.query, "force"))
    return EMPTY_OK


async def list_(ctx: Context, req: Request) -> Response:
    """``GET /v1/enclave/list/<prefix>``: ``{"names":[…]}``, sorted, in one page. A plain
    prefix, as 2023 KES and its SDK's ``ListEnclaves`` (``tenant-``), or one ending in ``*``."""
    if not valid_prefix(req.resource):
        raise APIError(400, f"listing pattern '{req.resource}' is empty, too long or is invalid")
    names = await stored_enclaves(ctx).list_enclaves(pattern_prefix(req.resource))
    return Response(200, go_json({"names": names}))
