"""The shipped Grafana dashboard queries only metric names the server exposes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from conftest import PKI, config_yaml, start_server

DASHBOARD = Path(__file__).resolve().parents[1] / "examples" / "grafana" / "dashboard.json"


def test_dashboard_metric_names_exist(tmp_path: Path, pki: PKI) -> None:
    admin = pki.client("admin")
    server = start_server(tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"))
    try:
        with server.client(admin) as c:
            c.get("/v1/key/describe/missing")  # 404: makes the error counter appear
            c.post("/v1/key/create/present")
            c.post("/v1/key/generate/present", json={})
            c.post("/v1/key/generate/missing", json={})
            shutil.rmtree(tmp_path / "keys")  # a keystore failure: 502 for the failure counter
            assert c.post("/v1/key/create/lost").status_code == 502
            text = c.get("/v1/metrics").text
    finally:
        server.stop()
    exposed: set[str] = set()
    for family in text_string_to_metric_families(text):
        exposed.add(family.name)
        exposed.update(s.name for s in family.samples)
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    used = {m for e in exprs for m in re.findall(r"\b(kes_[a-z_]+)", e)}
    assert used, exprs
    assert used <= exposed, used - exposed
    # Every family of the spec (docs/compat/observability.md §3) is used by some panel.
    families = {
        "kes_http_request_active",
        "kes_http_request_error",
        "kes_http_request_failure",
        "kes_http_request_success",
        "kes_http_response_time_bucket",
        "kes_log_audit_events",
        "kes_log_error_events",
        "kes_system_mem_heap_used",
        "kes_system_num_cpu",
        "kes_system_up_time",
    }
    assert families <= used
