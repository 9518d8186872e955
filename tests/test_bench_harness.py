"""The benchmark driver's own logic (bench/kesbench): kesload output parsing, the row
matrix, run comparison and profile summaries. No server, no timings."""

from __future__ import annotations

import ast
import graphlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import load_bench_driver

kesload_output = load_bench_driver("kesload_output")
matrix = load_bench_driver("matrix")
pinning = load_bench_driver("pinning")
profiling = load_bench_driver("profiling")
results = load_bench_driver("results")
sampling = load_bench_driver("sampling")

# What bench/kesload prints (a generate row), less its first line.
KESLOAD_OUTPUT = """\
key "bench-key" exists
protocol:  HTTP/1.1 (keep-alive)
window:    5.00 s, 62130 requests, 12426.0 req/s
latency:   mean 5.100 ms, p50 4.200, p90 8.000, p99 19.000, max 40.500
errors:    3
        2 x HTTP 503: busy
        1 x Post "https://127.0.0.1:7373/v1/key/generate/bench-key": context deadline exceeded
RESULT op=generate conc=64 rps=12426.0 p50_ms=4.200 p99_ms=19.000 errors=3 p90_ms=8.000 \
max_ms=40.500 total=62130 http2=off new_conn=false duration_s=5.00
"""


def test_parse_result_line_types() -> None:
    fields = kesload_output.parse_result_line(KESLOAD_OUTPUT)
    assert fields["op"] == "generate"
    assert fields["conc"] == 64 and isinstance(fields["conc"], int)
    assert fields["rps"] == pytest.approx(12426.0)
    assert fields["p50_ms"] == pytest.approx(4.2)
    assert fields["p99_ms"] == pytest.approx(19.0)
    assert fields["errors"] == 3 and isinstance(fields["errors"], int)
    assert fields["total"] == 62130
    assert fields["http2"] == "off"
    assert fields["new_conn"] is False
    assert fields["duration_s"] == pytest.approx(5.0)


def test_parse_result_line_takes_the_last_result() -> None:
    text = "RESULT op=a conc=1 rps=1 p50_ms=1 p99_ms=1 errors=0\n" + KESLOAD_OUTPUT
    assert kesload_output.parse_result_line(text)["op"] == "generate"


def test_parse_result_line_rejects_missing_line_or_fields() -> None:
    with pytest.raises(ValueError, match="no RESULT line"):
        kesload_output.parse_result_line("kesload: setup: create key: HTTP 403\n")
    with pytest.raises(ValueError, match="p99_ms"):
        kesload_output.parse_result_line("RESULT op=generate conc=1 rps=1 p50_ms=1 errors=0")


def test_parse_protocol_and_errors() -> None:
    assert kesload_output.parse_protocol(KESLOAD_OUTPUT) == "HTTP/1.1"
    assert (
        kesload_output.parse_protocol("protocol:  HTTP/2.0 (a new connection per request)")
        == "HTTP/2.0"
    )
    assert kesload_output.parse_protocol("nothing") is None
    assert kesload_output.parse_error_lines(KESLOAD_OUTPUT) == [
        "2 x HTTP 503: busy",
        '1 x Post "https://127.0.0.1:7373/v1/key/generate/bench-key": context deadline exceeded',
    ]


def test_row_result_from_kesload_carries_the_go_reference() -> None:
    spec = matrix.RowSpec("generate", 64, http2=False)
    row = results.RowResult.from_kesload(spec, KESLOAD_OUTPUT)
    assert row.id == "generate-c64-h1"
    assert row.status == "ok"
    assert row.target_rps == 12426
    assert row.target_p99_ms == 19.0
    assert row.protocol == "HTTP/1.1"
    assert row.errors == 3 and len(row.error_samples) == 2
    failed = results.RowResult.failed(matrix.RowSpec("encrypt", 1, http2=True), "boom")
    assert (failed.status, failed.target_rps, failed.error_text) == ("failed", None, "boom")


