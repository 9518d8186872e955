"""HTTP/1.1 connection handling on ``httptools`` (keep-alive, pipelining, chunked
streams). Requests on one connection are answered strictly in order."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import unquote

import httptools

from pykes.server import eager
from pykes.server.http import REASONS, Request, Response, StreamResponse
from pykes.server.pipeline import respond, route_request

if TYPE_CHECKING:
    from pykes.server.connection import Connection

MAX_HEADER_BYTES = 1 << 20  # Go's http.DefaultMaxHeaderBytes
EAGER_BATCH = 32
"""Pipelined requests answered in one go before yielding to other connections: one
read can carry thousands of requests, and answering them all at once starves everyone
else (measured: 3 s stalls for the other 1,000 connections, tests/test_abuse.py)."""

_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n400 Bad Request"
)
_HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n431 Request Header Fields Too Large"
)


class _Pending:
    __slots__ = ("req", "early", "keep_alive")

    def __init__(self, req: Request, early: Response | None, keep_alive: bool) -> None:
        self.req = req
        self.early = early
        self.keep_alive = keep_alive


class HTTP1Handler:
    """Parser callbacks + the per-connection request queue."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[_Pending] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.closing = False
        # The peer does not read our responses (transport buffer over its high-water
        # mark): stop reading requests and keep the last response's write deadline.
        self.write_blocked = False
        self._write_timeout = 15.0
        # per-message parse state
        self._url = b""
        self._header_bytes = 0
        self._content_length: int | None = None
        self._expect_continue = False
        self._req: Request | None = None
        self._early: Response | None = None
        self._body: list[bytes] = []
        self._body_len = 0
        self._max_body = 0

    # ------------------------------------------------------------ parsing
    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as err:
            # httptools wraps an exception raised in a callback; look at the original.
            cause = err.__context__
            if isinstance(cause, _HeadersTooLarge):
                self._fail(_HEADERS_TOO_LARGE)
                return
            if cause is not None and not isinstance(cause, httptools.HttpParserError):
                self.conn.state().log.error(f"internal error: {type(cause).__name__}")
            self._fail(_BAD_REQUEST)

    def _fail(self, raw: bytes) -> None:
        self.closing = True
        if self.worker is None:
            self.conn.transport.write(raw)
            self.conn.transport.close()
        else:  # answer after the in-flight responses
            self.queue.append(_Pending(None, None, False))  # type: ignore[arg-type]

    def on_message_begin(self) -> None:
        self._url = b""
        self._header_bytes = 0
        self._content_length = None
        self._expect_continue = False
        self._body = []
        self._body_len = 0
        if self.worker is None and not self.write_blocked:
            self.conn.touch_header_start()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._header_bytes += len(url)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _HeadersTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _HeadersTooLarge
        if len(name) == 14 and name.lower() == b"content-length":
            try:
                self._content_length = int(value)
            except ValueError:
                self._content_length = None
        elif len(name) == 6 and name.lower() == b"expect":
            self._expect_continue = value.lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        parsed = httptools.parse_url(self._url)
        raw_path = parsed.path.decode("latin-1")
        path = unquote(raw_path, errors="replace") if "%" in raw_path else raw_path
        query = parsed.query.decode("latin-1") if parsed.query else ""
        conn = self.conn
        req = Request(
            self.parser.get_method().decode("ascii", "replace"),
            path,
            raw_path,
            conn.identity,
            conn.has_cert,
            conn.ip,
            conn.now(),
        )
        req.content_length = self._content_length
        self._early = route_request(conn.state().routes, req, query)
        self._max_body = req.route.max_body if req.route is not None else 0
        self._req = req
        if self._expect_continue and self._early is None and self._max_body:
            conn.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # as Go does on body read
        if self.worker is None and not self.write_blocked:  # deadline from routing on
            conn.set_deadline(req.route.timeout if req.route is not None else 15.0)

    def on_body(self, body: bytes) -> None:
        if self._max_body == 0:
            return
        self._body_len += len(body)
        if self._body_len > self._max_body:
            if self._req is not None:
                self._req.body_too_large = True
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        req = self._req
        assert req is not None
        self._req = None
        if self._body and not req.body_too_large:
            req.body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        keep_alive = self.parser.should_keep_alive() and not req.body_too_large
        self.queue.append(_Pending(req, self._early, keep_alive))
        if self.worker is None:
            self._pump()
        elif len(self.queue) > 64:
            self.conn.transport.pause_reading()  # too many pipelined requests

    # ------------------------------------------------------------ serving
    def _pump(self) -> None:
        """Answer queued requests in order. A handler that completes without waiting
        (the usual case: a cached key) is answered right here; the first one that has
        to wait continues in a Task, and the queue behind it resumes when it is done."""
        conn = self.conn
        budget = EAGER_BATCH
        while self.queue and self.worker is None and not self.write_blocked:
            if budget == 0:  # more pipelined requests: continue on a later loop turn
                self.worker = asyncio.get_running_loop().create_task(self._yield_then_pump())
                if len(self.queue) > 64:
                    conn.transport.pause_reading()
                return
            budget -= 1
            item = self.queue.popleft()
            if item.req is None:  # a parse error queued behind earlier requests
                conn.transport.write(_BAD_REQUEST)
                conn.transport.close()
                return
            if item.early is None:
                route = item.req.route
                assert route is not None
                conn.set_deadline(route.timeout)
            outcome = eager.start(respond(conn.state(), item.req, item.early))
            if isinstance(outcome, eager.Suspended):
                self.worker = asyncio.get_running_loop().create_task(self._finish(item, outcome))
                return
            if not self._send(item, outcome):
                return
        if not self.queue and self.worker is None and not self.write_blocked:
            conn.idle()

    async def _yield_then_pump(self) -> None:
        try:
            await asyncio.sleep(0)
        finally:
            self.worker = None
        self._pump()

    async def _finish(
        self, item: _Pending, pending: eager.Suspended[Response | StreamResponse]
    ) -> None:
        try:
            response = await pending
            if isinstance(response, StreamResponse):
                await self._stream(response)
                return
            keep_going = self._send(item, response)
        except ConnectionError:
            self.conn.transport.abort()
            return
        finally:
            self.worker = None
        if keep_going:
            self._pump()

    def _send(self, item: _Pending, response: Response | StreamResponse) -> bool:
        """Write one response; False when the connection ends (or a stream takes it)."""
        conn = self.conn
        if isinstance(response, StreamResponse):
            self.worker = asyncio.get_running_loop().create_task(self._stream_task(response))
            return False
        keep_alive = item.keep_alive and not self.closing
        route = item.req.route
        self._write_timeout = route.timeout if route is not None else 15.0
        self._write(response, keep_alive, item.req.method == "HEAD")
        if self.write_blocked:  # not written yet: the write deadline still runs (api.md §3.5)
            conn.set_deadline(self._write_timeout)
        else:
            conn.clear_deadline()
        if not keep_alive:
            conn.transport.close()
            self.closing = True
            return False
        if not self.write_blocked and not conn.transport.is_reading() and len(self.queue) <= 16:
            conn.transport.resume_reading()
        return True

    def pause_writing(self) -> None:
        """The peer stopped reading: read no more requests until our responses drain."""
        self.write_blocked = True
        if not self.closing and not self.conn.streaming:
            self.conn.transport.pause_reading()
            if self.worker is None:
                self.conn.set_deadline(self._write_timeout)

    def resume_writing(self) -> None:
        self.write_blocked = False
        if self.closing or self.conn.streaming or self.worker is not None:
            return
        if len(self.queue) <= 16:
            self.conn.transport.resume_reading()
        self.conn.clear_deadline()
        self._pump()

    async def _stream_task(self, response: StreamResponse) -> None:
        try:
            await self._stream(response)
        except ConnectionError:
            self.conn.transport.abort()
        finally:
            self.worker = None

    def _write(self, response: Response, keep_alive: bool, head_only: bool = False) -> None:
        body = response.body
        head = [
            b"HTTP/1.1 %d %s\r\n" % (response.status, REASONS.get(response.status, "").encode()),
        ]
        if response.content_type is not None:
            head.append(b"Content-Type: " + response.content_type.encode() + b"\r\n")
        for name, value in response.headers:
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        head.append(self.conn.date_header())
        if not keep_alive:
            head.append(b"Connection: close\r\n")
        head.append(b"Content-Length: %d\r\n\r\n" % len(body))
        if not head_only:  # a HEAD response has the headers of the GET, but no body
            head.append(body)
        self.conn.transport.write(b"".join(head))

    async def _stream(self, response: StreamResponse) -> None:
        transport = self.conn.transport
        transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: "
            + response.content_type.encode()
            + b"\r\n"
            + self.conn.date_header()
            + b"Transfer-Encoding: chunked\r\n\r\n"
        )
        self.conn.clear_deadline()
        self.conn.streaming = True
        chunks = response.chunks
        try:
            async for chunk in chunks:
                if transport.is_closing():
                    break
                transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await self.conn.drain()
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    def goaway(self) -> None:
        """Graceful shutdown: answer what is in flight, then close (keep-alive ends)."""
        self.closing = True
        if self.worker is None:
            self.conn.transport.close()

    def connection_lost(self) -> None:
        if self.worker is not None:
            self.worker.cancel()


class _HeadersTooLarge(Exception):
    pass


class ProxiedHTTP1Handler(HTTP1Handler):
    """For a TLS proxy's connection: also keeps every request's headers, which the
    pipeline's identity step reads (auth/proxy.py). Other connections keep none."""

    _headers: list[tuple[bytes, bytes]]

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        assert self._req is not None
        self._req.forwarded = self._headers
