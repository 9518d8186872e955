"""One row's result (``RowResult``, saved as JSON by ``dataclasses.asdict``), the best of
its repeats, the machine factor applied to it, and two saved runs compared."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kesbench.kesload_output import parse_error_lines, parse_protocol, parse_result_line
from kesbench.matrix import GO_REFERENCE, RowSpec, normalised_target

#: The version of the results file's layout: ``load_run`` refuses any other.
SCHEMA = 1
#: Issue 24: one request of 64 KMS commands costs less than this many single requests.
BATCH_AGAINST_SINGLES = 8


@dataclass
class RowResult:
    """One row's numbers, and the yardsticks' on the same row; every field is a key of
    the row in the results file (``asdict``), so renaming one breaks ``--compare``."""

    id: str
    op: str
    conc: int
    http2: bool
    new_conn: bool
    status: str = "ok"  # "ok" or "failed"
    store: str = "fs"  # where the keys are: "fs" (stateless) or a stateful store's name
    batch: int = 0  # a KMS API row's commands per request (0: a KES API row)
    cmds_per_s: float | None = None  # a KMS API row's commands per second: rps × batch
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    errors: int = 0
    total: int = 0
    duration_s: float = 0.0
    protocol: str | None = None
    rss_mb: float | None = None  # max over the row of the summed RSS of the tree
    pss_mb: float | None = None  # same, proportional set size (shared pages split)
    idle_rss_mb: float | None = None  # the tree's RSS just before the row's load started
    idle_pss_mb: float | None = None
    target_rps: float | None = None  # the Go reference as measured on the machine
    target_rps_norm: float | None = None  # × the machine factor (see machine_factor)
    vs_go: float | None = None  # rps / target_rps
    vs_go_norm: float | None = None  # rps / target_rps_norm
    target_p99_ms: float | None = None
    cpu_server_pct: float | None = None  # % of the machine (all cores) while the row ran
    cpu_client_pct: float | None = None
    cpu_other_pct: float | None = None  # other processes on the machine: noise
    # Server CPU time (user+system, whole tree) per measured request: from the end of
    # the warm-up to kesload's exit, divided by the measured requests. Far less
    # sensitive to other load on the machine than req/s (see docs/performance.md).
    server_cpu_us_per_req: float | None = None
    # The requests the store's backing server (OpenBao) got over the same window, summed
    # over the repeats: a key answered from a worker's cache makes none (None: no such
    # server).
    store_requests: int | None = None
    loadavg_1m: float | None = None  # at the start of the row
    rps_runs: list[float] = field(default_factory=list)  # every repeat (best one is kept)
    profiled: bool = False
    error_text: str = ""
    error_samples: list[str] = field(default_factory=list)
    # --go-floor: the same kesload row against bench/go_floor (Go's net/http + crypto/tls,
    # fixed answers) in the same run — an upper bound for Go KES on this machine.
    go_floor_rps: float | None = None  # best of the repeats
    go_floor_p99_ms: float | None = None
    go_floor_server_cpu_us_per_req: float | None = None
    go_floor_cpu_other_pct: float | None = None
    go_floor_rss_mb: float | None = None
    go_floor_rps_runs: list[float] | None = None
    vs_go_floor: float | None = None  # rps / go_floor_rps (pykes's share of the floor)
    go_floor_error: str = ""
    # --go-model: the same kesload row against bench/go_floor --work kes (Go KES's
    # per-request work on the same Go stack, kes_model.go) — an estimate of Go KES.
    go_model_rps: float | None = None
    go_model_p99_ms: float | None = None
    go_model_server_cpu_us_per_req: float | None = None
    go_model_cpu_other_pct: float | None = None
    go_model_rss_mb: float | None = None
    go_model_rps_runs: list[float] | None = None
    vs_go_model: float | None = None
    go_model_error: str = ""
    # --trivial: the same HTTP/1.1 row against bench/baseline_server.py (uvloop + stdlib
    # ssl + httptools, one fixed answer, no work) — what Python on this stack can reach.
    trivial_rps: float | None = None
    trivial_p99_ms: float | None = None
    trivial_server_cpu_us_per_req: float | None = None
    trivial_cpu_other_pct: float | None = None
    trivial_rss_mb: float | None = None
    trivial_rps_runs: list[float] | None = None
    vs_trivial: float | None = None
    trivial_error: str = ""
    # A stateful row (an enclave of a store): its stateless twin (the same load on the
    # fs keystore) in the same run; vs_stateless = req/s / the twin's (issue 23: ≥ 0.8).
    stateless_rps: float | None = None
    stateless_p99_ms: float | None = None
    stateless_server_cpu_us_per_req: float | None = None
    stateless_cpu_other_pct: float | None = None
    stateless_rss_mb: float | None = None
    stateless_rps_runs: list[float] | None = None
    vs_stateless: float | None = None
    stateless_error: str = ""

    @classmethod
    def from_kesload(cls, spec: RowSpec, output: str) -> RowResult:
        fields = parse_result_line(output)
        target = GO_REFERENCE.get(spec.id)
        return cls(
            id=spec.id,
            op=spec.op,
            conc=spec.conc,
            http2=spec.http2,
            new_conn=spec.new_conn,
            store=spec.store,
            batch=spec.batch,
            cmds_per_s=fields.get("cmds_per_s") if spec.batch else None,
            rps=float(fields["rps"]),
            p50_ms=float(fields["p50_ms"]),
            p90_ms=float(fields.get("p90_ms", 0.0)),
            p99_ms=float(fields["p99_ms"]),
            max_ms=float(fields.get("max_ms", 0.0)),
            errors=int(fields["errors"]),
            total=int(fields.get("total", 0)),
            duration_s=float(fields.get("duration_s", 0.0)),
            protocol=parse_protocol(output),
            target_rps=target.rps if target else None,
            target_p99_ms=target.p99_ms if target else None,
            error_samples=parse_error_lines(output)[:5],
        )

    def add_go_floor(self, floor: RowResult) -> None:
        """Record the Go floor server's result for the same row (best of its repeats)."""
        self.add_yardstick("go_floor", floor)

    def add_yardstick(self, prefix: str, other: RowResult) -> None:
        """Record another server's result for the same row (best of its repeats) in the
        ``<prefix>_…`` fields and ``vs_<prefix>`` (= our req/s / its req/s)."""
        if other.status != "ok":
            setattr(self, f"{prefix}_error", other.error_text[-500:])
            return
        setattr(self, f"{prefix}_rps", other.rps)
        setattr(self, f"{prefix}_p99_ms", other.p99_ms)
        setattr(self, f"{prefix}_server_cpu_us_per_req", other.server_cpu_us_per_req)
        setattr(self, f"{prefix}_cpu_other_pct", other.cpu_other_pct)
        setattr(self, f"{prefix}_rss_mb", other.rss_mb)
        setattr(self, f"{prefix}_rps_runs", list(other.rps_runs))
        ok = self.status == "ok" and other.rps > 0
        setattr(self, f"vs_{prefix}", round(self.rps / other.rps, 4) if ok else None)

    @classmethod
    def failed(cls, spec: RowSpec, why: str) -> RowResult:
        target = GO_REFERENCE.get(spec.id)
        return cls(
            id=spec.id,
            op=spec.op,
            conc=spec.conc,
            http2=spec.http2,
            new_conn=spec.new_conn,
            store=spec.store,
            batch=spec.batch,
            status="failed",
            target_rps=target.rps if target else None,
            target_p99_ms=target.p99_ms if target else None,
            error_text=why[-2000:],
        )


