"""Per-connection TLS choices: TLS 1.3 suites in Go's order (AES-128-GCM-SHA256 first,
whatever the client's order) and the server's ALPN preference (h2)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable

from conftest import PKI
from pykes.wire.tls import TLS13_CIPHERSUITES, TLSSettings, server_context


def _aes256_first_client(pki: PKI) -> ssl.SSLContext:
    """A client whose TLS 1.3 preference is OpenSSL's default: AES-256-GCM-SHA384 first."""
    ident = pki.client("suites")
    ctx = ssl.create_default_context(cafile=str(pki.server_cert))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(ident.cert_file), str(ident.key_file))
    ctx.set_alpn_protocols(["http/1.1", "h2"])  # h1 first: the server's order must win
    first = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3"][0]
    assert first == "TLS_AES_256_GCM_SHA384"
    return ctx


def test_go_order_of_tls13_suites() -> None:
    assert TLS13_CIPHERSUITES.split(":")[0] == "TLS_AES_128_GCM_SHA256"


def _handshake_seen_by(
    serve: Callable[[socket.socket], tuple[str, str | None, bytes | None]], pki: PKI
) -> tuple[str, str | None, bytes | None]:
    """``serve`` handshakes on an accepted socket (and reads one byte) in a thread while
    an AES-256-first, http/1.1-first client connects; what the server saw: (cipher,
    ALPN, client certificate DER). The client must see AES-128 and h2 too."""
    got = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def accept() -> None:
            raw, _ = listener.accept()
            with raw:
                got.append(serve(raw))

        thread = threading.Thread(target=accept)
        thread.start()
        client = _aes256_first_client(pki)
        with client.wrap_socket(socket.create_connection(listener.getsockname())) as tls:
            assert tls.cipher()[0] == "TLS_AES_128_GCM_SHA256"
            assert tls.selected_alpn_protocol() == "h2"
            tls.sendall(b"x")
        thread.join(10)
    return got[0]


def _client_der(pki: PKI) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pki.client("suites").cert_file.read_text())


def test_stdlib_layer_picks_aes128_and_h2(pki: PKI) -> None:
    server = server_context(TLSSettings(str(pki.server_cert), str(pki.server_key)))

    def serve(raw: socket.socket) -> tuple[str, str | None, bytes | None]:
        with server.wrap_socket(raw, server_side=True) as tls:
            seen = (tls.cipher()[0], tls.selected_alpn_protocol(), tls.getpeercert(True))
            tls.recv(1)
        return seen

    assert _handshake_seen_by(serve, pki) == ("TLS_AES_128_GCM_SHA256", "h2", _client_der(pki))
