"""Pages of the KMS API's list commands: names from a prefix, continuing at a name, at
most ``PAGE_SIZE`` (or the request's smaller ``Limit``) at a time."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

PAGE_SIZE = 256
"""Items a list answer holds at most: each is a read of its record (~0.1 ms from the
store), so a page costs tens of milliseconds at most."""

_NAME_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-")
_MAX_NAME = 80


def can_match(prefix: str) -> bool:
    """Whether any name can start with ``prefix`` (names follow the key-name rule): a
    prefix that cannot lists nothing, it is not an error."""
    return len(prefix) <= _MAX_NAME and _NAME_CHARS.issuperset(prefix)


def page(
    names: Sequence[str], prefix: str, continue_at: str, limit: int
) -> tuple[Sequence[str], str]:
    """The page of sorted ``names`` (all starting with ``prefix``) that starts at
    ``continue_at`` (the first name not before it; ``""``: the first; one that does not
    start with ``prefix``: an empty page) and the name the next page starts at (``""``:
    none)."""
    if continue_at and not continue_at.startswith(prefix):
        return (), ""
    size = PAGE_SIZE if limit <= 0 else min(limit, PAGE_SIZE)
    start = bisect_left(names, continue_at) if continue_at else 0
    end = start + size
    return names[start:end], names[end] if end < len(names) else ""
