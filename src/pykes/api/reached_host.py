"""The address a client reached the server at: its request's ``Host`` (HTTP/1.1) or
``:authority`` (HTTP/2) field, which a stateful server's requests keep (the KMS API's
``/version`` and cluster status name it, as MinKMS nodes name themselves)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pykes.api.messages import Request

HOST_HEADER = b"host"
_AUTHORITY = b":authority"  # HTTP/2 names are lower case (RFC 9113 §8.2)


def reached_host(req: Request) -> str:
    """``host:port`` as the client wrote it; "" where the request kept no headers."""
    for name, value in req.headers or ():
        if name == _AUTHORITY or (len(name) == 4 and name.lower() == HOST_HEADER):
            return value.decode("latin-1").strip()
    return ""
