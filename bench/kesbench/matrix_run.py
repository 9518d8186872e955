"""The selected rows against one pykes server per store (stateless fs, stateful SQLite),
each repeat followed by the same row against every yardstick asked for."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kesbench.matrix import RowSpec, measured_together
from kesbench.pykes_server import ServerOptions, start_server
from kesbench.report import print_try
from kesbench.results import RowResult, best_of, pair_with_stateless
from kesbench.row_run import run_row
from kesbench.sampling import SETTLE_S, process_memory_mb, tree_memory_kb
from kesbench.servers import BenchServer
from kesbench.stores import STORES
from kesbench.yardsticks import (
    Yardstick,
    go_floor_yardstick,
    go_model_yardstick,
    trivial_yardstick,
)


def run_matrix(
    rows: Sequence[RowSpec],
    opts: ServerOptions,
    args: argparse.Namespace,
    kesload: Path,
    workdir: Path,
    profile_dir: Path | None,
    run: dict[str, Any],
    go_floor: Path | None = None,
) -> list[RowResult]:
    """One server per store for all rows (restarted, and recorded, if it dies); a
    stateful row and its stateless twin alternate which goes first, repeat by repeat
    (``measured_together``). With ``go_floor`` (the built bench/go_floor binary) every
    repeat of a row is followed by the same kesload run against that Go server, which
    uses the pykes server's certificate; with ``--trivial`` likewise against the
    trivial Python server (HTTP/1.1 rows)."""
    results: list[RowResult] = []
    servers = PykesServers(opts, workdir, run)
    server = servers.get(rows[0].store)
    yardsticks: dict[str, Yardstick] = {}  # by the prefix of their fields in RowResult
    if go_floor is not None and args.go_floor:
        yardsticks["go_floor"] = go_floor_yardstick(go_floor)
    if go_floor is not None and args.go_model:
        yardsticks["go_model"] = go_model_yardstick(go_floor)
    if args.trivial:
        yardsticks["trivial"] = trivial_yardstick(opts.workers)
    idle_rss, idle_pss = tree_memory_kb(server.pid)
    run["server_idle_rss_mb"] = round(idle_rss / 1024, 1)
    run["server_idle_pss_mb"] = round(idle_pss / 1024, 1) if idle_pss is not None else None
    run["server_idle_procs_mb"] = process_memory_mb(server.pid)
    try:
        done = 0
        for group in measured_together(rows):
            tries: dict[RowSpec, list[RowResult]] = {spec: [] for spec in group}
            other_tries = {spec: {prefix: [] for prefix in yardsticks} for spec in group}
            for n in range(args.repeat):
                for k, spec in enumerate(group if n % 2 == 0 else group[::-1]):
                    server = servers.get(spec.store)
                    if n == 0 or len(group) > 1:
                        row_number = done + group.index(spec) + 1
                        print(f"[{row_number}/{len(rows)}] {spec.label} …", flush=True)
                    if k:
                        time.sleep(args.pause)
                    result = run_row(
                        spec,
                        server,
                        kesload,
                        args.duration,
                        args.warmup,
                        profile_dir,
                        args.profile_rate,
                        args.profile_native,
                    )
                    print_try(result)
                    tries[spec].append(result)
                    for prefix, other in yardsticks.items():
                        if spec.store != "fs" or not other.applies(spec):  # the twin has it
                            continue
                        time.sleep(args.pause)
                        other_try = other.run_row(spec, server, kesload, args.duration, args.warmup)
                        print_try(other_try, f"{other.name}: ")
                        other_tries[spec][prefix].append(other_try)
            for spec in group:
                best = best_of(tries[spec])
                for prefix, found in other_tries[spec].items():
                    if found:
                        best.add_yardstick(prefix, best_of(found))
                results.append(best)
            done += len(group)
            if args.pause and done < len(rows):
                time.sleep(args.pause)  # let TIME_WAIT and the server settle
        server = servers.get(rows[0].store)  # the server whose idle memory was recorded
        if server.alive():  # memory once the load is over (after the workers' heap trim)
            time.sleep(SETTLE_S)
            rss, pss = tree_memory_kb(server.pid)
            run["server_settled_rss_mb"] = round(rss / 1024, 1)
            run["server_settled_pss_mb"] = round(pss / 1024, 1) if pss is not None else None
            run["server_settled_procs_mb"] = process_memory_mb(server.pid)
    finally:
        servers.stop()
        for prefix, other in yardsticks.items():
            run[prefix] = other.summary()
    pair_with_stateless(results)
    return results


class PykesServers:
    """One pykes server per store the rows use (kesbench/stores.py), started on first
    use and kept for the run; one that died is restarted, and its death recorded."""

    def __init__(self, opts: ServerOptions, workdir: Path, run: dict[str, Any]) -> None:
        self._opts = opts
        self._workdir = workdir
        self._run = run
        self._servers: dict[str, BenchServer] = {}
        run["server_restarts"] = 0

    def get(self, store: str) -> BenchServer:
        server = self._servers.get(store)
        if server is not None and server.alive():
            return server
        run = self._run
        if server is not None:  # keep going, but say so in the results
            died = f"server exited ({server.proc.returncode}): {server.stderr_tail(500)}"
            print(f"    {died}", flush=True)
            run.setdefault("server_deaths", []).append({"store": store, "why": died})
            run["server_restarts"] += 1
        where = self._workdir / f"s-{store}{run['server_restarts']}"
        server = self._servers[store] = start_server(where, self._opts, STORES[store])
        if store != "fs":
            run.setdefault("stores", {})[store] = STORES[store].what
        return server

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()