def test_matrix_ids_and_selection() -> None:
    rows = matrix.full_matrix()
    ids = [r.id for r in rows]
    # + generate/decrypt × 3 × 2 in an enclave of each stateful store (sqlite, openbao)
    # + the KMS API's generate: 1 and 64 commands per request × 1 and 64 connections
    assert len(ids) == len(set(ids)) == 3 * 3 * 2 + 2 + 2 * (2 * 3 * 2) + 2 * 2
    assert set(matrix.GO_REFERENCE) <= set(ids)
    assert set(matrix.QUICK_ROWS) <= set(ids)
    assert "generate-c8-h1-newconn" in ids and "generate-c1000-h1" in ids

    quick = matrix.select_rows(rows, None, quick=True)
    assert [r.id for r in quick] == [i for i in ids if i in matrix.QUICK_ROWS]
    picked = matrix.select_rows(rows, "generate-c64-*, decrypt-c1-h2", quick=False)
    assert [r.id for r in picked] == [
        "generate-c64-h1",
        "generate-c64-h1-sqlite",
        "generate-c64-h1-openbao",
        "generate-c64-h2",
        "generate-c64-h2-sqlite",
        "generate-c64-h2-openbao",
        "decrypt-c1-h2",
    ]
    assert matrix.select_rows(rows, "*-h2", quick=True) == [
        r for r in quick if r.id == "generate-c64-h2"
    ]
    assert matrix.select_rows(rows, "nothing*", quick=False) == []


def test_stateful_rows_follow_their_stateless_twin() -> None:
    rows = matrix.full_matrix()
    loads = {(conc, http2) for conc in matrix.CONCURRENCY for http2 in (False, True)}
    for store in ("sqlite", "openbao"):
        stateful = [r for r in rows if r.store == store and not r.batch]  # KES API rows
        assert {r.op for r in stateful} == {"generate", "decrypt"}
        assert {(r.conc, r.http2) for r in stateful} == loads  # keep-alive loads, no extras
        assert len(stateful) == 2 * len(loads) and not any(r.new_conn for r in stateful)
        for r in stateful:
            twin = rows.index(r.stateless_twin)
            between = rows[twin + 1 : rows.index(r)]
            assert all(b.store not in ("fs", store) for b in between)  # back to back
            assert r.id == r.stateless_twin.id + f"-{store}" and f"{store} store" in r.label


def test_a_stateful_row_is_measured_together_with_its_twin() -> None:
    rows = matrix.select_rows(
        matrix.full_matrix(), "generate-c1-h*,decrypt-c1-h1-sqlite,decrypt-c1-h1-openbao", False
    )
    ids = [[spec.id for spec in group] for group in matrix.measured_together(rows)]
    assert ids == [
        ["generate-c1-h1", "generate-c1-h1-sqlite", "generate-c1-h1-openbao"],
        ["generate-c1-h2", "generate-c1-h2-sqlite", "generate-c1-h2-openbao"],
        ["decrypt-c1-h1-sqlite"],  # its twin was not selected: alone
        ["decrypt-c1-h1-openbao"],
    ]


def test_every_store_has_its_rows_and_a_server_setup() -> None:
    stores = load_bench_driver("stores")
    assert list(stores.STORES) == ["fs", "sqlite", "openbao"]
    assert stores.STATEFUL_STORES == ("sqlite", "openbao")
    ids = {r.id for r in matrix.full_matrix()}
    for op in stores.STATEFUL_OPS:
        for store in stores.STATEFUL_STORES:
            for conc in matrix.CONCURRENCY:
                assert {f"{op}-c{conc}-h1-{store}", f"{op}-c{conc}-h2-{store}"} <= ids
    assert {"generate-c64-h1-openbao", "decrypt-c64-h1-openbao"} <= set(matrix.QUICK_ROWS)


def test_stateful_rows_are_held_against_their_twin() -> None:
    twin = results.RowResult.from_kesload(matrix.RowSpec("generate", 64, False), KESLOAD_OUTPUT)
    spec = matrix.RowSpec("generate", 64, False, store="sqlite")
    stateful = results.RowResult.from_kesload(spec, KESLOAD_OUTPUT)
    stateful.rps = 9940.8
    other = results.RowResult.from_kesload(matrix.RowSpec("decrypt", 64, False), KESLOAD_OUTPUT)
    results.pair_with_stateless([twin, stateful, other])
    assert stateful.store == "sqlite" and stateful.target_rps is None  # no Go reference
    assert (stateful.stateless_rps, stateful.vs_stateless) == (12426.0, 0.8)
    assert twin.vs_stateless is None and other.stateless_rps is None
    alone = results.RowResult.failed(spec, "boom")
    results.pair_with_stateless([alone])  # no twin in the run: nothing to hold it against
    assert alone.stateless_rps is None and alone.vs_stateless is None


