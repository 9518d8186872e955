"""Timestamps as Go prints and reads them: ``time.RFC3339Nano`` (docs/compat/api.md §2)
and the time of a ``log/slog`` text record.

``2024-01-12T10:39:20.886816Z``: the fraction has its trailing zeros trimmed and is
omitted when zero; the zone is ``Z`` for a zero UTC offset, else ``±hh:mm``. Times are
integer Unix nanoseconds; ``None`` stands for Go's zero time ``0001-01-01T00:00:00Z``.
"""

from __future__ import annotations

import re
import time

_NS = 1_000_000_000
ZERO_TIME = "0001-01-01T00:00:00Z"
ZERO_TIME_NS = -62_135_596_800 * _NS  # Go's zero time.Time as Unix nanoseconds

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def format_rfc3339_nano(ns: int | None, *, local: bool = False) -> str:
    """Format Unix nanoseconds like Go ``t.Format(time.RFC3339Nano)``.

    UTC by default; ``local=True`` uses the server's local zone (``Z`` if its offset at
    that instant is zero, as Go prints it).
    """
    if ns is None:
        return ZERO_TIME
    seconds, nanos = divmod(ns, _NS)
    tm = time.localtime(seconds) if local else time.gmtime(seconds)
    text = (
        f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"
        f"T{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    )
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    offset = tm.tm_gmtoff if local else 0
    return text + _zone(offset) if offset else text + "Z"


def format_slog_time(ns: int) -> str:
    """Unix nanoseconds as Go's ``log/slog`` text handler prints a record's time: RFC 3339
    with milliseconds, in the local zone."""
    seconds, nanos = divmod(ns, _NS)
    tm = time.localtime(seconds)
    millis = f".{nanos // 1_000_000:03d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + millis + (_zone(tm.tm_gmtoff) or "Z")


def _zone(offset: int) -> str:
    """``±hh:mm`` of a UTC offset in seconds; "" for none."""
    if not offset:
        return ""
    minutes = abs(offset) // 60  # Go drops the seconds of an offset
    sign = "-" if offset < 0 else "+"
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_rfc3339_nano(s: str) -> int:
    """Parse an RFC 3339 timestamp (any offset) to Unix nanoseconds, as Go's
    ``time.Time.UnmarshalJSON`` accepts it; ``ValueError`` for anything else.

    Fractions longer than 9 digits are truncated like Go does.
    """
    match = _RFC3339.fullmatch(s)
    if match is None:
        raise ValueError("timestamp is not RFC 3339")
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    fraction, sign, zone_hour, zone_minute = match.group(7, 8, 9, 10)
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        raise ValueError("timestamp date out of range")
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError("timestamp time of day out of range")
    offset = 0
    if sign:
        if int(zone_hour) > 23 or int(zone_minute) > 59:
            raise ValueError("timestamp zone offset out of range")
        offset = (int(zone_hour) * 60 + int(zone_minute)) * 60
        if sign == "-":
            offset = -offset
    nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return (seconds - offset) * _NS + nanos
