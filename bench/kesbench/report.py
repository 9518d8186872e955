"""What the driver prints: the results table with its notes, a run's footer, one
repeat's line, and the comparison of two saved runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kesbench.kesload_output import failure_reason
from kesbench.matrix import BASELINE_REFERENCE_RPS, BASELINE_SPEC_ID
from kesbench.results import RowResult, compare_runs
from kesbench.sampling import SETTLE_S


def _fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _count(value: int | None) -> str:
    return "—" if value is None else str(value)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.0f}%"


def _console(width: int = 170) -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # a pipe or a log file: do not squeeze to 80 columns
        console = Console(width=width)
    return console


def _mb_pair(idle: float | None, peak: float | None) -> str:
    return f"{_fmt(idle)}/{_fmt(peak)}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def print_table(rows: Sequence[RowResult], title: str, factor: float | None = None) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    columns = ("row", "req/s", "Go ref", "vs Go", "Go norm", "vs norm", "p50 ms", "p99 ms")
    columns += ("errors", "RSS MB", "PSS MB", "srv CPU", "µs/req", "other CPU")
    with_floor = any(r.go_floor_rps is not None or r.go_floor_error for r in rows)
    if with_floor:
        columns += ("Go floor", "vs floor", "floor p99", "floor µs/req", "floor other")
    with_model = any(r.go_model_rps is not None or r.go_model_error for r in rows)
    if with_model:
        columns += ("Go model", "vs model", "model p99", "model µs/req")
    with_trivial = any(r.trivial_rps is not None or r.trivial_error for r in rows)
    if with_trivial:
        columns += ("trivial", "vs trivial", "trivial µs/req")
    for name in columns:
        table.add_column(name, justify="left" if name == "row" else "right", no_wrap=True)
    for r in rows:
        floor_cells = go_floor_cells(r) if with_floor else []
        if with_model:
            floor_cells += go_model_cells(r)
        if with_trivial:
            floor_cells += trivial_cells(r)
        if r.status != "ok":
            blank = [""] * (len(columns) - 3 - len(floor_cells))
            table.add_row(r.id, "[red]failed[/red]", _fmt(r.target_rps), *blank, *floor_cells)
            continue
        errors = f"[red]{r.errors}[/red]" if r.errors else "0"
        table.add_row(
            r.id,
            _fmt(r.rps),
            _fmt(r.target_rps),
            _ratio(r.vs_go),
            _fmt(r.target_rps_norm),
            _ratio(r.vs_go_norm),
            _fmt(r.p50_ms, 2),
            _fmt(r.p99_ms, 2),
            errors,
            _mb_pair(r.idle_rss_mb, r.rss_mb),
            _mb_pair(r.idle_pss_mb, r.pss_mb),
            "—" if r.cpu_server_pct is None else f"{r.cpu_server_pct:.0f}%",
            _fmt(r.server_cpu_us_per_req),
            "—" if r.cpu_other_pct is None else f"{r.cpu_other_pct:.0f}%",
            *floor_cells,
        )
    width = 170 + (60 if with_floor else 0) + (50 if with_model else 0)
    console = _console(width + (40 if with_trivial else 0))
    console.print(table)
    if with_floor:
        console.print(
            "Go floor: the same kesload row against bench/go_floor (Go net/http + crypto/tls, "
            "fixed answers, same certificates) in this run — an upper bound for Go KES on "
            "this machine; vs floor = req/s / Go floor."
        )
    if with_model:
        console.print(
            "Go model: the same row against bench/go_floor --work kes (Go KES's per-request "
            "work on the same Go stack, kes_model.go) — an estimate of Go KES on this "
            "machine; vs model = req/s / Go model."
        )
    if with_trivial:
        console.print(
            "trivial: the same HTTP/1.1 row against bench/baseline_server.py (uvloop + stdlib "
            "ssl + httptools, one fixed answer, no work) in this run; vs trivial = req/s / "
            "trivial."
        )
    if factor is not None:
        console.print(
            f"Go ref: the issue's Go KES numbers (another time, slower machine state). "
            f"Go norm = Go ref × {factor:.3f}: the baseline row (trivial uvloop+ssl+httptools "
            f"server, {BASELINE_SPEC_ID} load) did {factor * BASELINE_REFERENCE_RPS:,.0f} "
            f"req/s here vs ≈{BASELINE_REFERENCE_RPS:,.0f} on the Go reference's machine; "
            f"its 'vs Go' is that factor."
        )
    else:
        console.print("Go norm: no baseline in this run (--no-baseline or it failed).")
    console.print("RSS/PSS MB: idle (before the row's load) / peak, summed over the process tree.")
    for r in rows:
        if r.status != "ok":
            console.print(f"[red]{r.id} failed:[/red] {failure_reason(r.error_text)}")


#: Issue 23: a stateful row's req/s is at least this share of its stateless twin's.
STATEFUL_FLOOR = 0.8


def print_stateful(rows: Sequence[RowResult]) -> None:
    """Each stateful row beside its stateless twin of the same run (nothing without
    stateful rows): req/s, the ratio against the 80 % floor, p50, p99 and µs/req."""
    from rich.table import Table

    paired = [r for r in rows if r.store != "fs" and (r.stateless_rps or r.stateless_error)]
    if not paired:
        return
    table = Table(title="stateful (enclave) vs stateless (fs), same run", title_justify="left")
    columns = ("row", "stateless req/s", "req/s", "vs stateless", "p50 ms", "p99 ms")
    columns += ("stateless p99", "µs/req", "stateless µs/req", "store req", "other CPU")
    for name in columns:
        table.add_column(name, justify="left" if name == "row" else "right", no_wrap=True)
    for r in paired:
        ratio = r.vs_stateless
        shown = _ratio(ratio)
        if ratio is not None:
            shown = f"[{'green' if ratio >= STATEFUL_FLOOR else 'red'}]{shown}[/]"
        table.add_row(
            r.id,
            _fmt(r.stateless_rps),
            _fmt(r.rps) if r.status == "ok" else "[red]failed[/red]",
            shown,
            _fmt(r.p50_ms, 2),
            _fmt(r.p99_ms, 2),
            _fmt(r.stateless_p99_ms, 2),
            _fmt(r.server_cpu_us_per_req),
            _fmt(r.stateless_server_cpu_us_per_req),
            "" if r.store_requests is None else str(r.store_requests),
            f"{_fmt(r.stateless_cpu_other_pct)}/{_fmt(r.cpu_other_pct)}%",
        )
    console = _console()
    console.print(table)
    console.print(
        f"vs stateless = req/s / the same load's req/s on the fs keystore (the row before "
        f"it); the stateful rows act in a named enclave (Kes-Enclave). Floor: "
        f"{STATEFUL_FLOOR:.0%}. store req: requests the store's server (OpenBao) got for "
        f"the enclave in the measured windows. other CPU: stateless/stateful row."
    )


def print_kms_batches(costs: Sequence[dict[str, Any]]) -> None:
    """The KMS API's batch against single requests (``results.kms_batch_costs``), per
    connection count: server CPU per command and per request (nothing without KMS rows)."""
    console = _console()
    for c in costs:
        cheaper = c["batch_vs_singles"] < 1
        verdict = "[green]cheaper[/green]" if cheaper else "[red]not cheaper[/red]"
        console.print(
            f"KMS generate, {c['conc']} conn: 1 command {_fmt(c['us_per_cmd_single'], 1)} µs, "
            f"in a batch of {c['batch']} {_fmt(c['us_per_cmd_batch'], 1)} µs per command "
            f"(server CPU); a batch request {_fmt(c['us_per_batch_request'])} µs vs "
            f"{c['singles']} single requests {_fmt(c['us_per_singles'])} µs: "
            f"{c['batch_vs_singles']:.3f}, {verdict}; commands/s "
            f"{_fmt(c['cmds_per_s_single'])} → {_fmt(c['cmds_per_s_batch'])}"
        )


def trivial_cells(r: RowResult) -> list[str]:
    """The trivial-server columns of one table row (blank where it did not run)."""
    if r.trivial_error:
        return ["[red]failed[/red]", "", ""]
    if r.trivial_rps is None:
        return ["", "", ""]
    return [_fmt(r.trivial_rps), _ratio(r.vs_trivial), _fmt(r.trivial_server_cpu_us_per_req)]


def go_model_cells(r: RowResult) -> list[str]:
    """The Go model columns of one table row (blank for rows without a model run)."""
    if r.go_model_error:
        return ["[red]failed[/red]", "", "", ""]
    if r.go_model_rps is None:
        return ["", "", "", ""]
    return [
        _fmt(r.go_model_rps),
        _ratio(r.vs_go_model),
        _fmt(r.go_model_p99_ms, 2),
        _fmt(r.go_model_server_cpu_us_per_req),
    ]


def go_floor_cells(r: RowResult) -> list[str]:
    """The Go floor columns of one table row (blank for rows without a floor run)."""
    if r.go_floor_error:
        return ["[red]failed[/red]", "", "", "", ""]
    if r.go_floor_rps is None:
        return ["", "", "", "", ""]
    other = r.go_floor_cpu_other_pct
    return [
        _fmt(r.go_floor_rps),
        _ratio(r.vs_go_floor),
        _fmt(r.go_floor_p99_ms, 2),
        _fmt(r.go_floor_server_cpu_us_per_req),
        "—" if other is None else f"{other:.0f}%",
    ]


def print_try(result: RowResult, prefix: str = "") -> None:
    """One repeat's result line."""
    if result.status == "ok":
        print(
            f"    {prefix}{result.rps:,.0f} req/s  p50 {result.p50_ms:.2f} ms  "
            f"p99 {result.p99_ms:.2f} ms  errors {result.errors}  "
            f"server {_fmt(result.server_cpu_us_per_req)} µs/req  "
            f"{_store_requests(result)}(other processes: {result.cpu_other_pct}% CPU)",
            flush=True,
        )
    else:
        print(f"    {prefix}FAILED: {failure_reason(result.error_text)}", flush=True)


