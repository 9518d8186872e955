"""A lean server-side HTTP/2 connection (RFC 9113): frames parsed straight from the
socket's bytes, HPACK decoding cached per header block (``headers.py``), response
headers from precomputed blocks and every frame of a loop turn written at once.

Handlers run eagerly (``eager.py``): a request that completes without waiting is
answered inside ``data_received``. Abuse bounds (CVE-2023-44487 rapid reset,
CVE-2024-27316 CONTINUATION floods, ping/settings/empty-frame floods, stream limits) are
in ``limits.py`` and here; a client that crosses one gets GOAWAY ENHANCE_YOUR_CALM.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import TYPE_CHECKING

from pykes.api.messages import Request, Response, StreamResponse
from pykes.api.pipeline import respond
from pykes.api.targets import TargetCache
from pykes.wire import eager
from pykes.wire.connection import IDLE_TIMEOUT
from pykes.wire.http2 import frames as f
from pykes.wire.http2.answers import Answers
from pykes.wire.http2.control import ControlFrames
from pykes.wire.http2.headers import (
    MAX_HEADER_LIST_SIZE,
    CompressionError,
    RequestDecoder,
)
from pykes.wire.http2.limits import FloodGuard
from pykes.wire.http2.streams import ConnectionError_, Stream, hpack_error, strip_padding
from pykes.wire.spin import spinner_of

if TYPE_CHECKING:
    from pykes.wire.connection import Connection

MAX_CONCURRENT_STREAMS = 250
STREAM_WINDOW = 1 << 20  # every request body fits (MAX_BODY is 1 MB)
CONNECTION_WINDOW = 4 << 20  # bytes of request bodies buffered per connection, at most
MAX_HEADER_BLOCK = MAX_HEADER_LIST_SIZE + (64 << 10)  # compressed, across CONTINUATIONs
DEFAULT_TIMEOUT = 15.0


def _split_target(method: str, target: str) -> tuple[str, str, str]:
    """(method, raw path, query) of the :method and :path pseudo-headers."""
    raw_path, _, query = target.partition("?")
    return method, raw_path, query


_targets: TargetCache[str, str] = TargetCache(_split_target)


class H2Handler(Answers, ControlFrames):
    """One HTTP/2 connection: its streams, flow control, and their requests and answers."""

    keep_headers = False  # requests carry their headers (HeaderKeepingH2Handler)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._loop = asyncio.get_running_loop()
        self._spinner = spinner_of(self._loop)
        self.streams: dict[int, Stream] = {}
        self.decoder = RequestDecoder()
        self._buf = b""
        self._preface = False
        self._settings_seen = False
        self._last_sid = 0  # highest client stream id seen
        self._headers_sid = 0  # stream of a header block awaiting CONTINUATION
        self._headers_block = bytearray()
        self._headers_flags = 0
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._closed = False
        self._goaway_sent = False
        self._first_block = True
        # flow control
        self._peer_initial_window = f.DEFAULT_WINDOW
        self._send_window = f.DEFAULT_WINDOW  # connection, towards the client
        self._max_frame = f.DEFAULT_MAX_FRAME  # the client's SETTINGS_MAX_FRAME_SIZE
        self._recv_window = CONNECTION_WINDOW  # connection, from the client
        self._recv_credit = 0  # consumed bytes not yet returned by WINDOW_UPDATE
        self._blocked: dict[int, Stream] = {}  # streams waiting for send window
        # abuse accounting
        self._guard = FloodGuard()
        self._reading_paused = False
        self._out.append(
            f.settings(
                {
                    f.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                    f.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                    f.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_SIZE,
                    f.ENABLE_PUSH: 0,
                }
            )
        )
        self._out.append(f.window_update(0, CONNECTION_WINDOW - f.DEFAULT_WINDOW))
        self._flush_now()

    # ------------------------------------------------------------ output
    def _flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out:
            return
        data = b"".join(out)
        out.clear()
        transport = self.conn.transport
        if transport.is_closing():
            return
        transport.write(data)
        # wait for the next request awake (wire/spin.py)
        self._spinner.kick(len(self.conn.server.connections))
        if not self._reading_paused and self.conn.writing_paused:
            # The client does not read its answers: stop reading its requests until it does.
            self._reading_paused = True
            transport.pause_reading()
            self._loop.create_task(self._resume_when_drained())

    async def _resume_when_drained(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.conn.drain()
        self._reading_paused = False
        if not self.conn.transport.is_closing():
            self.conn.transport.resume_reading()

    def _connection_error(self, code: int) -> None:
        if not self._closed:
            self._closed = True
            self._out.append(f.goaway(self._last_sid, code))
            self._flush_now()
            self.conn.transport.close()
            self.connection_lost()

    def _reset(self, sid: int, code: int) -> None:
        self._out.append(f.rst_stream(sid, code))
        self._drop(sid)

    # ------------------------------------------------------------ input
    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        buf = self._buf + data if self._buf else data
        try:
            pos = 0
            if not self._preface:
                if len(buf) < 24:
                    if not f.PREFACE.startswith(buf):
                        raise ConnectionError_(f.PROTOCOL_ERROR, "bad preface")
                    self._buf = buf
                    return
                if buf[:24] != f.PREFACE:
                    raise ConnectionError_(f.PROTOCOL_ERROR, "bad preface")
                self._preface = True
                pos = 24
            end = len(buf)
            unpack = f.HEADER.unpack_from
            while end - pos >= 9 and not self._closed:
                hi, lo, kind, flags, sid = unpack(buf, pos)
                length = hi << 16 | lo
                if length > f.DEFAULT_MAX_FRAME:
                    raise ConnectionError_(f.FRAME_SIZE_ERROR, "frame too large")
                if end - pos - 9 < length:
                    break
                start = pos + 9
                pos = start + length
                self._frame(kind, flags, sid & 0x7FFFFFFF, buf[start:pos])
            self._buf = buf[pos:] if pos < end else b""
        except ConnectionError_ as err:
            self._connection_error(err.code)
            return
        except Exception as err:  # a bug: end this connection, never the worker
            self.conn.state().log.error(f"internal error: {type(err).__name__}")
            self._connection_error(f.INTERNAL_ERROR)
            return
        if self._closed:
            return
        self._arm_timers()
        if self._out:
            self._flush_now()
        self._update_idle()

    def _frame(self, kind: int, flags: int, sid: int, payload: bytes) -> None:
        if self._headers_sid and kind != f.CONTINUATION:
            raise ConnectionError_(f.PROTOCOL_ERROR, "expected CONTINUATION")
        if not self._settings_seen:
            if kind != f.SETTINGS or flags & f.ACK:
                raise ConnectionError_(f.PROTOCOL_ERROR, "preface must start with SETTINGS")
            self._settings_seen = True
        if kind == f.HEADERS:
            self._on_headers(flags, sid, payload)
        elif kind == f.DATA:
            self._on_data(flags, sid, payload)
        elif kind == f.CONTINUATION:
            self._on_continuation(flags, sid, payload)
        elif kind == f.WINDOW_UPDATE:
            self._on_window_update(sid, payload)
        elif kind == f.RST_STREAM:
            self._on_rst(sid, payload)
        elif kind == f.SETTINGS:
            self._on_settings(flags, sid, payload)
        elif kind == f.PING:
            self._on_ping(flags, sid, payload)
        elif kind == f.PRIORITY:
            if sid == 0:
                raise ConnectionError_(f.PROTOCOL_ERROR, "PRIORITY on stream 0")
            if len(payload) != 5:
                self._reset(sid, f.FRAME_SIZE_ERROR)
            self._count_junk()
        elif kind == f.GOAWAY:
            if sid != 0:
                raise ConnectionError_(f.PROTOCOL_ERROR, "GOAWAY on a stream")
            self._on_goaway()
        elif kind == f.PUSH_PROMISE:
            raise ConnectionError_(f.PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        else:
            self._count_junk()  # unknown frame types are ignored (§5.5)

    def _count_junk(self) -> None:
        """Frames that cost us work but carry no request: bounded per second."""
        if not self._guard.frame():
            raise ConnectionError_(f.ENHANCE_YOUR_CALM, "frame flood")

    # ------------------------------------------------------------ headers
    def _on_headers(self, flags: int, sid: int, payload: bytes) -> None:
        if sid == 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "HEADERS on stream 0")
        if flags & (f.PADDED | f.PRIORITY_FLAG):
            payload = strip_padding(payload, flags, priority=True)
        if flags & f.END_HEADERS:
            self._header_block(sid, flags, payload)
            return
        if not payload:
            self._count_junk()
        self._headers_sid = sid
        self._headers_flags = flags
        self._headers_block = bytearray(payload)

    def _on_continuation(self, flags: int, sid: int, payload: bytes) -> None:
        if sid != self._headers_sid or sid == 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "unexpected CONTINUATION")
        block = self._headers_block
        block += payload
        if len(block) > MAX_HEADER_BLOCK:
            raise ConnectionError_(f.ENHANCE_YOUR_CALM, "header block too large")
        if flags & f.END_HEADERS:
            self._headers_sid = 0
            self._headers_block = bytearray()
            self._header_block(sid, self._headers_flags, bytes(block))
        elif not payload:
            self._count_junk()

    def _header_block(self, sid: int, flags: int, block: bytes) -> None:
        stream = self.streams.get(sid)
        if stream is not None or sid <= self._last_sid:  # trailers, or a closed stream
            try:
                self.decoder.decode_raw(block)
            except CompressionError as err:
                raise hpack_error(err) from None
            if stream is None or not stream.remote_open:
                self._reset(sid, f.STREAM_CLOSED)
            elif not flags & f.END_STREAM:
                self._reset(sid, f.PROTOCOL_ERROR)  # trailers must end the stream
            else:
                self._end_stream(stream)
            return
        if not sid & 1:
            raise ConnectionError_(f.PROTOCOL_ERROR, "even stream id from a client")
        self._last_sid = sid
        try:
            head = self.decoder.decode(block)
        except CompressionError as err:
            raise hpack_error(err) from None
        if self._goaway_sent:
            return  # beyond our GOAWAY: ignored (§6.8)
        if len(self.streams) >= MAX_CONCURRENT_STREAMS:
            self._out.append(f.rst_stream(sid, f.REFUSED_STREAM))
            return
        if head.malformed is not None:
            self._out.append(f.rst_stream(sid, f.PROTOCOL_ERROR))
            return
        stream = Stream(sid, self._peer_initial_window)
        self.streams[sid] = stream
        conn = self.conn
        method, path, raw_path, query, route, resource, early = _targets.get(
            conn.state().routes, head.method, head.target
        )
        req = Request(method, path, raw_path, conn.identity, conn.has_cert, conn.ip, conn.now())
        if route is not None:  # routed: no early response
            req.route, req.resource, req.query = route, resource, query
        ended = flags & f.END_STREAM != 0
        req.content_length = 0 if ended else head.content_length
        if self.keep_headers:
            req.headers = head.headers
        stream.content_length = head.content_length
        stream.early = early
        stream.req = req
        if early is None and route is not None:
            stream.max_body = route.max_body
            stream.deadline = route.timeout
        else:
            stream.deadline = DEFAULT_TIMEOUT
        if ended:
            self._end_stream(stream)

    # ------------------------------------------------------------ data
    def _on_data(self, flags: int, sid: int, payload: bytes) -> None:
        if sid == 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "DATA on stream 0")
        flow = len(payload)
        if flow > self._recv_window:
            raise ConnectionError_(f.FLOW_CONTROL_ERROR, "connection window exceeded")
        self._recv_window -= flow
        if flags & f.PADDED:
            payload = strip_padding(payload, flags, priority=False)
        stream = self.streams.get(sid)
        if stream is None or not stream.remote_open:
            self._credit(flow)
            if stream is None and sid > self._last_sid:
                raise ConnectionError_(f.PROTOCOL_ERROR, "DATA on an idle stream")
            if stream is None:  # in flight when we reset or refused it: ignored
                self._count_junk()
            else:
                self._reset(sid, f.STREAM_CLOSED)
            return
        if not payload and not flags & f.END_STREAM:
            self._count_junk()
        stream.received += len(payload)
        if stream.received > stream.max_body:
            # Discarded (the answer will be 413, or the route takes no body): give the
            # window back so the client can finish sending.
            if stream.req is not None and stream.max_body:
                stream.req.body_too_large = True
            stream.body = []
            self._credit(flow + stream.held)
            stream.held = 0
            if flow:
                self._out.append(f.window_update(sid, flow))
        else:
            if payload:
                stream.body.append(payload)
            stream.held += flow
        if flags & f.END_STREAM:
            self._end_stream(stream)

    def _credit(self, n: int) -> None:
        """Return ``n`` bytes to the client's connection send window (batched)."""
        self._recv_credit += n
        if self._recv_credit >= CONNECTION_WINDOW // 4:
            self._out.append(f.window_update(0, self._recv_credit))
            self._recv_window += self._recv_credit
            self._recv_credit = 0

    def _end_stream(self, stream: Stream) -> None:
        stream.remote_open = False
        req = stream.req
        if req is None:
            return
        if stream.content_length is not None and stream.content_length != stream.received:
            self._reset(stream.sid, f.PROTOCOL_ERROR)  # §8.1.1: malformed
            return
        if stream.body and not req.body_too_large:
            body = stream.body
            req.body = body[0] if len(body) == 1 else b"".join(body)
        stream.body = []
        # eager.start(), inline (one call less per request)
        coro = respond(self.conn.state(), req, stream.early)
        try:
            awaited = coro.send(None)
        except StopIteration as done:
            self._answer(stream, done.value)
            return
        pending = eager.Suspended(coro, awaited)
        stream.task = self._loop.create_task(self._finish(stream, pending))

    async def _finish(
        self, stream: Stream, pending: eager.Suspended[Response | StreamResponse]
    ) -> None:
        try:
            response = await pending
        except asyncio.CancelledError:
            return
        if self.streams.get(stream.sid) is stream:
            stream.task = None
            self._answer(stream, response)
            self._flush()

    # ------------------------------------------------------------ responses (answers.py)
    def _drop(self, sid: int) -> None:
        stream = self.streams.pop(sid, None)
        if stream is None:
            return
        self._blocked.pop(sid, None)
        if stream.held:
            self._credit(stream.held)
            stream.held = 0
        if stream.timer is not None:
            stream.timer.cancel()
        if stream.task is not None and stream.task is not asyncio.current_task():
            stream.task.cancel()
        if stream.waiter is not None and not stream.waiter.done():
            stream.waiter.set_exception(ConnectionResetError("stream reset"))
        if not self.streams:
            self._update_idle()
            if self._goaway_sent:
                self._flush()
                self._loop.call_soon(self._close_if_idle)

    # ------------------------------------------------------------ deadlines
    def _arm_timers(self) -> None:
        """Streams still open after this batch get their write-deadline timer (most
        requests are answered within the batch and never need one)."""
        if not self.streams:
            return
        now = None
        for stream in self.streams.values():
            if stream.timer is None and stream.deadline > 0:
                now = now if now is not None else self._loop.time()
                stream.timer = self._loop.call_at(now + stream.deadline, self._expire, stream)

    def _expire(self, stream: Stream) -> None:
        if self.streams.get(stream.sid) is stream and not self._closed:
            stream.timer = None
            self._reset(stream.sid, f.CANCEL)
            self._flush()

    def _update_idle(self) -> None:
        self.conn.deadline = math.inf if self.streams else time.monotonic() + IDLE_TIMEOUT

    # ------------------------------------------------------------ lifecycle
    def pause_writing(self) -> None:
        """Nothing to do: streams wait for the connection's ``drain`` themselves."""

    def resume_writing(self) -> None:
        """See :meth:`pause_writing`."""

    def goaway(self) -> None:
        """Graceful shutdown: no new streams; close once the open ones are answered."""
        if self._closed or self._goaway_sent:
            return
        self._goaway_sent = True
        self._out.append(f.goaway(self._last_sid, f.NO_ERROR))
        self._flush_now()
        if not self.streams:
            self._loop.call_soon(self._close_if_idle)

    def _close_if_idle(self) -> None:
        if not self.streams and not self._closed:
            self._closed = True
            self._flush_now()
            self.conn.transport.close()

    def connection_lost(self) -> None:
        self._closed = True
        for sid in list(self.streams):
            self._drop(sid)


class HeaderKeepingH2Handler(H2Handler):
    """Requests keep their headers: where the API reads them (a TLS proxy's connection,
    auth/proxy.py; a state that asks for them)."""

    keep_headers = True
