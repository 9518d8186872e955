"""Live log streams: /v1/log/audit and /v1/log/error deliver events (the Go server's
streams stay empty — a bug we fix, docs/compat/api.md §5.21)."""

from __future__ import annotations

import json
import threading

from conftest import PKI, config_yaml, start_server


def _collect(client, path: str, out: list[dict], ready: threading.Event, until) -> None:
    """Read the stream into ``out`` until ``until(out)`` (an int: that many events)."""
    if isinstance(until, int):
        count = until
        until = lambda events: len(events) > count  # noqa: E731
    with client.stream("GET", path) as r:
        out.append({"status": r.status_code, "content_type": r.headers["content-type"]})
        ready.set()
        for line in r.iter_lines():
            if line:
                out.append(json.loads(line))
            if until(out):
                return


def test_audit_stream_over_http1_and_http2(tmp_path, pki: PKI) -> None:
    admin = pki.client("admin")
    server = start_server(tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"))
    try:
        for http2 in (False, True):
            events: list[dict] = []
            ready = threading.Event()
            with server.client(admin, http2=http2) as streamer, server.client(admin) as c:
                t = threading.Thread(
                    target=_collect, args=(streamer, "/v1/log/audit", events, ready, 2), daemon=True
                )
                t.start()
                assert ready.wait(10)
                name = f"streamed-{int(http2)}"
                assert c.post(f"/v1/key/create/{name}").status_code == 200
                assert c.delete(f"/v1/key/delete/{name}").status_code == 200
                t.join(10)
            assert events[0] == {"status": 200, "content_type": "application/x-ndjson"}
            created, deleted = events[1], events[2]
            assert created["request"]["path"] == f"/v1/key/create/{name}"
            assert created["request"]["identity"] == admin.identity
            assert created["request"]["ip"] == "127.0.0.1"
            assert created["response"]["code"] == 200
            assert isinstance(created["response"]["time"], int) and created["response"]["time"] > 0
            assert deleted["request"]["path"] == f"/v1/key/delete/{name}"
    finally:
        server.stop()


def _four_key_events(events: list[dict]) -> bool:
    return sum(1 for e in events[1:] if e["request"]["path"].startswith("/v1/key/")) >= 4


def test_error_stream_and_audit_stream_carry_no_secrets(tmp_path, pki: PKI) -> None:
    import base64
    import socket
    import ssl

    admin = pki.client("admin")
    server = start_server(tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"))
    key = bytes(range(100, 132))
    secret = b"stream-secret-plaintext"
    context = b"stream-secret-context"
    try:
        errors: list[dict] = []
        audits: list[dict] = []
        ready_e, ready_a = threading.Event(), threading.Event()
        with server.client(admin) as s1, server.client(admin) as s2, server.client(admin) as c:
            te = threading.Thread(
                target=_collect, args=(s1, "/v1/log/error", errors, ready_e, 1), daemon=True
            )
            ta = threading.Thread(
                target=_collect,
                args=(s2, "/v1/log/audit", audits, ready_a, _four_key_events),
                daemon=True,
            )
            te.start()
            ta.start()
            assert ready_e.wait(10) and ready_a.wait(10)
            # a TLS failure: a client without a certificate
            ctx = ssl.create_default_context(cafile=str(pki.server_cert))
            try:
                with (
                    socket.create_connection(("127.0.0.1", server.port)) as raw,
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
                ):
                    tls.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
                    tls.recv(10)
            except (ssl.SSLError, ConnectionError):
                pass
            b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
            assert (
                c.post(
                    "/v1/key/import/s-key", json={"key": b64(key), "cipher": "AES256"}
                ).status_code
                == 200
            )
            ct = c.post(
                "/v1/key/encrypt/s-key", json={"plaintext": b64(secret), "context": b64(context)}
            )
            r = c.post(
                "/v1/key/decrypt/s-key",
                json={"ciphertext": ct.json()["ciphertext"], "context": b64(context)},
            )
            assert r.json()["plaintext"] == b64(secret)
            c.post("/v1/key/decrypt/s-key", json={"ciphertext": ct.json()["ciphertext"]})  # 400
            te.join(10)
            ta.join(10)
    finally:
        server.stop()
    assert errors[0] == {"status": 200, "content_type": "application/x-ndjson"}
    messages = [e["message"] for e in errors[1:]]
    assert len(messages) == 1
    assert (
        "level=INFO" in messages[0] and "http: TLS handshake error from 127.0.0.1:" in messages[0]
    )
    # (the other stream's own GET /v1/log/error may be audited here too, racing)
    paths = [
        (e["request"]["path"], e["response"]["code"])
        for e in audits[1:]
        if e["request"]["path"].startswith("/v1/key/")
    ]
    assert paths == [
        ("/v1/key/import/s-key", 200),
        ("/v1/key/encrypt/s-key", 200),
        ("/v1/key/decrypt/s-key", 200),
        ("/v1/key/decrypt/s-key", 400),
    ]
    out, err = server.output()
    everything = json.dumps(errors) + json.dumps(audits) + out + err
    for needle in (
        key.hex(),
        base64.b64encode(key).decode(),
        secret.decode(),
        base64.b64encode(secret).decode(),
        context.decode(),
        ct.json()["ciphertext"],
    ):
        assert needle not in everything
