"""The shared list helper of docs/compat/keystore.md §1.1.

Most backends can only fetch *all* names; they hand them to :func:`list_page`, which
sorts, applies the prefix and cuts one page.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

DEFAULT_PAGE_SIZE = 1024
"""Page size used when ``n <= 0``."""


def byte_order_key(name: str) -> bytes:
    """Sort key that orders names by their UTF-8 bytes (Go's string order).

    Plain ``str`` ordering already equals UTF-8 byte order for ordinary text; encoding
    makes undecodable file names (surrogate escapes from ``os.listdir``) sort by their
    original bytes too.
    """
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogatepass")


def list_page(names: Iterable[str], prefix: str, n: int) -> tuple[list[str], str]:
    """Return the first page of ``names`` that start with ``prefix`` and the continue-at name.

    * names are sorted ascending in byte order (:func:`byte_order_key`);
    * with a prefix, the result starts at the first name having it and stops at the
      first name without it (the same as filtering, since matches are contiguous);
    * the page size is ``n`` if ``n > 0`` else :data:`DEFAULT_PAGE_SIZE`; if more
      matching names remain, the page is returned with the next matching name as
      "continue at", otherwise "continue at" is ``""``.

    The Go quirk (with a prefix and exactly page-size + 1 matches at the end of the
    name list, all of them are returned) is deliberately **not** reproduced: a page
    never holds more than the page size. Upstream KES fixed the quirk later, and
    clients follow ``continue_at`` either way.
    """
    size = n if n > 0 else DEFAULT_PAGE_SIZE
    ordered = sorted(names, key=byte_order_key)
    if prefix:
        start = bisect_left(ordered, byte_order_key(prefix), key=byte_order_key)
        limit = min(len(ordered), start + size + 1)
        end = start
        while end < limit and ordered[end].startswith(prefix):
            end += 1
        ordered = ordered[start:end]
    if len(ordered) > size:
        return ordered[:size], ordered[size]
    return ordered, ""
