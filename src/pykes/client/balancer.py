"""Multi-endpoint load balancing and retries of the Go SDK (docs/compat/minio.md §5), sans-I/O.

:meth:`LoadBalancer.plan` is a generator shared by the sync and the async client: it
yields :class:`Attempt` s (endpoint + delay before sending), receives each attempt's
:class:`Outcome` via ``send()`` and finally returns the outcome to report.

* one endpoint: only the retry layer applies;
* several endpoints: a *localhost* first endpoint is tried first unless in timeout,
  then round-robin from a random offset, skipping endpoints in timeout; a network
  error or a status >= 500 except 501 puts the endpoint in timeout for 30 s (after
  that one probe request is let through) and the next endpoint is tried; if every
  endpoint was skipped one more round ignores the timeouts;
* retry layer, per endpoint: network errors and ``503`` are re-sent up to 2 more
  times after 200 ms + random 0–800 ms.

Difference to Go: endpoints are classified as *localhost* by their literal host only
(``localhost`` or a loopback IP); Go also resolves names and compares them with the
host's interface addresses/subnets. The order among non-local endpoints is the same
(the given order, visited round-robin from a random offset).
"""

from __future__ import annotations

import ipaddress
import random
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 30.0
RETRIES = 2
MIN_DELAY = 0.2
MAX_RANDOM_DELAY = 0.8


@dataclass(frozen=True)
class Attempt:
    url: str  # endpoint base URL, e.g. https://127.0.0.1:7373
    delay: float  # seconds to wait before sending


@dataclass
class Outcome:
    """What one attempt produced: a response (``status`` set) or an ``error``.

    ``retryable`` marks errors the retry layer re-sends (network errors, not e.g.
    certificate verification failures). ``response`` is the transport's opaque
    response object, closed by the driver when the outcome is superseded.
    """

    status: int | None = None
    error: BaseException | None = None
    retryable: bool = False
    response: Any = None

    @property
    def failed(self) -> bool:
        """Marks the endpoint as bad: an error, or a 5xx other than 501."""
        if self.error is not None:
            return True
        return self.status is not None and self.status >= 500 and self.status != 501

    @property
    def should_retry(self) -> bool:
        return (self.error is not None and self.retryable) or self.status == 503


def normalize_endpoint(endpoint: str) -> str:
    """``host:port`` → ``https://host:port``; trailing slashes and spaces removed."""
    endpoint = endpoint.strip().rstrip("/")
    if "://" not in endpoint:
        endpoint = "https://" + endpoint
    return endpoint


def _is_localhost(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Endpoint:
    """One server endpoint and its timeout state (thread-safe)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.localhost = _is_localhost(url)
        self._lock = threading.Lock()
        self._timeout_at: float | None = None
        self._probing = False

    def in_timeout(self) -> tuple[bool, bool]:
        """Return ``(timed_out, should_probe)`` (Go ``isInTimeout``)."""
        with self._lock:
            if self._timeout_at is None:
                return False, False
            if time.monotonic() - self._timeout_at < TIMEOUT:
                return True, False
            if not self._probing:
                self._probing = True
                return False, True
            return True, False

    def set_timeout(self, as_probe: bool) -> None:
        with self._lock:
            if self._timeout_at is None or as_probe:
                self._timeout_at = time.monotonic()
            if as_probe:
                self._probing = False

    def clear_timeout(self) -> None:
        with self._lock:
            self._timeout_at = None
            self._probing = False


Plan = Generator[Attempt, Outcome, Outcome]


class LoadBalancer:
    def __init__(self, endpoints: Sequence[str]) -> None:
        if not endpoints:
            raise ValueError("kes: no server endpoint")
        eps = [Endpoint(normalize_endpoint(e)) for e in endpoints]
        # localhost endpoints first, otherwise the given order (stable sort)
        self.endpoints = sorted(eps, key=lambda e: not e.localhost)

    def plan(self) -> Plan:
        """The attempts for one request (see the module docstring)."""
        eps = self.endpoints
        if len(eps) == 1:
            return (yield from _retry(eps[0]))
        last: Outcome | None = None
        first = eps[0]
        if first.localhost:
            timed_out, probe = first.in_timeout()
            if not timed_out or probe:
                last = yield from _retry(first)
                if not last.failed:
                    if probe:
                        first.clear_timeout()
                    return last
                first.set_timeout(probe)
        offset = random.randrange(len(eps))
        full_retry = False
        while True:
            for i in range(1, len(eps) + 1):
                ep = eps[(i + offset) % len(eps)]
                timed_out, probe = ep.in_timeout()
                if timed_out and not probe and not full_retry:
                    continue
                last = yield from _retry(ep)
                if last.failed:
                    ep.set_timeout(probe)
                    continue
                if probe or full_retry:
                    ep.clear_timeout()
                return last
            if last is None and not full_retry:
                full_retry = True  # every endpoint was skipped: ignore the timeouts once
                continue
            assert last is not None
            return last


def _retry(ep: Endpoint) -> Plan:
    outcome = yield Attempt(ep.url, 0.0)
    for _ in range(RETRIES):
        if not outcome.should_retry:
            break
        delay = MIN_DELAY + random.randrange(int(MAX_RANDOM_DELAY * 1000)) / 1000
        outcome = yield Attempt(ep.url, delay)
    return outcome
