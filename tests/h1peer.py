"""A raw HTTP/1.1 client for conformance and abuse tests: requests written byte for byte
over a real mTLS socket (split into several writes where a test asks), answers parsed by
``h11`` (not our code), so a test sees exactly what the server sent — or did not."""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field

import h11

from conftest import ClientIdentity, RunningServer


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    informational: list[int] = field(default_factory=list)  # e.g. [100]


def tls_socket(server: RunningServer, ident: ClientIdentity, timeout: float = 10) -> ssl.SSLSocket:
    ctx = server.ssl_context(ident)
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go's clients
    tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    tls.settimeout(timeout)
    return tls


def read_until_closed(tls: ssl.SSLSocket) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    data = b""
    try:
        while chunk := tls.recv(65536):
            data += chunk
    except (ConnectionError, ssl.SSLError):
        pass
    return data


def exchange(
    server: RunningServer, ident: ClientIdentity, *parts: bytes, pause: float = 0.0
) -> bytes:
    """Send ``parts`` as separate TLS writes (``pause`` seconds apart, so that the
    server reads them apart), then read until the server closes the connection."""
    with tls_socket(server, ident) as tls:
        for i, part in enumerate(parts):
            if i and pause:
                time.sleep(pause)
            tls.sendall(part)
        return read_until_closed(tls)


def parse_replies(data: bytes, methods: list[str]) -> tuple[list[Reply], bytes]:
    """The complete answers in ``data`` (all the server sent before it closed) to
    requests of ``methods`` (in order), and the bytes after the last one that are not a
    complete answer (b"" when clean). ``h11`` raises ``RemoteProtocolError`` on a
    malformed answer."""
    conn = h11.Connection(h11.CLIENT)
    if data:  # (b"" would tell h11 the connection closed)
        conn.receive_data(data)
    closed = False
    replies: list[Reply] = []
    for method in methods:
        # h11 learns what to expect from a request of its own (never sent anywhere)
        conn.send(h11.Request(method="HEAD" if method == "HEAD" else "GET", target="/",
                              headers=[("Host", "x")]))  # fmt: skip
        conn.send(h11.EndOfMessage())
        reply: Reply | None = None
        informational: list[int] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA and not closed:  # an answer read until the close?
                closed = True
                conn.receive_data(b"")
                continue
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return replies, conn.trailing_data[0]
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
                reply = Reply(event.status_code, headers, b"", informational)
            elif isinstance(event, h11.Data):
                assert reply is not None
                reply.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        assert reply is not None
        replies.append(reply)
        if conn.their_state is not h11.DONE or conn.our_state is not h11.DONE:
            break  # the answer closes the connection
        conn.start_next_cycle()
    return replies, conn.trailing_data[0]


def request(
    method: str,
    target: str,
    *headers: tuple[str, str],
    body: bytes | None = None,
    chunks: list[bytes] | None = None,
    trailers: list[tuple[str, str]] | None = None,
) -> bytes:
    """One request's bytes: a ``Content-Length`` body, or a chunked one with trailers."""
    lines = [f"{method} {target} HTTP/1.1", "Host: kes"]
    lines += [f"{name}: {value}" for name, value in headers]
    if chunks is not None or trailers is not None:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks or () if c)
        payload += b"0\r\n" + b"".join(f"{n}: {v}\r\n".encode() for n, v in trailers or ())
        payload += b"\r\n"
    else:
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        payload = body or b""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
