"""Answers on an HTTP/2 stream: the response's header block, its body in DATA frames as
the flow-control windows allow, and log streams chunk by chunk; a part of ``H2Handler``
(handler.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from pykes.api.messages import Response, StreamResponse
from pykes.wire.http2 import frames as f
from pykes.wire.http2.headers import RESPONSES, TABLE_SIZE_ZERO
from pykes.wire.http2.state import ConnectionState
from pykes.wire.http2.streams import Stream

if TYPE_CHECKING:
    from pykes.wire.connection import Connection


class Answers(ConnectionState):
    """The response side of ``H2Handler``, on its connection state."""

    conn: Connection
    _first_block: bool
    _flush: Callable[[], None]

    def _answer(self, stream: Stream, response: Response | StreamResponse) -> None:
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        req = stream.req
        assert req is not None
        date = self.conn.date_header()
        if isinstance(response, StreamResponse):
            stream.deadline = 0  # a log stream has no write deadline
            block = RESPONSES.block(200, response.content_type, (), None, date)
            self._send_headers(stream.sid, block, end_stream=False)
            stream.task = self._loop.create_task(self._stream_chunks(stream, response))
            return
        body = response.body
        block = RESPONSES.block(
            response.status, response.content_type, response.headers, len(body), date
        )
        self._guard.answered += 1
        if not body or req.method == "HEAD":
            self._send_headers(stream.sid, block, end_stream=True)
            self._done(stream)
            return
        self._send_headers(stream.sid, block, end_stream=False)
        stream.pending = memoryview(body)
        stream.pending_end = True
        self._send_pending(stream)

    def _send_headers(self, sid: int, block: bytes, end_stream: bool) -> None:
        if self._first_block:
            self._first_block = False
            block = TABLE_SIZE_ZERO + block
        flags = f.END_HEADERS | (f.END_STREAM if end_stream else 0)
        max_frame = self._max_frame
        if len(block) <= max_frame:
            self._out.append(f.frame_header(f.HEADERS, flags, sid, len(block)))
            self._out.append(block)
            return
        first, rest = block[:max_frame], block[max_frame:]
        self._out.append(f.frame(f.HEADERS, flags & ~f.END_HEADERS, sid, first))
        while rest:
            chunk, rest = rest[:max_frame], rest[max_frame:]
            self._out.append(f.frame(f.CONTINUATION, 0 if rest else f.END_HEADERS, sid, chunk))

    def _send_pending(self, stream: Stream) -> None:
        """Send as much of the stream's pending body as the windows allow."""
        view = stream.pending
        assert view is not None
        out = self._out
        if not view and stream.pending_end:
            out.append(f.frame_header(f.DATA, f.END_STREAM, stream.sid, 0))
        while view:
            size = min(len(view), stream.send_window, self._send_window, self._max_frame)
            if size <= 0:
                self._blocked[stream.sid] = stream
                stream.pending = view
                return
            flags = f.END_STREAM if size == len(view) and stream.pending_end else 0
            out.append(f.frame_header(f.DATA, flags, stream.sid, size))
            out.append(view[:size])  # joined into one write by _flush_now
            stream.send_window -= size
            self._send_window -= size
            view = view[size:]
        stream.pending = None
        self._blocked.pop(stream.sid, None)
        if stream.pending_end:
            self._done(stream)
        elif stream.waiter is not None and not stream.waiter.done():
            stream.waiter.set_result(None)

    def _done(self, stream: Stream) -> None:
        """Our side of the stream ended."""
        if stream.remote_open:
            # Answered before the request ended (cannot happen: handlers start at
            # END_STREAM) — or a deadline: tell the client to stop sending.
            self._out.append(f.rst_stream(stream.sid, f.NO_ERROR))
        self._drop(stream.sid)

    async def _stream_chunks(self, stream: Stream, response: StreamResponse) -> None:
        chunks = response.chunks
        try:
            async for chunk in chunks:
                if not chunk or self.streams.get(stream.sid) is not stream:
                    continue
                stream.pending = memoryview(chunk)
                stream.pending_end = False
                self._send_pending(stream)
                self._flush()
                if stream.pending is not None:
                    stream.waiter = self._loop.create_future()
                    await stream.waiter
                await self.conn.drain()
            if self.streams.get(stream.sid) is stream:  # the stream's source ended
                stream.pending = memoryview(b"")
                stream.pending_end = True
                self._send_pending(stream)
                self._flush()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await chunks.aclose()  # type: ignore[attr-defined]
