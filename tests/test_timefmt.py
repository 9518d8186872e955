"""Go ``time.RFC3339Nano`` formatting and RFC 3339 parsing (docs/compat/api.md §2)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from pykes.goformat.timestamp import format_rfc3339_nano, parse_rfc3339_nano

S = 1_000_000_000


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (None, "0001-01-01T00:00:00Z"),
        (0, "1970-01-01T00:00:00Z"),
        (1705055960 * S + 886816000, "2024-01-12T10:39:20.886816Z"),
        (1705055960 * S + 800000000, "2024-01-12T10:39:20.8Z"),
        (1705055960 * S + 1, "2024-01-12T10:39:20.000000001Z"),
        (1705055960 * S, "2024-01-12T10:39:20Z"),
        (1795390571 * S + 370758533, "2026-11-22T23:36:11.370758533Z"),
        (1795390571 * S + 404723092, "2026-11-22T23:36:11.404723092Z"),
        (951782400 * S, "2000-02-29T00:00:00Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (-62135596800 * S, "0001-01-01T00:00:00Z"),
        (253402300799 * S + 999999999, "9999-12-31T23:59:59.999999999Z"),
    ],
)
def test_format_utc(ns: int | None, text: str) -> None:
    assert format_rfc3339_nano(ns) == text
    if ns is not None:
        assert parse_rfc3339_nano(text) == ns


@pytest.fixture
def local_zone() -> Iterator[Callable[[str], None]]:
    """Set the process time zone (POSIX TZ strings need no tz database)."""
    saved = os.environ.get("TZ")

    def set_zone(tz: str) -> None:
        os.environ["TZ"] = tz
        time.tzset()

    yield set_zone
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


@pytest.mark.parametrize(
    ("tz", "text"),
    [
        ("UTC0", "2025-05-27T08:00:00.123456789Z"),
        ("CET-1CEST,M3.5.0,M10.5.0/3", "2025-05-27T10:00:00.123456789+02:00"),
        ("EST5EDT,M3.2.0,M11.1.0", "2025-05-27T04:00:00.123456789-04:00"),
        ("IST-5:30", "2025-05-27T13:30:00.123456789+05:30"),
        ("NST3:30", "2025-05-27T04:30:00.123456789-03:30"),
        ("GMT0BST,M3.5.0/1,M10.5.0", "2025-05-27T09:00:00.123456789+01:00"),
    ],
)
def test_format_local(local_zone: Callable[[str], None], tz: str, text: str) -> None:
    local_zone(tz)
    ns = 1748332800 * S + 123456789  # 2025-05-27T08:00:00.123456789Z
    assert format_rfc3339_nano(ns, local=True) == text
    assert parse_rfc3339_nano(text) == ns


def test_format_local_zero_offset_in_winter_is_z(local_zone: Callable[[str], None]) -> None:
    local_zone("GMT0BST,M3.5.0/1,M10.5.0")
    assert format_rfc3339_nano(1705055960 * S, local=True) == "2024-01-12T10:39:20Z"


def test_format_local_zero_time(local_zone: Callable[[str], None]) -> None:
    local_zone("CET-1CEST,M3.5.0,M10.5.0/3")
    assert format_rfc3339_nano(None, local=True) == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2024-01-12T12:39:20.886816+02:00", 1705055960 * S + 886816000),
        ("2024-01-12T05:09:20.886816-05:30", 1705055960 * S + 886816000),
        ("2024-01-12T10:39:20.886816000Z", 1705055960 * S + 886816000),
        ("2024-01-12T10:39:20.8868169999Z", 1705055960 * S + 886816999),  # truncated like Go
        ("2024-01-12T10:39:20+00:00", 1705055960 * S),
        ("2024-01-12T10:39:20-00:00", 1705055960 * S),
        ("0000-01-01T00:00:00Z", -62167219200 * S),
        ("2024-02-29T00:00:00Z", 1709164800 * S),
    ],
)
def test_parse(text: str, ns: int) -> None:
    assert parse_rfc3339_nano(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2024-01-12",
        "2024-01-12T10:39:20",  # no zone
        "2024-01-12 10:39:20Z",
        "2024-01-12t10:39:20Z",
        "2024-01-12T10:39:20z",
        "2024-01-12T10:39:20.Z",
        "2024-01-12T10:39:20,5Z",
        "2024-1-12T10:39:20Z",
        "2024-01-12T1:39:20Z",
        "2024-13-12T10:39:20Z",
        "2024-00-12T10:39:20Z",
        "2023-02-29T10:39:20Z",
        "2024-04-31T10:39:20Z",
        "2024-01-12T24:00:00Z",
        "2024-01-12T10:60:00Z",
        "2024-01-12T10:39:60Z",
        "2024-01-12T10:39:20+24:00",
        "2024-01-12T10:39:20+02:60",
        "2024-01-12T10:39:20+0200",
        "2024-01-12T10:39:20Z ",
        "12024-01-12T10:39:20Z",
        "２０２４-01-12T10:39:20Z",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339_nano(text)
