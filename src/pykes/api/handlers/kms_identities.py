"""The KMS API's identity commands (401–404) in the path's enclave: identities (``h1:``,
stored by their KES hash) with a privilege (Admin, User) and at most one KMS policy,
kept apart from the KES API's identities (docs/kms-api.md, "Who may")."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from pykes.api.handlers.enclaves import stored_enclaves
from pykes.api.handlers.kms_listing import page
from pykes.api.handlers.kms_policies import get_identity, kes_identity
from pykes.api.handlers.kms_stamps import stamped
from pykes.api.kms_access import PRIVILEGES, Privilege
from pykes.errors import APIError, IdentityNotFoundError
from pykes.kms.identity import from_kes
from pykes.kms.pb import request_pb2 as rq
from pykes.kms.pb import response_pb2 as rs
from pykes.store.records import IdentityRecord

if TYPE_CHECKING:
    from pykes.api.context import Context
    from pykes.api.messages import Request


def _privilege(text: str) -> Privilege:
    """A new identity's privilege: ``Admin`` or ``User`` (also: none given). SysAdmin is
    the server's ``admin.identity`` alone."""
    privilege = PRIVILEGES.get(text or "User")
    if privilege is None:
        raise APIError(400, f"privilege '{text}' is invalid")
    if privilege is Privilege.SYS_ADMIN:
        raise APIError(400, "privilege 'SysAdmin' is the server admin's (admin.identity) alone")
    return privilege


def _response(record: IdentityRecord) -> rs.IdentityResponse:
    answer = rs.IdentityResponse(
        Identity=from_kes(record.identity), Privilege=record.privilege, Policy=record.policy
    )
    return stamped(answer, record.created_at_ns, record.created_by)


async def create(ctx: Context, req: Request, m: rq.CreateIdentityRequest) -> None:
    """Create or replace an identity (a replaced one has no policy until assigned one).
    Service accounts and tags are not kept."""
    identity = kes_identity(m.Identity)
    if identity == ctx.admin:
        raise APIError(400, "the server's admin identity is SysAdmin already")
    record = IdentityRecord(identity, "", 0, req.identity, _privilege(m.Privilege))
    await stored_enclaves(ctx).write_kms_identity(ctx.tenant, record)


async def delete(ctx: Context, req: Request, m: rq.DeleteIdentityRequest) -> None:
    """404 ``identity does not exist``."""
    await stored_enclaves(ctx).delete_kms_identity(ctx.tenant, kes_identity(m.Identity))


async def get(ctx: Context, req: Request, m: rq.IdentityRequest) -> rs.IdentityResponse:
    """An identity of the enclave; the server's admin is SysAdmin in every enclave."""
    if kes_identity(m.Identity) == ctx.admin:
        return rs.IdentityResponse(Identity=m.Identity, Privilege=Privilege.SYS_ADMIN)
    return _response(await get_identity(ctx, m.Identity))


async def list_(ctx: Context, req: Request, m: rq.ListRequest) -> rs.ListIdentitiesResponse:
    """The enclave's KMS identities whose ``h1:`` form starts with ``Prefix``."""
    answer = rs.ListIdentitiesResponse()
    store = stored_enclaves(ctx).store
    stored = {from_kes(i): i for i in await store.list_identities(ctx.tenant, kms=True)}
    matching = sorted(i for i in stored if i.startswith(m.Prefix))
    names, answer.ContinueAt = page(matching, m.Prefix, m.ContinueAt, m.Limit)
    for name in names:
        with contextlib.suppress(IdentityNotFoundError):  # deleted meanwhile
            record = await store.get_identity(ctx.tenant, stored[name], kms=True)
            answer.Identities.append(_response(record))
    return answer
