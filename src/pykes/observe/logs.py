"""The audit log and the error log: stdout/stderr output plus live subscribers.

Audit events (docs/compat/observability.md §2) go to stdout as slog text and, as JSON, to
every ``/v1/log/audit`` subscriber; error records (§1) go to stderr and to
``/v1/log/error`` subscribers as ``{"message": "<slog text line>"}``. Neither ever
contains key material, plaintext, ciphertext or context: callers pass only fixed
texts, names, paths and identities.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from pykes.goformat.json import go_json, go_json_string
from pykes.goformat.timestamp import format_rfc3339_nano
from pykes.observe.hub import Hub
from pykes.observe.slogtext import (
    LEVEL_DEBUG,
    LEVEL_ERROR,
    LEVEL_INFO,
    LEVEL_WARN,
    format_record,
)


class Request(Protocol):
    """What a log line reads of a request (the API's request satisfies it)."""

    method: str
    path: str
    ip: str
    identity: str
    started: float


AUDIT_REQUESTS_CACHED = 1024  # audit: line middles (``Logs._middle``) kept, then all dropped


class Logs:
    def __init__(
        self,
        error_level: int = LEVEL_INFO,
        audit_level: int = LEVEL_INFO,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.error_level = error_level
        self.audit_level = audit_level
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr
        self.audit_hub = Hub(b"a")
        self.error_hub = Hub(b"e")
        self._pending_stdout: list[str] = []
        self._flush_scheduled = False
        self._time_second = -1
        self._time_prefix = ""
        self._time_zone = ""
        # (path, ip, identity, status, enclave) → the audit line's middle (``_middle``)
        self._middles: dict[tuple[str, str, str, int, str], str] = {}

    # ---------------------------------------------------------------- error log
    def _record(self, level: int, message: str, req: Request | None) -> None:
        if level < self.error_level:
            return
        attrs: list[tuple[str, str]] = []
        if req is not None:
            attrs = [
                ("req.method", req.method),
                ("req.path", req.path),
                ("req.ip", req.ip),
                ("req.identity", req.identity or "<unknown>"),
            ]
        line = format_record(time.time_ns(), level, message, attrs)
        self._stderr.write(line + "\n")
        self._stderr.flush()
        if self.error_hub:
            self.error_hub.publish(go_json({"message": line}))

    def error(self, message: str, req: Request | None = None) -> None:
        self._record(LEVEL_ERROR, message, req)

    def warn(self, message: str, req: Request | None = None) -> None:
        self._record(LEVEL_WARN, message, req)

    def info(self, message: str, req: Request | None = None) -> None:
        self._record(LEVEL_INFO, message, req)

    def debug(self, message: str, req: Request | None = None) -> None:
        if self.error_level <= LEVEL_DEBUG:
            self._record(LEVEL_DEBUG, message, req)

    # ---------------------------------------------------------------- audit log
    def audit(self, req: Request, status: int, elapsed: float | None = None) -> None:
        """One audit event per API request (every route, every status).

        The event has the stream shape of docs/compat/observability.md §2.3 — the JSON the
        Go SDK's ``AuditStream`` and ``kes log`` decode — on stdout and on
        ``/v1/log/audit``. ``response.time`` is integer nanoseconds (the unit the SDK
        decodes): ``elapsed`` seconds, or the time since ``req.started``. Only the
        path, identity, address, enclave (stateful mode, as 2023 KES, §2.4) and status
        are recorded: never a request or response body.
        """
        if self.audit_level > LEVEL_INFO:
            return
        now_ns = time.time_ns()
        if elapsed is None:
            elapsed = time.perf_counter() - req.started
        elapsed_ns = math.trunc(elapsed * 1e9)  # = int(), without a type call
        key = (req.path, req.ip, req.identity, status, req.enclave)
        middle = self._middles.get(key)
        if middle is None:
            middle = self._middle(key)
        # format_rfc3339_nano(now, local=True), with the per-second part cached; the
        # fraction is nine digits without trailing zeros (str of 1_xxxxxxxxx: cheaper
        # than a :09d format)
        seconds = now_ns // 1_000_000_000
        if seconds != self._time_second:
            self._new_second(seconds)
        digits = str(1_000_000_000 + now_ns - seconds * 1_000_000_000)[1:].rstrip("0")
        line = (
            f'{{"time":"{self._time_prefix}{"." if digits else ""}{digits}{self._time_zone}'
            f"{middle}{elapsed_ns if elapsed_ns > 0 else 0}}}}}\n"
        )
        self._pending_stdout.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_stdout)
        hub = self.audit_hub
        if hub._subscribers or hub.remote_subscribers:  # = bool(hub), without the call
            hub.publish(line.encode())

    def _middle(self, key: tuple[str, str, str, int, str]) -> str:
        """The audit line between the time and ``response.time`` for (path, ip,
        identity, status, enclave), cached: a client sends the same few paths from the
        same address with the same identity, and gets the same few status codes."""
        path, ip, identity, status, enclave = key
        request = (
            ("{" + f'"ip":"{ip}",' if ip else "{")
            + (f'"enclave":"{enclave}",' if enclave else "")  # a valid name: no escapes
            + f'"path":{go_json_string(path)}'
            + (f',"identity":"{identity}"' if identity else "")
            + "}"
        )
        middle = f'","request":{request},"response":{{"code":{status},"time":'
        if len(path) <= 1024:
            if len(self._middles) >= AUDIT_REQUESTS_CACHED:
                self._middles.clear()
            self._middles[key] = middle
        return middle

    def _flush_stdout(self) -> None:
        """Audit lines are written once per event-loop turn, not once per request."""
        self._flush_scheduled = False
        lines, self._pending_stdout = self._pending_stdout, []
        self._stdout.write("".join(lines))
        self._stdout.flush()

    def flush(self) -> None:
        if self._pending_stdout:
            self._flush_stdout()

    def _new_second(self, seconds: int) -> None:
        """Cache the text of ``format_rfc3339_nano(seconds, local=True)`` around where
        the fraction goes: the audit time is ``prefix[.fraction]zone``."""
        full = format_rfc3339_nano(seconds * 1_000_000_000, local=True)
        zone_at = len(full) - (1 if full.endswith("Z") else 6)
        self._time_second, self._time_prefix, self._time_zone = (
            seconds,
            full[:zone_at],
            full[zone_at:],
        )


__all__ = ["Hub", "Logs", "LEVEL_DEBUG", "LEVEL_INFO", "LEVEL_WARN", "LEVEL_ERROR"]


class ErrorLogHandler(logging.Handler):
    """Routes Python ``logging`` records of pykes' own modules (e.g. a keystore's token
    renewal warnings) into the error log, with its format, level filter and stream."""

    def __init__(self, logs: Callable[[], Logs]) -> None:
        super().__init__(logging.DEBUG)
        self._logs = logs

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not break a request
            message = str(record.msg)
        level = (
            LEVEL_ERROR
            if record.levelno >= logging.ERROR
            else LEVEL_WARN
            if record.levelno >= logging.WARNING
            else LEVEL_INFO
            if record.levelno >= logging.INFO
            else LEVEL_DEBUG
        )
        self._logs()._record(level, message, None)


def route_python_logging(logs: Callable[[], Logs]) -> None:
    """Send the ``pykes`` logger hierarchy to the error log (once per process)."""
    logger = logging.getLogger("pykes")
    for handler in list(logger.handlers):
        if isinstance(handler, ErrorLogHandler):
            logger.removeHandler(handler)
    logger.addHandler(ErrorLogHandler(logs))
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
