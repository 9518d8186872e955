"""HTTP/1.1 for a TLS proxy's connection (auth/proxy.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykes.wire.http1.handler import HTTP1Handler

if TYPE_CHECKING:
    from pykes.api.messages import Request
    from pykes.api.state import ServerState


class ProxiedHTTP1Handler(HTTP1Handler):
    """For a TLS proxy's connection: also keeps every request's headers, which the
    pipeline's identity step reads (auth/proxy.py). Other connections keep none."""

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
        self._req.forwarded = self._headers

    def _continue_or_refuse(self, req: Request, state: ServerState) -> None:
        req.forwarded = self._headers  # (the identity step reads them)
        super()._continue_or_refuse(req, state)
