"""Server-side HTTP/2 (ALPN ``h2``, which Go clients prefer): frames, HPACK headers, flow
control and stream states, written for this server's request shapes (``handler.py``)."""

from pykes.wire.http2.handler import H2Handler, HeaderKeepingH2Handler

__all__ = ["H2Handler", "HeaderKeepingH2Handler"]