KMS_OUTPUT = """\
protocol:  HTTP/1.1 (keep-alive)
RESULT op=kms-generate conc=64 rps=100.0 p50_ms=4.200 p99_ms=19.000 errors=0 p90_ms=8.000 \
max_ms=40.500 total=500 http2=off new_conn=false duration_s=5.00 batch=64 cmds_per_s=6400.0
"""


def test_kms_rows_send_their_batch_in_the_sqlite_enclave() -> None:
    rows = [r for r in matrix.full_matrix() if r.batch]
    assert [r.id for r in rows] == [
        "kms-generate-b1-c1",
        "kms-generate-b1-c64",
        "kms-generate-b64-c1",
        "kms-generate-b64-c64",
    ]
    assert {(r.op, r.store, r.http2) for r in rows} == {("kms-generate", "sqlite", False)}
    groups = matrix.measured_together(rows)
    assert all(len(group) == 1 for group in groups)  # no stateless twin to pair with
    server = type("Server", (), {"url": "https://x", "client_args": [], "ca_file": "ca"})
    server.enclave = "bench"
    row_run = load_bench_driver("row_run")
    cmd = row_run.kesload_command(Path("kesload"), server, rows[2])
    assert cmd[cmd.index("--op") + 1] == "kms-generate" and cmd[-2:] == ["--batch", "64"]
    assert "--batch" not in row_run.kesload_command(Path("k"), server, matrix.full_matrix()[0])


def test_kms_batch_costs_hold_a_batch_against_eight_single_requests() -> None:
    spec = {r.id: r for r in matrix.full_matrix() if r.batch}
    batch = results.RowResult.from_kesload(spec["kms-generate-b64-c64"], KMS_OUTPUT)
    assert (batch.batch, batch.cmds_per_s) == (64, 6400.0)
    single = results.RowResult.from_kesload(spec["kms-generate-b1-c64"], KMS_OUTPUT)
    single.server_cpu_us_per_req, batch.server_cpu_us_per_req = 400.0, 1600.0
    lonely = results.RowResult.from_kesload(spec["kms-generate-b64-c1"], KMS_OUTPUT)
    lonely.server_cpu_us_per_req = 900.0  # no b1-c1 row: nothing to hold it against
    costs = results.kms_batch_costs([single, batch, lonely])
    assert costs == [
        {
            "conc": 64,
            "batch": 64,
            "singles": 8,
            "us_per_cmd_single": 400.0,
            "us_per_cmd_batch": 25.0,
            "us_per_batch_request": 1600.0,
            "us_per_singles": 3200.0,
            "batch_vs_singles": 0.5,
            "cmds_per_s_single": 6400.0,
            "cmds_per_s_batch": 6400.0,
        }
    ]
    batch.server_cpu_us_per_req = 3300.0
    assert results.kms_batch_costs([single, batch])[0]["batch_vs_singles"] > 1  # can fail


def _run(rows: list[dict[str, object]]) -> dict[str, object]:
    return {"schema": results.SCHEMA, "rows": rows}


def _row(row_id: str, rps: float, p99: float, errors: int = 0, status: str = "ok") -> dict:
    return {"id": row_id, "rps": rps, "p99_ms": p99, "errors": errors, "status": status}


def test_compare_runs() -> None:
    a = _run([_row("x", 1000, 10.0), _row("y", 500, 4.0), _row("z", 100, 1.0, status="failed")])
    b = _run([_row("y", 750, 2.0, errors=1), _row("x", 900, 12.0), _row("w", 1, 1.0)])
    out = {c.id: c for c in results.compare_runs(a, b)}
    assert [c.id for c in results.compare_runs(a, b)] == ["x", "y", "z", "w"]
    assert out["x"].rps_change == pytest.approx(-0.10)
    assert out["x"].p99_change == pytest.approx(0.20)
    assert out["y"].rps_change == pytest.approx(0.50)
    assert (out["y"].errors_a, out["y"].errors_b) == (0, 1)
    assert out["z"].rps_a is None and out["z"].rps_change is None  # failed on A, absent on B
    assert out["w"].rps_a is None and out["w"].rps_b == 1
    assert out["x"].other_cpu_a is None  # results written before the CPU shares existed


