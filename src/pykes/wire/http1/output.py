"""What an HTTP/1.1 connection writes: response heads (precomputed bytes), the canned
answers of the parser, chunked log streams, and the per-turn write batch."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol
from weakref import WeakKeyDictionary

from pykes.api.messages import REASONS, Response, StreamResponse
from pykes.wire.spin import spinner_of

if TYPE_CHECKING:
    from pykes.wire.connection import Connection

BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n400 Bad Request"
)
HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n431 Request Header Fields Too Large"
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
CLOSE = b"Connection: close\r\n"


class Flushable(Protocol):
    """A connection's handler with answers held back until the end of the loop turn."""

    conn: Connection

    def flush(self) -> None: ...


# ------------------------------------------------------------------ response heads
_HEADS: dict[tuple[int, str | None, tuple[tuple[str, str], ...]], bytes] = {}
_HEADS_SIZE = 256


def head_of(response: Response) -> bytes:
    """Status line, Content-Type and the response's own headers (cached bytes)."""
    key = (response.status, response.content_type, response.headers)
    head = _HEADS.get(key)
    if head is None:
        reason = REASONS.get(response.status, "").encode()
        parts = [b"HTTP/1.1 %d %s\r\n" % (response.status, reason)]
        if response.content_type is not None:
            parts.append(b"Content-Type: " + response.content_type.encode() + b"\r\n")
        for name, value in response.headers:
            parts.append(f"{name}: {value}\r\n".encode("latin-1"))
        head = b"".join(parts)
        if len(_HEADS) < _HEADS_SIZE:  # Location headers vary: cache only the first few
            _HEADS[key] = head
    return head


HEAD_200_JSON = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
"""``head_of`` of the most common response, without the cache lookup."""

CONTENT_LENGTHS: dict[int, bytes] = {}
_CACHED_LENGTH_MAX = 4096  # bodies up to this size have their header line cached


def content_length(size: int) -> bytes:
    """The Content-Length line and the end of the header block (cached for small sizes:
    most responses of a route have the same few sizes)."""
    line = b"Content-Length: %d\r\n\r\n" % size
    if size <= _CACHED_LENGTH_MAX:
        CONTENT_LENGTHS[size] = line
    return line


# ------------------------------------------------------------------ batched writes
class WriteBatch:
    """The connections with answers not yet written in this event-loop turn.

    They are written after every read of the turn was handled, back to back: with many
    connections the peer's poller then wakes once per turn rather than once per answer
    (measured: 82 → 47 µs of server CPU per request, docs/performance.md)."""

    __slots__ = ("loop", "handlers", "spinner")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.handlers: list[Flushable] = []
        self.spinner = spinner_of(loop)

    def add(self, handler: Flushable) -> None:
        if not self.handlers:
            self.loop.call_soon(self.flush)
        self.handlers.append(handler)

    def flush(self) -> None:
        handlers, self.handlers = self.handlers, []
        for handler in handlers:
            handler.flush()
        if handlers:  # wait for the next request awake (wire/spin.py)
            self.spinner.kick(len(handlers[-1].conn.server.connections))


_batches: WeakKeyDictionary[asyncio.AbstractEventLoop, WriteBatch] = WeakKeyDictionary()


def batch_of(loop: asyncio.AbstractEventLoop) -> WriteBatch:
    batch = _batches.get(loop)
    if batch is None:
        batch = _batches[loop] = WriteBatch(loop)
    return batch


async def stream_chunked(
    transport: asyncio.Transport, conn: Connection, response: StreamResponse
) -> None:
    """A log stream: a chunked 200, then one chunk per event, as long as it lasts."""
    transport.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: "
        + response.content_type.encode()
        + b"\r\n"
        + conn.date_header()
        + b"Transfer-Encoding: chunked\r\n\r\n"
    )
    conn.clear_deadline()
    conn.streaming = True
    chunks = response.chunks
    try:
        async for chunk in chunks:
            if transport.is_closing():
                break
            transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await conn.drain()
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
