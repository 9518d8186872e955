"""Fuzzing the HTTP/1.1 request path (``pykes.wire.http1``) of a live server (issue 20):
pipelines of requests decorated with what Go's server ignores and llhttp does not —
``Upgrade`` / ``Connection: upgrade`` headers, chunked bodies split anyhow with trailer
fields (a forwarded certificate, an address, ``Upgrade``, ``Expect``), ``Expect:
100-continue`` — sent over one mTLS connection in random pieces, from a client and
through a TLS proxy, ended by a ``Connection: close`` request or a ``CONNECT``.

Property (a differential one): every decorated request is answered with the status the
same request gets undecorated, in order, with nothing else on the wire (answers parsed
by h11); after a ``CONNECT`` the connection closes. Seeds: the issue's reproductions
(``corpus/http1/regress-*.json``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import PKI, RunningServer, start_server
from fuzz.fuzz_corpus import corpus_json, with_examples
from h1peer import parse_replies, read_until_closed, request, tls_socket

ENCRYPT = b'{"plaintext":"aGVsbG8="}'
BASES: list[tuple[str, str, bytes | None]] = [
    ("GET", "/v1/status", None),
    ("GET", "/v1/key/describe/fz-key", None),
    ("POST", "/v1/key/encrypt/fz-key", ENCRYPT),
    ("POST", "/v1/key/create/fz-key", None),  # exists: 400 for the admin, 403 for the app
    ("GET", "/v1/identity/self/describe", None),
    ("GET", "/v1/no/such/route", None),
    ("DELETE", "/v1/status", None),
    ("GET", "/v1/key/list/*?legacy", None),
]
UPGRADES: list[tuple[tuple[str, str], ...]] = [
    (),
    (("Connection", "Upgrade"), ("Upgrade", "websocket")),
    (("Connection", "keep-alive, upgrade"), ("UPGRADE", "h2c"), ("HTTP2-Settings", "AAMAAABk")),
    (("Upgrade", "websocket"),),  # no Connection token: not an upgrade to llhttp either
    (("connection", "Upgrade"), ("upgrade", "x"), ("upgrade", "y")),
]
FINALS = {  # the last request of a pipeline and its status for anyone
    "close": (request("GET", "/version", ("Connection", "close")), 200),
    "connect-path": (request("CONNECT", "/v1/status"), 405),
    "connect-host": (request("CONNECT", "example.com:443"), 404),
}
HEADER = "X-Tls-Client-Cert"

decorated = st.fixed_dictionaries(
    {
        "base": st.integers(0, len(BASES) - 1),
        "upgrade": st.integers(0, len(UPGRADES) - 1),
        "chunked": st.booleans(),
        "chunks": st.lists(st.integers(1, 30), max_size=3),
        "trailers": st.lists(st.integers(0, 5), max_size=4),
        "expect": st.booleans(),
    }
)


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("kes-fuzz-http1")
    app, proxy = pki.client("fuzz-app"), pki.client("fuzz-proxy")
    config = (
        f"version: v1\nadmin:\n  identity: {pki.client('admin').identity}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
        f"  proxy:\n    identities: [{proxy.identity}]\n    header:\n      cert: {HEADER}\n"
        "policy:\n  app:\n    allow: [/v1/key/describe/*, /v1/key/encrypt/fz-*]\n"
        f"    identities: [{app.identity}]\n"
        f"keystore:\n  fs:\n    path: {root / 'keys'}\n"
    )
    server = start_server(root, pki, config)
    with server.client(pki.client("admin")) as c:
        assert c.post("/v1/key/create/fz-key").status_code == 200
    yield server
    server.stop()


@pytest.fixture(scope="module")
def expected(kes: RunningServer, pki: PKI) -> dict[str, list[int]]:
    """Each base request's status when sent plainly, by sender (the oracle)."""
    statuses = {}
    for sender in ("admin", "proxy"):
        pipeline = b"".join(_plain(pki, sender, i) for i in range(len(BASES)))
        data = _exchange(kes, pki, sender, [pipeline + FINALS["close"][0]])
        replies, rest = parse_replies(data, [m for m, _, _ in BASES] + ["GET"])
        assert len(replies) == len(BASES) + 1 and rest == b""
        statuses[sender] = [r.status for r in replies[:-1]]
    assert statuses["proxy"][3] == 403 and statuses["admin"][3] == 400  # two identities
    return statuses


def _forwarded(pki: PKI, sender: str, name: str = "fuzz-app") -> tuple[tuple[str, str], ...]:
    if sender != "proxy":
        return ()
    return ((HEADER, quote(pki.client(name).cert_file.read_text(), safe="")),)


def _plain(pki: PKI, sender: str, index: int) -> bytes:
    method, target, body = BASES[index]
    return request(method, target, *_forwarded(pki, sender), body=body)


def _decorated(pki: PKI, sender: str, item: dict[str, Any]) -> bytes:
    method, target, body = BASES[item["base"]]
    headers = [*_forwarded(pki, sender), *UPGRADES[item["upgrade"]]]
    if item["expect"]:
        headers.append(("Expect", "100-continue"))
    if not item["chunked"]:
        return request(method, target, *headers, body=body)
    payload, chunks = body or b"", []
    for size in item["chunks"]:
        chunks.append(payload[:size])
        payload = payload[size:]
    chunks.append(payload)
    trailer_fields = [
        _forwarded(pki, "proxy", "admin")[0],  # the admin's certificate: never the identity
        ("X-Forwarded-For", "6.6.6.6"),
        ("Upgrade", "websocket"),
        ("Expect", "100-continue"),
        ("Connection", "upgrade"),
        ("X-Trailer", "t"),
    ]
    trailers = [trailer_fields[i] for i in item["trailers"]]
    return request(method, target, *headers, chunks=chunks, trailers=trailers)


def _exchange(kes: RunningServer, pki: PKI, sender: str, parts: list[bytes]) -> bytes:
    ident = pki.client("fuzz-proxy" if sender == "proxy" else "admin")
    with tls_socket(kes, ident) as tls:
        for i, part in enumerate(parts):
            if i:
                time.sleep(0.005)  # the server reads the pieces apart
            tls.sendall(part)
        return read_until_closed(tls)


def _split(data: bytes, cuts: list[float]) -> list[bytes]:
    points = sorted({int(c * len(data)) for c in cuts} - {0})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@with_examples([dict(d) for _, d in corpus_json("http1")])
@given(
    sender=st.sampled_from(("admin", "proxy")),
    pipeline=st.lists(decorated, min_size=1, max_size=4),
    final=st.sampled_from(sorted(FINALS)),
    cuts=st.lists(st.floats(0, 1, exclude_max=True), max_size=2),
)
def test_decorations_change_no_answer(
    kes: RunningServer,
    pki: PKI,
    expected: dict[str, list[int]],
    sender: str,
    pipeline: list[dict[str, Any]],
    final: str,
    cuts: list[float],
) -> None:
    last, last_status = FINALS[final]
    data = b"".join(_decorated(pki, sender, item) for item in pipeline) + last
    received = _exchange(kes, pki, sender, _split(data, cuts))
    methods = [BASES[item["base"]][0] for item in pipeline] + ["GET"]
    replies, rest = parse_replies(received, methods)
    want = [expected[sender][item["base"]] for item in pipeline] + [last_status]
    assert [r.status for r in replies] == want, (replies, received[-300:])
    assert rest == b""
    assert all(set(r.informational) <= {100} for r in replies)
