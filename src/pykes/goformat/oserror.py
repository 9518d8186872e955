"""Go-style rendering of file errors (``open <path>: no such file or directory``)."""

from __future__ import annotations

import errno
import os


def go_os_error(path: str, exc: OSError) -> str:
    """Render ``exc`` like Go's ``*fs.PathError`` for reading ``path``.

    Go's ``os.Open`` succeeds on a directory and the subsequent read fails, hence
    ``read <path>: is a directory``; everything else is an ``open`` error. The errno
    text is the C library's with a lower-case first letter, which is Go's spelling.
    """
    op = "read" if exc.errno == errno.EISDIR else "open"
    text = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
    return f"{op} {path}: {text[:1].lower()}{text[1:]}"
