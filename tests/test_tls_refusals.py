"""What a refused client is told, as Go's server tells it: a TLS client without a
certificate gets the ``certificate required`` alert (not a silently closed connection),
and plain HTTP on the TLS port gets Go's ``400 Bad Request`` text. Checked with Python's
ssl, curl and Go's crypto/tls (tests/goclient)."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PKI, RunningServer, config_yaml, start_server, until

PLAIN_HTTP_ANSWER = (
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
)


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("kes-refusals")
    admin = pki.client("admin")
    server = start_server(root, pki, config_yaml(pki, admin.identity, root / "keys"))
    yield server
    server.stop()


def _no_cert_context(kes: RunningServer, version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = kes.ssl_context(None)
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


def _refusal(kes: RunningServer, version: ssl.TLSVersion) -> ssl.SSLError:
    """Handshake without a client certificate, send a request, read: the error."""
    ctx = _no_cert_context(kes, version)
    with socket.create_connection(("127.0.0.1", kes.port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                # TLS 1.3: the client's side of the handshake is done before the server
                # has seen its (empty) certificate; the alert answers the request.
                tls.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
                tls.recv(100)
        except ssl.SSLError as err:
            return err
    raise AssertionError("no TLS alert: the connection was just closed")


def test_tls13_client_without_certificate_gets_certificate_required(kes: RunningServer) -> None:
    for _ in range(5):  # not a race won by luck
        err = _refusal(kes, ssl.TLSVersion.TLSv1_3)
        assert err.reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED", err


def test_tls12_client_without_certificate_gets_an_alert(kes: RunningServer) -> None:
    err = _refusal(kes, ssl.TLSVersion.TLSv1_2)
    assert err.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE", err  # OpenSSL's alert for TLS 1.2


def test_the_refused_handshake_is_still_logged(kes: RunningServer) -> None:
    _refusal(kes, ssl.TLSVersion.TLSv1_3)
    pattern = r"http: TLS handshake error from 127\.0\.0\.1:\d+: peer did not return a certificate"
    until(lambda: re.search(pattern, kes.output()[1]) is not None, 5)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_without_certificate_prints_the_alert(kes: RunningServer) -> None:
    r = subprocess.run(
        ["curl", "-sS", "--cacert", str(kes.pki.server_cert), f"{kes.url}/version"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 56, r  # CURLE_RECV_ERROR
    assert "alert certificate required" in r.stderr, r.stderr


def test_go_client_without_certificate_reports_certificate_required(
    kes: RunningServer, goclient: Path
) -> None:
    r = subprocess.run(
        [str(goclient), f"-addr=127.0.0.1:{kes.port}", f"-ca={kes.pki.server_cert}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "remote error: tls: certificate required" in r.stderr, r.stderr


def _plain(kes: RunningServer, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", kes.port), timeout=10) as raw:
        raw.sendall(request)
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
        return answer


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "PUT"])
def test_plain_http_gets_go_400_answer(kes: RunningServer, method: str) -> None:
    request = f"{method} /v1/status HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    assert _plain(kes, request) == PLAIN_HTTP_ANSWER


def test_plain_http_is_logged_as_go_does(kes: RunningServer) -> None:
    _plain(kes, b"GET / HTTP/1.1\r\n\r\n")
    text = "http: TLS handshake error from 127.0.0.1:"
    reason = ": client sent an HTTP request to an HTTPS server"
    until(lambda: any(text in line and reason in line for line in kes.output()[1].splitlines()), 5)


def test_other_garbage_gets_no_http_answer(kes: RunningServer) -> None:
    assert _plain(kes, b"\x00" * 64) == b""


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_with_http_url_shows_the_reason(kes: RunningServer) -> None:
    r = subprocess.run(
        ["curl", "-sS", f"http://127.0.0.1:{kes.port}/v1/status"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0 and r.stdout == "Client sent an HTTP request to an HTTPS server.\n"


def test_server_keeps_serving_after_refusals(kes: RunningServer, pki: PKI) -> None:
    for _ in range(3):
        _plain(kes, b"GET / HTTP/1.1\r\n\r\n")
        _refusal(kes, ssl.TLSVersion.TLSv1_3)
    with kes.client(pki.client("admin")) as c:
        assert c.get("/version").status_code == 200
