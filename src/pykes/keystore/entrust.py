"""Entrust KeyControl keystore (docs/compat/keystore.md §4.9, config.md §3.8).

Storage mapping (must never change): one secret per key in the configured box, secret
**name = key name**, **secret_data = base64(encoded value)**.

Authentication: ``POST /vault/1.0/Login/<vault_id>/`` returns a token (header
``X-Vault-Auth``) and its expiry (5 min if missing). A background task renews it at
half its remaining lifetime (``POST /vault/1.0/Renew/``), falling back to a new login;
a request answered with 401 logs in again once and is repeated. Errors are JSON
``{"error": ...}``; exactly ``409 Secret already exists`` and ``404 Secret not found``
map to the canonical errors.

Listing returns one page and a continuation name (this backend does not use the shared
helper) but, unlike the Go server, only names with the prefix, never empty names
(the Go result started with ``n`` empty strings) and never expired secrets.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Unpack
from urllib.parse import quote

import httpx

from pykes.errors import KeyExistsError, KeyNotFoundError
from pykes.keystore.base import connected
from pykes.keystore.httpclient import (
    TokenSession,
    VendorAPI,
    VendorOptions,
    describe,
    error_text,
    json_object,
)
from pykes.keystore.listing import byte_order_key

if TYPE_CHECKING:
    from pykes.config import EntrustKeyStoreConfig

log = logging.getLogger(__name__)

DEFAULT_LIFETIME = 300.0
"""Token lifetime assumed when the server reports no (or a past) expiry."""
DEFAULT_PAGE_SIZE = 256
"""Names per list page when ``n <= 0``."""


class EntrustError(Exception):
    """A KeyControl failure other than "exists", "not found" or "unreachable"."""


def _lifetime(expires_at: object) -> float:
    """Seconds until an RFC 3339 ``expires_at``; the default when missing or past."""
    if isinstance(expires_at, str) and expires_at:
        try:
            when = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        except ValueError:
            return DEFAULT_LIFETIME
        if when.tzinfo is not None:
            left = when.timestamp() - time.time()
            if left > 0:
                return left
    return DEFAULT_LIFETIME


def _token(box_id: str, name: str) -> str:
    raw = json.dumps({"box_id": box_id, "next_ctx": name}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode("ascii")


class EntrustKeyStore:
    """A keystore backed by an Entrust KeyControl vault box. Use :func:`connect`."""

    def __init__(self, config: EntrustKeyStoreConfig, **options: Unpack[VendorOptions]) -> None:
        self.description = config.description
        self._vault_id = config.vault_id
        self._box_id = config.box_id
        self._username = config.username
        self._password = config.password
        self._session = TokenSession(
            lifetime=DEFAULT_LIFETIME,
            renew=self.renew,
            relogin=self.login,
            log=log,
            failure="keycontrol: failed to login: %s",
        )
        self._api = VendorAPI("keycontrol", config.endpoint, config.ca, **options)

    async def _raw(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self._api.send("POST", path, **kwargs)

    # ------------------------------------------------------------------ auth
    def _accept(self, resp: httpx.Response, action: str) -> None:
        if resp.status_code != 200:
            raise EntrustError(f"keycontrol: {action} failed: {describe(resp)}")
        body = json_object(resp) or {}
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise EntrustError(f"keycontrol: {action} failed: auth token is empty")
        self._session.token = token
        self._session.lifetime = _lifetime(body.get("expires_at"))

    async def login(self) -> None:
        """Log in with username and password."""
        path = f"/vault/1.0/Login/{quote(self._vault_id, safe='')}/"
        creds = {"username": self._username, "password": self._password}
        self._accept(await self._raw(path, json=creds), "login")

    async def renew(self) -> None:
        """Renew the current token, falling back to a new login."""
        try:
            headers = {"X-Vault-Auth": self._session.token}
            resp = await self._raw("/vault/1.0/Renew/", headers=headers)
            self._accept(resp, "token renewal")
        except Exception as err:
            log.warning("keycontrol: failed to renew auth token: %s", err)
            await self.login()

    async def _send(self, path: str, request: dict[str, Any]) -> httpx.Response:
        """An authenticated POST; a 401 logs in again once and repeats it."""
        return await self._session.send(
            lambda token: self._raw(path, json=request, headers={"X-Vault-Auth": token})
        )

    # ------------------------------------------------------------------ keystore
    async def status(self) -> float:
        """Time ``POST /vault/1.0/GetBox/``; anything but 200 is an error."""
        start = time.perf_counter()
        resp = await self._send("/vault/1.0/GetBox/", {"box_id": self._box_id})
        latency = time.perf_counter() - start
        if resp.status_code != 200:
            raise EntrustError(f"keycontrol: failed to fetch status: {describe(resp)}")
        return latency

    async def create(self, name: str, value: bytes) -> None:
        """``CreateSecret``; 409 ``Secret already exists`` → KeyExistsError."""
        data = base64.b64encode(bytes(value)).decode("ascii")
        request = {"box_id": self._box_id, "name": name, "secret_data": data}
        resp = await self._send("/vault/1.0/CreateSecret/", request)
        del request, data
        if resp.status_code == 200:
            return
        if resp.status_code == 409 and error_text(resp) == "Secret already exists":
            raise KeyExistsError()
        raise EntrustError(f"keycontrol: failed to create '{name}': {describe(resp)}")

    async def get(self, name: str) -> bytes:
        """``CheckoutSecret``; 404 ``Secret not found`` → KeyNotFoundError."""
        request = {"box_id": self._box_id, "secret_id": name}
        resp = await self._send("/vault/1.0/CheckoutSecret/", request)
        self._check(resp, f"failed to fetch '{name}'")
        data = (json_object(resp) or {}).get("secret_data")
        try:
            if not isinstance(data, str):
                raise ValueError
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise EntrustError(f"keycontrol: failed to fetch '{name}': invalid value") from None

    async def delete(self, name: str) -> None:
        """``DeleteSecret``; 404 ``Secret not found`` → KeyNotFoundError."""
        request = {"box_id": self._box_id, "secret_id": name}
        resp = await self._send("/vault/1.0/DeleteSecret/", request)
        self._check(resp, f"failed to delete '{name}'")

    @staticmethod
    def _check(resp: httpx.Response, action: str) -> None:
        if resp.status_code == 200:
            return
        if resp.status_code == 404 and error_text(resp) == "Secret not found":
            raise KeyNotFoundError()
        raise EntrustError(f"keycontrol: {action}: {describe(resp)}")

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """Up to ``n`` (default 256) names with ``prefix`` and the next such name.

        ``ListSecretIds`` starts at ``prefix`` (a continuation token naming it) and is
        followed until ``n + 1`` matching names are seen, a name past the prefix range
        appears, or the server has no more.
        """
        size = n if n > 0 else DEFAULT_PAGE_SIZE
        found: list[str] = []
        token = _token(self._box_id, prefix) if prefix else ""
        while len(found) <= size:
            request: dict[str, Any] = {"box_id": self._box_id, "max_items": size + 1}
            if token:
                request["next_token"] = token
            resp = await self._send("/vault/1.0/ListSecretIds/", request)
            if resp.status_code != 200:
                raise EntrustError(f"keycontrol: failed to list keys: {describe(resp)}")
            body = json_object(resp) or {}
            # Go decodes the untagged field case-insensitively.
            secrets = body.get("secrets", body.get("Secrets"))
            if not isinstance(secrets, list):
                raise EntrustError("keycontrol: failed to list keys: invalid response")
            past = False
            for secret in secrets:
                if not isinstance(secret, dict) or secret.get("expired") is True:
                    continue
                name = secret.get("name")
                if not isinstance(name, str) or not name:
                    continue
                if name.startswith(prefix):
                    found.append(name)
                elif byte_order_key(name) > byte_order_key(prefix):
                    past = True
            token = body.get("next_token") or ""
            if past or not token or not secrets:
                break
        found = sorted(set(found), key=byte_order_key)
        if len(found) > size:
            return found[:size], found[size]
        return found, ""

    async def close(self) -> None:
        """Stop token renewal and close the HTTP connection pool."""
        await self._session.stop()
        await self._api.aclose()


async def connect(config: EntrustKeyStoreConfig, **options: Any) -> EntrustKeyStore:
    """The ``keystore.entrust.keycontrol`` section → a logged-in keystore whose box
    answered ``GetBox``, with token renewal running. ``options`` are the keyword
    arguments of :class:`EntrustKeyStore`."""
    store = await connected(
        EntrustKeyStore(config, **options), EntrustKeyStore.login, EntrustKeyStore.status
    )
    store._session.start()
    return store
