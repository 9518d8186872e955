"""Multi-endpoint behaviour of the SDK (docs/compat/minio.md §5) against live servers: a
closed port or a stopped server as first endpoint, requests succeed via the next."""

from __future__ import annotations

import time

import pytest

from conftest import PKI, free_port
from pykes.client import Client, ConnError
from pykes.client.balancer import LoadBalancer, Outcome
from test_cli_support import start_kes


def test_closed_port_first_then_live_server(tmp_path, pki: PKI) -> None:
    kes = start_kes(tmp_path, pki)
    dead = f"https://127.0.0.1:{free_port()}"
    try:
        with Client([dead, kes.server.url], api_key=kes.admin, ca_file=str(pki.server_cert)) as c:
            assert c.endpoints == [dead, kes.server.url]
            start = time.monotonic()
            c.create_key("failover-1")  # dead endpoint retried twice, then timed out
            first = time.monotonic() - start
            start = time.monotonic()
            for i in range(5):
                assert c.describe_key("failover-1").name == "failover-1"
                c.create_key(f"failover-x{i}")
            later = time.monotonic() - start
        # the dead endpoint is in its 30 s timeout: no more retries / back-off sleeps
        assert first >= 0.4
        assert later < first
        assert (kes.keys_dir / "failover-x4").exists()
    finally:
        kes.stop()


def test_stopped_server_first(tmp_path, pki: PKI) -> None:
    one = start_kes(tmp_path / "one", pki)
    two = start_kes(tmp_path / "two", pki)
    try:
        one.stop()
        with Client(
            [one.server.url, two.server.url], api_key=two.admin, ca_file=str(pki.server_cert)
        ) as c:
            for i in range(3):
                c.create_key(f"via-two-{i}")
        assert sorted(p.name for p in two.keys_dir.iterdir()) == [
            "via-two-0",
            "via-two-1",
            "via-two-2",
        ]
    finally:
        two.stop()


def test_single_dead_endpoint_is_a_connection_error(pki: PKI) -> None:
    port = free_port()
    with Client(
        f"127.0.0.1:{port}",
        api_key="kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw",
        insecure=True,
    ) as c:
        start = time.monotonic()
        with pytest.raises(ConnError) as err:
            c.version()
        elapsed = time.monotonic() - start
    assert err.value.host == f"127.0.0.1:{port}"
    assert str(err.value).startswith("kes: connection error: ")
    assert 0.4 <= elapsed < 3.0  # two retries, 200 ms + 0–800 ms each


def _drive(lb: LoadBalancer, results: dict[str, list[Outcome]]) -> tuple[list[str], Outcome]:
    """Run one plan with scripted per-endpoint outcomes; return visited URLs + result."""
    visited: list[str] = []
    plan = lb.plan()
    attempt = next(plan)
    try:
        while True:
            visited.append(attempt.url)
            attempt = plan.send(results[attempt.url].pop(0))
    except StopIteration as stop:
        return visited, stop.value


def test_balancer_rules() -> None:
    a, b = "https://10.1.1.1:7373", "https://10.1.1.2:7373"
    lb = LoadBalancer([a, b])
    # 4xx is returned at once, never retried elsewhere
    visited, result = _drive(lb, {a: [Outcome(status=404)], b: [Outcome(status=404)]})
    assert len(visited) == 1 and result.status == 404
    # 503 is retried twice on the same endpoint, then the endpoint times out
    lb = LoadBalancer([a, b])
    script = {a: [Outcome(status=503)] * 3, b: [Outcome(status=503)] * 3}
    visited, result = _drive(lb, script)
    assert visited[:3] == [visited[0]] * 3 and len(visited) == 6 and result.status == 503
    # 501 is not a failure; 500 moves on without retry
    lb = LoadBalancer([a, b])
    visited, result = _drive(lb, {a: [Outcome(status=500)], b: [Outcome(status=500)]})
    assert sorted(visited) == [a, b] and result.status == 500
    # both in timeout now: the next request still tries (full retry round)
    visited, result = _drive(lb, {a: [Outcome(status=200)], b: [Outcome(status=200)]})
    assert len(visited) == 1 and result.status == 200
    lb = LoadBalancer(["https://example.org:7373", "https://localhost:7373"])
    assert lb.endpoints[0].localhost  # localhost endpoints first
