"""HashiCorp Vault / OpenBao K/V keystore (docs/compat/keystore.md §4.3, config.md §3.2).

Storage layout — identical to the Go server, so either can read the other's keys:

* location ``<engine>/<prefix>/<name>`` (K/V v1) or ``<engine>/data/<prefix>/<name>``
  (K/V v2), path-joined and cleaned (an empty prefix disappears);
* the secret holds **one field named like the key** whose value is the encoded key
  string (or its ``vault:v1:…`` transit ciphertext);
* K/V v2 keys are written once with ``{"options":{"cas":0}, ...}`` (create-only) and
  always read at ``?version=1``.

Differences from the Go server, all deliberate:

* ``delete`` reports a missing key as :class:`~pykes.errors.KeyNotFoundError` (Go
  always succeeds): it reads the entry (v1) or its metadata (v2) first;
* a K/V v2 create that loses the CAS race reports
  :class:`~pykes.errors.KeyExistsError` instead of a generic error;
* HTTP keep-alives stay on (one pooled :class:`httpx.AsyncClient`); Go disabled them.
  Every request has a timeout (10 s by default), so a hanging Vault cannot block;
* a 503 "Vault is sealed" answer marks the store sealed at once, not only the next
  health ping (:class:`~pykes.vault.client.VaultClient`).

Authentication is AppRole or Kubernetes only (the config has no static token);
the client, its token renewal and health ping are :mod:`pykes.vault`'s.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any

from pykes.errors import KeyExistsError, KeyNotFoundError
from pykes.keystore.listing import list_page
from pykes.vault.auth import TokenKeeper
from pykes.vault.client import VaultClient, client_for
from pykes.vault.http import (
    DEFAULT_TIMEOUT,
    VaultError,
    VaultResponse,
    VaultSealedError,
    VaultUnreachable,
    join_path,
)

if TYPE_CHECKING:
    from pykes.config import VaultKeyStoreConfig

__all__ = [
    "VaultError",
    "VaultKeyStore",
    "VaultSealedError",
    "VaultUnreachable",
    "connect",
]

_TRANSIT_PREFIX = re.compile(r"^vault:v[0-9]+:")
_CAS_MISMATCH = "check-and-set parameter did not match"


class VaultKeyStore:
    """A keystore on a Vault K/V engine (v1 or v2). Create it with :func:`connect`.

    It stands on a :class:`~pykes.vault.client.VaultClient`: while Vault is known to be
    sealed, create/get/delete/list raise :class:`VaultSealedError` without contacting it.
    """

    def __init__(self, config: VaultKeyStoreConfig, client: VaultClient) -> None:
        if config.version not in ("v1", "v2"):
            raise ValueError(f"vault: invalid engine API version '{config.version}'")
        self.description = f"Hashicorp Vault: {config.endpoint}"
        self._config = config
        self._v2 = config.version == "v2"
        self._client = client

    # -- lifecycle --------------------------------------------------------------------

    @property
    def sealed(self) -> bool:
        """Whether Vault was sealed at the last health check."""
        return self._client.sealed

    @property
    def keeper(self) -> TokenKeeper | None:
        """The token keeper (``None`` before :meth:`start`)."""
        return self._client.keeper

    async def start(self) -> None:
        """Check health, log in and start the background tasks (token renewal, health
        ping). Raises :class:`VaultUnreachable` if Vault cannot be reached, is sealed or
        not initialised, and :class:`VaultError` if the login fails."""
        await self._client.start()

    async def close(self) -> None:
        """Cancel the background tasks and close the HTTP connections."""
        await self._client.close()

    async def status(self) -> float:
        """``GET sys/health`` without namespace header; latency in seconds.

        Unreachable, timed out, sealed or uninitialised → KeyStoreUnreachable.
        """
        return await self._client.status()

    # -- locations --------------------------------------------------------------------

    def _location(self, name: str) -> str:
        """Where the secret of ``name`` is written and read."""
        if self._v2:
            return join_path(self._config.engine, "data", self._config.prefix, name)
        return join_path(self._config.engine, self._config.prefix, name)

    def _metadata(self, name: str = "") -> str:
        return join_path(self._config.engine, "metadata", self._config.prefix, name)

    # -- operations -------------------------------------------------------------------

    async def create(self, name: str, value: bytes) -> None:
        """Create ``name`` unless it exists (KeyExistsError).

        v1: check-then-write (not atomic across nodes); v2: additionally CAS 0, so
        exactly one of several concurrent creates wins.
        """
        _check_name(name, create=True)
        self._client.check_ready()
        location = self._location(name)
        resp = await self._client.call("GET", location)
        if resp.status == 200:
            fields = self._fields(resp, "create", location)
            if fields is not None:
                if name not in fields:
                    raise VaultError(
                        f"vault: failed to create '{location}': entry exists "
                        "but no secret key is present"
                    )
                raise KeyExistsError()
        elif resp.status != 404:
            raise VaultError(f"vault: failed to create '{location}': {resp.describe()}")

        stored = await self._encrypt(location, value) if self._config.transit else _text(value)
        body: dict[str, Any] = {name: stored}
        if self._v2:
            body = {"options": {"cas": 0}, "data": body}
        resp = await self._client.call("PUT", location, body=body)
        if resp.status in (200, 204):
            return
        if self._v2 and resp.status == 400 and any(_CAS_MISMATCH in e for e in resp.errors):
            raise KeyExistsError()
        raise VaultError(f"vault: failed to create '{location}': {resp.describe()}")

    async def get(self, name: str) -> bytes:
        """Return the stored value (v2: version 1) or raise KeyNotFoundError."""
        if not _check_name(name):
            raise KeyNotFoundError()
        self._client.check_ready()
        location = self._location(name)
        params = {"version": "1"} if self._v2 else None
        resp = await self._client.call("GET", location, params=params)
        if resp.status == 404:
            raise KeyNotFoundError()
        if resp.status != 200:
            raise VaultError(f"vault: failed to read '{location}': {resp.describe()}")
        fields = self._fields(resp, "read", location)
        if fields is None:
            raise KeyNotFoundError()
        stored = fields.get(name)
        if stored is None:
            raise VaultError(
                f"vault: failed to read '{location}': entry exists but no secret key is present"
            )
        if not isinstance(stored, str):
            raise VaultError(f"vault: failed to read '{location}': invalid K/V format")
        if _TRANSIT_PREFIX.match(stored):
            return await self._decrypt(location, stored)
        return stored.encode("utf-8")

    async def delete(self, name: str) -> None:
        """Remove ``name`` (v2: metadata and all versions); KeyNotFoundError if absent."""
        if not _check_name(name):
            raise KeyNotFoundError()
        self._client.check_ready()
        location = self._metadata(name) if self._v2 else self._location(name)
        resp = await self._client.call("GET", location)
        if resp.status == 404:
            raise KeyNotFoundError()
        if resp.status != 200:
            raise VaultError(f"vault: failed to delete '{location}': {resp.describe()}")
        resp = await self._client.call("DELETE", location)
        if resp.status not in (200, 204):
            raise VaultError(f"vault: failed to delete '{location}': {resp.describe()}")

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """LIST the engine/prefix (v2: metadata); folder names keep their ``/``."""
        self._client.check_ready()
        if self._v2:
            location = self._metadata()
        else:
            location = join_path(self._config.engine, self._config.prefix)
        resp = await self._client.call("GET", location, params={"list": "true"})
        if resp.status == 404:
            return list_page([], prefix, n)
        if resp.status != 200:
            raise VaultError(f"vault: failed to list '{location}': {resp.describe()}")
        data = resp.data
        keys = data.get("keys") if isinstance(data, dict) else None
        if keys is None:
            keys = []
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise VaultError(f"vault: failed to list '{location}': invalid key listing format")
        return list_page(keys, prefix, n)

    # -- helpers ----------------------------------------------------------------------

    def _fields(self, resp: VaultResponse, op: str, location: str) -> dict[str, Any] | None:
        """The secret's fields; ``None`` if the response holds no secret (v2: a
        deleted version)."""
        data = resp.data
        if self._v2 and isinstance(data, dict):
            data = data.get("data")
            if data is None:
                return None
        if data is None:
            return None
        if not isinstance(data, dict):
            kind = "K/V v2" if self._v2 else "K/V v1"
            raise VaultError(f"vault: failed to {op} '{location}': invalid {kind} format")
        return data

    async def _encrypt(self, location: str, value: bytes) -> str:
        transit = self._config.transit
        assert transit is not None
        path = join_path(transit.engine, "encrypt", transit.key)
        plaintext = base64.b64encode(value).decode("ascii")
        resp = await self._client.call("POST", path, body={"plaintext": plaintext})
        err = f"vault: failed to create '{location}': failed to encrypt key"
        if resp.status != 200:
            raise VaultError(f"{err}: {resp.describe()}")
        data = resp.data
        ciphertext = data.get("ciphertext") if isinstance(data, dict) else None
        if not isinstance(ciphertext, str) or not _TRANSIT_PREFIX.match(ciphertext):
            raise VaultError(f"{err}: invalid vault response")
        return ciphertext

    async def _decrypt(self, location: str, ciphertext: str) -> bytes:
        transit = self._config.transit
        err = f"vault: failed to read '{location}': "
        if transit is None:
            raise VaultError(err + "key is encrypted with vault transit key")
        path = join_path(transit.engine, "decrypt", transit.key)
        resp = await self._client.call("POST", path, body={"ciphertext": ciphertext})
        if resp.status != 200:
            raise VaultError(f"{err}failed to decrypt key: {resp.describe()}")
        data = resp.data
        plaintext = data.get("plaintext") if isinstance(data, dict) else None
        if not isinstance(plaintext, str):
            raise VaultError(err + "failed to decrypt key: invalid vault response")
        try:
            return base64.b64decode(plaintext, validate=True)
        except (binascii.Error, ValueError):
            raise VaultError(err + "failed to decrypt key: invalid vault response") from None


def _check_name(name: str, *, create: bool = False) -> bool:
    """Defence in depth: a key name must be one path element. Invalid names raise
    ValueError on create; get/delete treat them as absent (no such key can exist)."""
    valid = bool(name) and "/" not in name and name not in (".", "..")
    if not valid and create:
        raise ValueError("vault: key name contains invalid characters")
    return valid


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("vault: key value is not valid UTF-8 text") from None


async def connect(
    config: VaultKeyStoreConfig, *, timeout: float = DEFAULT_TIMEOUT
) -> VaultKeyStore:
    """The ``keystore.vault`` section → a logged-in, health-checked Vault keystore.

    ``timeout`` bounds every single Vault request. Raises ValueError for invalid
    settings, :class:`VaultUnreachable` if Vault is unreachable/sealed and
    :class:`VaultError` if the login fails.
    """
    if config.version not in ("v1", "v2"):
        raise ValueError(f"vault: invalid engine API version '{config.version}'")
    store = VaultKeyStore(config, client_for(config, timeout=timeout))
    try:
        await store.start()
    except BaseException:
        await store.close()
        raise
    return store
