"""The bench's baseline: a bare uvloop + stdlib ``ssl`` + httptools HTTP/1.1 server.

The performance issue's reference for "how fast is this machine": a trivial handler
that answers every request with one fixed small JSON body (shaped like a generate
response, so ``kesload``'s set-up can parse it). ``bench/run.py`` loads it with the
``generate-c64-h1`` parameters and scales the Go reference by its req/s.

TLS as pykes does it: TLS 1.3, a client certificate requested (``CERT_OPTIONAL``) and
verified against ``--client-ca`` (the bench's own self-signed client certificate).
``--workers N`` forked processes each bind the port with SO_REUSEPORT, like pykes's
workers; the master only waits. It prints ``ready`` once every worker listens.

    python bench/baseline_server.py --port P --cert C --key K --client-ca CA --workers N
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from typing import Any

import httptools
import uvloop

BODY = (
    b'{"plaintext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",'
    b'"ciphertext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}'
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


class Trivial(asyncio.Protocol):
    """HTTP/1.1 keep-alive: one fixed response per parsed request."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self) -> None:
        self.transport.write(RESPONSE)  # type: ignore[attr-defined]


def tls_context(cert: str, key: str, client_ca: str, num_tickets: int = 2) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.num_tickets = num_tickets  # TLS 1.3 session tickets after each handshake
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(cert, key)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cafile=client_ca)
    return ctx


def serve_until_sigterm(
    protocol: Callable[[], asyncio.BaseProtocol], port: int, ready: int, **tls: Any
) -> None:
    """One worker: listen on ``port`` (SO_REUSEPORT) with ``protocol``, report on the
    ``ready`` pipe, serve until SIGTERM. ``tls``: ``create_server``'s ``ssl=…``, if any."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            protocol, "127.0.0.1", port, reuse_port=True, backlog=2048, **tls
        )
        os.write(ready, b"r")
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()

    uvloop.run(serve())


def worker(args: argparse.Namespace, ready: int) -> None:
    ctx = tls_context(args.cert, args.key, args.client_ca, args.num_tickets)
    serve_until_sigterm(Trivial, args.port, ready, ssl=ctx)


def main(serve: Callable[[argparse.Namespace, int], None] = worker) -> int:
    """Fork ``--workers`` processes running ``serve(args, ready_fd)`` (the stdlib
    ``worker`` unless another baseline passes its own)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca", required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--num-tickets", type=int, default=2, help="TLS 1.3 session tickets (OpenSSL's default 2)"
    )
    p.add_argument("--groups", default="", help="key-exchange groups (pyOpenSSL baseline only)")
    args = p.parse_args()
    with socket.socket() as probe:  # fail early if the port is taken
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind(("127.0.0.1", args.port))
    read_end, write_end = os.pipe()
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                serve(args, write_end)
            finally:
                os._exit(0)
        children.append(pid)
    os.close(write_end)
    got = b""
    while len(got) < args.workers:
        chunk = os.read(read_end, args.workers)
        if not chunk:  # a worker died before listening
            break
        got += chunk
    print("ready" if len(got) == args.workers else "failed", flush=True)

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for pid in children:
        _, code = os.waitpid(pid, 0)
        status |= code != 0
    return status


if __name__ == "__main__":
    sys.exit(main())
