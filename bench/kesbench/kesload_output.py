"""What ``kesload`` prints: its ``RESULT`` line, the negotiated protocol, its error lines
and, for a failed row, the line that says why."""

from __future__ import annotations

import re
from typing import Any

_RESULT_FIELD = re.compile(r"(\w+)=(\S+)")
_INT_FIELDS = {"conc", "errors", "total", "batch"}
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


def failure_reason(error_text: str) -> str:
    """The most telling line of a failed row: kesload's own error line if there is one
    (``kesload: setup: …``), else the first line."""
    lines = [ln.strip() for ln in error_text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("kesload: ") and not line.startswith("kesload: server="):
            return line
    return lines[0] if lines else "unknown"
