"""The row matrix (operation × concurrency × protocol), its selection, and the Go KES
reference each row is held against."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from kesbench.stores import STATEFUL_OPS, STATEFUL_STORES

OPS = ("generate", "decrypt", "encrypt")
CONCURRENCY = (1, 8, 64)
#: The KMS API rows (``/v1/kms/<enclave>``): GenerateKey commands per request × connections,
#: on the SQLite store's enclave (the KMS API needs a stateful store).
KMS_BATCHES = (1, 64)
KMS_CONCURRENCY = (1, 64)
KMS_STORE = "sqlite"


@dataclass(frozen=True)
class RowSpec:
    """One benchmark row: an operation at a concurrency over one protocol, on the
    stateless ``fs`` keystore or in an enclave of a stateful store (kesbench/stores.py)."""

    op: str
    conc: int
    http2: bool
    new_conn: bool = False
    store: str = "fs"
    batch: int = 0  # commands per request of a KMS API row; 0: a KES API row

    @property
    def id(self) -> str:
        if self.batch:
            return f"{self.op}-b{self.batch}-c{self.conc}"
        proto = "h2" if self.http2 else "h1"
        suffix = "-newconn" if self.new_conn else ""
        return f"{self.op}-c{self.conc}-{proto}{suffix}{self.store_suffix}"

    @property
    def store_suffix(self) -> str:
        return "" if self.store == "fs" else f"-{self.store}"

    @property
    def stateless_twin(self) -> RowSpec:
        """The same load on the stateless server (itself for a stateless row)."""
        return RowSpec(self.op, self.conc, self.http2, self.new_conn, batch=self.batch)

    @property
    def label(self) -> str:
        proto = "HTTP/2" if self.http2 else "HTTP/1.1"
        conn = ", new conn/request" if self.new_conn else ""
        where = "" if self.store == "fs" else f" · {self.store} store, enclave"
        per_request = f" · {self.batch} cmd/request" if self.batch else ""
        return f"{self.op}{per_request} · {self.conc} conn · {proto}{conn}{where}"


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


def full_matrix() -> list[RowSpec]:
    """generate / decrypt / encrypt × 1 / 8 / 64 conns × h1 / h2, then the two extras,
    then the KMS API's generate rows (1 and 64 commands per request × 1 and 64 conns).
    Each generate and decrypt row is followed by the same row in an enclave of every
    stateful store (``…-sqlite``, ``…-openbao``): held against it in the same minute."""
    rows = []
    for op in OPS:
        for conc in CONCURRENCY:
            for http2 in (False, True):
                rows.append(RowSpec(op, conc, http2))
                if op in STATEFUL_OPS:
                    rows += [RowSpec(op, conc, http2, store=s) for s in STATEFUL_STORES]
    rows.append(RowSpec("generate", 8, http2=False, new_conn=True))
    rows.append(RowSpec("generate", 1000, http2=False))
    rows += [
        RowSpec("kms-generate", conc, http2=False, store=KMS_STORE, batch=batch)
        for batch in KMS_BATCHES
        for conc in KMS_CONCURRENCY
    ]
    return rows


QUICK_ROWS = (
    "generate-c1-h1",
    "generate-c64-h1",
    "generate-c64-h1-sqlite",
    "generate-c64-h1-openbao",
    "generate-c64-h2",
    "decrypt-c64-h1",
    "decrypt-c64-h1-sqlite",
    "decrypt-c64-h1-openbao",
    "generate-c8-h1-newconn",
)


def measured_together(rows: Sequence[RowSpec]) -> list[tuple[RowSpec, ...]]:
    """``rows`` in order, the stateful rows grouped with the stateless twin just before
    them (``-sqlite``, ``-openbao``): a group's repeats alternate between its order and
    the reverse, so each stateful row runs after its twin, then before it (drift within
    a group then counts against each in turn)."""
    groups: list[tuple[RowSpec, ...]] = []
    for spec in rows:
        if spec.store != "fs" and groups and groups[-1][0] == spec.stateless_twin:
            groups[-1] = (*groups[-1], spec)
        else:
            groups.append((spec,))
    return groups


def select_rows(rows: Sequence[RowSpec], patterns: str | None, quick: bool) -> list[RowSpec]:
    """Rows matching any comma-separated glob in ``patterns`` (all if None); ``quick``
    first narrows the matrix to :data:`QUICK_ROWS`."""
    selected = [r for r in rows if r.id in QUICK_ROWS] if quick else list(rows)
    if patterns:
        globs = [p.strip() for p in patterns.split(",") if p.strip()]
        selected = [r for r in selected if any(fnmatch.fnmatchcase(r.id, g) for g in globs)]
    return selected
