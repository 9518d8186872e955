"""The KMS API's cluster commands (1–6), answered for what a pykes cluster is: nodes
that share one store engine (SQLite on one box, OpenBao/Vault for many) and know
nothing of each other, not MinKMS's own consensus (docs/kms-api.md, "Cluster").

``CLUSTER:STATUS`` describes the node asked: itself, up, as the leader of its own view
(it serves writes itself; the engine orders them). Membership and HSM commands are
``501`` with a text that says why, as the KES API answers what it does not support.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from pykes.api.handlers.system import GOARCH, GOOS
from pykes.api.reached_host import reached_host
from pykes.errors import APIError
from pykes.kms.pb import request_pb2 as rq
from pykes.kms.pb import response_pb2 as rs
from pykes.observe.metrics import memory_usage, usable_cpus

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from pykes.api.context import Context
    from pykes.api.messages import Request

NODE_ID = 0
"""The one node ID a pykes node knows: its own."""

ERR_MEMBERSHIP = APIError(
    501,
    "cluster membership is not supported: pykes nodes share a store engine; "
    "add or remove nodes there (docs/kms-api.md)",
)
ERR_HSM = APIError(
    501, "HSMs are not supported: the store's seal protects its keys (docs/kms-api.md)"
)


async def status(
    ctx: Context, req: Request, m: rq.ClusterStatusRequest
) -> rs.ClusterStatusResponse:
    host = reached_host(req) or ctx.facts.address  # as /version names this node
    heap, stack = memory_usage()
    node = rs.ServerStatusResponse(
        Version=ctx.facts.version,
        APIVersion="v1",
        Host=host,
        Role="Leader",
        Nodes={NODE_ID: host},
        ID=NODE_ID,
        LeaderID=NODE_ID,
        OS=GOOS,
        Arch=GOARCH,
        CPUs=os.cpu_count() or 1,
        UsableCPUs=usable_cpus(),
        HeapMemInUse=heap,
        StackMemInUse=stack,
    )
    node.UpTime.FromNanoseconds(int((time.monotonic() - ctx.facts.start_monotonic) * 1e9))
    return rs.ClusterStatusResponse(NodesUp={NODE_ID: node})


async def change_membership(ctx: Context, req: Request, m: Message) -> None:
    """Add, remove or edit nodes: not a pykes node's to do."""
    raise ERR_MEMBERSHIP


async def change_hsm(ctx: Context, req: Request, m: Message) -> None:
    """Add or remove an HSM: pykes seals its store with the ``store.seal`` of its config."""
    raise ERR_HSM
