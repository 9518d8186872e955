"""The opt-in pyOpenSSL TLS layer (``PYKES_TLS=openssl``, pykes/server/tls_openssl.py):
real mTLS requests over HTTP/1.1 and HTTP/2 against a server started with it,
identity-based authorization, and Go-style handshake error logs."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    PKI,
    RunningServer,
    config_yaml,
    describe_self,
    provoke_handshake_failures,
    start_server,
)

SSL = pytest.importorskip("OpenSSL.SSL")

NOT_ALLOWED = {"message": "not authorized: insufficient permissions"}


def _start(root: Path, pki: PKI, extra: str, tls_env: str | None) -> RunningServer:
    saved = os.environ.get("PYKES_TLS")
    if tls_env is None:
        os.environ.pop("PYKES_TLS", None)
    else:
        os.environ["PYKES_TLS"] = tls_env
    try:
        return start_server(
            root, pki, config_yaml(pki, pki.client("admin").identity, root / "keys", extra)
        )
    finally:
        if saved is None:
            os.environ.pop("PYKES_TLS", None)
        else:
            os.environ["PYKES_TLS"] = saved


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("kes-openssl")
    app = pki.client("ossl-app", "ecdsa")
    extra = (
        "policy:\n"
        "  app:\n"
        "    allow: [/v1/key/generate/ossl-*, /v1/key/decrypt/ossl-*]\n"
        "    deny: [/v1/key/decrypt/ossl-secret]\n"
        f"    identities: [{app.identity}]\n"
    )
    server = _start(root, pki, extra, "openssl")
    yield server
    server.stop()


def _negotiated_group(server: RunningServer, pki: PKI) -> str:
    """The key-exchange group a pyOpenSSL client (cryptography's OpenSSL, offering
    X25519MLKEM768 first like Go) gets from the server."""
    ident = pki.client("admin")
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.use_certificate_chain_file(str(ident.cert_file))
    ctx.use_privatekey_file(str(ident.key_file))
    ctx.load_verify_locations(str(pki.server_cert))
    ctx.set_verify(SSL.VERIFY_PEER)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.settimeout(None)  # pyOpenSSL needs a blocking socket
        conn = SSL.Connection(ctx, raw)
        conn.set_connect_state()
        conn.set_tlsext_host_name(b"localhost")
        conn.do_handshake()
        group = conn.get_group_name() or ""
        conn.shutdown()
    return group.lower()


def test_handshakes_run_on_the_bundled_openssl(kes: RunningServer, pki: PKI, tmp_path: Path):
    # The system OpenSSL 3.0 behind stdlib ssl cannot do the ML-KEM hybrid; the
    # OpenSSL bundled with cryptography (≥ 3.5) prefers it. The default path is the
    # contrast: same client, classic X25519.
    assert _negotiated_group(kes, pki) == "x25519mlkem768"
    if ssl.OPENSSL_VERSION_INFO < (3, 5):
        default = _start(tmp_path, pki, "", None)
        try:
            assert _negotiated_group(default, pki) == "x25519"
        finally:
            default.stop()


@pytest.mark.parametrize("http2", [False, True])
def test_mtls_requests_and_identity_authorization(
    kes: RunningServer, pki: PKI, http2: bool
) -> None:
    proto = "HTTP/2" if http2 else "HTTP/1.1"
    with kes.client(pki.client("admin"), http2=http2) as admin:
        for name in ("ossl-key", "ossl-secret"):
            r = admin.post(f"/v1/key/create/{name}")
            assert r.status_code in (200, 400), r.text  # 400: exists (other parameter)
            assert r.http_version == proto
        who = admin.get("/v1/identity/self/describe").json()
        assert who["identity"] == pki.client("admin").identity and who["admin"] is True
    with kes.client(pki.client("ossl-app"), http2=http2) as app:
        dek = app.post("/v1/key/generate/ossl-key", json={})
        assert dek.status_code == 200 and dek.http_version == proto
        r = app.post("/v1/key/decrypt/ossl-key", json={"ciphertext": dek.json()["ciphertext"]})
        assert r.json() == {"plaintext": dek.json()["plaintext"]}
        d2 = app.post("/v1/key/generate/ossl-secret", json={}).json()
        r = app.post("/v1/key/decrypt/ossl-secret", json={"ciphertext": d2["ciphertext"]})
        assert (r.status_code, r.json()) == (403, NOT_ALLOWED)  # deny wins
        r = app.get("/v1/key/list/")
        assert (r.status_code, r.json()) == (403, NOT_ALLOWED)  # not in the policy
        for _ in range(20):  # keep-alive: many requests on one connection
            assert app.post("/v1/key/generate/ossl-key", json={}).status_code == 200
    with kes.client(pki.client("ossl-stranger"), http2=http2) as stranger:
        r = stranger.post("/v1/key/generate/ossl-key", json={})
        assert (r.status_code, r.json()) == (403, NOT_ALLOWED)


def test_tls12_client(kes: RunningServer, pki: PKI) -> None:
    # TLS 1.2 ends with the server's Finished: it must leave without waiting for data.
    with kes.client(pki.client("admin")) as admin:
        assert admin.post("/v1/key/create/ossl-tls12").status_code == 200
    ctx = kes.ssl_context(pki.client("ossl-app"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(base_url=kes.url, verify=ctx, timeout=10) as c:
        r = c.post("/v1/key/generate/ossl-tls12", json={})
        assert r.status_code == 200 and "plaintext" in r.json()


def test_tls12_session_resumption_keeps_identity(kes: RunningServer, pki: PKI) -> None:
    app = pki.client("ossl-app")
    ctx = kes.ssl_context(app)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # sessions are available right away

    first, session, reused = describe_self(kes.port, ctx)
    assert not reused and app.identity.encode() in first
    second, _, reused = describe_self(kes.port, ctx, session)
    assert reused and app.identity.encode() in second


def test_connection_close_ends_with_close_notify(kes: RunningServer, pki: PKI) -> None:
    # The last response and the close_notify leave together (write_and_close): the
    # client reads the whole response, then a clean TLS EOF — a ragged one (no
    # close_notify) would raise SSLEOFError with suppress_ragged_eofs off.
    app = pki.client("ossl-app")
    ctx = kes.ssl_context(app)
    for _ in range(3):
        data, _, _ = describe_self(kes.port, ctx, suppress_ragged_eofs=False)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in head
        length = re.search(rb"Content-Length: (\d+)", head)
        assert length is not None and len(body) == int(length.group(1))
        assert app.identity.encode() in body


def test_large_bodies_cross_many_tls_records(kes: RunningServer, pki: PKI) -> None:
    # A 1 MiB request body (many TLS records in, flow control on the way) is refused
    # by the body limit, then the connection still serves; longer responses arrive whole.
    with kes.client(pki.client("admin")) as admin:
        names = {f"ossl-many-{i:03d}-{'x' * 60}" for i in range(300)}
        for name in names:
            assert admin.post(f"/v1/key/create/{name}").status_code == 200
    for http2 in (False, True):  # > 16 KiB of response: several TLS records per write
        with kes.client(pki.client("admin"), http2=http2) as admin:
            r = admin.get("/v1/key/list/ossl-many-*")
            assert r.status_code == 200 and len(r.content) > 16384
            assert set(r.json()["names"]) == names
    with kes.client(pki.client("admin")) as admin:
        big = admin.post("/v1/key/generate/ossl-key", content=b"{" + b" " * (1 << 20) + b"}")
        assert 400 <= big.status_code < 500
        assert admin.get("/version").status_code == 200


def test_handshake_failures_are_logged_like_go(kes: RunningServer, pki: PKI) -> None:
    provoke_handshake_failures(kes.port, kes.ssl_context(None))  # no cert, plain HTTP
    deadline = time.monotonic() + 5
    pattern = r"level=INFO msg=\"http: TLS handshake error from 127\.0\.0\.1:\d+: {}\""
    while time.monotonic() < deadline:
        err = kes.output()[1]
        if re.search(pattern.format("peer did not return a certificate"), err) and re.search(
            pattern.format("client sent an HTTP request to an HTTPS server"), err
        ):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(kes.output()[1])


# ------------------------------------------------------------------ in process
class _FakeRaw(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False
        self.closed = False
        self.written: list[bytes] = []

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 4242) if name == "peername" else default

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.aborted or self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def test_handshake_timeout_aborts_and_logs(pki: PKI) -> None:
    from pykes.server.tls import TLSSettings
    from pykes.server.tls_openssl import OpenSSLProtocol, openssl_server_context

    context = openssl_server_context(TLSSettings(str(pki.server_cert), str(pki.server_key)))
    assert context is not None
    logged: list[tuple[Any, str]] = []
    app_made: list[object] = []

    class App(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            app_made.append(transport)

    async def scenario() -> _FakeRaw:
        loop = asyncio.get_running_loop()
        proto = OpenSSLProtocol(
            loop, App(), context, lambda peer, why: logged.append((peer, why)), 0.05
        )
        raw = _FakeRaw()
        proto.connection_made(raw)
        await asyncio.sleep(0.2)  # no ClientHello ever arrives
        proto.connection_lost(None)  # the abort's consequence: no second log line
        return raw

    raw = asyncio.run(scenario())
    assert raw.aborted
    assert logged == [(("127.0.0.1", 4242), "handshake timeout")]
    assert app_made == []


def test_auth_on_keeps_the_stdlib_path(pki: PKI) -> None:
    from pykes.server.tls import TLSSettings
    from pykes.server.tls_openssl import openssl_server_context

    settings = TLSSettings(str(pki.server_cert), str(pki.server_key), auth="on")
    assert openssl_server_context(settings) is None
