"""TLS proxies (docs/compat/auth.md §10): a configured proxy identity forwards the real
client's certificate in a header; nobody else can. Real server, real mTLS, HTTP/1.1 and
HTTP/2; the proxy is played by a client holding the proxy's certificate."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hyperframe.frame import DataFrame, HeadersFrame

from conftest import (
    PKI,
    ClientIdentity,
    RunningServer,
    _pem_key,
    make_certificate,
    spki_identity,
    start_server,
)
from h1peer import exchange, parse_replies, read_until_closed, request, tls_socket
from h2peer import RawH2

HEADER = "X-Tls-Client-Cert"
DENIED = {"message": "not authorized: insufficient permissions"}


def _escaped(ident: ClientIdentity, plus: bool = True) -> str:
    pem = ident.cert_file.read_text()
    return quote_plus(pem) if plus else quote(pem, safe="")


def _config(pki: PKI, root: Path, auth: str = "", ca: str = "", proxy: str = "") -> str:
    admin, app = pki.client("admin"), pki.client("proxy-app")
    proxy_id = proxy or pki.client("proxy").identity
    return (
        "version: v1\n"
        f"admin:\n  identity: {admin.identity}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
        + (f"  auth: {auth}\n" if auth else "")
        + (f"  ca: {ca}\n" if ca else "")
        + f"  proxy:\n    identities: [{proxy_id}]\n    header:\n      cert: {HEADER}\n"
        "policy:\n"
        f"  app:\n    allow: [/v1/key/describe/*]\n    identities: [{app.identity}]\n"
        f"keystore:\n  fs:\n    path: {root / 'keys'}\n"
    )


@pytest.fixture(scope="module")
def server(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("proxy")
    srv = start_server(root, pki, _config(pki, root))
    try:
        with srv.client(pki.client("admin")) as c:
            assert c.post("/v1/key/create/k").status_code == 200
        yield srv
    finally:
        srv.stop()


@pytest.fixture(params=[False, True], ids=["h1", "h2"])
def http2(request: pytest.FixtureRequest) -> bool:
    return request.param


def _audit(server: RunningServer, path: str, count: int = 1) -> list[dict]:
    """The audit events of ``path`` on the server's stdout (waits for ``count``)."""
    deadline = time.monotonic() + 10
    while True:
        lines = server.stdout.read_text().splitlines()
        events = [json.loads(line) for line in lines if line.startswith('{"time"')]
        events = [e for e in events if e.get("request", {}).get("path") == path]
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


def test_a_proxy_acts_for_the_forwarded_client(server: RunningServer, pki: PKI, http2) -> None:
    app = pki.client("proxy-app")
    with server.client(pki.client("proxy"), http2=http2) as proxy:
        # the app's policy allows describe only; the admin may do everything
        r = proxy.get("/v1/key/describe/k", headers={HEADER: _escaped(app, plus=http2)})
        assert r.status_code == 200, r.text
        r = proxy.post("/v1/key/create/by-app", headers={HEADER: _escaped(app)})
        assert (r.status_code, r.json()) == (403, DENIED)
        admin = pki.client("admin")
        r = proxy.post(f"/v1/key/create/by-admin-{int(http2)}", headers={HEADER: _escaped(admin)})
        assert r.status_code == 200, r.text
        r = proxy.get("/v1/identity/self/describe", headers={HEADER: _escaped(app)})
        assert r.json()["identity"] == app.identity
        # the key records the forwarded client as its creator
        r = proxy.get(f"/v1/key/describe/by-admin-{int(http2)}", headers={HEADER: _escaped(admin)})
        assert r.json()["created_by"] == admin.identity


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([], "no client certificate is present"),
        ([(HEADER, "a"), (HEADER, "b")], "too many client certificates are present"),
        ([(HEADER, "not a certificate")], "invalid client certificate"),
        ([(HEADER, "%zz")], "invalid client certificate"),
        (
            [
                (
                    HEADER,
                    quote_plus("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
                )
            ],
            "invalid client certificate",
        ),
    ],
    ids=["missing", "two", "garbage", "bad-escape", "bad-der"],
)
def test_bad_forwarding_is_a_400(
    server: RunningServer, pki: PKI, http2, headers: list, message: str
) -> None:
    with server.client(pki.client("proxy"), http2=http2) as proxy:
        r = proxy.get("/v1/key/describe/k", headers=headers)
        assert (r.status_code, r.json()) == (400, {"message": message})


