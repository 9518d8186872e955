"""System APIs: /version, /v1/{ready,status,metrics,api} (docs/compat/api.md §5.1–§5.5)."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import TYPE_CHECKING

from pykes.api.messages import EMPTY_OK, Request, Response
from pykes.api.reached_host import reached_host
from pykes.errors import APIError, KeyStoreUnreachable
from pykes.goformat.json import go_json
from pykes.observe.metrics import CONTENT_TYPE, memory_usage, usable_cpus

if TYPE_CHECKING:
    from pykes.api.context import Context

_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}
GOOS = {"linux": "linux", "darwin": "darwin", "win32": "windows"}.get(sys.platform, sys.platform)
GOARCH = _GOARCH.get(platform.machine().lower(), platform.machine().lower())


async def version(ctx: Context, req: Request) -> Response:
    """Go KES's ``{"version","commit"}``; a stateful server adds ``"host"``, the address
    the client reached it at: the kms-go client's ``VersionResponse.Host``, by which
    MinIO's KMS status tells its endpoints apart (docs/kms-api.md, "Where")."""
    answer = {"version": ctx.facts.version, "commit": ctx.facts.commit}
    if ctx.enclaves is not None:  # stateful (a stateless proxy's requests keep headers too)
        host = reached_host(req)
        if host:
            answer["host"] = host
    return Response(200, go_json(answer))


async def ready(ctx: Context, req: Request) -> Response:
    try:
        await ctx.keys.status()
    except KeyStoreUnreachable as err:
        ctx.log.warn(f"key store is not reachable: {err}", req)
        raise APIError(504, "key store is not reachable") from None
    except Exception as err:
        ctx.log.warn(f"key store is unavailable: {err}", req)
        raise APIError(502, "key store is unavailable") from None
    return EMPTY_OK


async def status(ctx: Context, req: Request) -> Response:
    heap, stack = memory_usage()
    out: dict[str, object] = {
        "version": ctx.facts.version,
        "os": GOOS,
        "arch": GOARCH,
        "uptime": round(time.monotonic() - ctx.facts.start_monotonic),
        "num_cpu": os.cpu_count() or 1,
        "num_cpu_used": usable_cpus(),
        "mem_heap_used": heap,
        "mem_stack_used": stack,
    }
    try:
        latency = await ctx.keys.status()
    except Exception as err:
        # The Go server sends only `keystore_unreachable`, which the Go SDK rejects
        # ("keystore is unreachable but not unavailable"), so `kes status` fails instead
        # of showing the keystore as down. We add `keystore_unavailable` (set for any
        # keystore failure) so SDK clients decode the real ctx (issue 3 decision).
        out["keystore_unavailable"] = True
        if isinstance(err, KeyStoreUnreachable):
            out["keystore_unreachable"] = True
    else:
        out["keystore_latency"] = max(1, round(latency * 1000))  # integer milliseconds
    return Response(200, go_json(out))


async def metrics(ctx: Context, req: Request) -> Response:
    return Response(200, ctx.facts.metrics.render(), CONTENT_TYPE)


async def api(ctx: Context, req: Request) -> Response:
    return Response(200, ctx.facts.api_listing)
