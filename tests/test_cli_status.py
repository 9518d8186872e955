"""``kes status``, ``kes log`` and ``kes metric`` (docs/compat/cli.md §8–§10) against a live
server; non-terminal output (JSON)."""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from conftest import PKI, kes_command
from pykes.cli.common import CLIError
from pykes.cli.status import check_state
from pykes.client import APIError, NotAllowed, State
from test_cli_support import KesServer, error_line, start_kes


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[KesServer]:
    server = start_kes(tmp_path_factory.mktemp("cli-status"), pki)
    yield server
    server.stop()


def test_status(kes: KesServer) -> None:
    r = kes.kes("status")
    assert r.returncode == 0 and r.stdout.endswith("}\n") and "\n " not in r.stdout
    state = json.loads(r.stdout)
    assert state["os"] == "linux" and state["num_cpu"] >= 1
    assert isinstance(state.get("uptime", 0), int)  # omitted while 0 (Go omitempty)
    assert state["keystore_latency"] >= 1
    assert "keystore_unreachable" not in state

    apis = json.loads(kes.kes("status", "--api", "--json").stdout)
    assert {"method": "PUT", "path": "/v1/key/hmac/", "max_body": 1000000, "timeout": 15} in apis
    assert {"method": "GET", "path": "/v1/log/audit"} in apis  # zero values omitted (Go)
    assert error_line(kes.kes("status", "extra")) == "too many arguments. See 'kes status --help'"
    assert error_line(kes.kes("status", api_key=kes.user)) == (
        "not authorized: insufficient permissions"
    )


class Streamer:
    """``kes log …`` in the background; its stdout lines arrive in a queue."""

    def __init__(self, kes: KesServer, *args: str) -> None:
        self.proc = subprocess.Popen(
            kes_command("log", *args),
            env=kes.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def next_matching(self, needle: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if needle in line:
                return line

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(10)


def test_log_audit_and_error(kes: KesServer) -> None:
    streams = [Streamer(kes, "--json"), Streamer(kes, "--audit"), Streamer(kes, "--error")]
    audit_json, audit_text, errors = streams
    try:
        # Trigger probe events until every subscriber has seen one (= is connected).
        with kes.client() as c, kes.client(kes.user) as user:
            deadline = time.monotonic() + 20
            pending = set(streams)
            i = 0
            while pending and time.monotonic() < deadline:
                c.create_key(f"probe-{i}")
                with pytest.raises(NotAllowed):
                    user.create_key(f"denied-{i}")
                time.sleep(0.2)
                for s in list(pending):
                    with contextlib.suppress(queue.Empty):
                        s.next_matching("probe-" if s is not errors else "denied", 0.05)
                        pending.discard(s)
                i += 1
            assert not pending
            c.create_key("logged")
            c.delete_key("logged")
            with pytest.raises(NotAllowed):
                user.create_key("logged-denied")
        first = json.loads(audit_json.next_matching("/v1/key/create/logged"))
        second = json.loads(audit_json.next_matching("/v1/key/delete/logged"))
        assert first["request"]["identity"] == kes.admin.identity
        assert first["request"]["ip"] == "127.0.0.1"
        assert first["response"]["code"] == 200 and first["response"]["time"] > 0
        assert set(first) == {"time", "request", "response"}
        assert second["response"]["code"] == 200

        line = audit_text.next_matching("/v1/key/create/logged").split()
        assert line[1:5] == ["200", kes.admin.identity[:20], "127.0.0.1", "/v1/key/create/logged"]

        message = errors.next_matching("logged-denied")
        assert "access denied" in message and kes.user.identity in message
    finally:
        codes = [s.stop() for s in streams]
    assert codes == [1, 1, 1]  # cancelled with Ctrl-C: exit 1, silently
    assert audit_json.proc.stderr is not None and audit_json.proc.stderr.read() == ""

    r = kes.kes("log", "--audit", "--error")
    assert error_line(r) == "cannot display audit and error logs at the same time"
    assert error_line(kes.kes("log", api_key=kes.user)) == (
        "failed to connect to audit log: not authorized: insufficient permissions"
    )


def test_metric_json_lines(kes: KesServer) -> None:
    proc = subprocess.Popen(
        kes_command("metric", "--rate", "300ms"),
        env=kes.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        first = json.loads(proc.stdout.readline())
        with kes.client() as c:
            c.create_key("metered")
        second = json.loads(proc.stdout.readline())
        third = json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert set(first) >= {
        "kes_http_request_success",
        "kes_http_request_error",
        "kes_http_request_failure",
        "kes_http_request_active",
        "kes_log_audit_events",
        "kes_log_error_events",
        "kes_http_response_time",
        "kes_system_up_time",
        "kes_system_num_cpu",
        "kes_system_num_cpu_used",
        "kes_system_num_threads",
        "kes_system_mem_heap_used",
        "kes_system_mem_heap_objects",
        "kes_system_mem_stack_used",
    }
    assert (
        max(second, third, key=lambda m: m["kes_http_request_success"])["kes_http_request_success"]
        > first["kes_http_request_success"]
    )
    assert "10000000" in first["kes_http_response_time"]  # 10 ms bucket as ns
    assert first["kes_system_up_time"] % 1_000_000_000 == 0


def test_status_with_unreachable_keystore(tmp_path, pki: PKI) -> None:
    kes = start_kes(tmp_path, pki)
    try:
        assert kes.kes("status").returncode == 0
        shutil.rmtree(kes.keys_dir)  # the fs keystore's status check now fails
        r = kes.kes("status")
        assert r.returncode == 0, r.stderr
        state = json.loads(r.stdout)
        # pykes servers add keystore_unavailable so that SDKs can decode the state
        assert state["keystore_unreachable"] is True and state["keystore_unavailable"] is True
        assert "keystore_latency" not in state
        with kes.client() as c:
            assert c.status().keystore_unreachable
            with pytest.raises(APIError) as err:
                c.ready()
        assert err.value == APIError(504, "key store is not reachable")
    finally:
        kes.stop()


def test_status_of_a_go_server_with_unreachable_keystore() -> None:
    """The Go server sends only keystore_unreachable; the Go SDK (and so ``kes status``)
    rejects that status - the CLI keeps that behaviour."""
    go_state = State.from_json({"version": "2025-03-12T09-35-18Z", "keystore_unreachable": True})
    with pytest.raises(CLIError, match="^kes: keystore is unreachable but not unavailable$"):
        check_state(go_state)
    check_state(State.from_json({"keystore_unreachable": True, "keystore_unavailable": True}))
