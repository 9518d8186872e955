"""``bench/run.py``'s command line: the options, and the run they describe from the
first measurement to the saved results file."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kesbench.gobuild import build_go_floor, build_kesload
from kesbench.matrix import (
    BASELINE_REFERENCE_RPS,
    BASELINE_SPEC_ID,
    full_matrix,
    machine_factor,
    select_rows,
)
from kesbench.matrix_run import run_matrix
from kesbench.paths import REPO, RESULTS_DIR
from kesbench.pinning import PIN, pin_cpus
from kesbench.profiling import summarize_profiles
from kesbench.provenance import export_ref, git_info, machine_info
from kesbench.pykes_server import ServerOptions, measure_startup, server_package_path
from kesbench.report import (
    print_comparison,
    print_kms_batches,
    print_run_footer,
    print_stateful,
    print_table,
)
from kesbench.results import (
    SCHEMA,
    RowResult,
    apply_factor,
    best_of,
    kms_batch_costs,
    load_run,
    save_run,
)
from kesbench.sampling import FLOOR_IMPORTS, loadavg, python_floor_mb
from kesbench.yardsticks import run_baseline


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Run the pykes benchmark matrix with kesload (see bench/README.md).",
    )
    p.add_argument("--duration", type=float, default=None, help="seconds per row (default 5)")
    p.add_argument("--warmup", type=float, default=None, help="unmeasured seconds (default 1)")
    p.add_argument(
        "--workers", type=int, default=None, help="pykes worker processes (default: CPU count)"
    )
    p.add_argument("--quick", action="store_true", help="a short subset for smoke runs")
    p.add_argument("--rows", default=None, help="comma-separated globs of row ids")
    p.add_argument("--list", action="store_true", help="list the row ids and exit")
    p.add_argument("--audit", choices=("on", "off"), default="on", help="audit log (default on)")
    p.add_argument("--profile", action="store_true", help="record each row with py-spy")
    p.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument("--profile-native", action="store_true", help="py-spy --native (C frames)")
    p.add_argument("--output", type=Path, default=None, help="results file (default: timestamp)")
    p.add_argument("--no-save", action="store_true", help="do not write a results file")
    p.add_argument("--build-only", action="store_true", help="only build kesload")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"))
    p.add_argument(
        "--server-src",
        type=Path,
        default=None,
        help="serve pykes from this src/ directory (PYTHONPATH) instead of the checkout",
    )
    p.add_argument(
        "--server-ref",
        default=None,
        help="serve pykes as of this git commit (git archive into a temp dir)",
    )
    p.add_argument("--pause", type=float, default=1.0, help="seconds between rows (default 1)")
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the trivial-server baseline (and so the normalised Go reference)",
    )
    p.add_argument(
        "--startup-runs",
        type=int,
        default=3,
        help="measure the server's start-up time N times (default 3; 0 skips)",
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="run each row N times, keep the best (default 1)"
    )
    p.add_argument(
        "--go-floor",
        action="store_true",
        help="also run every row against bench/go_floor (Go's net/http + crypto/tls with "
        "fixed answers: an upper bound for Go KES on this machine)",
    )
    p.add_argument(
        "--go-model",
        action="store_true",
        help="also run every row against bench/go_floor --work kes (Go KES's per-request "
        "work on the same Go stack: an estimate of Go KES on this machine)",
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="servers (pykes and the yardsticks) on the first half of the CPUs, kesload on "
        "the rest (2 cores: CPU 0 / CPU 1): the client no longer takes the server's CPU; "
        "--workers defaults to the servers' CPUs",
    )
    p.add_argument(
        "--trivial",
        action="store_true",
        help="also run every HTTP/1.1 row against the trivial Python server (the baseline: "
        "no work at all): what Python on this stack can reach",
    )
    args = p.parse_args(list(argv))
    if args.duration is None:
        args.duration = 2.0 if args.quick else 5.0
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 1.0
    if args.duration <= 0 or args.warmup < 0:
        p.error("--duration must be > 0 and --warmup >= 0")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.startup_runs < 0:
        p.error("--startup-runs must be >= 0")
    if args.workers is not None and args.workers < 1:
        p.error("--workers must be at least 1")
    if args.server_src and args.server_ref:
        p.error("--server-src and --server-ref are mutually exclusive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.compare:
        a, b = (load_run(p) for p in args.compare)
        print_comparison(a, b, (str(args.compare[0]), str(args.compare[1])))
        return 0
    rows = select_rows(full_matrix(), args.rows, args.quick)
    if args.list:
        for r in rows:
            print(f"{r.id:26} {r.label}")
        return 0
    kesload = build_kesload()
    go_floor = build_go_floor() if args.go_floor or args.go_model else None
    if args.build_only:
        print(kesload)
        if go_floor is not None:
            print(go_floor)
        return 0
    if not rows:
        print("no rows match --rows", file=sys.stderr)
        return 2
    if args.pin:
        PIN.update(pin_cpus(sorted(os.sched_getaffinity(0))))
    workers = args.workers or len(PIN.get("server") or os.sched_getaffinity(0))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_path = args.output or RESULTS_DIR / f"{stamp}.json"
    profile_dir = RESULTS_DIR / f"{stamp}-profile" if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pykes-bench-") as tmp:
        workdir = Path(tmp)
        src = args.server_src.resolve() if args.server_src else None
        pykes_info = git_info()
        if args.server_ref:
            src, commit = export_ref(args.server_ref, workdir / "ref")
            pykes_info = {"commit": commit, "dirty_files": [], "ref": args.server_ref}
        opts = ServerOptions(workers=workers, audit=args.audit == "on", src=src)
        run = new_run_record(args, workers, pykes_info, src, kesload)
        run["python_floor"] = python_floor_mb()
        print(
            f"python floor ({FLOOR_IMPORTS}): RSS {run['python_floor']['rss_mb']} MB, "
            f"PSS {run['python_floor']['pss_mb']} MB per process",
            flush=True,
        )
        if args.startup_runs:
            print(f"start-up time, {workers} worker(s) …", flush=True)
            run["startup"] = measure_startup(workdir, opts, args.startup_runs)
        baselines: list[RowResult] = []
        if not args.no_baseline:
            for i in range(args.repeat):
                baselines.append(
                    run_baseline(
                        kesload, workdir / f"b{i}", workers, args.duration, args.warmup, "before"
                    )
                )
        results = run_matrix(rows, opts, args, kesload, workdir, profile_dir, run, go_floor)
        if not args.no_baseline:  # once more at the end: the machine's load drifts
            baselines.append(
                run_baseline(
                    kesload, workdir / "b-end", workers, args.duration, args.warmup, "after"
                )
            )
    baseline = best_of(baselines) if baselines else None
    factor = machine_factor(baseline.rps if baseline and baseline.status == "ok" else None)
    apply_factor(results, factor)
    if baseline is not None:
        baseline.vs_go = round(factor, 4) if factor is not None else None
        run["baseline"] = baseline_record(baselines, baseline, factor, workers)
    run["machine_factor"] = round(factor, 4) if factor is not None else None
    run["loadavg_end"] = loadavg()
    run["rows"] = [asdict(r) for r in ([baseline] if baseline else []) + list(results)]
    run["kms_batch"] = kms_batch_costs(results)
    title = (
        f"pykes bench — {workers} worker(s), {args.duration:g}s/row, "
        f"{run['machine']['cpu_model']} × {run['machine']['cores']}"
    )
    print()
    print_table(([baseline] if baseline else []) + list(results), title, factor)
    print_stateful(results)
    print_kms_batches(run["kms_batch"])
    print_run_footer(run, baseline, workers)
    if profile_dir is not None:
        summarize_profiles((r.id for r in results), profile_dir)
        run["profile_dir"] = str(profile_dir.relative_to(REPO))
    if not args.no_save:
        save_run(run, out_path)
        print(f"results: {out_path}")
    return 0 if all(r.status == "ok" for r in results) else 1


def new_run_record(
    args: argparse.Namespace,
    workers: int,
    pykes_info: dict[str, Any],
    src: Path | None,
    kesload: Path,
) -> dict[str, Any]:
    """The results file's record of a run before its first measurement: schema, machine,
    which pykes is served and how, and the settings; ``rows`` is filled in at the end."""
    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "loadavg_start": loadavg(),
        "pykes": {
            **pykes_info,
            "server_src": str(args.server_src.resolve()) if args.server_src else None,
            "package": server_package_path(src),
            "workers": workers,
            "audit": args.audit,
            "keystore": "fs",  # the stateless rows; the stateful rows' stores: run["stores"]
        },
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "quick": args.quick,
            "rows": args.rows,
            "profile": args.profile,
            "profile_native": args.profile_native,
            "repeat": args.repeat,
            "go_floor": args.go_floor,
            "go_model": args.go_model,
            "trivial": args.trivial,
            "pin": {role: sorted(cpus) for role, cpus in PIN.items()} or None,
        },
        "kesload": str(kesload.relative_to(REPO)),
        "rows": [],
    }


def baseline_record(
    baselines: Sequence[RowResult], best: RowResult, factor: float | None, workers: int
) -> dict[str, Any]:
    """The run's ``baseline``: what it is, every run (the last one after the rows), the
    best one's req/s and the machine factor it gives."""
    last = len(baselines) - 1
    return {
        "what": "bench/baseline_server.py: uvloop + stdlib ssl (TLS 1.3, client "
        "certificate requested) + httptools, a fixed JSON answer, "
        f"{workers} SO_REUSEPORT worker(s); kesload with the {BASELINE_SPEC_ID} parameters",
        "reference_rps": BASELINE_REFERENCE_RPS,
        "rps": best.rps if best.status == "ok" else None,
        "runs": [
            {"when": "after" if i == last else "before", "rps": b.rps}
            if b.status == "ok"
            else {"when": "after" if i == last else "before", "failed": True}
            for i, b in enumerate(baselines)
        ],
        "factor": round(factor, 4) if factor is not None else None,
    }