def best_of(tries: Sequence[RowResult]) -> RowResult:
    """The repeat with the highest req/s (the least disturbed by other work); every
    repeat's req/s is kept in ``rps_runs``. A row fails only if every repeat failed."""
    ok = [t for t in tries if t.status == "ok"]
    if not ok:
        return tries[-1]
    best = max(ok, key=lambda t: t.rps)
    best.rps_runs = [t.rps for t in ok]
    counted = [t.store_requests for t in ok if t.store_requests is not None]
    best.store_requests = sum(counted) if counted else None  # every repeat's, not the best's
    return best


def pair_with_stateless(rows: Sequence[RowResult]) -> None:
    """Hold every stateful row against its stateless twin of the same run (same op,
    connections and protocol on the fs keystore): the ``stateless_…`` fields."""
    stateless = {r.id: r for r in rows if r.store == "fs"}
    for r in rows:
        suffix = f"-{r.store}"
        if r.store != "fs" and r.id.endswith(suffix):
            twin = stateless.get(r.id.removesuffix(suffix))
            if twin is not None:
                r.add_yardstick("stateless", twin)


def apply_factor(rows: Iterable[RowResult], factor: float | None) -> None:
    """Set every row's normalised Go reference and both ratios (raw and normalised)."""
    for r in rows:
        r.target_rps_norm = normalised_target(r.target_rps, factor)
        if r.target_rps_norm is not None:
            r.target_rps_norm = round(r.target_rps_norm, 1)
        ok = r.status == "ok"
        r.vs_go = round(r.rps / r.target_rps, 4) if ok and r.target_rps else None
        r.vs_go_norm = round(r.rps / r.target_rps_norm, 4) if ok and r.target_rps_norm else None


