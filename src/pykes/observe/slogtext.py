"""Go ``log/slog`` text-handler formatting."""

from __future__ import annotations

import json

from pykes.goformat.timestamp import format_slog_time

LEVEL_DEBUG, LEVEL_INFO, LEVEL_WARN, LEVEL_ERROR = -4, 0, 4, 8
_LEVEL_NAMES = {LEVEL_DEBUG: "DEBUG", LEVEL_INFO: "INFO", LEVEL_WARN: "WARN", LEVEL_ERROR: "ERROR"}


def level_name(level: int) -> str:
    for base in (LEVEL_ERROR, LEVEL_WARN, LEVEL_INFO, LEVEL_DEBUG):
        if level >= base:
            name = _LEVEL_NAMES[base]
            return name if level == base else f"{name}+{level - base}"
    return f"DEBUG{level - LEVEL_DEBUG:+d}"


def _needs_quoting(value: str) -> bool:
    if not value:
        return True
    return any(c.isspace() or c in '"=' or not c.isprintable() for c in value)


def quote_value(value: str) -> str:
    if not _needs_quoting(value):
        return value
    # strconv.Quote-compatible for the printable/escape cases that matter here.
    return json.dumps(value, ensure_ascii=False)


def format_record(ns: int, level: int, message: str, attrs: list[tuple[str, str]]) -> str:
    parts = [
        f"time={format_slog_time(ns)}",
        f"level={level_name(level)}",
        f"msg={quote_value(message)}",
    ]
    parts.extend(f"{k}={quote_value(v)}" for k, v in attrs)
    return " ".join(parts)
