"""The bench's baseline with TLS by pyOpenSSL (``cryptography``'s bundled OpenSSL).

Same trivial HTTP/1.1 server as ``bench/baseline_server.py`` (fixed response per
request, TLS 1.3 only, ALPN http/1.1, a client certificate requested and accepted
without verification — as pykes does with its verify hook), but the TLS is done by
pyOpenSSL over memory BIOs on a plain uvloop TCP transport, so the handshakes run on
the OpenSSL that the ``cryptography`` wheel bundles instead of the system's.

``--groups X25519`` restricts the key-exchange groups (``SSL_CTX_set1_curves_list``,
an alias of ``SSL_CTX_set1_groups_list``, through cryptography's bindings: pyOpenSSL
has no API for it). With ``BASELINE_LOG_GROUPS=1`` in the environment each worker
prints the negotiated group of its first three handshakes to stderr (Go's client:
X25519MLKEM768 by default). Measured with ``bench/tls_ab.py``.

    python bench/baseline_pyopenssl.py --port P --cert C --key K --client-ca CA \\
        [--workers N] [--groups LIST]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import httptools
from baseline_server import RESPONSE, main, serve_until_sigterm
from OpenSSL import SSL

_READ = 65536


def tls_context(cert: str, key: str, groups: str) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.use_certificate_chain_file(cert)
    ctx.use_privatekey_file(key)
    ctx.set_verify(SSL.VERIFY_PEER, lambda _conn, _cert, _errno, _depth, _ok: True)
    ctx.set_alpn_select_callback(lambda _conn, _offered: b"http/1.1")
    ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
    if groups:
        from cryptography.hazmat.bindings.openssl.binding import Binding

        ok = Binding.lib.SSL_CTX_set1_curves_list(ctx._context, groups.encode())  # noqa: SLF001
        if ok != 1:
            raise SystemExit(f"bad --groups {groups!r}")
    return ctx


class TrivialTLS(asyncio.Protocol):
    """TLS over memory BIOs, then HTTP/1.1 keep-alive with one fixed response."""

    ctx: SSL.Context
    log_groups = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.tls = SSL.Connection(self.ctx, None)
        self.tls.set_accept_state()
        self.handshaken = False
        self.parser = httptools.HttpRequestParser(self)

    def _flush(self) -> None:
        out = []
        while True:
            try:
                out.append(self.tls.bio_read(_READ))
            except SSL.WantReadError:
                break
        if out:
            self.transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        tls = self.tls
        tls.bio_write(data)
        if not self.handshaken:
            try:
                tls.do_handshake()
            except SSL.WantReadError:
                self._flush()
                return
            except SSL.Error:
                self._flush()
                self.transport.close()
                return
            self.handshaken = True
            if TrivialTLS.log_groups > 0:
                TrivialTLS.log_groups -= 1
                print(
                    f"group={tls.get_group_name()} cipher={tls.get_cipher_name()}", file=sys.stderr
                )
            # the peer certificate, as pykes would read it for the identity
            tls.get_peer_certificate()
        while True:
            try:
                chunk = tls.recv(_READ)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                self.transport.close()
                break
            except SSL.Error:
                self.transport.close()
                return
            try:
                self.parser.feed_data(chunk)
            except httptools.HttpParserError:
                self.transport.close()
                return
        self._flush()

    def on_message_complete(self) -> None:
        self.tls.sendall(RESPONSE)


def worker(args: argparse.Namespace, ready: int) -> None:
    TrivialTLS.ctx = tls_context(args.cert, args.key, args.groups)
    TrivialTLS.log_groups = 3 if os.environ.get("BASELINE_LOG_GROUPS") else 0

    serve_until_sigterm(TrivialTLS, args.port, ready)


if __name__ == "__main__":
    sys.exit(main(worker))
