"""Accepting connections: the TLS layer with visible handshake failures.

``create_server(ssl=…)`` wraps every accepted connection in the event loop's
``SSLProtocol`` and reports failed handshakes only in debug mode. Go logs them at INFO
(``http: TLS handshake error from <ip:port>: <reason>``). So we listen on plain TCP and
build the very same ``SSLProtocol`` ourselves (uvloop's, or asyncio's when uvloop is not
in use) with a handshake waiter we own: its result tells us when a handshake failed and
why. The SSL context is fetched per connection, so a SIGHUP can swap the server
certificate without re-binding the port.

(A ``loop.start_tls`` upgrade was tried first: uvloop starts reading right after
``connection_made``, so the ClientHello reached the plain protocol before the upgrade
and handshakes stalled.)

A refused client is told why, as by Go's server: the loop's ``SSLProtocol`` drops the
alert OpenSSL wrote for a failed handshake (e.g. ``certificate required`` to a client
without a certificate), and a plain HTTP request gets Go's ``400 Bad Request`` text.
Both are written on the failure path only (``connection_lost``), nothing per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import ssl
from asyncio.sslproto import SSLProtocol as _AsyncioSSLProtocol
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pykes.wire.connection import Connection, ConnectionRegistry, HTTPHandler
from pykes.wire.http1 import EnclaveHeaderHTTP1Handler, HeaderKeepingHTTP1Handler, HTTP1Handler
from pykes.wire.http2 import H2Handler, HeaderKeepingH2Handler

if TYPE_CHECKING:
    from pykes.observe.logs import Logs

HANDSHAKE_TIMEOUT = 10.0

try:
    from uvloop.loop import SSLProtocol as _UVSSLProtocol
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    _UVSSLProtocol = None


# Go's net/http answer to a plain HTTP request on its TLS port (server.go).
PLAIN_HTTP_ANSWER = (
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
)
PLAIN_HTTP_REASON = "client sent an HTTP request to an HTTPS server"
# OpenSSL's reason when the first record starts with "GET ", "POST ", "HEAD " or "PUT "
# (Go also recognises "OPTIO"; OpenSSL reports that as a wrong version number).
_SSL_HTTP_REQUEST = "HTTP_REQUEST"


class _OutgoingBIORecorder:
    """Stands in for the ``SSLContext`` of one connection and keeps the outgoing memory
    BIO the loop's ``SSLProtocol`` wraps: it is the only way to the alert OpenSSL writes
    there when a handshake fails (the protocol's own BIO attributes are private to
    uvloop's compiled class)."""

    __slots__ = ("context", "outgoing")

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.outgoing: ssl.MemoryBIO | None = None

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        self.outgoing = outgoing
        return self.context.wrap_bio(incoming, outgoing, server_side, server_hostname, session)


def _answer_refused_handshake(transport: Any, tls: _OutgoingBIORecorder, exc: ssl.SSLError) -> None:
    """Send what a refused client should read before its connection closes: the TLS
    alert still in the outgoing BIO and, to plain HTTP, Go's 400 answer."""
    alert = tls.outgoing.read() if tls.outgoing is not None else b""
    answer = alert + PLAIN_HTTP_ANSWER if exc.reason == _SSL_HTTP_REQUEST else alert
    if not answer or transport is None:
        return
    with contextlib.suppress(OSError, AttributeError, ValueError, RuntimeError):
        # The transport refuses writes once it is closing and closes its socket right
        # after connection_lost: answer on a duplicate of the socket.
        _send_and_linger(os.dup(transport.get_extra_info("socket").fileno()), answer)


# Closing a socket with unread input sends a RST, and a client that gets the RST before
# it has read the answer shows "connection reset" instead (curl, whose request follows
# its handshake at once, mostly did). So after the answer the socket is half-closed and
# drained until the client closes, for at most LINGER_SECONDS; at most MAX_LINGERING
# refused connections per worker linger at once, others are closed at once.
LINGER_SECONDS = 1.0
MAX_LINGERING = 256
_lingering: set[socket.socket] = set()


def _send_and_linger(fd: int, answer: bytes) -> None:
    sock = socket.socket(fileno=fd)
    try:
        sock.setblocking(False)
        sock.send(answer)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        sock.close()
        return
    if len(_lingering) >= MAX_LINGERING:
        sock.close()
        return
    loop = asyncio.get_running_loop()

    def done() -> None:
        if sock in _lingering:
            _lingering.discard(sock)
            loop.remove_reader(fd)
            timer.cancel()
            sock.close()

    def drain() -> None:
        try:
            if sock.recv(65536):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        done()  # the client closed (or reset) its side

    _lingering.add(sock)
    timer = loop.call_later(LINGER_SECONDS, done)
    loop.add_reader(fd, drain)


def _with_peer(base: type) -> type:
    class PeerRecordingSSLProtocol(base):  # type: ignore[misc, valid-type]
        """The loop's SSLProtocol, remembering the peer address for error logs and
        telling a client whose handshake failed why (see the module docstring)."""

        peer: Any = None
        raw_transport: Any = None
        tls: _OutgoingBIORecorder | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.peer = transport.get_extra_info("peername")
            self.raw_transport = transport
            super().connection_made(transport)

        def connection_lost(self, exc: BaseException | None) -> None:
            # A failed handshake (or a fatal TLS error later) closes the connection
            # with this SSLError; the socket is still open here.
            if isinstance(exc, ssl.SSLError) and self.tls is not None:
                _answer_refused_handshake(self.raw_transport, self.tls, exc)
            self.raw_transport = None
            super().connection_lost(exc)

    return PeerRecordingSSLProtocol


_UV_TLS = _with_peer(_UVSSLProtocol) if _UVSSLProtocol is not None else None
_ASYNCIO_TLS = _with_peer(_AsyncioSSLProtocol)


def raise_fd_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (as Go's runtime does since
    1.19) so a server can hold thousands of connections with a default soft limit of
    1024. Returns the soft limit now in force; failures leave the limit as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit still cannot exceed fs.nr_open (1 Mi by default).
    target = (1 << 20) if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def handshake_error_text(err: BaseException) -> str:
    if isinstance(err, ssl.SSLError):
        if err.reason == _SSL_HTTP_REQUEST:
            return PLAIN_HTTP_REASON
        return (err.reason or str(err)).lower().replace("_", " ")
    if isinstance(err, (TimeoutError, asyncio.TimeoutError)) or "longer than" in str(err):
        return "handshake timeout"
    if isinstance(err, ConnectionError) or not str(err):
        return "EOF"
    return str(err)


def http_handler(conn: Connection, alpn: str | None, keep_headers: str) -> HTTPHandler:
    """HTTP/2 when the client chose ``h2`` by ALPN, else HTTP/1.1; its requests carry
    their header fields as ``keep_headers`` says (``Connection.connection_made``):
    ``"all"``, ``"enclave"`` (HTTP/1.1 keeps only that one: HTTP/2 decodes every field
    anyway) or ``""``, none (the fast path)."""
    if alpn == "h2":
        return HeaderKeepingH2Handler(conn) if keep_headers else H2Handler(conn)
    if not keep_headers:
        return HTTP1Handler(conn)
    if keep_headers == "enclave":
        return EnclaveHeaderHTTP1Handler(conn)
    return HeaderKeepingHTTP1Handler(conn)


def tls_protocol_factory(
    registry: ConnectionRegistry,
    ssl_context: Callable[[], ssl.SSLContext],
    logs: Callable[[], Logs],
) -> Callable[[], asyncio.BaseProtocol]:
    """A ``create_server`` protocol factory: TLS handshake, then a ``Connection``."""

    # The loop and TLS class, looked up on the first connection: Python 3.11's
    # get_running_loop() makes a getpid() syscall every call (fork check).
    cached: list[tuple[asyncio.AbstractEventLoop, type]] = []

    def make() -> asyncio.BaseProtocol:
        if not cached:
            running = asyncio.get_running_loop()
            use_uvloop = _UV_TLS is not None and type(running).__module__.startswith("uvloop")
            cached.append((running, _UV_TLS if use_uvloop else _ASYNCIO_TLS))
        loop, tls_class = cached[0]
        waiter = loop.create_future()
        tls = _OutgoingBIORecorder(ssl_context())
        protocol = tls_class(
            loop,
            Connection(registry),
            tls,
            waiter,
            server_side=True,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
        )
        protocol.tls = tls

        def handshake_done(fut: asyncio.Future[None]) -> None:
            if fut.cancelled():
                return
            err = fut.exception()
            if err is not None:
                peer = protocol.peer
                where = f"{peer[0]}:{peer[1]}" if peer else "<unknown>"
                logs().info(f"http: TLS handshake error from {where}: {handshake_error_text(err)}")

        waiter.add_done_callback(handshake_done)
        return protocol

    return make
