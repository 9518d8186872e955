"""HTTP/1.1 with the requests' headers kept, where the API reads them: all of them (a
TLS proxy's connection), or only the enclave selector and the host (a stateful
server's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykes.api.reached_host import HOST_HEADER
from pykes.api.selector import ENCLAVE_HEADER
from pykes.wire.http1.handler import HTTP1Handler

if TYPE_CHECKING:
    from pykes.api.messages import Request
    from pykes.api.state import ServerState


class HeaderKeepingHTTP1Handler(HTTP1Handler):
    """Keeps every request's header fields (``Request.headers``): on a TLS proxy's
    connection (the identity step, auth/proxy.py) and where the state asks for them.
    Other connections keep none: httptools then makes no call per header line."""

    _headers: list[tuple[bytes, bytes]]

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        # httptools reports a chunked body's trailer fields here too: as Go, only the
        # header block counts (a trailer must never choose the identity or address).
        if self._in_headers:
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        assert self._req is not None
        self._req.headers = self._headers

    def _continue_or_refuse(self, req: Request, state: ServerState) -> None:
        req.headers = self._headers  # (the identity step reads them)
        super()._continue_or_refuse(req, state)


_ENCLAVE_LEN = len(ENCLAVE_HEADER)


_HOST_LEN = len(HOST_HEADER)


class EnclaveHeaderHTTP1Handler(HeaderKeepingHTTP1Handler):
    """Keeps only the ``Kes-Enclave`` and ``Host`` fields of each request (in any letter
    case): the headers a stateful server reads (api/selector.py, api/reached_host.py).
    The per-line call stays (httptools has no filter), the list of every other field
    does not."""

    def on_header(self, name: bytes, value: bytes) -> None:
        # (the length first: no lower-cased copy of every other header's name)
        size = len(name)
        if size == _ENCLAVE_LEN:
            if self._in_headers and name.lower() == ENCLAVE_HEADER:
                self._headers.append((name, value))
        elif size == _HOST_LEN and self._in_headers and name.lower() == HOST_HEADER:
            self._headers.append((name, value))
