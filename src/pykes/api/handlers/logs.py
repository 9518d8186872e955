"""Log streams: /v1/log/error and /v1/log/audit (docs/compat/api.md §5.21, observability.md).

Unlike the Go server (whose streams send nothing since 2024-02), events are streamed:
``application/x-ndjson``, one JSON object per line, flushed per event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykes.api.messages import Request, StreamResponse

if TYPE_CHECKING:
    from pykes.api.context import Context


async def error_stream(ctx: Context, req: Request) -> StreamResponse:
    return StreamResponse(ctx.log.error_hub.subscribe())


async def audit_stream(ctx: Context, req: Request) -> StreamResponse:
    return StreamResponse(ctx.log.audit_hub.subscribe())
