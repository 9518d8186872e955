"""HTTP/1.1 connection handling on ``httptools`` (keep-alive, pipelining, chunked
streams). Requests on one connection are answered strictly in order.

Per-request CPU (docs/performance.md, "HTTP/1.1 per-request CPU"): responses are
written once per event-loop turn for all connections together (``WriteBatch``, output.py), the
routing of a request target is cached (``_Targets``), response heads are precomputed
bytes, and a read sets the connection's deadline once, not once per parser step.

As in Go, only the header block counts (a chunked body's trailer is skipped), an
``Upgrade`` header is ignored and a ``CONNECT`` is answered, then nothing more is read.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from typing import TYPE_CHECKING

import httptools

from pykes.api.messages import JSON, Request, Response, StreamResponse
from pykes.api.pipeline import refusal, respond
from pykes.api.targets import TargetCache
from pykes.wire import eager
from pykes.wire.connection import HEADER_TIMEOUT
from pykes.wire.http1.expect import EXPECT_TAIL, expects_continue
from pykes.wire.http1.output import (
    BAD_REQUEST,
    CLOSE,
    CONTENT_LENGTHS,
    CONTINUE,
    HEAD_200_JSON,
    HEADERS_TOO_LARGE,
    batch_of,
    content_length,
    head_of,
    stream_chunked,
)
from pykes.wire.http1.upgrade import NO_MORE_REQUESTS, head_without_upgrade

if TYPE_CHECKING:
    from pykes.api.state import ServerState
    from pykes.wire.connection import Connection

MAX_HEADER_BYTES = 1 << 20  # Go's http.DefaultMaxHeaderBytes
EAGER_BATCH = 32
"""Pipelined requests answered in one go before yielding to other connections: one
read can carry thousands of requests, and answering them all at once starves everyone
else (measured: 3 s stalls for the other 1,000 connections, tests/test_abuse.py)."""
FLUSH_BYTES = 64 << 10
"""Answers a connection holds back until the end of the loop turn, at most: beyond it
they are written at once, so a long pipeline stays under the transport's back-pressure."""
DEFAULT_TIMEOUT = 15.0  # write deadline of responses without a route (404, 301, 405)


class _Pending:
    __slots__ = ("req", "early", "keep_alive", "state")

    def __init__(
        self,
        req: Request | None,
        early: Response | None,
        keep_alive: bool,
        state: ServerState | None,
    ) -> None:
        self.req = req  # None: a parse error queued behind earlier requests
        self.early = early
        self.keep_alive = keep_alive
        self.state = state


# ------------------------------------------------------------------ routing cache
def _split_target(method: bytes, url: bytes) -> tuple[str, str, str]:
    """(method, raw path, query) of a request line's method and target."""
    if method == b"CONNECT" and url[:1] != b"/":  # host:port, as Go: no path at all
        return "CONNECT", "", ""
    parsed = httptools.parse_url(url)
    query = parsed.query.decode("latin-1") if parsed.query else ""
    return method.decode("ascii", "replace"), parsed.path.decode("latin-1"), query


_targets: TargetCache[bytes, bytes] = TargetCache(_split_target)