def test_compare_runs_carries_the_noise_measure() -> None:
    a = _run([{**_row("x", 1000, 10.0), "cpu_other_pct": 2.5}])
    b = _run([{**_row("x", 500, 10.0), "cpu_other_pct": 40.0}])
    (c,) = results.compare_runs(a, b)
    assert (c.other_cpu_a, c.other_cpu_b) == (2.5, 40.0)
    assert c.rps_change == pytest.approx(-0.5)


def test_load_run_checks_the_schema(tmp_path: Path) -> None:
    good = tmp_path / "a.json"
    good.write_text(json.dumps(_run([_row("x", 1, 1)])))
    assert results.load_run(good)["rows"][0]["id"] == "x"
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="not a pykes bench result"):
        results.load_run(bad)


def test_frame_name() -> None:
    assert (
        profiling.frame_name("handle (pykes/api/pipeline.py:97)")
        == "handle (pykes/api/pipeline.py)"
    )
    assert profiling.frame_name("write (libc.so.6)") == "write (libc.so.6)"
    assert profiling.frame_name("0x7f3e5d33b62b (libcrypto.so.3)") == "? (libcrypto.so.3)"
    assert profiling.frame_name("<module> (kes:6)") == "<module> (kes)"


def test_summarize_collapsed() -> None:
    proc = 'process 1:"python kes server";process 2:"python kes server"'
    lines = [
        f"{proc};main (a.py:1);serve (b.py:2);write (b.py:9) 6",
        f"{proc};main (a.py:1);serve (b.py:3);encrypt (c.py:4) 3",
        f"{proc};main (a.py:1);serve (b.py:2);serve (b.py:7) 1",  # recursion counts once
        f"{proc};main (a.py:1);epoll_pwait (libc.so.6) 50",  # idle
        "garbage without a count",
        "",
    ]
    s = profiling.summarize_collapsed(lines, top=3)
    assert s["samples"] == 10
    assert s["idle"] == 50
    assert s["top"] == [
        {"function": "write (b.py)", "self": 6, "inclusive": 6},
        {"function": "encrypt (c.py)", "self": 3, "inclusive": 3},
        {"function": "serve (b.py)", "self": 1, "inclusive": 10},
    ]
    assert s["inclusive"][0] in (["main (a.py)", 10], ["serve (b.py)", 10])


def test_cpu_shares_splits_the_machine() -> None:
    before = sampling.CPUSnapshot(wall=100.0, machine_busy=50.0, server=10.0, children=1.0)
    after = sampling.CPUSnapshot(wall=110.0, machine_busy=66.0, server=18.0, children=5.0)
    # 10 s on 2 cores = 20 core-seconds: server 8, client 4, the rest 16 - 12 = 4
    assert sampling.cpu_shares(before, after, cores=2) == {
        "cpu_server_pct": 40.0,
        "cpu_client_pct": 20.0,
        "cpu_other_pct": 20.0,
    }
    # counters read at slightly different instants never give a negative share
    skewed = sampling.CPUSnapshot(wall=110.0, machine_busy=60.0, server=18.0, children=5.0)
    assert sampling.cpu_shares(before, skewed, cores=2)["cpu_other_pct"] == 0.0


def test_best_of_keeps_the_fastest_repeat() -> None:
    spec = matrix.RowSpec("decrypt", 8, http2=True)
    tries = [results.RowResult.from_kesload(spec, KESLOAD_OUTPUT) for _ in range(3)]
    tries[0].rps, tries[1].rps = 900.0, 1100.0
    tries[2] = results.RowResult.failed(spec, "boom")
    best = results.best_of(tries)
    assert best is tries[1]
    assert best.rps_runs == [900.0, 1100.0]
    assert best.store_requests is None  # no store server behind the row
    assert results.best_of([tries[2]]).status == "failed"