def test_a_private_key_block_in_the_header_is_invalid_and_never_logged(
    server: RunningServer, pki: PKI
) -> None:
    secret_pem = pki.client("proxy-app").key_file.read_text()
    with server.client(pki.client("proxy")) as proxy:
        r = proxy.get("/v1/key/describe/k", headers={HEADER: quote_plus(secret_pem)})
    assert (r.status_code, r.json()) == (400, {"message": "invalid client certificate"})
    der = serialization.load_pem_private_key(secret_pem.encode(), None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _audit(server, "/v1/key/describe/k")
    out, err = server.output()
    body = secret_pem.split("-----")[2].strip().splitlines()[0]
    for needle in (body, quote_plus(secret_pem)[:60], der.hex()[:64]):
        assert needle not in out + err


def test_the_proxy_has_no_identity_of_its_own(server: RunningServer, pki: PKI, http2) -> None:
    """Without a header a proxy is refused on policy routes and anonymous on
    identify-only routes; it is never treated as a client itself."""
    path = "/v1/identity/self/describe"
    with server.client(pki.client("proxy"), http2=http2) as proxy:
        r = proxy.get("/v1/key/describe/k")
        assert (r.status_code, r.json()) == (400, {"message": "no client certificate is present"})
        for headers in ({}, {HEADER: "junk"}):
            r = proxy.get(path, headers=headers)
            assert (r.status_code, r.json()) == (404, {"message": "identity does not exist"})
        version = proxy.get("/version")  # a stateless server: Go's fields, no "host"
        assert version.status_code == 200 and set(version.json()) == {"version", "commit"}
    events = _audit(server, "/v1/identity/self/describe", 2)
    assert sum(1 for e in events if "identity" not in e["request"]) >= 2  # anonymous
    assert all(e["request"].get("identity") != pki.client("proxy").identity for e in events)


def test_spoofing_the_header_from_a_non_proxy_changes_nothing(
    server: RunningServer, pki: PKI, http2
) -> None:
    nobody = pki.client("proxy-nobody")  # no policy
    admin = pki.client("admin")
    with server.client(nobody, http2=http2) as c:
        r = c.post("/v1/key/create/spoofed", headers={HEADER: _escaped(admin)})
        assert (r.status_code, r.json()) == (403, DENIED)
        r = c.get("/v1/identity/self/describe", headers={HEADER: _escaped(admin)})
        assert (r.status_code, r.json()) == (404, {"message": "identity does not exist"})
    with server.client(admin, http2=http2) as c:  # and the other way round
        r = c.get("/v1/key/describe/k", headers={HEADER: _escaped(nobody)})
        assert r.status_code == 200
        r = c.get("/v1/identity/self/describe", headers={HEADER: _escaped(nobody)})
        assert r.json()["identity"] == admin.identity


def test_audit_address_from_x_forwarded_for_only_for_proxies(
    server: RunningServer, pki: PKI
) -> None:
    app = pki.client("proxy-app")
    with server.client(pki.client("proxy")) as proxy:
        for path, xff in (
            ("/v1/key/describe/xff-1", "203.0.113.7:5555, 10.0.0.1"),
            ("/v1/key/describe/xff-2", "[2001:db8::1]:80"),
            ("/v1/key/describe/xff-3", "unknown, 10.0.0.2"),
            ("/v1/key/describe/xff-5", '1.2.3.4", "identity":"forged'),  # not an address
        ):
            proxy.get(path, headers={HEADER: _escaped(app), "X-Forwarded-For": xff})
    with server.client(pki.client("admin")) as c:
        c.get("/v1/key/describe/xff-4", headers={"X-Forwarded-For": "198.51.100.9"})
    got = {
        p: _audit(server, p)[0]["request"] for p in (f"/v1/key/describe/xff-{i}" for i in "12345")
    }
    assert got["/v1/key/describe/xff-1"]["ip"] == "203.0.113.7"
    assert got["/v1/key/describe/xff-1"]["identity"] == app.identity
    assert got["/v1/key/describe/xff-2"]["ip"] == "2001:db8::1"
    assert got["/v1/key/describe/xff-3"]["ip"] == "127.0.0.1"  # "unknown" is ignored
    assert got["/v1/key/describe/xff-4"]["ip"] == "127.0.0.1"  # not a proxy: ignored
    # header text that is not an IP address never reaches the audit line
    assert got["/v1/key/describe/xff-5"]["ip"] == "127.0.0.1"
    assert got["/v1/key/describe/xff-5"]["identity"] == app.identity


def test_with_tls_auth_on_forwarded_certificates_are_verified(tmp_path: Path, pki: PKI) -> None:
    """``tls.auth: on``: the proxy's own certificate and the forwarded ones must chain
    to ``tls.ca``; a forwarded self-signed certificate gets 403 with an empty message."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_certificate(ca_key, "proxy test CA", ca=True, eku=())
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def issued(name: str, key: ed25519.Ed25519PrivateKey, signed: bool = True) -> ClientIdentity:
        issuer = {"issuer_key": ca_key, "issuer_name": ca.subject} if signed else {}
        cert = make_certificate(key, name, **issuer)
        ident = ClientIdentity(tmp_path / f"{name}.crt", tmp_path / f"{name}.key", "")
        ident.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        ident.key_file.write_bytes(_pem_key(key))
        ident.identity = spki_identity(cert)
        return ident

    admin_key = ed25519.Ed25519PrivateKey.generate()
    proxy = issued("verified-proxy", ed25519.Ed25519PrivateKey.generate())
    admin = issued("verified-admin", admin_key)
    # the admin's identity (same key), but self-signed: does not chain to the CA
    unverified = issued("unverified-admin", admin_key, signed=False)
    assert unverified.identity == admin.identity
    text = _config(pki, tmp_path, auth="on", ca=str(tmp_path / "ca.pem"), proxy=proxy.identity)
    text = text.replace(pki.client("admin").identity, admin.identity)
    srv = start_server(tmp_path, pki, text)
    try:
        with srv.client(proxy) as c:
            r = c.post("/v1/key/create/verified", headers={HEADER: _escaped(admin)})
            assert r.status_code == 200, r.text
            r = c.post("/v1/key/create/unverified", headers={HEADER: _escaped(unverified)})
            assert (r.status_code, r.json()) == (403, {"message": ""})
    finally:
        srv.stop()


# ------------------------------------------------------------------ HTTP/1.1 trailers
# Go reads request headers only: a forwarded certificate or X-Forwarded-For in a chunked
# body's trailer is nobody's identity and nobody's address (issue 20).
def _trailer_cert(ident: ClientIdentity) -> list[tuple[str, str]]:
    return [(HEADER, _escaped(ident, plus=False)), ("X-Forwarded-For", "6.6.6.6")]


def test_a_forwarded_certificate_in_a_trailer_is_ignored(server: RunningServer, pki: PKI) -> None:
    admin, app = pki.client("admin"), pki.client("proxy-app")
    with server.client(admin) as c:
        assert c.post("/v1/key/create/trailer-victim").status_code == 200
    # the proxy forwards no certificate in the headers, the admin's in the trailer
    data = exchange(
        server,
        pki.client("proxy"),
        request("DELETE", "/v1/key/delete/trailer-victim", ("Connection", "close"),
                trailers=_trailer_cert(admin)),
    )  # fmt: skip
    (reply,), rest = parse_replies(data, ["DELETE"])
    assert (reply.status, reply.body, rest) == (
        400,
        b'{"message":"no client certificate is present"\n}',
        b"",
    )
    with server.client(admin) as c:
        assert c.get("/v1/key/describe/trailer-victim").status_code == 200  # not deleted
    # a header and a trailer: the header counts (not "too many certificates")
    data = exchange(
        server,
        pki.client("proxy"),
        request("POST", "/v1/key/create/trailer-by-app", (HEADER, _escaped(app)),
                ("Connection", "close"), chunks=[b"{}"], trailers=_trailer_cert(admin)),
    )  # fmt: skip
    (reply,), _ = parse_replies(data, ["POST"])
    assert (reply.status, json.loads(reply.body)) == (403, DENIED)
    events = _audit(server, "/v1/key/create/trailer-by-app")
    assert [e["request"]["identity"] for e in events] == [app.identity]
    assert [e["request"]["ip"] for e in events] == ["127.0.0.1"]  # not the trailer's 6.6.6.6
    events = _audit(server, "/v1/key/delete/trailer-victim")
    assert all(e["request"].get("identity") != admin.identity for e in events)


def test_trailers_of_pipelined_requests_never_reach_the_next(
    server: RunningServer, pki: PKI
) -> None:
    """Three requests in one write, each a chunked body with the admin's certificate in
    its trailer: each runs as what its own headers say."""
    admin, app = pki.client("admin"), pki.client("proxy-app")
    trailer = _trailer_cert(admin)
    data = exchange(
        server,
        pki.client("proxy"),
        request("GET", "/v1/identity/self/describe", (HEADER, _escaped(app)), chunks=[b"x"],
                trailers=trailer)
        + request("POST", "/v1/key/create/trailer-pipelined", chunks=[b"{}"], trailers=trailer)
        + request("GET", "/v1/identity/self/describe", chunks=[], trailers=trailer)
        + request("GET", "/v1/identity/self/describe", (HEADER, _escaped(app)),
                  ("Connection", "close")),
    )  # fmt: skip
    replies, rest = parse_replies(data, ["GET", "POST", "GET", "GET"])
    assert [r.status for r in replies] == [200, 400, 404, 200] and rest == b""
    assert json.loads(replies[0].body)["identity"] == app.identity
    assert json.loads(replies[1].body) == {"message": "no client certificate is present"}
    assert json.loads(replies[3].body)["identity"] == app.identity
    with server.client(admin) as c:
        assert c.get("/v1/key/describe/trailer-pipelined").status_code == 404


def test_trailers_change_nothing_for_other_clients(server: RunningServer, pki: PKI) -> None:
    """The plain (non-proxy) handler: a trailer with a certificate, an address, an
    Upgrade or an Expect line is skipped; keep-alive and pipelining go on."""
    nobody, admin = pki.client("proxy-nobody"), pki.client("admin")
    trailer = [*_trailer_cert(admin), ("Upgrade", "websocket"), ("Expect", "100-continue")]
    data = exchange(
        server,
        nobody,
        request("POST", "/v1/key/create/trailer-nobody", chunks=[b"{}"], trailers=trailer)
        + request("GET", "/v1/identity/self/describe", chunks=[b"a", b"b"], trailers=trailer)
        + request("GET", "/version", ("Connection", "close")),
    )
    replies, rest = parse_replies(data, ["POST", "GET", "GET"])
    assert [r.status for r in replies] == [403, 404, 200] and rest == b""
    assert all(not r.informational for r in replies)


def test_a_forwarded_certificate_in_an_http2_trailer_is_ignored(
    server: RunningServer, pki: PKI
) -> None:
    admin = pki.client("admin")
    with RawH2(server, pki.client("proxy")) as h2:
        h2.send(
            HeadersFrame(1, h2.block("POST", "/v1/key/create/h2-trailer"), flags=["END_HEADERS"]),
            DataFrame(1, b"{}"),
            HeadersFrame(
                1,
                h2.encoder.encode(
                    [(HEADER.lower(), _escaped(admin)), ("x-forwarded-for", "6.6.6.6")]
                ),
                flags=["END_HEADERS", "END_STREAM"],
            ),
        )
        status, _, body = h2.response(1)
    assert (status, json.loads(body)) == (400, {"message": "no client certificate is present"})
    with server.client(admin) as c:
        assert c.get("/v1/key/describe/h2-trailer").status_code == 404


def test_expect_100_continue_is_decided_as_the_forwarded_client(
    server: RunningServer, pki: PKI
) -> None:
    """100 Continue only when the forwarded client may call the route (Go writes it
    when the handler reads the body); otherwise the refusal comes at once."""
    admin, app = pki.client("admin"), pki.client("proxy-app")
    body = b'{"plaintext":"aGVsbG8="}'
    head = (
        b"POST /v1/key/encrypt/k HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n%s: %s\r\n\r\n"
    )
    with tls_socket(server, pki.client("proxy")) as tls:
        tls.sendall(head % (len(body), HEADER.encode(), _escaped(admin).encode()))
        assert tls.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        tls.sendall(body)
        (reply,), _ = parse_replies(tls.recv(65536), ["POST"])
        assert reply.status == 200 and b'"ciphertext"' in reply.body
        tls.sendall(head % (len(body), HEADER.encode(), _escaped(app).encode()))
        (reply,), rest = parse_replies(read_until_closed(tls), ["POST"])
    assert (reply.status, json.loads(reply.body), reply.informational) == (403, DENIED, [])
