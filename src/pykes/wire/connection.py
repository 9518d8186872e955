"""One accepted TLS connection: identity from the client certificate, then HTTP/1.1
or HTTP/2 by ALPN. Also the deadline bookkeeping the server's sweeper enforces."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING, Protocol

from pykes.pki import identity_of_certificate, is_ca_certificate

if TYPE_CHECKING:
    from pykes.api.state import ServerState

HEADER_TIMEOUT = 5.0  # request headers must arrive within 5 s (docs/compat/api.md §1)
IDLE_TIMEOUT = 90.0  # idle keep-alive connections are closed after 90 s


class HTTPHandler(Protocol):
    """The HTTP/1.1 or HTTP/2 side of a connection (wire/http1.py, wire/http2/)."""

    def data_received(self, data: bytes) -> None: ...

    def pause_writing(self) -> None: ...

    def resume_writing(self) -> None: ...

    def goaway(self) -> None: ...

    def connection_lost(self) -> None: ...


_date_until = 0.0  # the Date line below is valid until this time.time()
_date_line = b""


def _date_header() -> bytes:
    """The Date header line, rebuilt when the second changes (float comparisons per
    call: an ``int(time.time())`` per response cost twice as much)."""
    global _date_until, _date_line
    now = time.time()
    if not _date_until - 1.0 <= now < _date_until:  # another second (or the clock stepped back)
        second = math.floor(now)
        _date_until = second + 1.0
        _date_line = b"Date: " + formatdate(second, usegmt=True).encode() + b"\r\n"
    return _date_line


_identity_cache: dict[bytes, tuple[str, bool]] = {}


def _identity(der: bytes | None) -> tuple[str, bool]:
    """(identity, has_cert) of a peer certificate; CA certificates do not count."""
    if not der:
        return "", False
    hit = _identity_cache.get(der)
    if hit is not None:
        return hit
    try:
        result = ("", False) if is_ca_certificate(der) else (identity_of_certificate(der), True)
    except ValueError:
        result = ("", False)
    if len(_identity_cache) > 4096:
        _identity_cache.clear()
    _identity_cache[der] = result
    return result


class Connection(asyncio.Protocol):
    """asyncio protocol for one client connection."""

    def __init__(self, server: ConnectionRegistry) -> None:
        self.server = server
        self.state: Callable[[], ServerState] = server.current_state
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.identity = ""
        self.has_cert = False
        self.ip = ""
        self.handler: HTTPHandler | None = None
        self.deadline = math.inf  # monotonic time by which the response must be out
        self.streaming = False
        self._paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    now = staticmethod(time.perf_counter)
    date_header = staticmethod(_date_header)

    # ------------------------------------------------------------ protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.ip = peer[0] if peer else ""
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = None
        if ssl_object is not None:
            self.identity, self.has_cert = _identity(ssl_object.getpeercert(binary_form=True))
            alpn = ssl_object.selected_alpn_protocol()
        # Requests carry their headers where the API reads them: all of a TLS proxy's
        # (the identity step), the enclave selector of every request of a state that
        # reads it (stateful mode).
        state = self.state()
        keep_headers = ""
        if self.identity in state.proxy.identities:
            keep_headers = "all"
        elif state.reads_headers:
            keep_headers = "enclave"
        self.handler = self.server.new_handler(self, alpn, keep_headers)
        self.deadline = time.monotonic() + HEADER_TIMEOUT
        self.server.add(self)

    def data_received(self, data: bytes) -> None:
        if self.handler is not None:  # None once the connection is lost
            self.handler.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.discard(self)
        # Drop the handler: connection ↔ handler is a reference cycle, and a cycle that
        # reaches the transport pins the TLS state (~32 KB of OpenSSL buffers plus
        # uvloop's read buffer) until a rare full GC: memory grew with every connection.
        handler, self.handler = self.handler, None
        if handler is not None:
            handler.connection_lost()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError("connection lost"))

    @property
    def writing_paused(self) -> bool:
        """The transport's write buffer is above its high-water mark."""
        return self._paused

    def pause_writing(self) -> None:
        self._paused = True
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        self._paused = False
        if self.handler is not None:
            self.handler.resume_writing()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        if self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        if not self._paused:
            return
        self._drain_waiter = asyncio.get_running_loop().create_future()
        try:
            await self._drain_waiter
        finally:
            self._drain_waiter = None

    # ------------------------------------------------------------ deadlines
    def touch_header_start(self) -> None:
        self.deadline = time.monotonic() + HEADER_TIMEOUT

    def set_deadline(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout if timeout > 0 else math.inf

    def clear_deadline(self) -> None:
        self.deadline = math.inf

    def idle(self) -> None:
        if not self.streaming:
            self.deadline = time.monotonic() + IDLE_TIMEOUT

    def expire(self) -> None:
        """Called by the sweeper once ``deadline`` passed: cut the connection."""
        self.transport.abort()


class ConnectionRegistry:
    """Tracks live connections and enforces their deadlines (one sweeper task instead
    of a timer per request)."""

    def __init__(
        self,
        current_state: Callable[[], ServerState],
        new_handler: Callable[[Connection, str | None, str], HTTPHandler],
    ) -> None:
        self.current_state = current_state
        # The HTTP handler of a new connection: (connection, ALPN protocol, which
        # headers its requests keep: "all", "enclave" or "" for none).
        self.new_handler = new_handler
        self.connections: set[Connection] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def add(self, conn: Connection) -> None:
        self.connections.add(conn)

    def discard(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def start(self, interval: float = 0.25) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(interval))

    async def _sweep(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for conn in [c for c in self.connections if c.deadline <= now]:
                conn.expire()

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
