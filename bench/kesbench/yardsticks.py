"""The servers pykes is measured against: the trivial Python server (the baseline row,
``--trivial``), the Go floor (``--go-floor``) and the Go KES model (``--go-model``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kesbench.kesload_output import failure_reason
from kesbench.matrix import BASELINE_REFERENCE_RPS, BASELINE_SPEC_ID, RowSpec, full_matrix
from kesbench.paths import BENCH
from kesbench.results import RowResult
from kesbench.row_run import run_row
from kesbench.servers import BenchServer, free_port, start_until_ready, write_tls_files

BASELINE_SERVER = BENCH / "baseline_server.py"


def start_baseline(
    workdir: Path,
    workers: int,
    script: Path = BASELINE_SERVER,
    extra: Sequence[str] = (),
) -> BenchServer:
    """``bench/baseline_server.py`` (or another trivial server ``script`` taking the same
    options, plus ``extra``) with ``workers`` SO_REUSEPORT processes, a fresh server
    certificate and a self-signed client certificate that it trusts (kesload presents
    it with ``--cert``/``--key``)."""
    api_key = write_tls_files(workdir)
    port = free_port()
    cmd = [sys.executable, str(script), "--port", str(port)]
    cmd += ["--cert", str(workdir / "server.crt"), "--key", str(workdir / "server.key")]
    cmd += ["--client-ca", str(workdir / "client.crt"), "--workers", str(workers), *extra]
    stderr_file = workdir / f"{script.stem}.stderr"

    def server(proc: subprocess.Popen[bytes]) -> BenchServer:
        return BenchServer(
            proc,
            port,
            workdir,
            str(api_key),
            workdir / "server.crt",
            stderr_file,
            client_cert=workdir / "client.crt",
            client_key=workdir / "client.key",
        )

    return start_until_ready(cmd, script.name, workdir, stderr_file, server)


def start_go_floor(binary: Path, like: BenchServer, work: str = "none") -> BenchServer:
    """The Go floor server (bench/go_floor) on a free port with ``like``'s server
    certificate and key (``write_tls_files``): kesload then runs against it with the very
    same ``--api-key`` and ``--ca`` as against ``like`` (a pykes server). ``work="kes"``
    starts the Go KES model instead, with ``like``'s API key as its admin."""
    port = free_port()
    cmd = [str(binary), "--addr", f"127.0.0.1:{port}"]
    cmd += ["--cert", str(like.workdir / "server.crt"), "--key", str(like.workdir / "server.key")]
    if work != "none":
        from pykes.pki import APIKey

        cmd += ["--work", work, "--admin", APIKey.parse(like.api_key).identity]
    stderr_file = like.workdir / f"go_floor-{port}.stderr"

    def server(proc: subprocess.Popen[bytes]) -> BenchServer:
        return BenchServer(proc, port, like.workdir, like.api_key, like.ca_file, stderr_file)

    return start_until_ready(cmd, binary.name, like.workdir, stderr_file, server)


@dataclass
class Yardstick:
    """Another server run on the same rows right after pykes (``--go-floor``,
    ``--go-model``, ``--trivial``): started on first use next to the pykes server
    ``like`` (``start``), restarted (and the death recorded) if it died; ``applies``
    picks its rows. ``what`` describes it in the results file; ``go_binary`` is set for
    the Go servers, which report on themselves (``go_floor_info``)."""

    name: str
    what: str
    start: Callable[[BenchServer], BenchServer]
    applies: Callable[[RowSpec], bool] = lambda _spec: True
    go_binary: Path | None = None
    server: BenchServer | None = None
    starts: int = 0
    deaths: list[str] = field(default_factory=list)

    def run_row(
        self, spec: RowSpec, like: BenchServer, kesload: Path, duration: float, warmup: float
    ) -> RowResult:
        """``run_row`` against this server with the kesload parameters of ``spec``."""
        if self.server is not None and not self.server.alive():
            self.deaths.append(self.server.stderr_tail(500))
            self.server = None
        if self.server is None:
            try:
                self.server = self.start(like)
            except SystemExit as err:  # the pykes rows still run
                return RowResult.failed(spec, str(err))
            self.starts += 1
        return run_row(spec, self.server, kesload, duration, warmup, None, 0)

    def stop(self) -> str:
        """Stop it; its stderr (the Go floor prints its TLS handshake counts on SIGTERM)."""
        if self.server is None:
            return ""
        self.server.stop()
        return self.server.stderr_tail(100_000)

    def summary(self) -> dict[str, Any]:
        """Stop it and describe it for the results file: what it is, its starts and
        deaths, and what a Go server said about itself."""
        info: dict[str, Any] = {"what": self.what}
        if self.go_binary is not None:
            info["binary"] = str(self.go_binary)
        info.update(starts=self.starts, deaths=self.deaths)
        stderr_text = self.stop()
        if self.go_binary is not None:
            info.update(go_floor_info(stderr_text))
        return info


