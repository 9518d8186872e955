"""HTTP/2 connection handling (ALPN ``h2``, which Go clients prefer): which
implementation new connections get.

Two implementations: the lean one (``h2lean/``, the default) and one on the ``h2``
library (``h2lib.py``). ``PYKES_HTTP2=h2`` selects the latter (read once, before workers
fork); only the selected one is imported. ``H2Handler`` and ``ProxiedH2Handler`` (for a
TLS proxy's connections, which keep every request's headers) are the selected classes.
"""

from __future__ import annotations

import os

from pykes.server.h2lean import LeanH2Handler


class ProxiedLeanH2Handler(LeanH2Handler):
    """The lean implementation for a TLS proxy's connection (keeps request headers)."""

    keep_headers = True


IMPLEMENTATION = os.environ.get("PYKES_HTTP2", "lean")
H2Handler: type
ProxiedH2Handler: type
if IMPLEMENTATION == "h2":
    from pykes.server.h2lib import H2LibHandler, ProxiedH2LibHandler

    H2Handler, ProxiedH2Handler = H2LibHandler, ProxiedH2LibHandler
else:
    H2Handler, ProxiedH2Handler = LeanH2Handler, ProxiedLeanH2Handler
