"""What the sync and the async client share besides :mod:`.ops`: configuration, the
load balancer and one request's way through its plan, error classification of
transport failures."""

from __future__ import annotations

import copy
import ssl
from collections.abc import Sequence
from typing import Self
from urllib.parse import urlsplit

import httpx

from pykes import __version__
from pykes.client.balancer import Attempt, LoadBalancer, Outcome, Plan
from pykes.client.errors import MAX_ERROR_BODY, ConnError
from pykes.client.ops import Op
from pykes.client.tls import Password, client_ssl_context
from pykes.goformat.text import go_quote
from pykes.names import valid_name
from pykes.pki import APIKey

USER_AGENT = f"pykes/{__version__}"
ENCLAVE_HEADER = "Kes-Enclave"


def checked_enclave(name: str) -> str:
    """``name`` if it is empty (the server's ``default``) or a valid enclave name (the
    key-name rule), else :class:`ValueError`: checked here because a name that is no
    header value would not fail as a KES error."""
    if name and not valid_name(name):
        raise ValueError(
            f"kes: invalid enclave name {go_quote(name)}: 1 to 80 of 0-9 A-Z a-z _ -, "
            "with '-' neither first nor last"
        )
    return name


def is_retryable(err: BaseException) -> bool:
    """Network errors are retried (as Go's ``isNetworkError``), except a failed
    server-certificate verification, which no retry can fix."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return False
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" not in str(err)


def connection_error(url: str, err: BaseException) -> ConnError:
    host = urlsplit(url).netloc or url
    return ConnError(host, f"{host}: {str(err) or type(err).__name__}")


class Exchange:
    """One request's way through the load balancer's plan, without I/O. The client makes
    each :attr:`attempt` and reports what came of it (:meth:`failed` or
    :meth:`answered`) until ``attempt`` is None; :meth:`response` is then the answer."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self.attempt: Attempt | None = next(plan)
        self._url = ""
        self._final = Outcome()

    def failed(self, err: httpx.TransportError) -> None:
        self._record(Outcome(error=err, retryable=is_retryable(err)))

    def answered(self, response: httpx.Response) -> bool:
        """Record ``response``; whether it is the answer (if not, the plan goes on
        without it and the client closes it)."""
        self._record(Outcome(status=response.status_code, response=response))
        return self.attempt is None

    def _record(self, outcome: Outcome) -> None:
        assert self.attempt is not None
        self._url = self.attempt.url
        try:
            self.attempt = self._plan.send(outcome)
        except StopIteration as stop:
            self.attempt = None
            self._final = stop.value

    def response(self) -> httpx.Response:
        """The answer, or the last attempt's failure raised as a :class:`ConnError`."""
        if self._final.error is not None:
            raise connection_error(self._url, self._final.error) from self._final.error
        return self._final.response  # type: ignore[no-any-return]


def read_limit(op: Op[object]) -> int:
    """Bytes to read of a response: the op's limit or the error-body limit, plus one
    (to detect an oversized body)."""
    return max(op.limit, MAX_ERROR_BODY) + 1


class ClientBase:
    """Endpoints + TLS + HTTP settings (see :class:`pykes.client.Client`)."""

    #: whether requests name the enclave in a ``Kes-Enclave`` header (the KES API) or
    #: their op's path names it (the KMS API)
    enclave_in_header = True

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        api_key: APIKey | str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        password: Password = None,
        ca_file: str | None = None,
        insecure: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        http2: bool = True,
        timeout: float = 30.0,
        enclave: str = "",
    ) -> None:
        self._enclave = checked_enclave(enclave)
        self._owns_transport = True
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e.strip()]
        self._lb = LoadBalancer(endpoints)
        if ssl_context is None:
            ssl_context = client_ssl_context(
                api_key=api_key,
                cert_file=cert_file,
                key_file=key_file,
                password=password,
                ca_file=ca_file,
                insecure=insecure,
            )
        self._ssl = ssl_context
        self._http2 = http2
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._http = self._make_http()

    def _make_http(self) -> httpx.Client | httpx.AsyncClient:
        raise NotImplementedError

    @property
    def endpoints(self) -> list[str]:
        """The endpoint URLs (localhost endpoints first)."""
        return [e.url for e in self._lb.endpoints]

    @property
    def enclave(self) -> str:
        """The enclave every request is sent to (``""``: none named, the server's
        ``default``)."""
        return self._enclave

    def in_enclave(self, name: str) -> Self:
        """A client for enclave ``name`` (``""``: the server's ``default``) that shares
        this client's endpoints, load balancer and connections. Closing it does nothing;
        it is closed with this client."""
        view = copy.copy(self)
        view._enclave = checked_enclave(name)
        view._owns_transport = False
        return view

    def _http_options(self) -> dict[str, object]:
        return {
            "verify": self._ssl,
            "http2": self._http2,
            "http1": True,
            "follow_redirects": True,
            "timeout": self._timeout,
            "headers": {"User-Agent": USER_AGENT},
        }

    def _request_args(self, op: Op[object], url: str, stream: bool) -> dict[str, object]:
        headers = dict(op.headers)
        # no header without an enclave: the Go SDK's requests, unchanged
        if self._enclave and self.enclave_in_header:
            headers[ENCLAVE_HEADER] = self._enclave
        args: dict[str, object] = {
            "method": op.method,
            "url": url + op.path,
            "content": op.body,
            "headers": headers,
        }
        if stream:  # log streams are long-lived: no read timeout
            args["timeout"] = httpx.Timeout(self._timeout.connect, read=None)
        return args
