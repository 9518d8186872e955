"""Thales CipherTrust Manager / Gemalto KeySecure keystore (docs/compat/keystore.md §4.8,
docs/compat/config.md §3.4).

Storage mapping (must never change): one vault secret per key, secret **name = key
name**, ``dataType = seed``, **material = encoded value** (text).

Authentication: the configured refresh token is exchanged for a JWT
(``POST /api/v1/auth/tokens``), sent as ``Authorization: Bearer <jwt>``. A background
task renews it at half its ``duration``, retrying every 5 s on failure; a request
answered with 401 re-authenticates once and is repeated. Retries, timeouts and the
unreachable mapping are those of :func:`pykes.keystore.httpclient.send_with_retry`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Unpack
from urllib.parse import quote

import httpx

from pykes.errors import KeyExistsError, KeyNotFoundError
from pykes.keystore.base import connected, utf8_text
from pykes.keystore.httpclient import (
    TokenSession,
    VendorAPI,
    VendorOptions,
    describe,
    json_object,
)
from pykes.keystore.listing import list_page

if TYPE_CHECKING:
    from pykes.config import GemaltoKeyStoreConfig

log = logging.getLogger(__name__)

RETRY_INTERVAL = 5.0
"""Seconds between token renewal attempts after a failure."""
DEFAULT_DURATION = 300.0
"""Token lifetime assumed when the server reports none."""
LIST_PAGE_SIZE = 200
"""``limit`` of one ``GET /api/v1/vault/secrets`` page."""


class GemaltoError(Exception):
    """A KeySecure failure other than "exists", "not found" or "unreachable"."""


class GemaltoKeyStore:
    """A keystore backed by CipherTrust Manager / KeySecure. Use :func:`connect`."""

    def __init__(
        self,
        config: GemaltoKeyStoreConfig,
        *,
        retry_interval: float = RETRY_INTERVAL,
        **options: Unpack[VendorOptions],
    ) -> None:
        self.description = config.description
        self._refresh_token = config.token
        self._domain = config.domain
        self._session = TokenSession(
            lifetime=DEFAULT_DURATION,
            renew=self.authenticate,
            relogin=self.authenticate,
            log=log,
            failure="gemalto: failed to renew authentication token: %s",
            retry_interval=retry_interval,
        )
        self._api = VendorAPI("gemalto", config.endpoint, config.ca, **options)

    # ------------------------------------------------------------------ auth
    async def authenticate(self) -> None:
        """Exchange the refresh token for a fresh JWT."""
        request = {"grant_type": "refresh_token", "refresh_token": self._refresh_token}
        if self._domain:
            request["domain"] = self._domain
        resp = await self._api.send("POST", "/api/v1/auth/tokens", json=request)
        if resp.status_code not in (200, 201):
            raise GemaltoError(f"gemalto: failed to authenticate: {describe(resp)}")
        body = json_object(resp) or {}
        jwt = body.get("jwt")
        if not isinstance(jwt, str) or not jwt:
            raise GemaltoError("gemalto: failed to authenticate: no token in response")
        duration = body.get("duration")
        self._session.token = jwt
        valid = isinstance(duration, int | float) and duration > 0
        self._session.lifetime = float(duration) if valid else DEFAULT_DURATION

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated request; a 401 re-authenticates once and repeats it."""

        def request(jwt: str) -> Awaitable[httpx.Response]:
            headers = {"Authorization": "Bearer " + jwt}
            return self._api.send(method, path, headers=headers, **kwargs)

        return await self._session.send(request)

    # ------------------------------------------------------------------ keystore
    async def status(self) -> float:
        """Time a GET of the endpoint; any HTTP status is "reachable"."""
        return await self._api.probe()

    async def create(self, name: str, value: bytes) -> None:
        """``POST /api/v1/vault/secrets``; 409 → KeyExistsError."""
        material = utf8_text("gemalto", name, value)
        request = {"dataType": "seed", "material": material, "name": name}
        resp = await self._send("POST", "/api/v1/vault/secrets", json=request)
        del request, material
        if resp.status_code in (200, 201):
            return
        if resp.status_code == 409:
            raise KeyExistsError()
        raise GemaltoError(f"gemalto: failed to create '{name}': {describe(resp)}")

    async def get(self, name: str) -> bytes:
        """``POST /api/v1/vault/secrets/<name>/export?type=name``; 404 → not found."""
        path = f"/api/v1/vault/secrets/{quote(name, safe='')}/export"
        resp = await self._send("POST", path, params={"type": "name"})
        if resp.status_code == 404:
            raise KeyNotFoundError()
        if resp.status_code != 200:
            raise GemaltoError(f"gemalto: failed to fetch '{name}': {describe(resp)}")
        material = (json_object(resp) or {}).get("material")
        if not isinstance(material, str):
            raise GemaltoError(f"gemalto: failed to fetch '{name}': invalid response")
        return material.encode("utf-8")

    async def delete(self, name: str) -> None:
        """``DELETE /api/v1/vault/secrets/<name>?type=name``; 204 or 404 → success."""
        path = f"/api/v1/vault/secrets/{quote(name, safe='')}"
        resp = await self._send("DELETE", path, params={"type": "name"})
        if resp.status_code not in (200, 204, 404):
            raise GemaltoError(f"gemalto: failed to delete '{name}': {describe(resp)}")

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """Every secret name (pages of 200 until ``skip >= total``), then the helper."""
        names: list[str] = []
        skip = 0
        while True:
            params = {"limit": str(LIST_PAGE_SIZE), "skip": str(skip)}
            resp = await self._send("GET", "/api/v1/vault/secrets", params=params)
            if resp.status_code != 200:
                raise GemaltoError(f"gemalto: failed to list keys: {describe(resp)}")
            body = json_object(resp) or {}
            resources = body.get("resources")
            total = body.get("total")
            if not isinstance(resources, list) or not isinstance(total, int):
                raise GemaltoError("gemalto: failed to list keys: invalid response")
            names.extend(str(r["name"]) for r in resources if isinstance(r, dict) and r.get("name"))
            skip += len(resources)
            if not resources or skip >= total:
                break
        return list_page(names, prefix, n)

    async def close(self) -> None:
        """Stop token renewal and close the HTTP connection pool."""
        await self._session.stop()
        await self._api.aclose()


async def connect(config: GemaltoKeyStoreConfig, **options: Any) -> GemaltoKeyStore:
    """The ``keystore.gemalto.keysecure`` section → an authenticated keystore with token
    renewal running. ``options`` are the keyword arguments of :class:`GemaltoKeyStore`."""
    store = await connected(GemaltoKeyStore(config, **options), GemaltoKeyStore.authenticate)
    store._session.start()
    return store
