"""``log.error`` / ``log.audit`` level strings (docs/compat/config.md §2, Go ``slog`` levels)."""

from __future__ import annotations

from pykes.errors import ConfigError
from pykes.goformat.text import go_atoi, go_trim_space

LEVEL_DEBUG = -4
LEVEL_INFO = 0
LEVEL_WARN = 4
LEVEL_ERROR = 8
LEVEL_OFF = LEVEL_ERROR + 1  # "off": nothing is logged

_BASES = (
    ("DEBUG", LEVEL_DEBUG),
    ("INFO", LEVEL_INFO),
    ("WARN", LEVEL_WARN),
    ("ERROR", LEVEL_ERROR),
)


def parse_log_level(s: str) -> int:
    """Parse a log level into its numeric ``slog`` level.

    Case-insensitive, surrounding spaces trimmed: ``""``/``on`` → INFO (0), ``off`` →
    ERROR+1 (9), ``debug`` -4, ``info`` 0, ``warn`` 4, ``error`` 8, ``<LEVEL>+<n>``
    (e.g. ``INFO+2`` → 2; only ``+`` offsets) or a plain integer (``-4``, ``12``).

    Errors (the value is shown upper-cased and trimmed, as the Go server does):
    ``kesconf: invalid log level '<V>'`` and
    ``kesconf: invalid log level suffix '<s>': strconv.Atoi: parsing "<s>": invalid syntax``.
    """
    v = go_trim_space(s.upper())
    if v in ("", "ON"):
        return LEVEL_INFO
    if v == "OFF":
        return LEVEL_OFF
    for name, base in _BASES:
        if not v.startswith(name):
            continue
        if v == name:
            return base
        level, plus, suffix = v.partition("+")
        if not plus or go_trim_space(level) != name:
            raise ConfigError(f"kesconf: invalid log level '{v}'")
        try:
            return base + go_atoi(suffix)
        except ValueError as err:
            raise ConfigError(f"kesconf: invalid log level suffix '{suffix}': {err}") from None
    try:
        return go_atoi(v)
    except ValueError:
        # Go returns the bare strconv error here; a kesconf-style message is clearer.
        raise ConfigError(f"kesconf: invalid log level '{v}'") from None
