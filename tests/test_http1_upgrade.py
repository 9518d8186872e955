"""HTTP/1.1 requests with ``Upgrade`` or ``CONNECT`` (issue 20 #4): answered as Go's
net/http server answers them. Go ignores ``Upgrade`` (a request with it is served like
any other, its body read, the requests pipelined after it too) and never reuses a
connection after a ``CONNECT``, which no route serves (404 / 405 / 301, ``Connection:
close``). Real server, raw requests over mTLS, answers parsed by h11."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from conftest import PKI, RunningServer, config_yaml, start_server
from h1peer import exchange, parse_replies, read_until_closed, request, tls_socket

UPGRADE = (("Connection", "Upgrade"), ("Upgrade", "websocket"))
ENCRYPT = b'{"plaintext":"aGVsbG8="}'


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("kes-upgrade")
    server = start_server(root, pki, config_yaml(pki, pki.client("admin").identity, root / "k"))
    with server.client(pki.client("admin")) as c:
        assert c.post("/v1/key/create/up-key").status_code == 200
    yield server
    server.stop()


def _send(kes: RunningServer, pki: PKI, *parts: bytes, pause: float = 0.0) -> bytes:
    return exchange(kes, pki.client("admin"), *parts, pause=pause)


def _close(method: str, target: str, *headers: tuple[str, str]) -> bytes:
    return request(method, target, *headers, ("Connection", "close"))


def test_upgrade_is_ignored_and_pipelined_requests_are_answered(
    kes: RunningServer, pki: PKI
) -> None:
    data = _send(
        kes,
        pki,
        request("POST", "/v1/key/create/up-created", *UPGRADE)
        + request("GET", "/v1/key/describe/up-created")
        + _close("GET", "/v1/status", ("Connection", "upgrade, close"), ("Upgrade", "h2c")),
    )
    replies, rest = parse_replies(data, ["POST", "GET", "GET"])
    assert [r.status for r in replies] == [200, 200, 200] and rest == b""
    assert json.loads(replies[1].body)["name"] == "up-created"
    assert "upgrade" not in replies[0].headers  # no 101, no protocol switch


@pytest.mark.parametrize("framing", ["content-length", "chunked", "split-head"])
def test_the_body_of_an_upgrade_request_is_read_as_its_body(
    kes: RunningServer, pki: PKI, framing: str
) -> None:
    """llhttp skips such a body (the rest of the stream is another protocol to it);
    Go reads it as the request's body."""
    headers = (*UPGRADE, ("X-Pad", "p" * 200))
    if framing == "chunked":
        first = request("POST", "/v1/key/encrypt/up-key", *headers,
                        chunks=[ENCRYPT[:5], ENCRYPT[5:]], trailers=[("X-T", "1")])  # fmt: skip
    else:
        first = request("POST", "/v1/key/encrypt/up-key", *headers, body=ENCRYPT)
    pipeline = first + _close("GET", "/v1/key/describe/up-key")
    if framing == "split-head":  # the head arrives in three reads
        parts = (pipeline[:30], pipeline[30:120], pipeline[120:])
        data = _send(kes, pki, *parts, pause=0.05)
    else:
        data = _send(kes, pki, pipeline)
    replies, rest = parse_replies(data, ["POST", "GET"])
    assert [r.status for r in replies] == [200, 200] and rest == b"", replies
    assert b'"ciphertext"' in replies[0].body


def test_many_pipelined_upgrade_requests_in_one_read(kes: RunningServer, pki: PKI) -> None:
    count = 300
    one = request("GET", "/v1/key/describe/up-key", *UPGRADE)
    started = time.monotonic()
    data = _send(kes, pki, one * count + _close("GET", "/version"))
    elapsed = time.monotonic() - started
    replies, rest = parse_replies(data, ["GET"] * (count + 1))
    assert [r.status for r in replies] == [200] * (count + 1) and rest == b""
    assert elapsed < 5, elapsed


