"""Go's string helpers whose output pykes must match: ``strconv.Quote``,
``strconv.Atoi`` (with its error texts) and ``strings.TrimSpace``."""

from __future__ import annotations

import re

_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}
_ATOI = re.compile(r"[+-]?[0-9]+\Z")
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1

# unicode.IsSpace: narrower than str.isspace (no \x1c-\x1f, for instance).
GO_SPACE = (
    " \t\n\v\f\r\x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)


def go_quote(s: str) -> str:
    """Quote ``s`` like Go's ``strconv.Quote`` (printable runes kept, others escaped)."""
    out = ['"']
    for c in s:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) <= 0xFFFF:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append('"')
    return "".join(out)


def go_trim_space(s: str) -> str:
    """Strip leading/trailing white space like Go's ``strings.TrimSpace``."""
    return s.strip(GO_SPACE)


def go_atoi(s: str) -> int:
    """Go ``strconv.Atoi`` (64-bit); raises ``ValueError`` with Go's error text."""
    if not _ATOI.match(s):
        raise ValueError(f'strconv.Atoi: parsing "{s}": invalid syntax')
    n = int(s)
    if not _INT_MIN <= n <= _INT_MAX:
        raise ValueError(f'strconv.Atoi: parsing "{s}": value out of range')
    return n
