"""HTTP/1.1 request headers without a per-header callback (wire/http1.py).

The plain handler reads no header line by line: Content-Length is the body's length
(unknown only for a chunked body), ``Expect: 100-continue`` is looked up in the raw
reads, the header size limit counts reads. These tests send raw requests over mTLS,
some split over several TLS writes.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator

import pytest

from conftest import PKI, RunningServer, config_yaml, start_server
from h1peer import parse_replies


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("kes-http1-headers")
    server = start_server(root, pki, config_yaml(pki, pki.client("admin").identity, root / "keys"))
    yield server
    server.stop()


def _connect(kes: RunningServer, pki: PKI) -> ssl.SSLSocket:
    ctx = kes.ssl_context(pki.client("admin"))
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", kes.port))
    tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    tls.settimeout(10)
    return tls


def _exchange(kes: RunningServer, pki: PKI, *parts: bytes) -> bytes:
    """Send ``parts`` as separate TLS writes (a short pause between them so that the
    server reads them apart), then read until the server closes."""
    with _connect(kes, pki) as tls:
        for i, part in enumerate(parts):
            if i:
                time.sleep(0.05)
            tls.sendall(part)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    return data


@pytest.fixture(scope="module")
def key(kes: RunningServer, pki: PKI) -> str:
    data = _exchange(
        kes,
        pki,
        b"POST /v1/key/create/h1-key HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: 0\r\n\r\n",
    )
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    return "h1-key"


def test_generate_without_content_length_has_an_empty_body(
    kes: RunningServer, pki: PKI, key: str
) -> None:
    # RFC 9112 §6.3 and Go: a request with neither Content-Length nor chunked has a
    # body of length 0 (Go's ContentLength 0): "no context", not an invalid body.
    data = _exchange(
        kes, pki, b"POST /v1/key/generate/h1-key HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    assert b'"plaintext":"' in data


def test_generate_with_an_empty_chunked_body_parses_it(
    kes: RunningServer, pki: PKI, key: str
) -> None:
    # chunked: the length is unknown, so the (empty) body is parsed: not JSON → 400
    data = _exchange(
        kes,
        pki,
        b"POST /v1/key/generate/h1-key HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    assert data.startswith(b"HTTP/1.1 400 "), data[:200]
    assert data.endswith(b'{"message":"invalid request body"\n}')


def test_generate_with_a_chunked_context(kes: RunningServer, pki: PKI, key: str) -> None:
    body = b'{"context":"aGVsbG8="}'
    data = _exchange(
        kes,
        pki,
        b"POST /v1/key/generate/h1-key HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body),
    )
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]


def test_expect_100_continue_split_between_reads(kes: RunningServer, pki: PKI, key: str) -> None:
    body = b'{"plaintext":"aGVsbG8="}'
    with _connect(kes, pki) as tls:
        # the Expect line is cut in two TLS writes; the headers end in a third
        tls.sendall(b"POST /v1/key/encrypt/h1-key HTTP/1.1\r\nHost: x\r\nexPECT: 100-con")
        time.sleep(0.05)
        tls.sendall(b"tinue\r\nConnection: close\r\n")
        time.sleep(0.05)
        tls.sendall(b"Content-Length: %d\r\n\r\n" % len(body))
        assert tls.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        tls.sendall(body)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    assert b'"ciphertext"' in data


def test_no_100_continue_without_expect(kes: RunningServer, pki: PKI, key: str) -> None:
    body = b'{"plaintext":"aGVsbG8="}'
    data = _exchange(
        kes,
        pki,
        b"POST /v1/key/encrypt/h1-key HTTP/1.1\r\nHost: x\r\nX-Note: 100-continue\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body),
        body,
    )
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]


def test_headers_over_the_limit_in_many_reads_get_431(kes: RunningServer, pki: PKI) -> None:
    filler = b"X-Fill: " + b"a" * 60_000 + b"\r\n"
    parts = [b"GET /v1/status HTTP/1.1\r\nHost: x\r\n"] + [filler] * 18 + [b"\r\n"]
    data = _exchange(kes, pki, *parts)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]


def test_large_headers_under_the_limit_are_served(kes: RunningServer, pki: PKI) -> None:
    filler = b"X-Fill: " + b"a" * 60_000 + b"\r\n"
    parts = [b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"] + [filler] * 4
    data = _exchange(kes, pki, *parts, b"\r\n")
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]


def test_expect_100_continue_refused_gets_the_refusal_at_once(
    kes: RunningServer, pki: PKI, key: str
) -> None:
    """As Go (which writes 100 Continue when the handler first reads the body): a
    request that authorization refuses gets its 403 without 100 Continue, at once,
    and the connection closes (Go does not reuse it either: the body was not read)."""
    ctx = kes.ssl_context(pki.client("h1-nobody"))  # no policy
    ctx.set_alpn_protocols(["http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", kes.port)) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.settimeout(3)
        tls.sendall(
            b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"  # answered first, kept alive
            b"POST /v1/key/encrypt/h1-key HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 24\r\n\r\n"
        )
        data = b""
        with contextlib.suppress(TimeoutError):  # (the old server waited for the body)
            while chunk := tls.recv(65536):
                data += chunk
    replies, rest = parse_replies(data, ["GET", "POST"])
    assert [r.status for r in replies] == [403, 403] and rest == b"", data
    assert replies[1].informational == [] and replies[1].headers["connection"] == "close"
    assert "connection" not in replies[0].headers
