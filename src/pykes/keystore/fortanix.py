"""Fortanix SDKMS / DSM keystore (docs/compat/keystore.md §4.7, config.md §3.3).

Storage mapping (must never change): one ``OPAQUE`` security object per key, object
**name = key name**, object **value = base64(encoded value)**, created with
``key_ops = [EXPORT, APPMANAGEABLE]`` in the configured group (if any). Every request
carries ``Authorization: Basic <api key>`` with the configured key used verbatim.

Requests go through one :class:`httpx.AsyncClient` with a timeout on each request;
429 and 5xx answers and refused connections are retried a few times with a short
back-off, timeouts and network failures raise
:class:`~pykes.errors.KeyStoreUnreachable`. Error messages carry key names and the
server's error text, never values or the API key.

Listing fixes the Go bug of the reference server (its loop never advances ``start``):
pages of 100 names are fetched with ``start`` moved past the last name, until a short
page or the end of the prefix range.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any, Unpack
from urllib.parse import quote

from pykes.errors import KeyExistsError, KeyNotFoundError
from pykes.keystore.base import connected
from pykes.keystore.httpclient import (
    VendorAPI,
    VendorOptions,
    describe,
    error_text,
    json_object,
)
from pykes.keystore.listing import list_page

if TYPE_CHECKING:
    from pykes.config import FortanixKeyStoreConfig

LIST_PAGE_SIZE = 100
"""``limit`` of one ``GET /crypto/v1/keys`` page."""


class FortanixError(Exception):
    """A Fortanix failure other than "exists", "not found" or "unreachable"."""


class FortanixKeyStore:
    """A keystore backed by Fortanix SDKMS. Use :func:`connect` to create one."""

    def __init__(self, config: FortanixKeyStoreConfig, **options: Unpack[VendorOptions]) -> None:
        self.description = config.description
        self._group_id = config.group_id
        basic = {"Authorization": "Basic " + config.api_key}
        self._api = VendorAPI("fortanix", config.endpoint, config.ca, headers=basic, **options)
        self._send = self._api.send

    async def check(self) -> None:
        """Start-up check: health 204, then a session auth/terminate round trip."""
        resp = await self._send("GET", "/sys/v1/health")
        if resp.status_code != 204:
            raise FortanixError(f"fortanix: health check failed: {describe(resp)}")
        resp = await self._send("POST", "/sys/v1/session/auth")
        if resp.status_code != 200:
            raise FortanixError(f"fortanix: authentication failed: {describe(resp)}")
        token = (json_object(resp) or {}).get("access_token")
        if not token:
            raise FortanixError("fortanix: authentication failed: no access token")
        resp = await self._send(
            "POST", "/sys/v1/session/terminate", headers={"Authorization": "Bearer " + token}
        )
        if resp.status_code != 204:
            raise FortanixError(f"fortanix: failed to end session: {describe(resp)}")

    async def status(self) -> float:
        """Time a GET of the endpoint root; any HTTP status is "reachable"."""
        return await self._api.probe()

    async def create(self, name: str, value: bytes) -> None:
        """``PUT /crypto/v1/keys``; 409 ``sobject already exists`` → KeyExistsError."""
        request: dict[str, Any] = {"obj_type": "OPAQUE", "name": name}
        if self._group_id:
            request["group_id"] = self._group_id
        request["key_ops"] = ["EXPORT", "APPMANAGEABLE"]
        request["value"] = base64.b64encode(bytes(value)).decode("ascii")
        request["enabled"] = True
        resp = await self._send("PUT", "/crypto/v1/keys", json=request)
        del request
        if resp.status_code in (200, 201):
            return
        if resp.status_code == 409 and error_text(resp) == "sobject already exists":
            raise KeyExistsError()
        raise FortanixError(f"fortanix: failed to create '{name}': {describe(resp)}")

    async def _export(self, name: str, action: str) -> dict[str, Any]:
        resp = await self._send("POST", "/crypto/v1/keys/export", json={"name": name})
        if resp.status_code == 404 and error_text(resp) == "sobject does not exist":
            raise KeyNotFoundError()
        if resp.status_code != 200:
            raise FortanixError(f"fortanix: failed to {action} '{name}': {describe(resp)}")
        body = json_object(resp)
        if body is None:
            raise FortanixError(f"fortanix: failed to {action} '{name}': invalid response")
        return body

    async def get(self, name: str) -> bytes:
        """``POST /crypto/v1/keys/export``; 404 → KeyNotFoundError; disabled → error."""
        body = await self._export(name, "fetch")
        if body.get("enabled") is not True:
            raise FortanixError(
                f"fortanix: failed to fetch '{name}': key has been disabled and cannot be "
                "used until enabled again"
            )
        try:
            return base64.b64decode(str(body.get("value", "")), validate=True)
        except (binascii.Error, ValueError):
            raise FortanixError(f"fortanix: failed to fetch '{name}': invalid value") from None

    async def delete(self, name: str) -> None:
        """Export to learn the ``kid``, then ``DELETE /crypto/v1/keys/<kid>``."""
        body = await self._export(name, "delete")
        kid = body.get("kid")
        if not isinstance(kid, str) or not kid:
            raise FortanixError(f"fortanix: failed to delete '{name}': no key ID")
        resp = await self._send("DELETE", "/crypto/v1/keys/" + quote(kid, safe=""))
        if resp.status_code == 404:
            raise KeyNotFoundError()
        if resp.status_code not in (200, 204):
            raise FortanixError(f"fortanix: failed to delete '{name}': {describe(resp)}")

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """All names from ``prefix`` on, page by page, then the shared list helper.

        The documentation does not say whether ``start`` is inclusive, so the listing
        works either way: the first page starts at ``prefix`` minus its last character
        (a string sorting before every name with the prefix), later pages at the last
        name seen, and names at or before it are skipped. The loop ends on a short
        page, a page without new names, or a name past the prefix range.
        """
        names: list[str] = []
        start = prefix[:-1]
        last = ""
        while True:
            params = {"sort": "name:asc", "limit": str(LIST_PAGE_SIZE)}
            if start:
                params["start"] = start
            resp = await self._send("GET", "/crypto/v1/keys", params=params)
            if resp.status_code != 200:
                raise FortanixError(f"fortanix: failed to list keys: {describe(resp)}")
            try:
                page = resp.json()
            except ValueError:
                page = None
            if not isinstance(page, list):
                raise FortanixError("fortanix: failed to list keys: invalid response")
            fresh = [
                str(o["name"])
                for o in page
                if isinstance(o, dict) and isinstance(o.get("name"), str) and o["name"]
            ]
            fresh = [s for s in fresh if s > last]
            past_prefix = any(not s.startswith(prefix) and s > prefix for s in fresh)
            names.extend(s for s in fresh if s.startswith(prefix))
            if len(page) < LIST_PAGE_SIZE or not fresh or past_prefix:
                break
            start = last = fresh[-1]
        return list_page(names, prefix, n)

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._api.aclose()


async def connect(config: FortanixKeyStoreConfig, **options: Any) -> FortanixKeyStore:
    """The ``keystore.fortanix.sdkms`` section → a keystore that passed the start-up
    checks (health 204, session auth/terminate). ``options`` are the keyword arguments
    of :class:`FortanixKeyStore` (timeouts and retries, for tests)."""
    return await connected(FortanixKeyStore(config, **options), FortanixKeyStore.check)
