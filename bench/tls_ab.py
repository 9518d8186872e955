"""Interleaved A/B of the trivial baselines' TLS: stdlib ``ssl`` vs pyOpenSSL.

Runs kesload rows (default: the new-connection row and generate-c64-h1) against
``bench/baseline_server.py`` (system OpenSSL through stdlib ``ssl``) and
``bench/baseline_pyopenssl.py`` (``cryptography``'s bundled OpenSSL through
pyOpenSSL), variants interleaved, ``--repeat`` rounds, and prints per variant and row
the req/s, the server CPU µs per request (= per connection on the newconn row) and
the CPU other processes used (noise), then min/median.

    .venv/bin/python bench/tls_ab.py --repeat 3 [--variants stdlib,pyopenssl,...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kesbench.gobuild import KESLOAD_BIN
from kesbench.matrix import full_matrix
from kesbench.paths import BENCH
from kesbench.results import RowResult
from kesbench.row_run import run_row
from kesbench.servers import BenchServer
from kesbench.yardsticks import start_baseline

VARIANTS: dict[str, tuple[str, list[str]]] = {
    "stdlib": ("baseline_server.py", []),
    "stdlib-0tickets": ("baseline_server.py", ["--num-tickets", "0"]),
    "pyopenssl": ("baseline_pyopenssl.py", []),
    "pyopenssl-x25519": ("baseline_pyopenssl.py", ["--groups", "X25519"]),
}


def start(variant: str, workdir: Path, workers: int) -> BenchServer:
    """``start_baseline`` (kesbench/yardsticks.py) with the variant's script and extra arguments."""
    script, extra = VARIANTS[variant]
    return start_baseline(workdir, workers, BENCH / script, extra)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="stdlib,pyopenssl,pyopenssl-x25519")
    p.add_argument("--rows", default="generate-c8-h1-newconn,generate-c64-h1")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    specs = {r.id: r for r in full_matrix()}
    rows = [specs[r.strip()] for r in args.rows.split(",") if r.strip()]
    kesload = KESLOAD_BIN
    results: dict[tuple[str, str], list[RowResult]] = {}
    with tempfile.TemporaryDirectory(prefix="tls-ab-") as tmp:
        for round_no in range(args.repeat):
            for variant in variants:
                server = start(variant, Path(tmp) / variant, args.workers)
                try:
                    for spec in rows:
                        r = run_row(spec, server, kesload, args.duration, args.warmup, None, 0)
                        results.setdefault((variant, spec.id), []).append(r)
                        print(
                            f"round {round_no} {variant:18s} {spec.id:24s} "
                            f"{r.status} {r.rps:8.0f} req/s  {r.server_cpu_us_per_req} µs/req  "
                            f"other {r.cpu_other_pct}%  errors {r.errors}",
                            flush=True,
                        )
                        time.sleep(0.5)
                finally:
                    server.stop()
    print("\nvariant            row                        req/s min/med/max      µs/req min/med")
    for (variant, row), rs in results.items():
        ok = [r for r in rs if r.status == "ok" and r.server_cpu_us_per_req]
        if not ok:
            print(f"{variant:18s} {row:24s} FAILED")
            continue
        rps = sorted(r.rps for r in ok)
        us = sorted(r.server_cpu_us_per_req or 0.0 for r in ok)
        other = [r.cpu_other_pct for r in ok]
        print(
            f"{variant:18s} {row:24s} {rps[0]:7.0f} {statistics.median(rps):7.0f} {rps[-1]:7.0f}"
            f"   {us[0]:7.1f} {statistics.median(us):7.1f}   other% {other}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
