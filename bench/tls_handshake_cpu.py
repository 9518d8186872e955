"""Server-side CPU of one full TLS 1.3 mTLS handshake, in process, per TLS library.

A pyOpenSSL client (``cryptography``'s OpenSSL, which like Go's crypto/tls offers an
X25519MLKEM768 and an X25519 key share) handshakes over memory BIOs with a server
made by each variant; only the server's calls are timed (``time.thread_time_ns``),
so the client's work and the event loop are left out. The certificates are the
bench's: an ECDSA P-256 server certificate and an Ed25519 API-key client certificate.
Variants run interleaved in batches; the report is min / median µs per handshake.

    .venv/bin/python bench/tls_handshake_cpu.py [--rounds 10 --batch 50]
"""

from __future__ import annotations

import argparse
import contextlib
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kesbench.servers import write_tls_files
from OpenSSL import SSL

Handshake = Callable[[], int]  # runs one handshake, returns the server's CPU ns


def client_context(tmp: Path) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.use_certificate_chain_file(str(tmp / "client.crt"))
    ctx.use_privatekey_file(str(tmp / "client.key"))
    ctx.set_verify(SSL.VERIFY_NONE)
    ctx.set_alpn_protos([b"http/1.1"])
    return ctx


def _drain(conn: SSL.Connection) -> bytes:
    """Everything a pyOpenSSL connection has to send."""
    out = []
    while True:
        try:
            out.append(conn.bio_read(65536))
        except SSL.WantReadError:
            return b"".join(out)


def _pump_client(client: SSL.Connection) -> bytes:
    with contextlib.suppress(SSL.WantReadError):
        client.do_handshake()
    return _drain(client)


class _Server:
    """One server-side TLS connection over memory BIOs, as each library drives it."""

    want_read: type[Exception]

    def feed(self, data: bytes) -> None: ...
    def handshake(self) -> None: ...  # raises want_read until done
    def after(self) -> None: ...  # what pykes reads once done: peer cert, ALPN
    def output(self) -> bytes: ...


def timed_handshake(new_server: Callable[[], _Server], cctx: SSL.Context) -> Handshake:
    """One full handshake against a fresh client; only the server's calls are timed."""

    def one() -> int:
        client = SSL.Connection(cctx, None)
        client.set_connect_state()
        t = time.thread_time_ns()
        server = new_server()
        spent = time.thread_time_ns() - t
        done = False
        while not done:
            data = _pump_client(client)
            t = time.thread_time_ns()
            server.feed(data)
            try:
                server.handshake()
                done = True
                server.after()
            except server.want_read:
                pass
            reply = server.output()
            spent += time.thread_time_ns() - t
            if reply:
                client.bio_write(reply)
        _pump_client(client)
        return spent

    return one


# ------------------------------------------------------------------ stdlib servers
def stdlib_context(tmp: Path, hook: bool, num_tickets: int) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(str(tmp / "server.crt"), str(tmp / "server.key"))
    ctx.num_tickets = num_tickets
    if hook:  # pykes: CERT_REQUIRED + the ctypes accept-any verify callback
        from pykes.wire.tls import accept_any_client_certificate

        ctx.verify_mode = ssl.CERT_REQUIRED
        accept_any_client_certificate(ctx)
    else:  # bench/baseline_server.py: verified against the client cert as CA
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(cafile=str(tmp / "client.crt"))
    return ctx


class _StdlibServer(_Server):
    want_read = ssl.SSLWantReadError

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)

    def feed(self, data: bytes) -> None:
        self.incoming.write(data)

    def handshake(self) -> None:
        self.tls.do_handshake()

    def after(self) -> None:
        self.tls.getpeercert(binary_form=True)
        self.tls.selected_alpn_protocol()

    def output(self) -> bytes:
        return self.outgoing.read()


def stdlib_handshake(ctx: ssl.SSLContext, cctx: SSL.Context) -> Handshake:
    return timed_handshake(lambda: _StdlibServer(ctx), cctx)


# ------------------------------------------------------------------ pyOpenSSL servers
def pyopenssl_context(tmp: Path, groups: str, stateful_tickets: bool = False) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.use_certificate_chain_file(str(tmp / "server.crt"))
    ctx.use_privatekey_file(str(tmp / "server.key"))
    ctx.set_verify(SSL.VERIFY_PEER, lambda _conn, _cert, _errno, _depth, _ok: True)
    ctx.set_alpn_select_callback(lambda _conn, _offered: b"http/1.1")
    if groups:
        from cryptography.hazmat.bindings.openssl.binding import Binding

        assert Binding.lib.SSL_CTX_set1_curves_list(ctx._context, groups.encode()) == 1  # noqa: SLF001
    if stateful_tickets:  # TLS 1.3: two small stateful tickets instead of encrypted sessions
        ctx.set_options(SSL.OP_NO_TICKET)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    return ctx


class _PyOpenSSLServer(_Server):
    want_read = SSL.WantReadError

    def __init__(self, ctx: SSL.Context) -> None:
        self.tls = SSL.Connection(ctx, None)
        self.tls.set_accept_state()

    def feed(self, data: bytes) -> None:
        self.tls.bio_write(data)

    def handshake(self) -> None:
        self.tls.do_handshake()

    def after(self) -> None:
        self.tls.get_peer_certificate()
        self.tls.get_alpn_proto_negotiated()

    def output(self) -> bytes:
        return _drain(self.tls)


def pyopenssl_handshake(ctx: SSL.Context, cctx: SSL.Context) -> Handshake:
    return timed_handshake(lambda: _PyOpenSSLServer(ctx), cctx)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--batch", type=int, default=50)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        write_tls_files(tmp)
        cctx = client_context(tmp)
        variants: dict[str, Handshake] = {
            "stdlib verify-CA tickets=2 (baseline)": stdlib_handshake(
                stdlib_context(tmp, False, 2), cctx
            ),
            "stdlib hook tickets=2 (pykes)": stdlib_handshake(stdlib_context(tmp, True, 2), cctx),
            "stdlib hook tickets=1": stdlib_handshake(stdlib_context(tmp, True, 1), cctx),
            "stdlib hook tickets=0": stdlib_handshake(stdlib_context(tmp, True, 0), cctx),
            "pyopenssl default groups": pyopenssl_handshake(pyopenssl_context(tmp, ""), cctx),
            "pyopenssl X25519": pyopenssl_handshake(pyopenssl_context(tmp, "X25519"), cctx),
            "pyopenssl X25519 stateful tickets": pyopenssl_handshake(
                pyopenssl_context(tmp, "X25519", stateful_tickets=True), cctx
            ),
        }
        for fn in variants.values():  # warm up
            fn()
        samples: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for name_, fn in variants.items():
                total = sum(fn() for _ in range(args.batch))
                samples[name_].append(total / args.batch / 1000)
    print(f"server CPU µs per handshake, {args.rounds} batches of {args.batch}: min / median")
    for name_, xs in samples.items():
        print(f"  {name_:40s} {min(xs):7.1f} {statistics.median(xs):7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