def test_best_of_counts_the_store_requests_of_every_repeat() -> None:
    spec = matrix.RowSpec("generate", 64, http2=False, store="openbao")
    tries = [results.RowResult.from_kesload(spec, KESLOAD_OUTPUT) for _ in range(3)]
    tries[0].rps, tries[1].rps, tries[2].rps = 900.0, 1100.0, 1000.0
    tries[0].store_requests, tries[1].store_requests, tries[2].store_requests = 2, 0, 1
    best = results.best_of(tries)
    assert best is tries[1] and best.store_requests == 3  # a slower repeat's misses count


def test_failure_reason_prefers_kesloads_own_error_line() -> None:
    text = (
        "kesload exit 2: kesload: server=https://127.0.0.1:1 identity=ab op=generate\n"
        'kesload: setup: create key: Post "https://127.0.0.1:1/v1/key/create/k": EOF\n'
    )
    assert kesload_output.failure_reason(text).startswith("kesload: setup: create key")
    assert kesload_output.failure_reason("kesload timed out") == "kesload timed out"
    assert kesload_output.failure_reason("") == "unknown"


def test_machine_factor_and_normalised_go_reference() -> None:
    assert matrix.BASELINE_REFERENCE_RPS == 12000
    assert matrix.machine_factor(24000.0) == pytest.approx(2.0)
    assert matrix.machine_factor(None) is None and matrix.machine_factor(0.0) is None
    assert matrix.normalised_target(12426, 2.0) == pytest.approx(24852)
    assert matrix.normalised_target(None, 2.0) is None
    assert matrix.normalised_target(12426, None) is None

    spec = matrix.RowSpec("generate", 64, http2=False)
    row = results.RowResult.from_kesload(spec, KESLOAD_OUTPUT)  # 12,426 req/s = the Go ref
    no_ref = results.RowResult.from_kesload(
        matrix.RowSpec("encrypt", 8, http2=True), KESLOAD_OUTPUT
    )
    failed = results.RowResult.failed(matrix.RowSpec("decrypt", 64, http2=False), "boom")
    results.apply_factor([row, no_ref, failed], matrix.machine_factor(18000.0))  # factor 1.5
    assert row.target_rps == 12426  # the raw reference is kept
    assert row.target_rps_norm == pytest.approx(18639.0)
    assert row.vs_go == pytest.approx(1.0)
    assert row.vs_go_norm == pytest.approx(1 / 1.5, abs=1e-4)
    assert (no_ref.target_rps_norm, no_ref.vs_go, no_ref.vs_go_norm) == (None, None, None)
    assert failed.target_rps_norm == pytest.approx(12702 * 1.5)
    assert (failed.vs_go, failed.vs_go_norm) == (None, None)

    results.apply_factor([row], None)  # no baseline: raw ratio only
    assert (row.target_rps_norm, row.vs_go, row.vs_go_norm) == (None, 1.0, None)


def test_pin_splits_the_cpus_between_servers_and_client() -> None:
    two = pinning.pin_cpus([1, 0])
    assert two == {"server": frozenset({0}), "client": frozenset({1})}
    four = pinning.pin_cpus([3, 2, 1, 0])
    assert four == {"server": frozenset({0, 1}), "client": frozenset({2, 3})}
    odd = pinning.pin_cpus([4, 6, 8])
    assert odd["server"] == frozenset({4}) and odd["client"] == frozenset({6, 8})
    with pytest.raises(SystemExit):
        pinning.pin_cpus([0])


def test_pinned_binds_a_child_process_to_its_cpus() -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs")
    split = pinning.pin_cpus(sorted(os.sched_getaffinity(0)))
    pinning.PIN.update(split)
    try:
        assert pinning.pinned("nobody") is None
        code = "import os; print(sorted(os.sched_getaffinity(0)))"
        for role in ("server", "client"):
            out = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                preexec_fn=pinning.pinned(role),
            ).stdout
            assert out.strip() == str(sorted(split[role]))
    finally:
        pinning.PIN.clear()
    assert pinning.pinned("server") is None


def test_driver_modules_import_one_another_without_a_circle() -> None:
    package = Path(matrix.__file__).parent
    imports: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        imports[path.stem] = {
            node.module.removeprefix("kesbench.")
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kesbench.")
        }
    assert "cli" in imports and imports["cli"]  # the scan found the package's imports
    order = list(graphlib.TopologicalSorter(imports).static_order())  # CycleError on a circle
    assert set(order) == set(imports)
