"""Go ``time.Duration`` parsing and formatting (docs/compat/config.md §1 "Durations").

Durations are kept as integer nanoseconds internally so that error texts which print
a duration (``%v`` → :func:`format_duration`, ``%d`` → nanoseconds) are byte-exact;
the public :func:`parse_duration` returns float seconds.
"""

from __future__ import annotations

from pykes.errors import ConfigError
from pykes.goformat.text import go_quote

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS: dict[str, int] = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # U+00B5 micro sign
    "\u03bcs": MICROSECOND,  # U+03BC Greek small letter mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}

_MAX_UINT = 1 << 63  # Go accumulates in uint64 and checks against 1<<63
_MAX_INT64 = (1 << 63) - 1


class DurationError(ConfigError, ValueError):
    """An invalid Go duration string; the message is Go's ``time`` package text."""


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _leading_int(s: str) -> tuple[int, str] | None:
    """Consume ``[0-9]*``; ``None`` on overflow (mirrors Go's ``leadingInt``)."""
    i, x = 0, 0
    while i < len(s) and _is_digit(s[i]):
        if x > _MAX_UINT // 10:
            return None
        x = x * 10 + ord(s[i]) - ord("0")
        if x > _MAX_UINT:
            return None
        i += 1
    return x, s[i:]


def _leading_fraction(s: str) -> tuple[int, float, str]:
    """Consume ``[0-9]*`` after a dot: (digits value, 10**len, rest), overflow-tolerant."""
    i, x, scale, overflow = 0, 0, 1.0, False
    while i < len(s) and _is_digit(s[i]):
        if not overflow:
            if x > _MAX_INT64 // 10:
                overflow = True
            else:
                y = x * 10 + ord(s[i]) - ord("0")
                if y > _MAX_UINT:
                    overflow = True
                else:
                    x = y
                    scale *= 10
        i += 1
    return x, scale, s[i:]


def parse_duration_ns(s: str) -> int:
    """Parse a Go duration string into integer nanoseconds (Go ``time.ParseDuration``).

    ``"0"`` (optionally signed) is the only unit-less value accepted; ``"5"`` fails with
    ``time: missing unit in duration "5"``.
    """
    orig = s
    invalid = f"time: invalid duration {go_quote(orig)}"
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise DurationError(invalid)
    total = 0
    while s:
        if not (s[0] == "." or _is_digit(s[0])):
            raise DurationError(invalid)
        before = len(s)
        lead = _leading_int(s)
        if lead is None:
            raise DurationError(invalid)
        v, s = lead
        pre = before != len(s)
        f, scale, post = 0, 1.0, False
        if s and s[0] == ".":
            s = s[1:]
            before = len(s)
            f, scale, s = _leading_fraction(s)
            post = before != len(s)
        if not pre and not post:
            raise DurationError(invalid)
        i = 0
        while i < len(s) and not (s[i] == "." or _is_digit(s[i])):
            i += 1
        if i == 0:
            raise DurationError(f"time: missing unit in duration {go_quote(orig)}")
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise DurationError(
                f"time: unknown unit {go_quote(unit_name)} in duration {go_quote(orig)}"
            )
        if v > _MAX_UINT // unit:
            raise DurationError(invalid)
        v *= unit
        if f > 0:
            v += int(float(f) * (float(unit) / scale))
            if v > _MAX_UINT:
                raise DurationError(invalid)
        total += v
        if total > _MAX_UINT:
            raise DurationError(invalid)
    if neg:
        return -total
    if total > _MAX_INT64:
        raise DurationError(invalid)
    return total


def parse_duration(s: str) -> float:
    """Parse a Go duration string (``30s``, ``1h30m``, ``1.5h``, ``250ms``…) into seconds.

    Raises :class:`DurationError` (a :class:`~pykes.errors.ConfigError` and
    :class:`ValueError`) with Go's error text for invalid input.
    """
    return parse_duration_ns(s) / SECOND


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    """Go ``fmtFrac``: the fraction of ``v / 10**prec`` without trailing zeros."""
    digits: list[str] = []
    printed = False
    for _ in range(prec):
        digit = v % 10
        printed = printed or digit != 0
        if printed:
            digits.append(str(digit))
        v //= 10
    if printed:
        digits.append(".")
    return "".join(reversed(digits)), v


def format_duration(ns: int) -> str:
    """Format nanoseconds like Go's ``Duration.String`` (``5m0s``, ``1.5s``, ``-2ms``, ``0s``)."""
    u = -ns if ns < 0 else ns
    if u < SECOND:
        if u == 0:
            return "0s"
        if u < MICROSECOND:
            prec, unit = 0, "ns"
        elif u < MILLISECOND:
            prec, unit = 3, "\u00b5s"
        else:
            prec, unit = 6, "ms"
        frac, u = _fmt_frac(u, prec)
        text = f"{u}{frac}{unit}"
    else:
        frac, u = _fmt_frac(u, 9)
        text = f"{u % 60}{frac}s"
        u //= 60
        if u > 0:
            text = f"{u % 60}m{text}"
            u //= 60
            if u > 0:
                text = f"{u}h{text}"
    return "-" + text if ns < 0 else text