@pytest.mark.parametrize(
    ("target", "status", "body"),
    [
        ("/v1/status", 405, b"{\"message\":\"received method 'CONNECT' expected 'GET'\"\n}"),
        ("example.com:443", 404, b"404 page not found\n"),
        ("/v1/key/list", 301, b""),  # the slash redirect applies to CONNECT too
        ("/v1/../v1/status", 404, b"404 page not found\n"),  # CONNECT paths are not cleaned
    ],
)
def test_connect_is_answered_then_the_connection_closes(
    kes: RunningServer, pki: PKI, target: str, status: int, body: bytes
) -> None:
    data = _send(
        kes,
        pki,
        request("GET", "/v1/key/describe/up-key")
        + request("CONNECT", target)
        + request("GET", "/v1/status"),  # Go never reads it: the connection closes
    )
    replies, rest = parse_replies(data, ["GET", "CONNECT", "GET"])
    assert [r.status for r in replies] == [200, status] and rest == b"", replies
    assert replies[1].headers["connection"] == "close"
    assert replies[1].body == body
    if status == 301:
        assert replies[1].headers["location"] == "/v1/key/list/"


def test_upgrade_leaves_no_error_in_the_log(kes: RunningServer, pki: PKI) -> None:
    """It used to log ``http: TLS handshake error from <peer>: <byte offset>``."""
    before = len(kes.output()[1])
    _send(kes, pki, _close("GET", "/v1/status", *UPGRADE))
    _send(kes, pki, _close("CONNECT", "/v1/status"))
    _send(kes, pki, request("GET", "/v1/status", *UPGRADE, ("Connection", "close")) * 2)
    time.sleep(0.2)
    assert kes.output()[1][before:] == ""


def test_expect_on_an_upgrade_request_gets_one_100_continue(kes: RunningServer, pki: PKI) -> None:
    with tls_socket(kes, pki.client("admin")) as tls:
        tls.sendall(
            request(
                "POST",
                "/v1/key/encrypt/up-key",
                *UPGRADE,
                ("Expect", "100-continue"),
                ("Content-Length", str(len(ENCRYPT))),
            )  # fmt: skip
        )
        assert tls.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        tls.sendall(ENCRYPT + _close("GET", "/version"))
        replies, rest = parse_replies(read_until_closed(tls), ["POST", "GET"])
    assert [r.status for r in replies] == [200, 200] and rest == b""
    assert replies[0].informational == []


def test_an_upgrade_request_right_after_a_body(kes: RunningServer, pki: PKI) -> None:
    """The head of an Upgrade request is found back from its end: a body before it
    that ends without a line break (and holds a colon) is no part of it."""
    data = _send(
        kes,
        pki,
        request("POST", "/v1/key/encrypt/up-key", body=ENCRYPT)
        + request("POST", "/v1/key/encrypt/up-key", *UPGRADE, body=b'{"plaintext":""}')
        + request("GET", "/v1/status", *UPGRADE)
        + _close("GET", "/version"),
    )
    replies, rest = parse_replies(data, ["POST", "POST", "GET", "GET"])
    assert [r.status for r in replies] == [200, 200, 200, 200] and rest == b""


def test_an_ambiguous_upgrade_head_is_refused_not_misframed(kes: RunningServer, pki: PKI) -> None:
    """A field value that repeats the request line could make the head look shorter
    (without its Content-Length): such a request is refused, and its body — here a
    request of its own — is never run."""
    with kes.client(pki.client("admin")) as c:
        assert c.post("/v1/key/create/up-keep").status_code == 200
    smuggled = _close("DELETE", "/v1/key/delete/up-keep")
    line = "POST /v1/key/create/up-ambiguous HTTP/1.1"
    data = _send(
        kes,
        pki,
        request("POST", "/v1/key/create/up-ambiguous", ("X-Note", line), *UPGRADE, body=smuggled),
    )
    replies, _ = parse_replies(data, ["POST"])
    assert [r.status for r in replies] == [400]
    with kes.client(pki.client("admin")) as c:
        assert c.get("/v1/key/describe/up-keep").status_code == 200
        assert c.get("/v1/key/describe/up-ambiguous").status_code == 404
