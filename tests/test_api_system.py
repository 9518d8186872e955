"""/version, /v1/status, /v1/ready, /v1/api, /v1/metrics, routing quirks."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest

from conftest import PKI, RunningServer


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI):
    from conftest import config_yaml, start_server

    root = tmp_path_factory.mktemp("kes-system")
    extra = "api:\n  /v1/key/list/:\n    timeout: 3s\n  /v1/ready:\n    skip_auth: false\n"
    server = start_server(
        root, pki, config_yaml(pki, pki.client("admin").identity, root / "keys", extra)
    )
    yield server
    server.stop()


@pytest.fixture
def admin(kes: RunningServer, pki: PKI):
    with kes.client(pki.client("admin")) as c:
        yield c


def test_status_numbers_are_integers(admin) -> None:
    r = admin.get("/v1/status")
    assert r.status_code == 200
    body = r.json()
    for field in (
        "uptime",
        "num_cpu",
        "num_cpu_used",
        "mem_heap_used",
        "mem_stack_used",
        "keystore_latency",
    ):
        assert type(body[field]) is int, field
    assert body["keystore_latency"] >= 1
    assert "keystore_unreachable" not in body and "keystore_unavailable" not in body
    assert body["os"] == "linux"


def test_ready_and_api_listing(admin) -> None:
    r = admin.get("/v1/ready")
    assert (r.status_code, r.content) == (200, b"")
    routes = {(e["method"], e["path"]): e for e in admin.get("/v1/api").json()}
    assert len(routes) == 22
    assert routes[("PUT", "/v1/key/generate/")]["max_body"] == 1_000_000
    assert routes[("GET", "/v1/key/list/")]["timeout"] == 3  # the configured override
    assert routes[("GET", "/version")]["timeout"] == 10
    assert routes[("GET", "/v1/log/audit")]["timeout"] == 0
    assert routes[("GET", "/v1/key/describe/")]["max_body"] == 0


def test_unknown_path_is_go_404(admin) -> None:
    r = admin.get("/v1/nope")
    assert r.status_code == 404
    assert r.text == "404 page not found\n"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_unclean_path_redirects(admin) -> None:
    r = admin.get("/v1//status")
    assert r.status_code == 301 and r.headers["location"] == "/v1/status"


def test_query_string_is_ignored(admin) -> None:
    assert admin.get("/v1/status?enclave=foo").status_code == 200


def test_metrics_families(admin) -> None:
    admin.post("/v1/key/create/metric-key")
    admin.get("/v1/key/describe/metric-key")
    admin.get("/v1/key/describe/metric-missing")
    r = admin.get("/v1/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for family, kind in [
        ("kes_http_request_active", "gauge"),
        ("kes_http_request_success", "counter"),
        ("kes_http_request_error", "counter"),
        ("kes_http_response_time", "histogram"),
        ("kes_system_up_time", "gauge"),
        ("kes_system_num_cpu", "gauge"),
        ("kes_log_audit_events", "counter"),
    ]:
        assert f"# TYPE {family} {kind}" in text, family
    assert 'kes_http_request_error{code="404"}' in text
    assert "_total" not in text
    assert 'kes_http_response_time_bucket{le="0.01"}' in text


def test_oversize_body_is_400_and_closes(admin) -> None:
    body = b'{"plaintext":"' + b"A" * 1_000_100 + b'"}'
    r = admin.post("/v1/key/encrypt/some-key", content=body)
    assert (r.status_code, r.json()) == (400, {"message": "invalid request body"})
    assert r.headers.get("connection") == "close"


def test_write_deadline_cuts_slow_request(kes: RunningServer, pki: PKI) -> None:
    """A request whose body never completes is cut when the route timeout (3 s) passes."""
    ctx = kes.ssl_context(pki.client("admin"))
    ctx.set_alpn_protocols(["http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", kes.port)) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /v1/key/list/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        tls.settimeout(10)
        start = time.monotonic()
        data = tls.recv(1024)
        elapsed = time.monotonic() - start
    # The body never arrives, so no response can be written before the route's 3 s
    # write deadline: the connection is torn down then (no 503 body, docs/compat/api.md §3.5).
    assert data == b""
    assert 2.0 < elapsed < 6


def test_http1_pipelining_keeps_order(kes: RunningServer, pki: PKI) -> None:
    ctx = kes.ssl_context(pki.client("admin"))
    ctx.set_alpn_protocols(["http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", kes.port)) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(
            b"GET /v1/key/describe/pipe-missing HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        tls.settimeout(10)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    first = data.index(b"HTTP/1.1 404")
    second = data.index(b"HTTP/1.1 200")
    assert first < second
    assert b'{"message":"key does not exist"\n}' in data


def test_unreachable_keystore_status_and_ready(tmp_path, pki: PKI) -> None:
    import shutil

    from conftest import config_yaml, start_server

    admin = pki.client("admin")
    server = start_server(tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"))
    try:
        shutil.rmtree(tmp_path / "keys")
        with server.client(admin) as c:
            body = c.get("/v1/status").json()
            # both flags: the Go SDK decodes this (unreachable alone makes it fail)
            assert body["keystore_unreachable"] is True
            assert body["keystore_unavailable"] is True
            assert "keystore_latency" not in body
            r = c.get("/v1/ready")
            assert (r.status_code, r.json()) == (504, {"message": "key store is not reachable"})
    finally:
        server.stop()
    assert "level=WARN" in server.output()[1]


def test_head_gets_405_without_a_body_and_keep_alive_survives(kes: RunningServer, pki: PKI) -> None:
    ctx = kes.ssl_context(pki.client("admin"))
    ctx.set_alpn_protocols(["http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", kes.port)) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(
            b"HEAD /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        tls.settimeout(10)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 405 ")
    assert rest.startswith(b"HTTP/1.1 200 OK")  # no 405 body in between


@pytest.mark.parametrize(
    "request_bytes,status",
    [
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n", b"431"),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", b"400"),
        (b"NOT-HTTP\r\n\r\n", b"400"),
    ],
)
def test_malformed_http1_is_refused_cleanly(
    kes: RunningServer, pki: PKI, request_bytes, status
) -> None:
    ctx = kes.ssl_context(pki.client("admin"))
    ctx.set_alpn_protocols(["http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", kes.port)) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.settimeout(10)
        with contextlib.suppress(ConnectionError, OSError):
            tls.sendall(request_bytes)
        data = b""
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := tls.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 " + status), data[:100]
    with kes.client(pki.client("admin")) as c:  # the server is fine afterwards
        assert c.get("/v1/status").status_code == 200


def test_http2_stream_deadline_resets_a_stalled_stream(kes: RunningServer, pki: PKI) -> None:
    """HTTP/2: a stream whose body never arrives is reset at the route deadline (3 s
    here), while the connection itself stays usable for other streams."""
    import h2.config
    import h2.connection
    import h2.events

    ctx = kes.ssl_context(pki.client("admin"))
    ctx.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", kes.port)) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        headers = [(":method", "GET"), (":scheme", "https"), (":authority", "x")]
        conn.send_headers(1, [*headers, (":path", "/v1/key/list/")], end_stream=False)
        tls.sendall(conn.data_to_send())
        tls.settimeout(10)
        start = time.monotonic()
        reset_after = None
        while reset_after is None:
            data = tls.recv(65536)
            assert data, "connection closed instead of a stream reset"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.StreamReset) and event.stream_id == 1:
                    reset_after = time.monotonic() - start
            tls.sendall(conn.data_to_send())
        assert 2.0 < reset_after < 6
        conn.send_headers(3, [*headers, (":path", "/version")], end_stream=True)
        tls.sendall(conn.data_to_send())
        status = None
        while status is None:
            for event in conn.receive_data(tls.recv(65536)):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers)[b":status"]
            tls.sendall(conn.data_to_send())
        assert status == b"200"
