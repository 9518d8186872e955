"""Prometheus metrics for ``/v1/metrics`` (spec/observability.md §3).

Counting on the hot path is plain integer arithmetic on this object; the text is built
only when scraped. Family names, types and labels are the Go server's. The exposition
is written here rather than with ``prometheus_client``: its text writer renames every
counter family to ``<name>_total`` (``# TYPE kes_http_request_success_total counter``),
which no longer matches the samples the Go SDK and the Grafana dashboard look for.
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 3.0, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class RequestMetrics:
    __slots__ = ("active", "success", "error", "failure", "bucket_counts", "time_sum", "count")

    def __init__(self) -> None:
        self.active = 0
        self.success: dict[int, int] = {}
        self.error: dict[int, int] = {}
        self.failure: dict[int, int] = {}
        self.bucket_counts = [0] * (len(BUCKETS) + 1)
        self.time_sum = 0.0
        self.count = 0

    def observe(self, status: int, seconds: float) -> None:
        table = self.success if status < 400 else self.error if status < 500 else self.failure
        table[status] = table.get(status, 0) + 1
        self.bucket_counts[bisect_left(BUCKETS, seconds)] += 1
        self.time_sum += seconds
        self.count += 1


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
    def __init__(self, start_monotonic: float) -> None:
        self.requests = RequestMetrics()
        self.start_monotonic = start_monotonic
        self.audit_events: Callable[[], int] = lambda: 0
        self.error_events: Callable[[], int] = lambda: 0

    def render(self) -> bytes:
        return "".join(self._families()).encode()

    def _families(self) -> Iterator[str]:
        """Families sorted by name, as Go's registry emits them; label-less counter
        vectors that never saw a value are left out."""
        r = self.requests
        heap, stack = memory_usage()
        yield _family(
            "kes_http_request_active",
            "Number of active requests that are not finished, yet.",
            "gauge",
            [("kes_http_request_active", "", r.active)],
        )
        if r.error:
            yield _family(
                "kes_http_request_error",
                "Number of request that failed due to some error. (HTTP 4xx status code)",
                "counter",
                _coded("kes_http_request_error", r.error),
            )
        if r.failure:
            yield _family(
                "kes_http_request_failure",
                "Number of request that failed due to some internal failure. "
                "(HTTP 5xx status code)",
                "counter",
                _coded("kes_http_request_failure", r.failure),
            )
        if r.success:
            yield _family(
                "kes_http_request_success",
                "Number of requests that have been served successfully.",
                "counter",
                _coded("kes_http_request_success", r.success),
            )
        buckets: list[Sample] = []
        acc = 0
        for bound, n in zip((*BUCKETS, math.inf), r.bucket_counts, strict=True):
            acc += n
            buckets.append(("kes_http_response_time_bucket", f'{{le="{go_float(bound)}"}}', acc))
        buckets.append(("kes_http_response_time_sum", "", r.time_sum))
        buckets.append(("kes_http_response_time_count", "", r.count))
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
                self.audit_events(),
            ),
            (
                "kes_log_error_events",
                "Number of error log events written to the error log targets.",
                "counter",
                self.error_events(),
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
