"""Requests with ``Upgrade`` (or ``CONNECT``), which llhttp ends at their head.

llhttp stops a request with ``Connection: upgrade`` + ``Upgrade`` (or a CONNECT) after
its head and skips its body (the rest would be another protocol). Go's server ignores
``Upgrade``, so the handler parses such a request again without its ``Upgrade`` lines,
body and pipelined requests included; a CONNECT is answered (no route serves it) and
then, as in Go, nothing more is read from the connection.
"""

from __future__ import annotations


def head_without_upgrade(head: bytes, request_line: bytes) -> bytes | None:
    """``head`` (a request's head as llhttp accepted it, possibly preceded by the end of
    an earlier request) without its ``Upgrade`` lines; None when it cannot be told for
    sure.

    llhttp checked the head strictly: its request line is ``method SP target SP
    version`` (the text before its first ``:`` has a space), every line after it is
    ``name ":" value`` with no space in the name, and the line before it ends in a blank
    line or is the end of a body without a line break. So the lines are read back from
    the end while they look like fields; the request line is the line that ends with
    ``request_line`` — one only: a field value or a body that repeats it makes the head
    ambiguous, and such a request is refused."""
    end = len(head) - 4  # the blank line
    if head[end:] != b"\r\n\r\n":
        return None
    lines: list[bytes] = []  # from the last one back
    starts: list[int] = []  # request line candidates: how many lines follow each
    while True:
        found = head.rfind(b"\r\n", 0, end)
        line = head[found + 2 if found >= 0 else 0 : end]
        if line.endswith(request_line):
            starts.append(len(lines))
        colon = line.find(b":")
        if colon <= 0 or b" " in line[:colon] or b"\t" in line[:colon] or found < 0:
            break  # not a field: the head cannot begin before this line
        lines.append(line)
        end = found
    if len(starts) != 1:
        return None
    fields = [f for f in lines[: starts[0]] if f[: f.find(b":")].lower() != b"upgrade"]
    fields.append(request_line)
    fields.reverse()
    return b"\r\n".join(fields) + b"\r\n\r\n"


class NoMoreRequests:
    """The parser of a connection that reads no more requests (after a CONNECT or a
    request refused before its body)."""

    @staticmethod
    def feed_data(data: bytes | memoryview) -> None:
        pass

    @staticmethod
    def should_keep_alive() -> bool:
        return False


NO_MORE_REQUESTS = NoMoreRequests()
