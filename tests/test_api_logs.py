"""Live log streams: /v1/log/audit and /v1/log/error deliver events (the Go server's
streams stay empty — a bug we fix, api.md §5.21)."""

from __future__ import annotations

import json
import threading

from conftest import PKI, config_yaml, start_server


def _collect(client, path: str, out: list[dict], ready: threading.Event, count: int) -> None:
    with client.stream("GET", path) as r:
        out.append({"status": r.status_code, "content_type": r.headers["content-type"]})
        ready.set()
        for line in r.iter_lines():
            if line:
                out.append(json.loads(line))
            if len(out) > count:
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
