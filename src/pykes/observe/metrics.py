"""Prometheus metrics for ``/v1/metrics`` (docs/compat/observability.md §3).

Counting on the hot path is plain integer arithmetic on this object; the text is built
only when scraped. Family names, types and labels are the Go server's. The exposition
is written here rather than with ``prometheus_client``: its text writer renames every
counter family to ``<name>_total`` (``# TYPE kes_http_request_success_total counter``),
which no longer matches the samples the Go SDK and the Grafana dashboard look for.
"""

from __future__ import annotations

import math
import mmap
import os
import resource
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 3.0, 5.0, 10.0)
_FIRST_BOUND = BUCKETS[0]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# Layout of one worker's slot in the shared counter table (int64 each).
_CODES = 500  # HTTP status 100..599 → index status - 100
_BUCKET = _CODES  # len(BUCKETS) + 1 histogram buckets (the last is +Inf)
_SUM_NS = _BUCKET + len(BUCKETS) + 1
_ACTIVE = _SUM_NS + 1
_AUDIT_EVENTS = _ACTIVE + 1
_ERROR_EVENTS = _AUDIT_EVENTS + 1
SLOT_SIZE = _ERROR_EVENTS + 1


class SharedCounters:
    """Request counters of every worker process in one anonymous shared mapping.

    Created by the master before it forks, so every worker inherits it; each worker
    writes only its own slot (single-threaded event loop: no locks needed) and a scrape
    on any worker sums all slots. With one process it is just private memory.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._map = mmap.mmap(-1, workers * SLOT_SIZE * 8)
        self._all = memoryview(self._map).cast("q")

    def slot(self, index: int) -> memoryview:
        return self._all[index * SLOT_SIZE : (index + 1) * SLOT_SIZE]

    def totals(self) -> list[int]:
        sums = [0] * SLOT_SIZE
        for index in range(self.workers):
            for i, value in enumerate(self.slot(index)):
                sums[i] += value
        return sums


class RequestMetrics:
    """This worker's view of its slot: what the request pipeline counts."""

    __slots__ = ("_v",)

    def __init__(self, slot: memoryview) -> None:
        self._v = slot

    def begin(self) -> None:
        self._v[_ACTIVE] += 1

    def end(self, status: int, seconds: float) -> None:
        v = self._v
        v[_ACTIVE] -= 1
        if 100 <= status < 600:
            v[status - 100] += 1
        # The first bucket without a search: almost every request is faster than 10 ms.
        # No separate count: it is the sum of the buckets (``Metrics``).
        v[_BUCKET if seconds <= _FIRST_BOUND else _BUCKET + bisect_left(BUCKETS, seconds)] += 1
        v[_SUM_NS] += math.trunc(seconds * 1e9)  # = int(), without a type call

    def audit_event(self) -> None:
        self._v[_AUDIT_EVENTS] += 1

    def error_event(self) -> None:
        self._v[_ERROR_EVENTS] += 1


Sample = tuple[str, str, float]  # (name, rendered labels, value)


def go_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` as the Prometheus Go client writes it."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _family(name: str, doc: str, kind: str, samples: list[Sample]) -> str:
    lines = [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
    lines.extend(f"{n}{labels} {go_float(v)}" for n, labels, v in samples)
    return "\n".join(lines) + "\n"


def _coded(name: str, table: dict[int, int]) -> list[Sample]:
    return [(name, f'{{code="{code}"}}', n) for code, n in sorted(table.items())]


def memory_usage() -> tuple[int, int]:
    """(heap-ish bytes in use, stack bytes) of this process: RSS and the main stack."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            rss_pages = int(f.read().split()[1])
        heap = rss_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        heap = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
    return heap, stack if stack > 0 else 0


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class Metrics:
    def __init__(self, start_monotonic: float, counters: SharedCounters, slot: int = 0) -> None:
        self.counters = counters
        self.requests = RequestMetrics(counters.slot(slot))
        self.start_monotonic = start_monotonic

    def render(self) -> bytes:
        return "".join(self._families()).encode()

    def _families(self) -> Iterator[str]:
        """Families sorted by name, as Go's registry emits them; label-less counter
        vectors that never saw a value are left out. Counters are summed over all
        worker processes; the system gauges describe the answering process."""
        t = self.counters.totals()
        heap, stack = memory_usage()
        yield _family(
            "kes_http_request_active",
            "Number of active requests that are not finished, yet.",
            "gauge",
            [("kes_http_request_active", "", t[_ACTIVE])],
        )
        codes = {status: t[status - 100] for status in range(100, 600) if t[status - 100]}
        error = {c: n for c, n in codes.items() if 400 <= c < 500}
        failure = {c: n for c, n in codes.items() if c >= 500}
        success = {c: n for c, n in codes.items() if c < 400}
        if error:
            yield _family(
                "kes_http_request_error",
                "Number of request that failed due to some error. (HTTP 4xx status code)",
                "counter",
                _coded("kes_http_request_error", error),
            )
        if failure:
            yield _family(
                "kes_http_request_failure",
                "Number of request that failed due to some internal failure. "
                "(HTTP 5xx status code)",
                "counter",
                _coded("kes_http_request_failure", failure),
            )
        if success:
            yield _family(
                "kes_http_request_success",
                "Number of requests that have been served successfully.",
                "counter",
                _coded("kes_http_request_success", success),
            )
        buckets: list[Sample] = []
        acc = 0
        bucket_counts = t[_BUCKET : _BUCKET + len(BUCKETS) + 1]
        for bound, n in zip((*BUCKETS, math.inf), bucket_counts, strict=True):
            acc += n
            buckets.append(("kes_http_response_time_bucket", f'{{le="{go_float(bound)}"}}', acc))
        buckets.append(("kes_http_response_time_sum", "", t[_SUM_NS] / 1e9))
        buckets.append(("kes_http_response_time_count", "", acc))  # = all buckets
        yield _family(
            "kes_http_response_time",
            "Histogram of request response times spawning from 10ms to 10s.",
            "histogram",
            buckets,
        )
        gauges = [
            (
                "kes_log_audit_events",
                "Number of audit log events written to the audit log targets.",
                "counter",
                t[_AUDIT_EVENTS],
            ),
            (
                "kes_log_error_events",
                "Number of error log events written to the error log targets.",
                "counter",
                t[_ERROR_EVENTS],
            ),
            ("kes_system_mem_heap_objects", "Number of objects allocated on the heap.", "gauge", 0),
            ("kes_system_mem_heap_used", "Number of bytes used by the heap.", "gauge", heap),
            ("kes_system_mem_stack_used", "Number of bytes used as stack memory.", "gauge", stack),
            ("kes_system_num_cpu", "Number of available CPUs.", "gauge", os.cpu_count() or 1),
            (
                "kes_system_num_cpu_used",
                "Number of CPUs used by the server.",
                "gauge",
                usable_cpus(),
            ),
            ("kes_system_num_threads", "Number of threads.", "gauge", threading.active_count()),
            (
                "kes_system_up_time",
                "The time the server has been up and running in seconds.",
                "gauge",
                int((time.monotonic() - self.start_monotonic) * 100) / 100,
            ),
        ]
        for name, doc, kind, value in gauges:
            yield _family(name, doc, kind, [(name, "", value)])
