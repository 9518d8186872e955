"""Observability across worker processes and exact metric counting (issue 3)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PKI, config_yaml, start_server


def _counter_values(text: str) -> dict[tuple[str, str], float]:
    """(family or sample name, code/le) → value, parsed with prometheus_client's own
    parser (which presents counter samples as ``<family>_total``; key them by family)."""
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = family.name if family.type == "counter" else sample.name
            label = sample.labels.get("code", sample.labels.get("le", ""))
            out[(name, label)] = sample.value
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_count_exactly_across_workers(tmp_path, pki: PKI, workers: int) -> None:
    admin = pki.client("admin")
    server = start_server(
        tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"), workers=workers
    )
    try:
        time.sleep(0.3)
        with server.client(admin) as c:
            before = _counter_values(c.get("/v1/metrics").text)
        for i in range(10):  # a new connection each: spread over the workers
            with server.client(admin) as c:
                assert c.get(f"/v1/key/describe/missing-{i}").status_code == 404
                assert c.post(f"/v1/key/create/m-{workers}-{i}").status_code == 200
                c.get("/v1/status")  # not a counted route
        with server.client(admin) as c:
            after = _counter_values(c.get("/v1/metrics").text)
    finally:
        server.stop()
    assert (
        after[("kes_http_request_error", "404")] - before.get(("kes_http_request_error", "404"), 0)
        == 10
    )
    assert (
        after[("kes_http_request_success", "200")]
        - before.get(("kes_http_request_success", "200"), 0)
        == 10
    )
    assert (
        after[("kes_http_response_time_count", "")]
        - before.get(("kes_http_response_time_count", ""), 0)
        == 20
    )
    assert (
        after[("kes_http_response_time_bucket", "+Inf")]
        == after[("kes_http_response_time_count", "")]
    )
    assert after[("kes_http_request_active", "")] == 0
    assert after[("kes_system_up_time", "")] > 0


def test_audit_stream_sees_events_of_every_worker(tmp_path, pki: PKI) -> None:
    admin = pki.client("admin")
    server = start_server(
        tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"), workers=2
    )
    events: list[dict] = []
    ready = threading.Event()
    done = threading.Event()

    def collect() -> None:
        with server.client(admin) as streamer, streamer.stream("GET", "/v1/log/audit") as r:
            ready.set()
            for line in r.iter_lines():
                if line:
                    events.append(json.loads(line))
                if len([e for e in events if "/bus-" in e["request"]["path"]]) >= 20:
                    done.set()
                    return

    try:
        time.sleep(0.5)
        t = threading.Thread(target=collect, daemon=True)
        t.start()
        assert ready.wait(10)
        time.sleep(0.5)  # the master tells the other worker that a subscriber exists
        for i in range(20):
            with server.client(admin) as c:  # new connections land on both workers
                assert c.post(f"/v1/key/create/bus-{i}").status_code == 200
        assert done.wait(15), len(events)
    finally:
        server.stop()
    paths = [e["request"]["path"] for e in events if "/bus-" in e["request"]["path"]]
    assert sorted(paths) == sorted(f"/v1/key/create/bus-{i}" for i in range(20))  # once each
    out = server.output()[0]
    workers_seen = {line for line in out.splitlines() if "/v1/key/create/bus-" in line}
    assert len(workers_seen) == 20  # stdout has each event exactly once as well
