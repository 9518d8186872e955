"""Name and listing-pattern validation (docs/compat/crypto.md §8, api.md §5)."""

from __future__ import annotations

import re

# 1–80 chars of [0-9A-Za-z_-], '-' neither first nor last, not exactly '_'.
_NAME = re.compile(r"[0-9A-Za-z_]([0-9A-Za-z_-]{0,78}[0-9A-Za-z_])?\Z", re.ASCII)


def valid_name(name: str) -> bool:
    """Key, policy and identity names."""
    return name != "_" and _NAME.match(name) is not None


_PATTERN_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


def valid_pattern(pattern: str) -> bool:
    """Listing patterns: empty, ``*``, or ≤ 80 chars of ``[0-9A-Za-z_-]`` where ``-`` is
    neither first nor last, ``*`` may only be the last character, and ``_`` alone is
    invalid (so ``my-key-*`` is valid, ``my-key-`` is not)."""
    if pattern in ("", "*"):
        return True
    if len(pattern) > 80 or pattern == "_":
        return False
    last = len(pattern) - 1
    for i, c in enumerate(pattern):
        if c in _PATTERN_CHARS:
            continue
        if c == "-" and 0 < i < last:
            continue
        if c == "*" and i == last:
            continue
        return False
    return True


_PREFIX_CHARS = _PATTERN_CHARS | {"-"}


def valid_prefix(prefix: str) -> bool:
    """2023 KES's listing prefixes (enclave listing): ≤ 80 chars of ``[0-9A-Za-z_-]``,
    ``-`` anywhere (``tenant-`` is a prefix), optionally ending in one ``*``."""
    stem = prefix[:-1] if prefix.endswith("*") else prefix
    return len(stem) <= 80 and _PREFIX_CHARS.issuperset(stem)


def pattern_prefix(pattern: str) -> str:
    """The literal prefix a listing pattern selects: ``*``/empty → all, else strip one ``*``."""
    return pattern[:-1] if pattern.endswith("*") else pattern
