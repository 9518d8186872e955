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
  health ping.

Authentication is AppRole or Kubernetes only (the config has no static token);
token renewal is described in :mod:`pykes.keystore.vault_auth`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
import time
from typing import TYPE_CHECKING, Any

from pykes.errors import KeyExistsError, KeyNotFoundError
from pykes.keystore.listing import list_page
from pykes.keystore.vault_auth import (
    AppRoleLogin,
    KubernetesLogin,
    LoginMethod,
    TokenKeeper,
    auth_namespace,
    log,
    login,
)
from pykes.keystore.vault_http import (
    DEFAULT_TIMEOUT,
    NO_NAMESPACE,
    VaultError,
    VaultHTTP,
    VaultResponse,
    VaultSealedError,
    VaultUnreachable,
    join_path,
    tls_context,
)

if TYPE_CHECKING:
    from pykes.config import VaultKeyStoreConfig

DEFAULT_VAULT_STATUS_PING = 15.0
"""Seconds between health pings when ``status_ping`` is not positive."""

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

    Background tasks (started by :meth:`start`, stopped by :meth:`close`): the token
    keeper and a ``sys/health`` ping every ``status_ping`` seconds that tracks
    whether Vault is sealed; while it is, create/get/delete/list raise
    :class:`VaultSealedError` without contacting Vault.
    """

    def __init__(
        self,
        config: VaultKeyStoreConfig,
        http: VaultHTTP,
        method: LoginMethod,
    ) -> None:
        if config.version not in ("v1", "v2"):
            raise ValueError(f"vault: invalid engine API version '{config.version}'")
        self.description = f"Hashicorp Vault: {config.endpoint}"
        self._config = config
        self._v2 = config.version == "v2"
        self._http = http
        self._method = method
        self._unsealed = asyncio.Event()
        self._unsealed.set()
        self._keeper: TokenKeeper | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------

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
        await self.status()
        token = await login(self._http, self._method)
        self._keeper = TokenKeeper(self._http, self._method, token, self._unsealed)
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
        await self._http.aclose()

    # -- health -----------------------------------------------------------------------

    async def status(self) -> float:
        """``GET sys/health`` without namespace header; latency in seconds.

        Unreachable, timed out, sealed or uninitialised → KeyStoreUnreachable.
        """
        self._check_open()
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

    async def _health(self) -> VaultResponse:
        resp = await self._http.request(
            "GET", "sys/health", namespace=NO_NAMESPACE, authenticated=False
        )
        sealed = resp.body.get("sealed")
        if sealed is True:
            self._unsealed.clear()
        elif sealed is False:
            self._unsealed.set()
        return resp

    async def _ping(self) -> None:
        interval = self._config.status_ping
        if interval <= 0:
            interval = DEFAULT_VAULT_STATUS_PING
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(VaultError):
                await self._health()

    def _check_open(self) -> None:
        if self._closed:
            raise VaultError("vault: key store is closed")

    def _check_ready(self) -> None:
        self._check_open()
        if not self._unsealed.is_set():
            raise VaultSealedError()

    async def _call(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, **kw: Any
    ) -> VaultResponse:
        resp = await self._http.request(method, path, body=body, **kw)
        if resp.is_sealed():
            self._unsealed.clear()
            raise VaultSealedError()
        return resp

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
        self._check_ready()
        location = self._location(name)
        resp = await self._call("GET", location)
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
        resp = await self._call("PUT", location, body=body)
        if resp.status in (200, 204):
            return
        if self._v2 and resp.status == 400 and any(_CAS_MISMATCH in e for e in resp.errors):
            raise KeyExistsError()
        raise VaultError(f"vault: failed to create '{location}': {resp.describe()}")

    async def get(self, name: str) -> bytes:
        """Return the stored value (v2: version 1) or raise KeyNotFoundError."""
        if not _check_name(name):
            raise KeyNotFoundError()
        self._check_ready()
        location = self._location(name)
        params = {"version": "1"} if self._v2 else None
        resp = await self._call("GET", location, params=params)
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
        self._check_ready()
        location = self._metadata(name) if self._v2 else self._location(name)
        resp = await self._call("GET", location)
        if resp.status == 404:
            raise KeyNotFoundError()
        if resp.status != 200:
            raise VaultError(f"vault: failed to delete '{location}': {resp.describe()}")
        resp = await self._call("DELETE", location)
        if resp.status not in (200, 204):
            raise VaultError(f"vault: failed to delete '{location}': {resp.describe()}")

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """LIST the engine/prefix (v2: metadata); folder names keep their ``/``."""
        self._check_ready()
        if self._v2:
            location = self._metadata()
        else:
            location = join_path(self._config.engine, self._config.prefix)
        resp = await self._call("GET", location, params={"list": "true"})
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
        resp = await self._call("POST", path, body={"plaintext": plaintext})
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
        resp = await self._call("POST", path, body={"ciphertext": ciphertext})
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


def _report_crash(task: asyncio.Task[None]) -> None:
    """A background task must only end by cancellation (or a TTL-less token)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("vault: background task %s failed: %r", task.get_name(), task.exception())


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


def login_method(config: VaultKeyStoreConfig) -> LoginMethod:
    """The configured AppRole or Kubernetes login (exactly one must be present)."""
    if config.approle is not None and config.kubernetes is not None:
        raise ValueError("vault: more than one authentication method specified")
    if config.approle is not None:
        a = config.approle
        ns = auth_namespace(a.namespace, config.namespace)
        return AppRoleLogin(a.engine or "approle", ns, a.id, a.secret)
    if config.kubernetes is not None:
        k = config.kubernetes
        ns = auth_namespace(k.namespace, config.namespace)
        return KubernetesLogin(k.engine or "kubernetes", ns, k.role, k.jwt)
    raise ValueError("vault: no authentication method specified")


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
    method = login_method(config)
    verify = tls_context(config.tls.ca, config.tls.cert, config.tls.key)
    http = VaultHTTP(config.endpoint, namespace=config.namespace, verify=verify, timeout=timeout)
    store = VaultKeyStore(config, http, method)
    try:
        await store.start()
    except BaseException:
        await store.close()
        raise
    return store
