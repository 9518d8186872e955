"""``Expect: 100-continue``: found in a raw request without a callback per header line.

Go writes ``100 Continue`` when the handler first reads the body, which it does only
after authentication and authorization; the handler does the same (``handler.py``).
"""

from __future__ import annotations

import re

_EXPECT_CONTINUE = re.compile(rb"\nexpect[ \t]*:[ \t]*100-continue[ \t]*\r?\n", re.IGNORECASE)
"""An ``Expect: 100-continue`` header line in a raw request (llhttp has checked its syntax)."""
EXPECT_TAIL = 256  # bytes of a read kept to find an Expect line split between two reads


def expects_continue(seen: bool, tail: bytes, data: bytes) -> bool:
    """Whether a request has an ``Expect: 100-continue`` line: ``seen`` in an earlier read
    of its headers, or in ``data`` (this read; ``tail`` ends the read before). The value
    has no letters to fold, so a read without ``100-`` (the usual case) needs no closer
    look. A read may hold more than the header block (the body, pipelined requests): a
    crafted body with such a line gets an extra ``100 Continue``, which HTTP/1.1 clients
    must accept."""
    if seen:
        return True
    if data.find(b"100-") == -1:
        return False
    return _EXPECT_CONTINUE.search(tail + data) is not None
