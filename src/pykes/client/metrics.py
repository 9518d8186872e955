"""``/v1/metrics``: Prometheus text → :class:`Metric` (Go SDK ``Client.Metrics``).

The rules of the Go SDK (docs/compat/observability.md §3): every family must carry at least
one metric; the three request counters are summed over their ``code`` labels; every
other known family must hold exactly one metric; histogram bucket bounds become
durations (``+Inf`` and a zero bound are dropped); unknown families are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pykes.client.errors import ResponseError

__all__ = ["Metric", "parse_metrics"]

_SECOND = 1_000_000_000
_MILLISECOND = 1_000_000


@dataclass
class Metric:
    """A metrics snapshot. Durations are integer nanoseconds (Go ``time.Duration``)."""

    request_ok: int = 0
    request_err: int = 0
    request_fail: int = 0
    request_active: int = 0
    audit_events: int = 0
    error_events: int = 0
    #: upper bucket bound (ns) → cumulative number of requests
    latency_histogram: dict[int, int] = field(default_factory=dict)
    uptime: int = 0
    cpus: int = 0
    usable_cpus: int = 0
    threads: int = 0
    heap_alloc: int = 0
    heap_objects: int = 0
    stack_alloc: int = 0

    @property
    def request_n(self) -> int:
        """Number of counted requests (2xx + 4xx + 5xx)."""
        return self.request_ok + self.request_err + self.request_fail

    def average_latency(self) -> int:
        """Mean latency in ns estimated from the histogram (as ``kes metric``)."""
        total = max(self.latency_histogram.values(), default=0)
        if not total:
            return 0
        avg, seen = 0.0, 0
        for bound in sorted(self.latency_histogram):
            count = self.latency_histogram[bound]
            avg += bound * ((count - seen) / total)
            seen = count
        return int(avg)

    def to_json(self) -> dict[str, Any]:
        """The field names of the Go SDK's ``Metric`` JSON (docs/compat/cli.md §10)."""
        histogram = {str(k): v for k, v in self.latency_histogram.items()}
        return {
            "kes_http_request_success": self.request_ok,
            "kes_http_request_error": self.request_err,
            "kes_http_request_failure": self.request_fail,
            "kes_http_request_active": self.request_active,
            "kes_log_audit_events": self.audit_events,
            "kes_log_error_events": self.error_events,
            "kes_http_response_time": dict(sorted(histogram.items())),
            "kes_system_up_time": self.uptime,
            "kes_system_num_cpu": self.cpus,
            "kes_system_num_cpu_used": self.usable_cpus,
            "kes_system_num_threads": self.threads,
            "kes_system_mem_heap_used": self.heap_alloc,
            "kes_system_mem_heap_objects": self.heap_objects,
            "kes_system_mem_stack_used": self.stack_alloc,
        }


_SUMMED = {
    "kes_http_request_success": "request_ok",
    "kes_http_request_error": "request_err",
    "kes_http_request_failure": "request_fail",
}
_SINGLE: dict[tuple[str, str], str] = {
    ("kes_http_request_active", "gauge"): "request_active",
    ("kes_log_audit_events", "counter"): "audit_events",
    ("kes_log_error_events", "counter"): "error_events",
    ("kes_system_num_cpu", "gauge"): "cpus",
    ("kes_system_num_cpu_used", "gauge"): "usable_cpus",
    ("kes_system_num_threads", "gauge"): "threads",
    ("kes_system_mem_heap_used", "gauge"): "heap_alloc",
    ("kes_system_mem_heap_objects", "gauge"): "heap_objects",
    ("kes_system_mem_stack_used", "gauge"): "stack_alloc",
}


def _metric_count(samples: list[Any]) -> int:
    """Number of metrics in a family = distinct label sets (bucket ``le`` excluded)."""
    keys = {
        tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("le", "quantile")))
        for s in samples
    }
    return len(keys)


def parse_metrics(text: str) -> Metric:
    """Parse a Prometheus text exposition as the Go SDK does."""
    from prometheus_client.parser import text_string_to_metric_families

    metric = Metric()
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError) as err:
        raise ResponseError(f"kes: invalid metrics response: {err}") from None
    for family in families:
        if not family.samples:
            raise ResponseError("kes: server response contains no metric")
        name, kind = family.name, family.type
        if kind == "counter" and name in _SUMMED:
            total = sum(int(s.value) for s in family.samples)
            setattr(metric, _SUMMED[name], getattr(metric, _SUMMED[name]) + total)
            continue
        if _metric_count(family.samples) != 1:
            raise ResponseError("kes: server response contains more than one metric")
        if (name, kind) in _SINGLE:
            setattr(metric, _SINGLE[(name, kind)], int(family.samples[0].value))
        elif name == "kes_http_response_time" and kind == "histogram":
            histogram: dict[int, int] = {}
            for sample in family.samples:
                if not sample.name.endswith("_bucket"):
                    continue
                bound = float(sample.labels.get("le", "+Inf"))
                if math.isinf(bound):
                    continue
                # Go: time.Duration(1000*bound) * time.Millisecond
                histogram[int(1000 * bound) * _MILLISECOND] = int(sample.value)
            histogram.pop(0, None)
            metric.latency_histogram = histogram
        elif name == "kes_system_up_time" and kind == "gauge":
            # Go: time.Duration(value) * time.Second - whole seconds
            metric.uptime = int(family.samples[0].value) * _SECOND
    return metric
