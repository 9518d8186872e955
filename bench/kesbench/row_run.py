"""One row: a kesload run against a server, with the server's CPU and memory sampled
and, with ``--profile``, py-spy attached."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from kesbench.matrix import RowSpec
from kesbench.pinning import pinned
from kesbench.profiling import start_py_spy
from kesbench.pykes_server import KEY_NAME
from kesbench.results import RowResult
from kesbench.sampling import MemorySampler, cpu_shares, cpu_snapshot, loadavg, tree_cpu_seconds
from kesbench.servers import BenchServer


def kesload_command(kesload: Path, server: BenchServer, spec: RowSpec, *window: str) -> list[str]:
    """kesload's command line for ``spec``'s load on the bench key against ``server``;
    ``window`` says for how long (``--duration``, ``--warmup``, ``--max-requests``, …)."""
    cmd = [str(kesload), "--server", server.url, *server.client_args]
    cmd += ["--ca", str(server.ca_file), "--key-name", KEY_NAME]
    cmd += ["--op", spec.op, "--concurrency", str(spec.conc), *window]
    cmd += ["--http2", "on" if spec.http2 else "off"]
    if server.enclave:
        cmd += ["--enclave", server.enclave]
    if spec.new_conn:
        cmd.append("--new-conn")
    if spec.batch:
        cmd += ["--batch", str(spec.batch)]
    return cmd


def run_row(
    spec: RowSpec,
    server: BenchServer,
    kesload: Path,
    duration: float,
    warmup: float,
    profile_dir: Path | None,
    profile_rate: int,
    profile_native: bool = False,
) -> RowResult:
    cmd = kesload_command(
        kesload, server, spec, "--duration", f"{duration}s", "--warmup", f"{warmup}s"
    )
    load_1m = loadavg()[:1]
    spy: subprocess.Popen[bytes] | None = None
    with MemorySampler(server.pid) as mem:
        before = cpu_snapshot(server.pid)
        kes = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=pinned("client"),
        )
        measured_from: float | None = None
        store_requests_from: int | None = None
        try:
            time.sleep(warmup + 0.05)  # kesload's set-up and warm-up: not per-request CPU
            if kes.poll() is None:
                measured_from = tree_cpu_seconds(server.pid)
                if server.backing is not None:
                    store_requests_from = server.backing.requests()
            if profile_dir is not None:  # steady state only: after the warm-up
                time.sleep(0.25)
                spy = start_py_spy(
                    server.pid,
                    profile_dir / f"{spec.id}.pyspy.txt",
                    max(1, int(duration - 0.5)),
                    profile_rate,
                    profile_native,
                )
            out, err = kes.communicate(timeout=duration + warmup + 90)
        except subprocess.TimeoutExpired:
            kes.kill()
            kes.communicate()
            return RowResult.failed(spec, "kesload timed out")
        finally:
            if spy is not None:
                try:
                    spy.wait(duration + 30)
                except subprocess.TimeoutExpired:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(10)
        after = cpu_snapshot(server.pid)
        store_requests_to = server.backing.requests() if server.backing is not None else None
    output = out + err
    if kes.returncode != 0:
        return RowResult.failed(spec, f"kesload exit {kes.returncode}: {output.strip()}")
    try:
        result = RowResult.from_kesload(spec, output)
    except ValueError as err:
        return RowResult.failed(spec, f"{err}: {output.strip()}")
    result.rss_mb = round(mem.max_rss_kb / 1024, 1)
    result.pss_mb = round(mem.max_pss_kb / 1024, 1) if mem.max_pss_kb is not None else None
    result.idle_rss_mb = round(mem.idle_rss_kb / 1024, 1)
    result.idle_pss_mb = round(mem.idle_pss_kb / 1024, 1) if mem.idle_pss_kb is not None else None
    result.profiled = profile_dir is not None
    if measured_from is not None and result.total:
        spent = tree_cpu_seconds(server.pid) - measured_from
        result.server_cpu_us_per_req = round(spent / result.total * 1e6, 1)
    if store_requests_from is not None and store_requests_to is not None:
        result.store_requests = store_requests_to - store_requests_from
    cores = len(os.sched_getaffinity(0))
    for name, value in cpu_shares(before, after, cores).items():
        setattr(result, name, value)
    result.loadavg_1m = load_1m[0] if load_1m else None
    result.rps_runs = [result.rps]
    want = "HTTP/2.0" if spec.http2 else "HTTP/1.1"
    if result.total == 0 and result.errors == 0:
        result.status = "failed"
        result.error_text = "no request completed within the measurement window: " + (
            output.strip()
        )
    elif result.protocol is not None and result.protocol != want:
        result.status = "failed"
        result.error_text = f"negotiated {result.protocol}, expected {want}"
    return result
