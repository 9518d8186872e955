"""Glob patterns of the legacy list forms (docs/legacy-api.md): Go ``path.Match`` on
names, checked like names before use and compiled into a regex that never backtracks."""

from __future__ import annotations

import re

MAX_LENGTH = 80  # as a name
_NAME_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-")
_RANGE_ENDS = _NAME_CHARS - {"-"}  # Go: a class item never starts or ends with "-"
_ANY = "[^/]"  # Go's ``?`` and ``*`` never match "/"


def compile_glob(pattern: str) -> re.Pattern[str] | None:
    """The regex (for ``fullmatch``) of a glob of ``*``, ``?``, ``[...]`` / ``[^...]``
    and name characters; an empty glob matches everything. None when the glob is longer
    than a name, has other characters or is malformed (Go's ``ErrBadPattern``).

    The runs between stars have a fixed length, so matching each run at its leftmost
    place (an atomic group: never revisited) finds a match whenever there is one: at
    most length × pattern length steps, however many stars (``fnmatch``'s translation
    is quadratic in unclosed ``[``, a naive regex exponential in stars)."""
    if len(pattern) > MAX_LENGTH:
        return None
    pattern = pattern or "*"  # (what the old SDKs sent)
    runs: list[list[str]] = [[]]  # the fixed-length runs, split at stars
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if runs[-1]:
                runs.append([])
            elif len(runs) == 1:
                runs.append([])  # a leading star: an empty first run
        elif c == "?":
            runs[-1].append(_ANY)
        elif c == "[":
            end = _class_end(pattern, i)
            if end < 0:
                return None
            runs[-1].append(_class(pattern[i + 1 : end]))
            i = end
        elif c in _NAME_CHARS:
            runs[-1].append(c)
        else:
            return None
        i += 1
    if len(runs) == 1:  # no star: the whole name
        return re.compile("".join(runs[0]))
    first, *middle, last = ("".join(run) for run in runs)
    body = first + "".join(f"(?>{_ANY}*?{run})" for run in middle)
    return re.compile(f"{body}{_ANY}*{last}")


def _class_end(pattern: str, start: int) -> int:
    """The index of the ``]`` closing the class at ``start``; -1 if malformed: empty,
    unclosed, or an item that is not ``c`` or ``c-c`` of name characters."""
    i = start + 1
    if pattern[i : i + 1] == "^":
        i += 1
    items = 0
    while i < len(pattern) and pattern[i] != "]":
        if pattern[i] not in _RANGE_ENDS:
            return -1
        if pattern[i + 1 : i + 2] == "-":
            if pattern[i + 2 : i + 3] == "" or pattern[i + 2] not in _RANGE_ENDS:
                return -1
            i += 2
        i += 1
        items += 1
    return i if i < len(pattern) and items else -1


def _class(inner: str) -> str:
    """A regex class of a checked glob class (``^`` negates; a reversed range matches
    nothing, as in Go)."""
    negate = inner.startswith("^")
    items = inner[1:] if negate else inner
    kept = []
    i = 0
    while i < len(items):
        if items[i + 1 : i + 2] == "-":
            low, high = items[i], items[i + 2]
            if low <= high:
                kept.append(f"{low}-{high}")
            i += 3
        else:
            kept.append(items[i])
            i += 1
    if not kept:
        return "(?s:.)" if negate else "(?!)"
    return ("[^" if negate else "[") + "".join(kept) + "]"


def literal_prefix(pattern: str) -> str:
    """The characters before the glob's first special one: every name it matches
    starts with them."""
    for i, c in enumerate(pattern):
        if c in "*?[":
            return pattern[:i]
    return pattern
