"""HTTP/2 on the ``h2`` library: the implementation ``PYKES_HTTP2=h2`` selects instead of
the lean default (``h2lean/``), so both can be benchmarked and tested side by side.
Streams are served concurrently; each has its own write deadline, after which the stream
is reset (the HTTP/2 analogue of Go's per-request write deadline). Imported only when
selected (server/http2.py): the ``h2`` package costs every process ~0.4 MB otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from pykes.server import eager
from pykes.server.http import IDLE_TIMEOUT, Request, Response, StreamResponse
from pykes.server.pipeline import respond, route_request

if TYPE_CHECKING:
    from pykes.server.connection import Connection

# Outbound headers are built here, already lower-case and valid: skip h2's checks.
_CONFIG = h2.config.H2Configuration(
    client_side=False,
    header_encoding=None,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)
MAX_CONCURRENT_STREAMS = 250


class _Stream:
    __slots__ = ("req", "early", "body", "body_len", "max_body", "task", "timer")

    def __init__(self, req: Request, early: Response | None) -> None:
        self.req = req
        self.early = early
        self.body: list[bytes] = []
        self.body_len = 0
        self.max_body = req.route.max_body if req.route is not None else 0
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None


class H2LibHandler:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.h2 = h2.connection.H2Connection(config=_CONFIG)
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 20,
            },
        )
        self.h2.initiate_connection()
        self.streams: dict[int, _Stream] = {}
        self.window_waiters: dict[int, asyncio.Future[None]] = {}
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        self._flush_now()

    def _flush(self) -> None:
        """Write what h2 has queued once per event-loop turn: all streams' frames of a
        turn (headers and data of many responses) go out in one socket write."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        data = self.h2.data_to_send()
        if data and not self.conn.transport.is_closing():
            self.conn.transport.write(data)

    # ------------------------------------------------------------ receiving
    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush_now()
            self.conn.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._request(event)
            elif isinstance(event, h2.events.DataReceived):
                self._data(event)
            elif isinstance(event, h2.events.StreamEnded):
                self._start(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self._drop(event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated):
                self._window_opened(event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.conn.transport.close()
        self._flush()
        self._update_idle()

    def _update_idle(self) -> None:
        # Per-stream deadlines are timers; the connection itself only has an idle limit.
        self.conn.deadline = math.inf if self.streams else time.monotonic() + IDLE_TIMEOUT

    def _request(self, event: h2.events.RequestReceived) -> None:
        method = target = b""
        content_length: int | None = None
        for name, value in event.headers:
            if name == b":method":
                method = value
            elif name == b":path":
                target = value
            elif name == b"content-length":
                try:
                    content_length = int(value)
                except ValueError:
                    content_length = None
        raw = target.decode("utf-8", "replace")  # as the lean handler (h2lean/headers.py)
        raw_path, _, query = raw.partition("?")
        path = unquote(raw_path, errors="replace") if "%" in raw_path else raw_path
        conn = self.conn
        req = Request(
            method.decode("ascii", "replace"),
            path,
            raw_path,
            conn.identity,
            conn.has_cert,
            conn.ip,
            conn.now(),
        )
        ended = event.stream_ended is not None
        req.content_length = 0 if ended else content_length
        early = route_request(conn.state().routes, req, query)
        stream = _Stream(req, early)
        self.streams[event.stream_id] = stream
        # The write deadline starts now; streams answered early (404/405/301) get the
        # default, so a stream whose body never comes cannot stay open forever.
        timeout = req.route.timeout if early is None and req.route is not None else 15.0
        if timeout > 0:
            stream.timer = self._loop.call_later(timeout, self._expire, event.stream_id)

    def _data(self, event: h2.events.DataReceived) -> None:
        self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        stream = self.streams.get(event.stream_id)
        if stream is None or stream.max_body == 0:
            return
        stream.body_len += len(event.data)
        if stream.body_len > stream.max_body:
            stream.req.body_too_large = True
            return
        stream.body.append(event.data)

    def _start(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.task is not None:
            return
        if stream.body and not stream.req.body_too_large:
            stream.req.body = b"".join(stream.body)
        stream.body = []
        # Run the stream's handler eagerly: most finish at once (cached key, small body)
        # and need no Task; one that has to wait continues in a Task.
        outcome = eager.start(self._serve(stream_id, stream))
        if isinstance(outcome, eager.Suspended):
            stream.task = self._loop.create_task(_drive(outcome))

    def _drop(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            if stream.task is not None:
                stream.task.cancel()
            if stream.timer is not None:
                stream.timer.cancel()
        waiter = self.window_waiters.pop(stream_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("stream reset"))

    def _expire(self, stream_id: int) -> None:
        """The stream's write deadline passed: reset it."""
        if stream_id in self.streams:
            with contextlib.suppress(h2.exceptions.H2Error):
                self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            self._drop(stream_id)
            self._flush()

    def _window_opened(self, stream_id: int) -> None:
        if stream_id == 0:
            waiters = list(self.window_waiters.values())
            self.window_waiters.clear()
        else:
            w = self.window_waiters.pop(stream_id, None)
            waiters = [w] if w is not None else []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------ sending
    async def _serve(self, stream_id: int, stream: _Stream) -> None:
        try:
            response = await respond(self.conn.state(), stream.req, stream.early)
            if isinstance(response, StreamResponse):
                if stream.timer is not None:
                    stream.timer.cancel()
                await self._stream(stream_id, response)
                return
            headers = [(b":status", str(response.status).encode())]
            if response.content_type is not None:
                headers.append((b"content-type", response.content_type.encode()))
            for name, value in response.headers:
                headers.append((name.lower().encode(), value.encode("latin-1")))
            headers.append((b"content-length", str(len(response.body)).encode()))
            headers.append((b"date", self.conn.date_header()[6:-2]))
            body = response.body if stream.req.method != "HEAD" else b""
            self.h2.send_headers(stream_id, headers, end_stream=not body)
            self._flush()
            if body:
                await self._send(stream_id, body, end_stream=True)
        except (h2.exceptions.StreamClosedError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if stream.timer is not None:
                stream.timer.cancel()
            self.streams.pop(stream_id, None)
            self._update_idle()

    async def _send(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        view = memoryview(data)
        while view:
            window = self.h2.local_flow_control_window(stream_id)
            if window <= 0:
                waiter = self._loop.create_future()
                self.window_waiters[stream_id] = waiter
                await waiter
                continue
            size = min(window, self.h2.max_outbound_frame_size, len(view))
            self.h2.send_data(
                stream_id, bytes(view[:size]), end_stream=end_stream and size == len(view)
            )
            view = view[size:]
            self._flush()
            await self.conn.drain()
        if end_stream and not data:
            self.h2.end_stream(stream_id)
            self._flush()

    async def _stream(self, stream_id: int, response: StreamResponse) -> None:
        self.h2.send_headers(
            stream_id,
            [
                (b":status", b"200"),
                (b"content-type", response.content_type.encode()),
                (b"date", self.conn.date_header()[6:-2]),
            ],
        )
        self._flush()
        chunks = response.chunks
        try:
            async for chunk in chunks:
                await self._send(stream_id, chunk, end_stream=False)
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    def goaway(self) -> None:
        """Graceful shutdown: tell the client to open no new streams here."""
        with contextlib.suppress(h2.exceptions.H2Error):
            self.h2.close_connection()
            self._flush_now()

    def connection_lost(self) -> None:
        for stream_id in list(self.streams):
            self._drop(stream_id)


async def _drive(pending: eager.Suspended[None]) -> None:
    await pending


class ProxiedH2LibHandler(H2LibHandler):
    """For a TLS proxy's connection: also keeps every request's headers, which the
    pipeline's identity step reads (auth/proxy.py). Other connections keep none."""

    def _request(self, event: h2.events.RequestReceived) -> None:
        super()._request(event)
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.req.forwarded = list(event.headers)  # type: ignore[arg-type]
