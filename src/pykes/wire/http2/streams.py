"""The state of one HTTP/2 stream, connection errors, and frame payload helpers."""

from __future__ import annotations

import asyncio

from pykes.api.messages import Request, Response
from pykes.wire.http2 import frames as f
from pykes.wire.http2.headers import CompressionError, HeaderListTooLarge


class Stream:
    """A stream's request as it arrives, and its answer as flow control lets it out."""

    __slots__ = (
        "sid",
        "req",
        "early",
        "body",
        "received",
        "held",
        "max_body",
        "content_length",
        "remote_open",
        "send_window",
        "pending",
        "pending_end",
        "task",
        "timer",
        "deadline",
        "waiter",
    )

    def __init__(self, sid: int, send_window: int) -> None:
        self.sid = sid
        self.req: Request | None = None
        self.early: Response | None = None
        self.body: list[bytes] = []
        self.received = 0  # DATA payload bytes (after padding)
        self.held = 0  # connection-window bytes kept in ``body`` (returned when done)
        self.max_body = 0
        self.content_length: int | None = None
        self.remote_open = True
        self.send_window = send_window
        self.pending: memoryview | None = None  # response body not yet sent (flow control)
        self.pending_end = False
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0
        self.waiter: asyncio.Future[None] | None = None


class ConnectionError_(Exception):  # noqa: N818 - an HTTP/2 connection error (§5.4.1)
    def __init__(self, code: int, why: str = "") -> None:
        super().__init__(why)
        self.code = code


def hpack_error(err: CompressionError) -> ConnectionError_:
    if isinstance(err, HeaderListTooLarge):  # an HPACK bomb, or just too much
        return ConnectionError_(f.ENHANCE_YOUR_CALM, "header list too large")
    return ConnectionError_(f.COMPRESSION_ERROR, "bad header block")


def strip_padding(payload: bytes, flags: int, priority: bool) -> bytes:
    """Remove padding (and the priority fields of HEADERS)."""
    start, end = 0, len(payload)
    if flags & f.PADDED:
        if not payload:
            raise ConnectionError_(f.FRAME_SIZE_ERROR, "padded frame without pad length")
        pad = payload[0]
        start = 1
        end -= pad
    if priority and flags & f.PRIORITY_FLAG:
        start += 5
    if end < start:
        raise ConnectionError_(f.PROTOCOL_ERROR, "padding exceeds the payload")
    return payload[start:end]