def save_run(run: dict[str, Any], path: Path) -> None:
    """Write a run's record (``schema``, machine, settings, ``rows``, …) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=2) + "\n")


def load_run(path: Path) -> dict[str, Any]:
    """Read a results file written by this driver (checks the schema version)."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or "rows" not in data:
        raise ValueError(f"{path}: not a pykes bench result (schema {SCHEMA})")
    return data


@dataclass
class Comparison:
    """One row of ``--compare``: run A's and run B's numbers side by side."""

    id: str
    rps_a: float | None
    rps_b: float | None
    p99_a: float | None
    p99_b: float | None
    errors_a: int | None
    errors_b: int | None
    other_cpu_a: float | None = None  # % of the machine other processes used (noise)
    other_cpu_b: float | None = None

    @property
    def rps_change(self) -> float | None:
        """Relative change of req/s from A to B (0.10 = B is 10 % faster)."""
        if not self.rps_a or self.rps_b is None:
            return None
        return self.rps_b / self.rps_a - 1.0

    @property
    def p99_change(self) -> float | None:
        if not self.p99_a or self.p99_b is None:
            return None
        return self.p99_b / self.p99_a - 1.0


def compare_runs(a: dict[str, Any], b: dict[str, Any]) -> list[Comparison]:
    """Row-by-row comparison of two runs, in A's row order then B's extra rows.

    Failed rows count as missing (None) on their side.
    """

    def ok_rows(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in run["rows"] if r.get("status", "ok") == "ok"}

    def ids(run: dict[str, Any]) -> list[str]:
        return [r["id"] for r in run["rows"]]

    ra, rb = ok_rows(a), ok_rows(b)
    order = list(dict.fromkeys(ids(a) + ids(b)))
    out: list[Comparison] = []
    for row_id in order:
        x, y = ra.get(row_id), rb.get(row_id)
        out.append(
            Comparison(
                id=row_id,
                rps_a=x["rps"] if x else None,
                rps_b=y["rps"] if y else None,
                p99_a=x["p99_ms"] if x else None,
                p99_b=y["p99_ms"] if y else None,
                errors_a=x["errors"] if x else None,
                errors_b=y["errors"] if y else None,
                other_cpu_a=x.get("cpu_other_pct") if x else None,
                other_cpu_b=y.get("cpu_other_pct") if y else None,
            )
        )
    return out


def kms_batch_costs(rows: Sequence[RowResult]) -> list[dict[str, Any]]:
    """Per connection count of the KMS rows: one request of the largest batch held against
    ``batch`` single requests at the same connections — server CPU µs per command and
    per request, and ``batch_vs_singles`` = the batch request's server CPU / that of
    ``batch / single batch`` single requests (8 for 64: below 1 means the batch is cheaper)."""
    kms = [r for r in rows if r.batch and r.status == "ok" and r.server_cpu_us_per_req]
    costs = []
    for conc in sorted({r.conc for r in kms}):
        by_batch = {r.batch: r for r in kms if r.conc == conc}
        if 1 not in by_batch or len(by_batch) < 2:
            continue
        single, big = by_batch[1], by_batch[max(by_batch)]
        singles = BATCH_AGAINST_SINGLES
        assert single.server_cpu_us_per_req and big.server_cpu_us_per_req  # filtered above
        costs.append(
            {
                "conc": conc,
                "batch": big.batch,
                "singles": singles,
                "us_per_cmd_single": single.server_cpu_us_per_req,
                "us_per_cmd_batch": round(big.server_cpu_us_per_req / big.batch, 1),
                "us_per_batch_request": big.server_cpu_us_per_req,
                "us_per_singles": round(single.server_cpu_us_per_req * singles, 1),
                "batch_vs_singles": round(
                    big.server_cpu_us_per_req / (single.server_cpu_us_per_req * singles), 3
                ),
                "cmds_per_s_single": single.cmds_per_s,
                "cmds_per_s_batch": big.cmds_per_s,
            }
        )
    return costs