def go_floor_yardstick(binary: Path) -> Yardstick:
    return Yardstick(
        "Go floor",
        what="bench/go_floor: Go net/http (HTTP/1.1 and built-in HTTP/2) + crypto/tls "
        "defaults (TLS 1.2 minimum, RequireAnyClientCert, session tickets on), fixed "
        "JSON answers; an upper bound for Go KES on this machine",
        start=lambda like: start_go_floor(binary, like),
        go_binary=binary,
    )


def go_model_yardstick(binary: Path) -> Yardstick:
    return Yardstick(
        "Go model",
        what="bench/go_floor --work kes: Go KES's per-request work (identity hash, "
        "admin check, metrics middleware, key cache, JSON, crypto/rand, HMAC-SHA-256 → "
        "AES-256-GCM) on the floor's net/http + crypto/tls stack; an estimate of Go KES "
        "on this machine (bench/go_floor/kes_model.go)",
        start=lambda like: start_go_floor(binary, like, work="kes"),
        go_binary=binary,
    )


def trivial_yardstick(workers: int) -> Yardstick:
    """bench/baseline_server.py with ``workers`` processes, on HTTP/1.1 rows only (it
    has no HTTP/2), with its own certificates next to the pykes server's."""

    def start(like: BenchServer) -> BenchServer:
        workdir = like.workdir / f"trivial-{free_port()}"
        workdir.mkdir()
        return start_baseline(workdir, workers)

    return Yardstick(
        "trivial",
        what="bench/baseline_server.py: uvloop + stdlib ssl + httptools, one fixed "
        "answer, no work; HTTP/1.1 rows",
        start=start,
        applies=lambda spec: not spec.http2,
    )


_GO_FLOOR_VERSION = re.compile(r"^go_floor: (go\S+), GOMAXPROCS=(\d+)", re.MULTILINE)
_GO_FLOOR_STATS = re.compile(r"^STATS (\{.*\})$", re.MULTILINE)


def go_floor_info(stderr_text: str) -> dict[str, Any]:
    """What the Go floor server said about itself on stderr: its Go version and
    GOMAXPROCS at start, and (after SIGTERM) its TLS handshake counts by key exchange
    group, version and ALPN protocol (``STATS {…}``)."""
    info: dict[str, Any] = {}
    if m := _GO_FLOOR_VERSION.search(stderr_text):
        info["go_version"], info["gomaxprocs"] = m.group(1), int(m.group(2))
    if m := _GO_FLOOR_STATS.search(stderr_text):
        with suppress(ValueError):
            info["tls"] = json.loads(m.group(1))
    return info


def run_baseline(
    kesload: Path, workdir: Path, workers: int, duration: float, warmup: float, label: str
) -> RowResult:
    """One baseline run: the trivial server loaded with the generate-c64-h1 parameters."""
    spec = next(r for r in full_matrix() if r.id == BASELINE_SPEC_ID)
    try:
        server = start_baseline(workdir, workers)
    except SystemExit as err:  # no factor then, but the pykes rows still run
        print(f"    baseline FAILED: {err}", flush=True)
        result = RowResult.failed(spec, str(err))
        result.id = "baseline"
        return result
    try:
        print(f"[baseline {label}] trivial uvloop+ssl+httptools server, {spec.label} …", flush=True)
        result = run_row(spec, server, kesload, duration, warmup, None, 0)
    finally:
        server.stop()
    result.id = "baseline"
    result.target_rps = BASELINE_REFERENCE_RPS
    result.target_p99_ms = None
    if result.status == "ok":
        print(
            f"    {result.rps:,.0f} req/s  p99 {result.p99_ms:.2f} ms  errors {result.errors}  "
            f"(other processes: {result.cpu_other_pct}% CPU)",
            flush=True,
        )
    else:
        print(f"    FAILED: {failure_reason(result.error_text)}", flush=True)
    return result
