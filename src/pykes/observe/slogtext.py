"""Go ``log/slog`` text-handler formatting and Go duration strings."""

from __future__ import annotations

import json
import time

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


def local_millis(ns: int) -> str:
    """RFC 3339 with milliseconds in the local zone (slog's time format)."""
    secs, rem = divmod(ns, 1_000_000_000)
    tm = time.localtime(secs)
    off = tm.tm_gmtoff
    zone = (
        "Z"
        if off == 0
        else f"{'+' if off >= 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    )
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + f".{rem // 1_000_000:03d}" + zone


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return sign + _frac(ns, 1_000) + "µs"
    if ns < 1_000_000_000:
        return sign + _frac(ns, 1_000_000) + "ms"
    hours, rem = divmod(ns, 3_600_000_000_000)
    minutes, rem = divmod(rem, 60_000_000_000)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _frac(rem, 1_000_000_000) + "s"


def _frac(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


def format_record(ns: int, level: int, message: str, attrs: list[tuple[str, str]]) -> str:
    parts = [
        f"time={local_millis(ns)}",
        f"level={level_name(level)}",
        f"msg={quote_value(message)}",
    ]
    parts.extend(f"{k}={quote_value(v)}" for k, v in attrs)
    return " ".join(parts)
