"""HTTP/1.1 on ``httptools``: the connection handler (``handler.py``), what it writes
(``output.py``) and requests with ``Upgrade`` (``upgrade.py``)."""

from pykes.wire.http1.handler import HTTP1Handler
from pykes.wire.http1.headers import EnclaveHeaderHTTP1Handler, HeaderKeepingHTTP1Handler

__all__ = ["EnclaveHeaderHTTP1Handler", "HTTP1Handler", "HeaderKeepingHTTP1Handler"]
