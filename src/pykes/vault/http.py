"""Vault/OpenBao HTTP plumbing: errors, TLS, paths and one request helper.

Shared by the Vault keystore (:mod:`pykes.keystore.vault`, docs/compat/keystore.md §4.3)
and the stateful store's K/V v2 engine (:mod:`pykes.store.vault`). Requests go through one
:class:`httpx.AsyncClient` (native asyncio, no threads); every request has a timeout.
"""

from __future__ import annotations

import json
import posixpath
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from pykes.errors import KeyStoreUnreachable
from pykes.pki.tls import tls_context as _tls_context

DEFAULT_TIMEOUT = 10.0
"""Seconds allowed for one Vault request (connect + send + receive)."""

MAX_RESPONSE_BODY = 32 << 20
"""Responses are read up to 32 MiB (the Go server's limit for listings)."""

_MAX_ERROR_TEXT = 300
_PATH_SAFE = "/$&+,:;=@"  # what Go's url.URL.EscapedPath leaves unescaped besides A-Za-z0-9-._~

NO_NAMESPACE = ""
"""Pass as ``namespace`` to send no ``X-Vault-Namespace`` header."""


class VaultError(Exception):
    """A Vault failure. Messages never contain key values."""


class VaultUnreachable(KeyStoreUnreachable, VaultError):
    """Vault cannot be reached: network error, timeout, sealed or not initialised."""


class VaultSealedError(VaultUnreachable):
    """Vault is sealed: operations fail fast until the health ping sees it unsealed."""

    def __init__(self) -> None:
        super().__init__("vault: key store is sealed")


def join_path(*parts: str) -> str:
    """Join and clean path elements like Go's ``path.Join``; no leading slash."""
    joined = posixpath.normpath("/".join(p for p in parts if p))
    return "" if joined == "." else joined.lstrip("/")


def escape_path(path: str) -> str:
    """Percent-escape a Vault API path the way Go's ``net/url`` does."""
    return quote(path, safe=_PATH_SAFE)


def normalize_endpoint(endpoint: str) -> str:
    """``https://vault:8200/`` → ``https://vault:8200``; a bare ``host:port`` gets https."""
    endpoint = endpoint.strip()
    if "://" not in endpoint:
        endpoint = "https://" + endpoint
    return endpoint.rstrip("/")


def tls_context(ca: str = "", cert: str = "", key: str = "") -> ssl.SSLContext:
    """A client TLS context for Vault (see ``pykes.pki.tls.tls_context``)."""
    return _tls_context(ca, cert, key, prefix="vault")


@dataclass
class VaultResponse:
    """A decoded Vault reply: status code and the JSON body (``{}`` if none)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> Any:
        """The ``data`` member (``None`` when absent)."""
        return self.body.get("data")

    @property
    def errors(self) -> list[str]:
        errors = self.body.get("errors")
        return [str(x) for x in errors] if isinstance(errors, list) else []

    def describe(self) -> str:
        """``"403 permission denied"`` style text for error messages (Vault's own
        error strings never echo request data)."""
        text = "; ".join(self.errors)
        if len(text) > _MAX_ERROR_TEXT:
            text = text[:_MAX_ERROR_TEXT] + "…"
        reason = httpx.codes.get_reason_phrase(self.status)
        return f"{self.status} {reason}" + (f": {text}" if text else "")

    def is_sealed(self) -> bool:
        return self.status == 503 and any("sealed" in e.lower() for e in self.errors)


class VaultHTTP:
    """A Vault API client: ``<endpoint>/v1/<path>`` with token and namespace headers.

    ``token`` is the current client token (swapped by the token keeper). Keep-alives
    stay on (connection pooling); the Go server used a new connection per request.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        namespace: str = "",
        verify: ssl.SSLContext | bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.endpoint = normalize_endpoint(endpoint)
        self.namespace = namespace
        self.timeout = timeout
        self.token = ""
        self._client = httpx.AsyncClient(
            verify=verify,
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,  # standby nodes answer 307 → active node
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        namespace: str | None = None,
        authenticated: bool = True,
    ) -> VaultResponse:
        """Send one request. ``namespace=None`` means the client's namespace;
        :data:`NO_NAMESPACE` sends no header. Network failures and timeouts raise
        :class:`VaultUnreachable`; HTTP errors are returned, not raised."""
        headers: dict[str, str] = {}
        ns = self.namespace if namespace is None else namespace
        if ns:
            headers["X-Vault-Namespace"] = ns
        if authenticated and self.token:
            headers["X-Vault-Token"] = self.token
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            # Vault takes a PATCH body only as a JSON merge patch (RFC 7396)
            patch = method == "PATCH"
            headers["Content-Type"] = (
                "application/merge-patch+json" if patch else "application/json"
            )
        url = f"{self.endpoint}/v1/{escape_path(path)}"
        try:
            async with self._client.stream(
                method, url, params=params, headers=headers, content=content
            ) as resp:
                raw = await _read_limited(resp)
        except httpx.TimeoutException:
            raise VaultUnreachable(
                f"vault: {method} {path}: no response within {self.timeout:g}s"
            ) from None
        except httpx.TransportError as err:
            raise VaultUnreachable(f"vault: {method} {path}: {_transport_error(err)}") from None
        except (ssl.SSLError, OSError) as err:  # e.g. a TLS 1.3 alert raised on read
            raise VaultUnreachable(f"vault: {method} {path}: {err}") from None
        return VaultResponse(resp.status_code, _decode(raw))

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read_limited(resp: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BODY:
            raise VaultError("vault: response body exceeds 32 MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _transport_error(err: httpx.TransportError) -> str:
    text = str(err) or type(err).__name__
    cause = err.__cause__ or err.__context__
    if isinstance(cause, ssl.SSLError) and str(cause) not in text:
        text = f"{text}: {cause}"
    return text