def _store_requests(result: RowResult) -> str:
    if result.store_requests is None:
        return ""
    return f"{result.store} requests {result.store_requests}  "


def print_comparison(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]) -> None:
    from rich.table import Table

    console = _console()
    for label, run in zip(("A", "B"), (a, b), strict=True):
        commit = (run.get("pykes", {}).get("commit") or "?")[:10]
        dirty = " (dirty)" if run.get("pykes", {}).get("dirty_files") else ""
        cpu = run.get("machine", {}).get("cpu_model", "?")
        console.print(f"{label}: {names[0 if label == 'A' else 1]} — {commit}{dirty}, {cpu}")
    table = Table(title="B vs A", title_justify="left")
    columns = ("row", "req/s A", "req/s B", "Δ req/s", "p99 A", "p99 B", "Δ p99", "err A/B")
    for name in (*columns, "other CPU A/B"):
        table.add_column(name, justify="left" if name == "row" else "right", no_wrap=True)
    for c in compare_runs(a, b):
        change = c.rps_change
        style = (
            ""
            if change is None
            else ("green" if change > 0.05 else "red" if change < -0.05 else "")
        )
        delta = _pct(change)
        table.add_row(
            c.id,
            _fmt(c.rps_a),
            _fmt(c.rps_b),
            f"[{style}]{delta}[/{style}]" if style else delta,
            _fmt(c.p99_a, 2),
            _fmt(c.p99_b, 2),
            _pct(c.p99_change),
            f"{_count(c.errors_a)}/{_count(c.errors_b)}",
            f"{_fmt(c.other_cpu_a)}/{_fmt(c.other_cpu_b)}%",
        )
    console.print(table)
    console.print(
        "other CPU: share of the machine used by other processes during the row; a "
        "difference between runs with much other load is noise, not a result."
    )


