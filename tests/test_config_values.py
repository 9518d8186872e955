"""Scalar value parsers of the config: Go durations, slog levels, listen addresses
(docs/compat/config.md §1 "Durations", §2 log levels and address)."""

from __future__ import annotations

import pytest

from pykes.config import parse_log_level, split_address
from pykes.errors import ConfigError
from pykes.goformat.duration import (
    DurationError,
    format_duration,
    parse_duration,
    parse_duration_ns,
)

NS, US, MS, S, M, H = 1, 10**3, 10**6, 10**9, 60 * 10**9, 3600 * 10**9


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("+0", 0),
        ("-0", 0),
        ("30s", 30 * S),
        ("5m0s", 5 * M),
        ("5m", 5 * M),
        ("1h30m", 90 * M),
        ("1.5h", 90 * M),
        ("15s", 15 * S),
        ("0s", 0),
        ("300ms", 300 * MS),
        ("100ns", 100),
        ("1us", US),
        ("1\u00b5s", US),  # micro sign
        ("1\u03bcs", US),  # Greek mu
        ("-1.5h", -90 * M),
        ("+5s", 5 * S),
        (".5s", 500 * MS),
        ("1.s", S),
        ("1.004s", 1004 * MS),
        ("100.00100s", 100 * S + MS),
        ("1h15m30.918273645s", H + 15 * M + 30 * S + 918273645),
        ("2h45m", 2 * H + 45 * M),
        ("10m1s", 10 * M + S),
        ("1ms2us3ns", MS + 2 * US + 3),
        ("0.100000000000000000000h", 6 * M),
        (".100000000000000000000h", 6 * M),
        ("9223372036854775807ns", (1 << 63) - 1),
        ("-9223372036854775808ns", -(1 << 63)),
    ],
)
def test_parse_valid_durations(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns
    assert parse_duration(text) == ns / 1e9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("3", 'time: missing unit in duration "3"'),
        ("30", 'time: missing unit in duration "30"'),
        ("1.5", 'time: missing unit in duration "1.5"'),
        ("-", 'time: invalid duration "-"'),
        ("s", 'time: invalid duration "s"'),
        (".", 'time: invalid duration "."'),
        ("-.", 'time: invalid duration "-."'),
        (".s", 'time: invalid duration ".s"'),
        ("+.s", 'time: invalid duration "+.s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1 s", 'time: unknown unit " s" in duration "1 s"'),
        ("1S", 'time: unknown unit "S" in duration "1S"'),
        (" 1s", 'time: invalid duration " 1s"'),
        ("1h-5m", 'time: unknown unit "h-" in duration "1h-5m"'),
        ("\ufffd", 'time: invalid duration "\ufffd"'),
        ("9223372036854775810ns", 'time: invalid duration "9223372036854775810ns"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
        ("9223372036854776us", 'time: invalid duration "9223372036854776us"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
        ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
        ("9223372036854ms775us808ns", 'time: invalid duration "9223372036854ms775us808ns"'),
        ("1s\n", 'time: unknown unit "s\\n" in duration "1s\\n"'),
    ],
)
def test_parse_invalid_durations(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value) == message
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1100, "1.1\u00b5s"),
        (2200 * US, "2.2ms"),
        (3300 * MS, "3.3s"),
        (4 * M + 5 * S, "4m5s"),
        (4 * M + 5001 * MS, "4m5.001s"),
        (5 * H + 6 * M + 7001 * MS, "5h6m7.001s"),
        (8 * M + 1, "8m0.000000001s"),
        (5 * M, "5m0s"),
        (H, "1h0m0s"),
        (-5 * M, "-5m0s"),
        (-S, "-1s"),
        ((1 << 63) - 1, "2562047h47m16.854775807s"),
        (-(1 << 63), "-2562047h47m16.854775808s"),
    ],
)
def test_format_duration_like_go(ns: int, text: str) -> None:
    assert format_duration(ns) == text


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("", 0),
        ("   ", 0),
        ("on", 0),
        ("ON", 0),
        ("On", 0),
        (" on ", 0),
        ("off", 9),
        ("OFF", 9),
        ("debug", -4),
        ("DEBUG", -4),
        ("info", 0),
        ("Info", 0),
        ("warn", 4),
        ("WARN", 4),
        ("error", 8),
        ("ERROR", 8),
        ("INFO+2", 2),
        ("info+2", 2),
        ("DEBUG+1", -3),
        ("ERROR+4", 12),
        ("WARN+0", 4),
        ("INFO +2", 2),
        ("INFO+-2", -2),
        ("-4", -4),
        ("12", 12),
        ("+3", 3),
        ("0", 0),
    ],
)
def test_parse_log_levels(text: str, level: int) -> None:
    assert parse_log_level(text) == level


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("verbose", "kesconf: invalid log level 'VERBOSE'"),
        ("INFO-2", "kesconf: invalid log level 'INFO-2'"),
        ("DEBUGGING", "kesconf: invalid log level 'DEBUGGING'"),
        ("warning", "kesconf: invalid log level 'WARNING'"),
        ("true", "kesconf: invalid log level 'TRUE'"),
        ("1.5", "kesconf: invalid log level '1.5'"),
        (
            "INFO+",
            "kesconf: invalid log level suffix '': strconv.Atoi: parsing \"\": invalid syntax",
        ),
        (
            "info+x",
            "kesconf: invalid log level suffix 'X': strconv.Atoi: parsing \"X\": invalid syntax",
        ),
        (
            "ERROR+ 1",
            "kesconf: invalid log level suffix ' 1': strconv.Atoi: parsing \" 1\": invalid syntax",
        ),
        (
            "INFO+99999999999999999999",
            "kesconf: invalid log level suffix '99999999999999999999': "
            'strconv.Atoi: parsing "99999999999999999999": value out of range',
        ),
    ],
)
def test_parse_invalid_log_levels(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_log_level(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [
        ("0.0.0.0:7373", "0.0.0.0", 7373),
        (":7373", "", 7373),
        ("127.0.0.1:7000", "127.0.0.1", 7000),
        ("[::1]:7373", "::1", 7373),
        ("[::]:0", "::", 0),
        ("[::ffff:10.0.0.1]:443", "::ffff:10.0.0.1", 443),
    ],
)
def test_split_valid_addresses(address: str, host: str, port: int) -> None:
    assert split_address(address) == (host, port)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("localhost:7373", "'localhost' is not a valid IP address"),
        ("01.2.3.4:7373", "'01.2.3.4' is not a valid IP address"),
        ("256.0.0.1:7373", "'256.0.0.1' is not a valid IP address"),
        ("7373", "address 7373: missing port in address"),
        ("", "address : missing port in address"),
        ("::1:7373", "address ::1:7373: too many colons in address"),
        ("[::1]", "address [::1]: missing port in address"),
        ("[::1:7373", "address [::1:7373: missing ']' in address"),
        ("[::1]x:7373", "address [::1]x:7373: missing port in address"),
        ("[::1]:7:7", "address [::1]:7:7: too many colons in address"),
        ("a]:7373", "address a]:7373: unexpected ']' in address"),
        ("a[:7373", "address a[:7373: unexpected '[' in address"),
        ("127.0.0.1:", "invalid address '127.0.0.1:': invalid port ''"),
        ("127.0.0.1:-1", "invalid address '127.0.0.1:-1': invalid port '-1'"),
        ("127.0.0.1:65536", "invalid address '127.0.0.1:65536': invalid port '65536'"),
    ],
)
def test_split_invalid_addresses(address: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        split_address(address)
    assert str(info.value) == message
