"""Instructions (callgrind) and system calls (strace -c) per request of a pykes server,
for a kesload row — repeatable where req/s and CPU time are not (a shared 2-core box).

Starts ``kes server --workers 1`` (bench config: fs keystore or ``--store``'s enclave,
audit on) under
``valgrind --tool=callgrind`` or ``strace -f``, warms up with kesload, zeroes the
counters, runs ``--requests`` measured requests, and prints the server processes'
instructions (callgrind: Ir) or syscalls per request. ``PYKES_TLS`` and
``PYTHONPATH`` (``--src``) pass through, so layers and revisions can be compared.

    .venv/bin/python bench/tls_callgrind.py --tool callgrind --requests 300 [--new-conn]

Each run is a new kesload process: its connections' handshakes (and Go's dial races
open a few more than ``--concurrency``) fall inside the measured window. For keep-alive
rows use enough ``--requests`` to dilute them (20,000 at 8 connections: ~5 % of the
figure); at 64 connections and 3,000 requests they were a third of it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kesbench.gobuild import KESLOAD_BIN
from kesbench.matrix import RowSpec
from kesbench.pykes_server import (
    create_bench_key,
    server_env,
    wait_ready,
    write_server_files,
)
from kesbench.row_run import kesload_command
from kesbench.servers import BenchServer, free_port
from kesbench.stores import STORES


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(x) for x in text]
    return out


def kesload(server: BenchServer, args: argparse.Namespace, requests: int) -> str:
    spec = RowSpec(args.op, args.concurrency, args.http2, args.new_conn)
    window = ("--duration", "600s", "--max-requests", str(requests), "--timeout", "120s")
    cmd = kesload_command(KESLOAD_BIN, server, spec, *window)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=3600)
    out = done.stdout + done.stderr
    if done.returncode != 0:
        raise SystemExit(f"kesload failed: {out}")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tool", choices=("callgrind", "strace"), default="callgrind")
    p.add_argument("--op", default="generate", help="kesload --op (generate, decrypt, …)")
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--warmup-requests", type=int, default=60)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--new-conn", action="store_true")
    p.add_argument("--http2", action="store_true")
    p.add_argument("--src", type=Path, default=None, help="pykes src/ (PYTHONPATH)")
    p.add_argument(
        "--store",
        choices=tuple(STORES),
        default="fs",
        help="where the keys are (kesbench/stores.py): fs, or a stateful store's enclave",
    )
    args = p.parse_args()
    store = STORES[args.store]
    with tempfile.TemporaryDirectory(prefix="tls-cg-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        api_key, _identity, config, ca, backing = write_server_files(workdir, port, True, store)
        kes = Path(sys.executable).parent / "kes"
        server_cmd = [str(kes), "server", "--config", str(config), "--workers", "1"]
        server_cmd += ["--addr", f"127.0.0.1:{port}"]
        out_base = workdir / "cg.out"
        if args.tool == "callgrind":
            wrapper = [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                "--trace-children=yes",
                f"--callgrind-out-file={out_base}.%p",
            ]
        else:
            wrapper = []
        env = server_env(args.src.resolve() if args.src else None)
        try:
            proc = subprocess.Popen(
                wrapper + server_cmd,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=(workdir / "server.stderr").open("wb"),
                start_new_session=True,
            )
        except BaseException:  # e.g. no valgrind: stop the store's OpenBao too
            if backing is not None:
                backing.stop()
            raise
        stderr_file = workdir / "server.stderr"
        server = BenchServer(
            proc, port, workdir, api_key, ca, stderr_file, enclave=store.enclave, backing=backing
        )
        try:
            wait_ready(server, timeout=600)
            create_bench_key(server)
            kesload(server, args, args.warmup_requests)
            pids = [proc.pid, *children(proc.pid)]
            strace: subprocess.Popen[bytes] | None = None
            if args.tool == "callgrind":
                for pid in pids:
                    subprocess.run(["callgrind_control", "-i", "on", str(pid)], capture_output=True)
                    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True)
            else:
                strace_out = workdir / "strace.txt"
                cmd = ["strace", "-f", "-c", "-o", str(strace_out)]
                for pid in pids:
                    cmd += ["-p", str(pid)]
                strace = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            out = kesload(server, args, args.requests)
            total = int(re.search(r"total=(\d+)", out).group(1))  # type: ignore[union-attr]
            if args.tool == "callgrind":
                ir = 0
                for pid in pids:
                    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True)
                time.sleep(2)
                for f in workdir.glob("cg.out.*.1"):  # the dumps, not the files at exit
                    text = f.read_text(errors="replace")
                    for m in re.finditer(r"^(?:summary|totals): (\d+)", text, re.MULTILINE):
                        ir += int(m.group(1))
                        break
                print(f"requests {total}  Ir/request {ir / total:,.0f}  (total Ir {ir:,})")
            else:
                assert strace is not None
                strace.send_signal(signal.SIGINT)
                strace.wait(30)
                text = strace_out.read_text()
                m = re.search(r"^\s*100\.00\s+\S+\s+\S+\s+(\d+)\s+(\d+)?", text, re.MULTILINE)
                calls = int(m.group(1)) if m else -1
                print(f"requests {total}  syscalls/request {calls / total:.1f}")
                for line in text.splitlines()[2:-2]:
                    cols = line.split()
                    if len(cols) >= 5 and cols[3].isdigit() and int(cols[3]) >= total // 4:
                        print(f"   {cols[-1]:20s} {int(cols[3]) / total:6.2f}/req")
        finally:
            server.stop()
            keep = os.environ.get("KEEP_DUMPS")  # a directory to copy the callgrind dumps to
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                for f in workdir.glob("cg.out.*.1"):
                    shutil.copy(f, keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