def print_run_footer(run: dict[str, Any], baseline: RowResult | None, workers: int) -> None:
    """The lines under the table: a disturbed baseline, what the Go floor said, start-up,
    the server tree's memory against the one-process floor, and the load averages."""
    if baseline is not None and (baseline.cpu_other_pct or 0) > 10:
        print(
            f"WARNING: other processes used {baseline.cpu_other_pct}% of the machine during "
            "the best baseline run: the factor (and every 'vs norm') is disturbed too."
        )
    if run.get("go_floor"):
        gf = run["go_floor"]
        tls_stats = gf.get("tls") or {}
        print(
            f"Go floor: {gf.get('go_version', '?')}, GOMAXPROCS={gf.get('gomaxprocs', '?')}; "
            f"TLS handshakes {tls_stats.get('handshakes', '?')} (resumed "
            f"{tls_stats.get('resumed', '?')}), groups {tls_stats.get('curves', '?')}, "
            f"versions {tls_stats.get('versions', '?')}, ALPN {tls_stats.get('alpn', '?')}"
        )
    if run.get("startup"):
        st = run["startup"]
        print(
            f"start-up (spawn → first 200 from /v1/ready, {workers} workers): "
            f"min {st['min_s']:.3f} s, max {st['max_s']:.3f} s (runs {st['runs_s']})"
        )
    floor = run["python_floor"]
    print(
        f"idle server tree: RSS {run.get('server_idle_rss_mb')} MB, PSS "
        f"{run.get('server_idle_pss_mb')} MB; floor of one bare Python process "
        f"({floor['imports']}): RSS {floor['rss_mb']} MB, PSS {floor['pss_mb']} MB "
        f"→ {workers + 1} processes ≥ {floor['rss_mb'] * (workers + 1):.0f} MB summed RSS"
    )
    for key, label in (("idle", "idle"), ("settled", f"{SETTLE_S:.0f} s after the last row")):
        procs = run.get(f"server_{key}_procs_mb")
        if procs:
            shown = ", ".join(f"{rss:.0f}/{pss:.0f}" for rss, pss in procs)
            print(
                f"server tree {label}: RSS {run.get(f'server_{key}_rss_mb')} MB, PSS "
                f"{run.get(f'server_{key}_pss_mb')} MB; per process RSS/PSS MB "
                f"(master first): {shown}"
            )
    print(
        f"load average before/after: {run['loadavg_start']} / {run['loadavg_end']} "
        "(other work on this machine skews the numbers)"
    )
