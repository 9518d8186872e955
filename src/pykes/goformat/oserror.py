"""OS errors as Go prints them: ``open <path>: no such file or directory``."""

from __future__ import annotations

import errno
import os


def go_errno_text(exc: OSError) -> str:
    """The text of ``exc``'s errno as Go's ``syscall.Errno`` prints it: the C library's
    message with a lower-case first letter."""
    text = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
    return text[:1].lower() + text[1:]


def go_os_error(path: str, exc: OSError) -> str:
    """Render ``exc`` like Go's ``*fs.PathError`` for reading ``path``.

    Go's ``os.Open`` succeeds on a directory and the subsequent read fails, hence
    ``read <path>: is a directory``; everything else is an ``open`` error.
    """
    op = "read" if exc.errno == errno.EISDIR else "open"
    return f"{op} {path}: {go_errno_text(exc)}"
