"""The KMS API's enclave commands (101–104), on the store's enclaves: what the KES API's
``/v1/enclave/`` routes administer (docs/kms-api.md). The server's admin (SysAdmin) only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykes.api.handlers.common import require_name
from pykes.api.handlers.enclaves import stored_enclaves
from pykes.api.handlers.kms_listing import can_match, page
from pykes.api.handlers.kms_stamps import stamped
from pykes.kms.pb import request_pb2 as rq
from pykes.kms.pb import response_pb2 as rs
from pykes.store.errors import EnclaveNotFoundError

if TYPE_CHECKING:
    from pykes.api.context import Context
    from pykes.api.messages import Request
    from pykes.store import EnclaveInfo


def _name(name: str) -> str:
    return require_name("enclave name", name)


def _status(info: EnclaveInfo) -> rs.EnclaveStatusResponse:
    return stamped(rs.EnclaveStatusResponse(Name=info.name), info.created_at_ns, info.created_by)


async def create(ctx: Context, req: Request, m: rq.CreateEnclaveRequest) -> None:
    """409 ``enclave already exists``."""
    await stored_enclaves(ctx).create_enclave(_name(m.Name), req.identity)


async def delete(ctx: Context, req: Request, m: rq.DeleteEnclaveRequest) -> None:
    """An empty enclave only (``400 enclave is not empty``: the KES API's
    ``/v1/enclave/delete/<name>?force`` deletes one with its keys); never ``default``."""
    await stored_enclaves(ctx).delete_enclave(_name(m.Name), force=False)


async def status(
    ctx: Context, req: Request, m: rq.EnclaveStatusRequest
) -> rs.EnclaveStatusResponse:
    return _status(await stored_enclaves(ctx).describe_enclave(_name(m.Name)))


async def list_(ctx: Context, req: Request, m: rq.ListRequest) -> rs.ListEnclavesResponse:
    store = stored_enclaves(ctx)
    answer = rs.ListEnclavesResponse()
    if not can_match(m.Prefix):
        return answer
    all_names = await store.list_enclaves(m.Prefix)
    names, answer.ContinueAt = page(all_names, m.Prefix, m.ContinueAt, m.Limit)
    for name in names:
        try:
            answer.Enclaves.append(_status(await store.describe_enclave(name)))
        except EnclaveNotFoundError:  # deleted meanwhile
            continue
    return answer