class HTTP1Handler:
    """Parser callbacks + the per-connection request queue."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport = conn.transport
        self._loop = asyncio.get_running_loop()
        self._batch = batch_of(self._loop)
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[_Pending] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.closing = False
        # The peer does not read our responses (transport buffer over its high-water
        # mark): stop reading requests and keep the last response's write deadline.
        self.write_blocked = False
        self._write_timeout = DEFAULT_TIMEOUT
        # answers of this loop turn, not yet written (``WriteBatch``, output.py)
        self._out: list[bytes] = []
        self._out_bytes = 0
        # The deadline this read leaves (header or body phase of a request), set once
        # when the read is parsed: None = unchanged.
        self._next_deadline: float | None = None
        # per-message parse state
        self._url = b""
        self._data = b""  # the read being parsed
        # The request's headers are not complete yet (after on_message_begin). For
        # the reads that ended so: their size (the header size limit), the end of the
        # last one and whether they held an Expect: 100-continue line.
        self._in_headers = False
        self._header_bytes = 0
        self._header_tail = b""
        self._expect_seen = False
        self._head_reads: list[bytes] = []  # the reads of headers still incomplete
        self._chunked = False
        self._req: Request | None = None
        self._early: Response | None = None
        self._state: ServerState | None = None
        self._body: list[bytes] = []
        self._body_len = 0
        self._max_body = 0

    # ------------------------------------------------------------ output
    def _emit(self, data: bytes) -> None:
        """Queue ``data`` for the end of this loop turn, after earlier output."""
        out = self._out
        if not out:
            self._batch.add(self)
        out.append(data)
        self._out_bytes += len(data)
        if self._out_bytes > FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the queued output now (the transport may call ``pause_writing``)."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._out_bytes = 0
        if not self.transport.is_closing():
            self.transport.write(data)

    def _write_and_close(self, data: bytes = b"") -> None:
        """Write the queued output and ``data``, then close."""
        if data:
            self._out.append(data)
        self.flush()
        self.transport.close()

    # ------------------------------------------------------------ parsing
    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self._data = data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:  # not an HttpParserError
            if not self._parse_after_upgrade(data, upgrade.args[0]):
                return
        except httptools.HttpParserError as err:
            self._parse_error(err)
            return
        if self._in_headers:  # a request's headers continue in the next read
            # Counted per read, not per header (no on_header call per header line): the
            # reads may also hold the end of the request before or the start of the
            # body — Go's limit, too, counts the bytes read (MaxHeaderBytes + 4 KiB),
            # not the headers alone. A read is at most 256 KiB (uvloop).
            if self._header_bytes:
                self._head_reads.append(data)
            else:  # the head began in this read
                self._head_reads = [data]
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._data = b""
                self._next_deadline = None
                self._fail(HEADERS_TOO_LARGE)
                return
            if expects_continue(False, b"", self._header_tail + data):  # a line may span reads
                self._expect_seen = True
            self._header_tail = data[-EXPECT_TAIL:]
        self._data = b""  # an idle connection keeps no read (up to 256 KiB)
        if self._next_deadline is not None:  # a request is still arriving
            self.conn.set_deadline(self._next_deadline)
            self._next_deadline = None

    def _parse_error(self, err: httptools.HttpParserError) -> None:
        self._data = b""
        self._next_deadline = None
        # httptools wraps an exception raised in a callback; look at the original.
        cause = err.__context__
        if isinstance(cause, _HeadersTooLarge):
            self._fail(HEADERS_TOO_LARGE)
            return
        if isinstance(cause, _Refused):
            self._answer_refused(*cause.args)
            return
        # (an error after an Upgrade has the HttpParserUpgrade as its context)
        if cause is not None and not isinstance(
            cause, (httptools.HttpParserError, httptools.HttpParserUpgrade)
        ):
            self.conn.state().log.error(f"internal error: {type(cause).__name__}")
        self._fail(BAD_REQUEST)

    # ------------------------------------------------------------ Upgrade / CONNECT (upgrade.py)
    def _parse_after_upgrade(self, data: bytes, offset: int) -> bool:
        """Parse again the Upgrade request whose head ends at ``data[:offset]``, then the
        rest of ``data``; False when this connection reads no more."""
        try:
            while self.parser is not NO_MORE_REQUESTS and not self.closing:
                head = data[:offset]
                if self._header_bytes:  # the head began in an earlier read
                    head = b"".join(self._head_reads) + head
                self._head_reads = []
                parser = self.parser
                version = parser.get_http_version().encode()
                request_line = b"%s %s HTTP/%s" % (parser.get_method(), self._url, version)
                head = head_without_upgrade(head, request_line)
                if head is None:
                    self._fail(BAD_REQUEST)
                    return False
                # a new parser: llhttp reads nothing after an Upgrade with Connection: close
                parser = self.parser = httptools.HttpRequestParser(self)
                self._data = head  # where on_headers_complete looks for Expect
                parser.feed_data(head)
                self._data = data
                try:
                    parser.feed_data(memoryview(data)[offset:])
                    return True
                except httptools.HttpParserUpgrade as upgrade:  # the next one
                    offset += upgrade.args[0]
        except httptools.HttpParserError as err:
            self._parse_error(err)
        return False

    def _fail(self, raw: bytes) -> None:
        self.closing = True
        if self.worker is None:
            self._write_and_close(raw)
        else:  # answer after the in-flight responses
            self.queue.append(_Pending(None, None, False, None))

    def on_message_begin(self) -> None:
        self._url = b""
        self._in_headers = True
        self._header_bytes = 0
        self._header_tail = b""
        self._expect_seen = False
        self._chunked = False
        self._body_len = 0
        if self.worker is None and not self.write_blocked:
            self._next_deadline = HEADER_TIMEOUT

    def on_url(self, url: bytes) -> None:
        self._url += url

    # No on_header: httptools then makes no call (and no name and value bytes) per
    # header line, ~10 % of a request's Python time. What the headers were read for:
    # Content-Length is the body's length (``on_message_complete``), Expect is looked
    # up in the raw request only when it matters (``expect.py``), the header
    # size limit counts reads (``data_received``).

    def on_headers_complete(self) -> None:
        if self._header_bytes:  # the headers began in an earlier read (rare)
            if self._header_bytes + len(self._data) > MAX_HEADER_BYTES:  # (an upper bound)
                raise _HeadersTooLarge
            if not self.parser.should_upgrade():
                self._head_reads = []  # kept for an Upgrade request only
        conn = self.conn
        state = conn.state()
        routes, method = state.routes, self.parser.get_method()
        target = _targets.entries.get((method, self._url)) if routes is _targets.routes else None
        if target is None:
            target = _targets.get(routes, method, self._url)
        method, path, raw_path, query, route, resource, early = target
        req = Request(
            method, path, raw_path, conn.identity, conn.has_cert, conn.ip, time.perf_counter()
        )
        if route is not None:  # routed: no early response
            req.route, req.resource, req.query = route, resource, query
            self._max_body = route.max_body
            timeout = route.timeout
        else:
            self._max_body = 0
            timeout = DEFAULT_TIMEOUT
        self._req, self._early, self._state = req, early, state
        self._in_headers = False
        if (
            self._max_body
            and early is None
            # the usual case ends here (find: `in` first tries the operand as an integer,
            # and the TypeError it raises and clears costs more than the search)
            and (self._expect_seen or self._data.find(b"100-") != -1)
            and expects_continue(self._expect_seen, self._header_tail, self._data)
        ):
            self._continue_or_refuse(req, state)
        if self.worker is None and not self.write_blocked:  # deadline from routing on
            self._next_deadline = timeout

    def _continue_or_refuse(self, req: Request, state: ServerState) -> None:
        """``Expect: 100-continue``: Go writes ``100 Continue`` when the handler first
        reads the body, which it does only after authentication and authorization. So
        a request they refuse is answered at once (``_Refused`` stops the parser), and,
        as in Go, its connection is not reused: the body may or may not follow."""
        if self.parser.should_upgrade():
            return  # decided when it is parsed again without its Upgrade lines
        refused = refusal(state, req)
        if refused is not None:
            raise _Refused(req, refused, state)
        self._emit(CONTINUE)

    def _answer_refused(self, req: Request, response: Response, state: ServerState) -> None:
        self._req = self._state = self._early = None
        self.parser = NO_MORE_REQUESTS  # the body may follow: never parsed as a request
        self.queue.append(_Pending(req, response, False, state))
        if self.worker is None:
            self._pump()

    def on_chunk_header(self) -> None:
        self._chunked = True

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)
        if self._max_body == 0:
            return
        if self._body_len > self._max_body:
            if self._req is not None:
                self._req.body_too_large = True
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        req, state, early = self._req, self._state, self._early
        assert req is not None and state is not None
        self._req = self._state = self._early = None  # hold no state between requests
        self._next_deadline = None  # the response path sets the deadline now
        body = self._body
        if body:
            if not req.body_too_large:
                req.body = body[0] if len(body) == 1 else b"".join(body)
            self._body = []
        # Go's ContentLength: unknown (None) for a chunked body, else the body's length
        # (the Content-Length header llhttp read exactly, or 0 without one).
        parser = self.parser
        if self._chunked:
            req.content_length = None
        # Upgrade or CONNECT: llhttp skipped the body (see _parse_after_upgrade)
        elif not (body_len := self._body_len) and parser.should_upgrade():
            req.content_length = 0
            if req.method != "CONNECT":
                return  # parsed again without its Upgrade lines
            parser = self.parser = NO_MORE_REQUESTS  # as Go after a CONNECT
        else:
            req.content_length = body_len
        keep_alive = not req.body_too_large and parser.should_keep_alive()
        if self.worker is None and not self.write_blocked and not self.queue:
            # nothing in front of it: what _pump does for a queue of one
            served = self._serve(state, req, early, keep_alive)
            if served and self.worker is None and not self.write_blocked:
                self.conn.idle()
            return
        self.queue.append(_Pending(req, early, keep_alive, state))
        if self.worker is None:
            self._pump()
        elif len(self.queue) > 64:
            self.transport.pause_reading()  # too many pipelined requests

    # ------------------------------------------------------------ serving
    def _pump(self) -> None:
        """Answer queued requests in order. A handler that completes without waiting
        (the usual case: a cached key) is answered right here; the first one that has
        to wait continues in a Task, and the queue behind it resumes when it is done."""
        budget = EAGER_BATCH
        queue = self.queue
        while queue and self.worker is None and not self.write_blocked:
            if budget == 0:  # more pipelined requests: continue on a later loop turn
                self.worker = self._loop.create_task(self._yield_then_pump())
                if len(queue) > 64:
                    self.transport.pause_reading()
                return
            budget -= 1
            item = queue.popleft()
            if item.req is None:  # a parse error queued behind earlier requests
                self._write_and_close(BAD_REQUEST)
                return
            assert item.state is not None
            if not self._serve(item.state, item.req, item.early, item.keep_alive):
                return
        if not queue and self.worker is None and not self.write_blocked:
            self.conn.idle()

    def _serve(
        self, state: ServerState, req: Request, early: Response | None, keep_alive: bool
    ) -> bool:
        """Start answering one request; False when the next must wait (a Task took
        over, a stream took the connection, or the connection ends)."""
        # eager.start(), inline (one call less per request)
        coro = respond(state, req, early)
        try:
            awaited = coro.send(None)
        except StopIteration as done:
            return self._send(req, keep_alive, done.value)
        if req.route is not None:  # the handler waits: its deadline runs
            self.conn.set_deadline(req.route.timeout)
        pending = eager.Suspended(coro, awaited)
        self.worker = self._loop.create_task(self._finish(req, keep_alive, pending))
        return False

    async def _yield_then_pump(self) -> None:
        try:
            await asyncio.sleep(0)
        finally:
            self.worker = None
        if self.write_blocked:  # the answers written meanwhile filled the transport
            self.conn.set_deadline(self._write_timeout)
        self._pump()

    async def _finish(
        self, req: Request, keep_alive: bool, pending: eager.Suspended[Response | StreamResponse]
    ) -> None:
        try:
            response = await pending
            if isinstance(response, StreamResponse):
                self.flush()  # the answers before it go first
                await stream_chunked(self.transport, self.conn, response)
                return
            keep_going = self._send(req, keep_alive, response)
        except ConnectionError:
            self.transport.abort()
            return
        finally:
            self.worker = None
        if keep_going:
            self._pump()

    def _send(self, req: Request, keep_alive: bool, response: Response | StreamResponse) -> bool:
        """Queue one response; False when the connection ends (or a stream takes it)."""
        if isinstance(response, StreamResponse):
            self.worker = self._loop.create_task(self._stream_task(response))
            return False
        keep_alive = keep_alive and not self.closing
        route = req.route
        self._write_timeout = route.timeout if route is not None else DEFAULT_TIMEOUT
        body = response.body
        conn = self.conn
        data = b"".join(
            (
                HEAD_200_JSON
                if response.status == 200 and response.content_type is JSON and not response.headers
                else head_of(response),
                conn.date_header(),
                b"" if keep_alive else CLOSE,
                CONTENT_LENGTHS.get(len(body)) or content_length(len(body)),
                # a HEAD response has the headers of the GET, but no body
                b"" if req.method == "HEAD" else body,
            )
        )
        self._emit(data)
        if self.write_blocked:  # unwritten: the deadline still runs (docs/compat/api.md §3.5)
            conn.set_deadline(self._write_timeout)
        else:
            conn.deadline = math.inf  # conn.clear_deadline(), without the call
        if not keep_alive:
            self._write_and_close()
            self.closing = True
            return False
        if len(self.queue) <= 16 and not self.write_blocked and not self.transport.is_reading():
            self.transport.resume_reading()
        return True

    def pause_writing(self) -> None:
        """The peer stopped reading: read no more requests until our responses drain."""
        self.write_blocked = True
        if not self.closing and not self.conn.streaming:
            self.transport.pause_reading()
            if self.worker is None:
                self.conn.set_deadline(self._write_timeout)

    def resume_writing(self) -> None:
        self.write_blocked = False
        if self.closing or self.conn.streaming or self.worker is not None:
            return
        if len(self.queue) <= 16:
            self.transport.resume_reading()
        self.conn.clear_deadline()
        self._pump()

    async def _stream_task(self, response: StreamResponse) -> None:
        try:
            self.flush()  # the answers before it go first
            await stream_chunked(self.transport, self.conn, response)
        except ConnectionError:
            self.transport.abort()
        finally:
            self.worker = None

    def goaway(self) -> None:
        """Graceful shutdown: answer what is in flight, then close (keep-alive ends)."""
        self.closing = True
        if self.worker is None:
            self._write_and_close()

    def connection_lost(self) -> None:
        self._out.clear()
        if self.worker is not None:
            self.worker.cancel()
        # The parser holds bound methods of this handler, a reference cycle that would
        # pin the connection's TLS state until a full GC (tests/test_connection_memory.py).
        self.closing = True  # data_received reads no more
        del self.parser


class _HeadersTooLarge(Exception):
    pass


class _Refused(Exception):
    """Stops the parser at a request answered before its body: (request, answer, state)."""
