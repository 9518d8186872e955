"""The audit log and the error log: stdout/stderr output plus live subscribers.

Audit events (spec/observability.md §2) go to stdout as slog text and, as JSON, to
every ``/v1/log/audit`` subscriber; error records (§1) go to stderr and to
``/v1/log/error`` subscribers as ``{"message": "<slog text line>"}``. Neither ever
contains key material, plaintext, ciphertext or context: callers pass only fixed
texts, names, paths and identities.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, TextIO

from pykes.gojson import go_json
from pykes.observe.slogtext import (
    LEVEL_DEBUG,
    LEVEL_ERROR,
    LEVEL_INFO,
    LEVEL_WARN,
    format_record,
    go_duration,
)
from pykes.timefmt import format_rfc3339_nano

if TYPE_CHECKING:
    from pykes.server.http import Request

SUBSCRIBER_BUFFER = 1024  # events buffered per subscriber before new ones are dropped


class Hub:
    """Fan-out of encoded events to live subscribers with bounded buffers.

    A subscriber that falls more than ``SUBSCRIBER_BUFFER`` events behind loses the
    newest events (counted in ``dropped``) instead of slowing down request handling.
    """

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[bytes]] = set()
        self.delivered = 0
        self.dropped = 0

    def __bool__(self) -> bool:
        return bool(self._subscribers)

    def publish(self, line: bytes) -> None:
        for queue in self._subscribers:
            try:
                queue.put_nowait(line)
            except asyncio.QueueFull:
                self.dropped += 1

    async def subscribe(self) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(SUBSCRIBER_BUFFER)
        self._subscribers.add(queue)
        try:
            while True:
                line = await queue.get()
                self.delivered += 1
                yield line
        finally:
            self._subscribers.discard(queue)


class Logs:
    def __init__(
        self,
        error_level: int = LEVEL_INFO,
        audit_level: int = LEVEL_INFO,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.error_level = error_level
        self.audit_level = audit_level
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr
        self.audit_hub = Hub()
        self.error_hub = Hub()

    # ---------------------------------------------------------------- error log
    def _record(self, level: int, message: str, req: Request | None) -> None:
        if level < self.error_level:
            return
        attrs: list[tuple[str, str]] = []
        if req is not None:
            attrs = [
                ("req.method", req.method),
                ("req.path", req.path),
                ("req.ip", req.ip),
                ("req.identity", req.identity or "<unknown>"),
            ]
        line = format_record(time.time_ns(), level, message, attrs)
        self._stderr.write(line + "\n")
        self._stderr.flush()
        if self.error_hub:
            self.error_hub.publish(go_json({"message": line}))

    def error(self, message: str, req: Request | None = None) -> None:
        self._record(LEVEL_ERROR, message, req)

    def warn(self, message: str, req: Request | None = None) -> None:
        self._record(LEVEL_WARN, message, req)

    def info(self, message: str, req: Request | None = None) -> None:
        self._record(LEVEL_INFO, message, req)

    def debug(self, message: str, req: Request | None = None) -> None:
        if self.error_level <= LEVEL_DEBUG:
            self._record(LEVEL_DEBUG, message, req)

    # ---------------------------------------------------------------- audit log
    def audit(self, message: str, req: Request, status: int) -> None:
        if self.audit_level > LEVEL_INFO:
            return
        now = time.time_ns()
        elapsed = max(0, int((time.perf_counter() - req.started) * 1e9))
        line = format_record(
            now,
            LEVEL_INFO,
            message,
            [
                ("req.method", req.method),
                ("req.path", req.path),
                ("req.ip", req.ip),
                ("req.identity", req.identity or "<unknown>"),
                ("res.code", str(status)),
                ("res.time", go_duration(elapsed)),
            ],
        )
        self._stdout.write(line + "\n")
        self._stdout.flush()
        if self.audit_hub:
            request: dict[str, str] = {}
            if req.ip:
                request["ip"] = req.ip
            request["path"] = req.path
            if req.identity:
                request["identity"] = req.identity
            event = {
                "time": format_rfc3339_nano(now, local=True),
                "request": request,
                # Integer nanoseconds: what the Go SDK's AuditStream and `kes log`
                # decode (spec/observability.md §2.3 recommendation).
                "response": {"code": status, "time": elapsed},
            }
            self.audit_hub.publish(go_json(event))


__all__ = ["Hub", "Logs", "LEVEL_DEBUG", "LEVEL_INFO", "LEVEL_WARN", "LEVEL_ERROR"]
