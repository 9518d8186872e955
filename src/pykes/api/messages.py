"""What flows through the API, whatever the protocol: a request with the route it matched,
and the answers (HTTP/1.1 and HTTP/2 build and send them, pykes.wire)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pykes.api.context import Context
    from pykes.auth.authorizer import Authorizer
    from pykes.errors import APIError

JSON = "application/json"
NDJSON = "application/x-ndjson"

REASONS = {
    200: "OK",
    301: "Moved Permanently",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Request Entity Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Request:
    """One HTTP request as the route table sees it.

    ``path`` is percent-decoded, without the query string. ``body`` holds at most the
    route's ``max_body`` bytes; ``body_too_large`` is set when the client sent more.
    ``content_length`` is ``None`` when unknown (chunked / HTTP/2 without the header).
    ``query`` is the raw query string (ignored everywhere except the legacy API's
    ``?legacy`` marker, docs/legacy-api.md).
    """

    __slots__ = (
        "method",
        "path",
        "raw_target",
        "body",
        "body_too_large",
        "content_length",
        "identity",
        "has_cert",
        "ip",
        "route",
        "resource",
        "started",
        "headers",
        "query",
        "enclave",
    )

    def __init__(
        self,
        method: str,
        path: str,
        raw_target: str,
        identity: str,
        has_cert: bool,
        ip: str,
        started: float,
    ) -> None:
        self.method = method
        self.path = path
        self.raw_target = raw_target
        self.body = b""
        self.body_too_large = False
        self.content_length: int | None = None
        self.identity = identity
        self.has_cert = has_cert
        self.ip = ip
        self.route: Route | None = None
        self.resource = ""
        self.started = started
        # The request's header fields (names as sent: compare them case-insensitively)
        # where the API reads headers:
        # a TLS proxy's requests (auth/proxy.py) and a state that asks for them
        # (``ServerState.reads_headers``). None on the header-less fast path.
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.query = ""
        # Stateful mode: the enclave the request acts in, once named (its audit line
        # says it, as 2023 KES's did); "" in stateless mode.
        self.enclave = ""


class Response:
    """A complete response (``body`` is sent with an explicit Content-Length)."""

    __slots__ = ("status", "content_type", "body", "headers")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = JSON,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type if body or status != 200 else None
        self.headers = headers


class StreamResponse:
    """A long-lived streamed response (the log streams): one chunk per event."""

    __slots__ = ("status", "content_type", "chunks")

    def __init__(self, chunks: AsyncIterator[bytes], content_type: str = NDJSON) -> None:
        self.status = 200
        self.content_type = content_type
        self.chunks = chunks


EMPTY_OK = Response(200)


Handler = Callable[["Context", "Request"], Awaitable["Response | StreamResponse"]]
AuthMode = Literal["none", "identify", "policy", "legacy", "admin"]
"""none: no identity; identify: identity only, never refused; policy: the admin or a
policy that allows the path; legacy: the route's own ``authorize`` step (the legacy
API's rules, docs/legacy-api.md); admin: the server's admin only (the route's own
``authorize`` step too: enclave administration, docs/stateful.md)."""

MAX_BODY = 1_000_000  # decimal, as Go's mem.MB


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint (pykes.api.routes lists them all)."""

    path: str
    method: str
    handler: Handler
    max_body: int = 0
    timeout: float = 15.0  # seconds; 0 = no deadline
    auth: AuthMode = "policy"
    counted: bool = False  # counted in the request metrics (docs/compat/observability.md §3)
    authorize: Callable[[Authorizer, Request], None] | None = None  # auth legacy/admin
    in_enclave: bool = True  # stateful mode: acts in the enclave the request names
    path_enclave: bool = False  # stateful mode: acts in the enclave its path names (KMS API)
    # How this route's API answers a refused request (None: the KES API's JSON error);
    # its handler answers its own errors.
    answer_error: Callable[[APIError], Response] | None = None

    @property
    def subtree(self) -> bool:
        return self.path.endswith("/")
