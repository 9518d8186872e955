"""A logged-in Vault/OpenBao client that keeps its token valid and watches the seal: what
the Vault keystore and the store's K/V v2 engine both stand on.

Background tasks (started by :meth:`VaultClient.start`, stopped by :meth:`close`): the
token keeper (:mod:`pykes.vault.auth`) and a ``sys/health`` ping every ``status_ping``
seconds that tracks whether Vault is sealed; while it is, :meth:`VaultClient.call`
raises :class:`VaultSealedError` without contacting Vault.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from pykes.vault.auth import LoginMethod, TokenKeeper, log, login, login_method
from pykes.vault.http import (
    DEFAULT_TIMEOUT,
    NO_NAMESPACE,
    VaultError,
    VaultHTTP,
    VaultResponse,
    VaultSealedError,
    VaultUnreachable,
    tls_context,
)

if TYPE_CHECKING:
    from pykes.config import VaultKeyStoreConfig

DEFAULT_VAULT_STATUS_PING = 15.0
"""Seconds between health pings when ``status_ping`` is not positive."""


class VaultClient:
    """Requests to one Vault with a token kept valid. ``method`` is the login (``None``
    only for a client that never starts, e.g. to probe ``status``)."""

    def __init__(self, http: VaultHTTP, method: LoginMethod | None, status_ping: float) -> None:
        self.http = http
        self._method = method
        self._status_ping = status_ping if status_ping > 0 else DEFAULT_VAULT_STATUS_PING
        self._unsealed = asyncio.Event()
        self._unsealed.set()
        self._keeper: TokenKeeper | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def sealed(self) -> bool:
        """Whether Vault was sealed at the last health check."""
        return not self._unsealed.is_set()

    @property
    def keeper(self) -> TokenKeeper | None:
        """The token keeper (``None`` before :meth:`start`)."""
        return self._keeper

    async def start(self) -> None:
        """Check health, log in and start the background tasks.

        Raises :class:`VaultUnreachable` if Vault cannot be reached, is sealed or not
        initialised, and :class:`VaultError` if the login fails.
        """
        if self._method is None:
            raise ValueError("vault: no authentication method specified")
        await self.status()
        token = await login(self.http, self._method)
        self._keeper = TokenKeeper(self.http, self._method, token, self._unsealed)
        self._tasks = [
            asyncio.create_task(self._keeper.run(), name="vault-token-renewal"),
            asyncio.create_task(self._ping(), name="vault-health-ping"),
        ]
        for task in self._tasks:
            task.add_done_callback(_report_crash)

    async def close(self) -> None:
        """Cancel the background tasks and close the HTTP connections."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.http.aclose()

    async def status(self) -> float:
        """``GET sys/health`` without namespace header; latency in seconds.

        Unreachable, timed out, sealed or uninitialised → KeyStoreUnreachable.
        """
        self.check_open()
        start = time.perf_counter()
        resp = await self._health()
        latency = time.perf_counter() - start
        if resp.body.get("initialized") is False:
            raise VaultUnreachable("vault: not initialized")
        if resp.body.get("sealed") is True:
            raise VaultSealedError()
        if "sealed" not in resp.body:
            raise VaultError(f"vault: unexpected health response: {resp.describe()}")
        return latency

    def check_open(self) -> None:
        if self._closed:
            raise VaultError("vault: key store is closed")

    def check_ready(self) -> None:
        """Raise unless the client is open and Vault not known to be sealed."""
        self.check_open()
        if not self._unsealed.is_set():
            raise VaultSealedError()

    async def call(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, **kw: Any
    ) -> VaultResponse:
        """One request with the token; a "Vault is sealed" answer marks the client sealed
        at once (not only at the next health ping) and raises."""
        resp = await self.http.request(method, path, body=body, **kw)
        if resp.is_sealed():
            self._unsealed.clear()
            raise VaultSealedError()
        return resp

    async def _health(self) -> VaultResponse:
        resp = await self.http.request(
            "GET", "sys/health", namespace=NO_NAMESPACE, authenticated=False
        )
        sealed = resp.body.get("sealed")
        if sealed is True:
            self._unsealed.clear()
        elif sealed is False:
            self._unsealed.set()
        return resp

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self._status_ping)
            with contextlib.suppress(VaultError):
                await self._health()


def _report_crash(task: asyncio.Task[None]) -> None:
    """A background task must only end by cancellation (or a TTL-less token)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("vault: background task %s failed: %r", task.get_name(), task.exception())


def client_for(config: VaultKeyStoreConfig, *, timeout: float = DEFAULT_TIMEOUT) -> VaultClient:
    """The (not yet started) client of a ``keystore.vault``-shaped section: its endpoint,
    namespace, TLS, login and health-ping interval. ``timeout`` bounds every request.
    Raises ValueError for invalid settings."""
    method = login_method(config)
    verify = tls_context(config.tls.ca, config.tls.cert, config.tls.key)
    http = VaultHTTP(config.endpoint, namespace=config.namespace, verify=verify, timeout=timeout)
    return VaultClient(http, method, config.status_ping)
