"""HTTP plumbing shared by the keystores that speak a vendor's REST API with httpx
(Fortanix, Thales CipherTrust/Gemalto, Entrust): endpoint normalisation, client TLS,
error texts, bounded retries, reachability probes and vendor session tokens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

import httpx

from pykes.errors import KeyStoreUnreachable
from pykes.pki.tls import tls_context

TIMEOUT = 10.0
"""Seconds allowed for one HTTP request (connect + send + receive)."""
MAX_ATTEMPTS = 3
"""Attempts per request when the server answers 429/5xx or refuses the connection."""
BACKOFF = 0.25
"""First retry delay in seconds; doubled per attempt."""

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_ERROR_TEXT = 300


def normalize_endpoint(endpoint: str) -> str:
    """``https://host/`` → ``https://host``; a bare ``host[:port]`` gets ``https://``."""
    endpoint = endpoint.strip()
    if "://" not in endpoint:
        endpoint = "https://" + endpoint
    return endpoint.rstrip("/")


def client_tls(prefix: str, ca: str) -> ssl.SSLContext:
    """TLS context trusting ``ca`` (a PEM file or a directory) or the system roots."""
    return tls_context(ca, prefix=prefix)


def error_text(resp: httpx.Response) -> str:
    """The server's error message: JSON ``message``/``error`` or the body text."""
    text = resp.text.strip()
    if resp.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            for field in ("message", "error"):
                if isinstance(body.get(field), str):
                    text = body[field]
                    break
    return text[:_MAX_ERROR_TEXT] or resp.reason_phrase or f"HTTP {resp.status_code}"


async def send_with_retry(
    http: httpx.AsyncClient,
    prefix: str,
    method: str,
    url: str,
    *,
    max_attempts: int,
    backoff: float,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; retry 429/5xx answers and refused connections with back-off.

    Returns the last response (possibly still a 429/5xx). Timeouts and network failures
    raise :class:`KeyStoreUnreachable` (without the request, which may hold a value).
    """
    attempts = max(1, max_attempts)
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            resp = await http.request(method, url, **kwargs)
        except httpx.ConnectError as err:
            if last:
                raise KeyStoreUnreachable(f"{prefix}: {_base(url)}: {_reason(err)}") from None
        except httpx.TransportError as err:
            raise KeyStoreUnreachable(f"{prefix}: {_base(url)}: {_reason(err)}") from None
        else:
            if resp.status_code not in RETRY_STATUSES or last:
                return resp
        await asyncio.sleep(backoff * (2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(err: Exception) -> str:
    return str(err) or type(err).__name__


def _base(url: str) -> str:
    return httpx.URL(url).copy_with(path="/", query=None).__str__().rstrip("/")


async def probe(http: httpx.AsyncClient, prefix: str, url: str) -> float:
    """Time a plain GET of ``url``; any HTTP status counts as reachable."""
    start = time.perf_counter()
    try:
        async with http.stream("GET", url):
            return time.perf_counter() - start
    except httpx.HTTPError as err:
        raise KeyStoreUnreachable(f"{prefix}: {url}: {_reason(err)}") from None


async def probe_once(
    prefix: str,
    url: str,
    *,
    verify: ssl.SSLContext | bool,
    timeout: httpx.Timeout,
    deadline: float,
) -> float:
    """Time a plain GET of ``url`` with a client of its own (the SDK-based stores — AWS,
    GCP, Azure — have no httpx pool); any HTTP status counts as reachable, and the whole
    probe gets ``deadline`` seconds."""
    try:
        async with (
            asyncio.timeout(deadline),
            httpx.AsyncClient(verify=verify, timeout=timeout) as http,
        ):
            start = time.perf_counter()
            async with http.stream("GET", url):
                return time.perf_counter() - start
    except (httpx.HTTPError, OSError, TimeoutError) as err:
        reason = str(err) or type(err).__name__
        raise KeyStoreUnreachable(f"{prefix}: {url}: {reason}") from None


def json_object(resp: httpx.Response) -> dict[str, Any] | None:
    """The response body if it is a JSON object; None for any other body."""
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def describe(resp: httpx.Response) -> str:
    """An error response for a message: the server's text and the status."""
    return f"{error_text(resp)} ({resp.status_code})"


class VendorOptions(TypedDict, total=False):
    """The keyword arguments of :class:`VendorAPI` a store passes through, so that tests
    can shrink its timeout and retries."""

    timeout: float
    max_attempts: int
    backoff: float


class VendorAPI:
    """One vendor REST endpoint: client TLS from ``ca`` (for https), a per-request
    timeout, and ``send_with_retry``'s bounded retries and error mapping."""

    def __init__(
        self,
        prefix: str,
        endpoint: str,
        ca: str,
        *,
        timeout: float = TIMEOUT,
        max_attempts: int = MAX_ATTEMPTS,
        backoff: float = BACKOFF,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.prefix = prefix
        self.url = normalize_endpoint(endpoint)
        verify: ssl.SSLContext | bool = (
            client_tls(prefix, ca) if self.url.startswith("https://") else False
        )
        self.http = httpx.AsyncClient(
            verify=verify, timeout=httpx.Timeout(timeout), headers=headers or {}
        )
        self.max_attempts = max_attempts
        self.backoff = backoff

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await send_with_retry(
            self.http,
            self.prefix,
            method,
            self.url + path,
            max_attempts=self.max_attempts,
            backoff=self.backoff,
            **kwargs,
        )

    async def probe(self, path: str = "/") -> float:
        return await probe(self.http, self.prefix, self.url + path)

    async def aclose(self) -> None:
        await self.http.aclose()


class TokenSession:
    """A vendor session token (Thales CipherTrust/Gemalto, Entrust KeyControl): renewed by
    a background task at half its lifetime, and renewed at once — by one request only —
    when the server answers 401 to the token it was given.

    The store keeps ``token`` and ``lifetime`` (seconds) current as it logs in; ``renew``
    is the background renewal, ``relogin`` what a 401 triggers. A failed background
    renewal is logged with ``failure`` (a %-format for the error) and retried after
    ``retry_interval`` seconds (None: after half a lifetime)."""

    def __init__(
        self,
        *,
        lifetime: float,
        renew: Callable[[], Awaitable[None]],
        relogin: Callable[[], Awaitable[None]],
        log: logging.Logger,
        failure: str,
        retry_interval: float | None = None,
    ) -> None:
        self.token = ""
        self.lifetime = lifetime
        self._renew = renew
        self._relogin = relogin
        self._log = log
        self._failure = failure
        self._retry_interval = retry_interval
        self._lock = asyncio.Lock()
        self._renewer: asyncio.Task[None] | None = None

    async def send(self, request: Callable[[str], Awaitable[httpx.Response]]) -> httpx.Response:
        """``request(token)``; on 401 log in again (unless another request already
        replaced that token) and repeat it once."""
        token = self.token
        resp = await request(token)
        if resp.status_code != 401:
            return resp
        async with self._lock:
            if self.token is token:  # nobody renewed it meanwhile (same object)
                await self._relogin()
        return await request(self.token)

    def start(self) -> None:
        """Start the background renewal task (once)."""
        if self._renewer is None:
            self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())

    async def _renew_loop(self) -> None:
        delay = self.lifetime / 2
        while True:
            await asyncio.sleep(delay)
            try:
                async with self._lock:
                    await self._renew()
                delay = self.lifetime / 2
            except Exception as err:  # keep renewing; requests log in again on 401 too
                self._log.warning(self._failure, err)
                if self._retry_interval is not None:
                    delay = self._retry_interval

    async def stop(self) -> None:
        """Cancel the background renewal and wait for it to end."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
