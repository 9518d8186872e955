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
"""

from __future__ import annotations

import asyncio
import resource
import ssl
from asyncio.sslproto import SSLProtocol as _AsyncioSSLProtocol
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pykes.server.connection import Connection, ConnectionRegistry

if TYPE_CHECKING:
    from pykes.observe.logs import Logs

HANDSHAKE_TIMEOUT = 10.0

try:
    from uvloop.loop import SSLProtocol as _UVSSLProtocol
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    _UVSSLProtocol = None


def _with_peer(base: type) -> type:
    class PeerRecordingSSLProtocol(base):  # type: ignore[misc, valid-type]
        """The loop's SSLProtocol, remembering the peer address for error logs."""

        peer: Any = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.peer = transport.get_extra_info("peername")
            super().connection_made(transport)

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
        return (err.reason or str(err)).lower().replace("_", " ")
    if isinstance(err, (TimeoutError, asyncio.TimeoutError)) or "longer than" in str(err):
        return "handshake timeout"
    if isinstance(err, ConnectionError) or not str(err):
        return "EOF"
    return str(err)


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
        context = ssl_context()
        openssl_context = getattr(context, "pykes_openssl", None)  # PYKES_TLS=openssl
        if openssl_context is not None:
            from pykes.server.tls_openssl import openssl_protocol

            return openssl_protocol(
                Connection(registry), openssl_context, logs, HANDSHAKE_TIMEOUT, loop
            )
        waiter = loop.create_future()
        protocol = tls_class(
            loop,
            Connection(registry),
            context,
            waiter,
            server_side=True,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
        )

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
