"""Azure Key Vault keystore, secrets (docs/compat/keystore.md §4.6, config.md §3.7).

Storage mapping (must never change, or existing deployments lose their keys): one
secret per key, secret name = key name (Key Vault allows only ``[0-9A-Za-z-]``, so
names with ``_`` fail at the vault), value = the encoded key as a string. Reads use the
**oldest** version of the secret. Listing returns every secret name of the vault
through the shared list helper.

The client is the SDK's native async ``SecretClient``. Without aiohttp installed, its
HTTP runs on azure-core's asyncio ``requests`` transport. The SDK retries throttling,
5xx answers and connection failures (7 retries, 200–800 ms back-off, as in KES); each
keystore operation additionally has an overall deadline. Credentials: client secret
(tenant / client ID / secret), managed identity (client ID) or, with neither, Azure's
default credential chain. Error messages carry key names and Azure error texts, never
values or credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import random
import ssl
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import AsyncioRequestsTransport
from azure.identity.aio import (
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)
from azure.keyvault.secrets.aio import SecretClient

from pykes.errors import KeyExistsError, KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore.base import connected, utf8_text
from pykes.keystore.httpclient import probe_once
from pykes.keystore.listing import list_page

if TYPE_CHECKING:
    from pykes.config import AzureKeyStoreConfig

API_VERSION = "7.5"
"""Key Vault REST API version: pinned, so an SDK update cannot change the wire format."""
CONNECT_TIMEOUT = 5.0
"""Seconds to establish a connection (per attempt)."""
READ_TIMEOUT = 10.0
"""Seconds to wait for response data (per attempt)."""
OPERATION_TIMEOUT = 30.0
"""Overall deadline of one keystore operation (purge/retry loops included)."""
RETRY_TOTAL = 7
RETRY_BACKOFF = 0.2
RETRY_BACKOFF_MAX = 0.8
"""SDK retry policy: 7 retries, 200–800 ms back-off (docs/compat/keystore.md §4.6)."""
CREATE_ATTEMPTS = 7
"""SetSecret attempts while a soft-deleted secret of the same name is purged."""
PURGE_TRIES_CREATE = 25
PURGE_TRIES_DELETE = 10
PURGE_DELAY = (0.2, 1.0)
"""Jitter bounds (seconds) between purge attempts."""

_SOFT_DELETED = ("ObjectIsDeletedButRecoverable", "ObjectIsBeingDeleted")
T = TypeVar("T")


class AzureError(Exception):
    """A Key Vault failure other than "exists", "not found" or "unreachable"."""


def _codes(err: HttpResponseError) -> tuple[str, str]:
    """The error code and inner error code of a Key Vault error body."""
    odata = getattr(err, "error", None)
    code = str(getattr(odata, "code", "") or "")
    inner = getattr(odata, "innererror", None) or {}
    inner_code = str(inner.get("code", "")) if isinstance(inner, dict) else ""
    return code, inner_code


def _reason(err: Exception) -> str:
    """A one-line description of an SDK error (its message, never the request)."""
    if isinstance(err, HttpResponseError):
        code, inner = _codes(err)
        odata = getattr(err, "error", None)
        message = str(getattr(odata, "message", "") or err.reason or "")
        parts = [str(err.status_code or ""), code, inner, message]
        return " ".join(p for p in parts if p)
    return str(getattr(err, "message", "") or type(err).__name__).splitlines()[0]


_EPOCH = datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _oldest(versions: list[Any]) -> Any:
    """The earliest created version; equal creation times (Key Vault keeps seconds)
    are ordered by version ID, so every reader and creator picks the same one."""
    return min(versions, key=lambda v: (v.created_on or _EPOCH, v.version or ""))


class AzureKeyVaultKeyStore:
    """A keystore backed by the secrets of one Azure Key Vault.

    Use :func:`connect`, which also performs the start-up reachability check. Keyword
    arguments exist for tests: ``authority`` replaces the Microsoft Entra authority
    host, ``ca_file`` is a PEM bundle trusted instead of the default roots,
    ``verify_challenge_resource`` is the SDK's check that the 401 challenge's resource
    belongs to the vault's domain, and the timeouts / purge delays can be shrunk.
    """

    def __init__(
        self,
        config: AzureKeyStoreConfig,
        *,
        authority: str | None = None,
        ca_file: str | None = None,
        verify_challenge_resource: bool = True,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        operation_timeout: float = OPERATION_TIMEOUT,
        retry_backoff: float = RETRY_BACKOFF,
        retry_backoff_max: float = RETRY_BACKOFF_MAX,
        purge_delay: tuple[float, float] = PURGE_DELAY,
    ) -> None:
        if not config.endpoint:
            raise ValueError("azure: no endpoint specified")
        self.description = config.description
        self._url = config.endpoint.rstrip("/")
        if "://" not in self._url:
            self._url = "https://" + self._url
        self._ca_file = ca_file
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._operation_timeout = operation_timeout
        self._purge_delay = purge_delay

        def transport() -> AsyncioRequestsTransport:
            return AsyncioRequestsTransport(
                connection_timeout=connect_timeout,
                read_timeout=read_timeout,
                connection_verify=ca_file if ca_file is not None else True,
            )

        common: dict[str, Any] = {
            "transport": transport(),
            "retry_total": RETRY_TOTAL,
            "retry_backoff_factor": retry_backoff,
            "retry_backoff_max": retry_backoff_max,
        }
        if authority is not None:
            common["authority"] = authority
        self._credential: Any
        if config.tenant_id or config.client_id or config.client_secret:
            if not config.tenant_id:
                raise ValueError("azure: no tenant ID specified")
            if not config.client_id:
                raise ValueError("azure: no client ID specified")
            if not config.client_secret:
                raise ValueError("azure: no client secret specified")
            self._credential = ClientSecretCredential(
                config.tenant_id, config.client_id, config.client_secret, **common
            )
        elif config.managed_identity_client_id:
            common.pop("authority", None)
            self._credential = ManagedIdentityCredential(
                client_id=config.managed_identity_client_id, **common
            )
        else:
            self._credential = DefaultAzureCredential(**common)
        self._client = SecretClient(
            self._url,
            self._credential,
            transport=transport(),
            api_version=API_VERSION,
            verify_challenge_resource=verify_challenge_resource,
            retry_total=RETRY_TOTAL,
            retry_backoff_factor=retry_backoff,
            retry_backoff_max=retry_backoff_max,
        )

    @property
    def endpoint(self) -> str:
        """The vault URL requests and status probes go to."""
        return self._url

    async def status(self) -> float:
        """Time a plain GET of the vault URL; any HTTP status is "reachable"."""
        timeout = httpx.Timeout(self._read_timeout, connect=self._connect_timeout)
        verify: ssl.SSLContext | bool = True
        if self._ca_file is not None:
            verify = ssl.create_default_context(cafile=self._ca_file)
        return await probe_once(
            "azure", self._url, verify=verify, timeout=timeout, deadline=self._operation_timeout
        )

    async def _bounded(self, what: str, operation: Awaitable[T], not_found: bool = False) -> T:
        """Await ``operation`` within the operation deadline, its failures mapped: no
        answer in time or a transport failure → KeyStoreUnreachable; a missing secret →
        KeyNotFoundError if ``not_found``; any other error answer → AzureError
        ``failed to <what>``. The failure is raised outside ``except``: nothing holding
        the request (and so a value) travels along as ``__context__``."""
        failure: Exception
        try:
            async with asyncio.timeout(self._operation_timeout):
                return await operation
        except TimeoutError:
            failure = KeyStoreUnreachable(
                f"azure: no response from {self._url} within {self._operation_timeout:g}s"
            )
        except (ServiceRequestError, ServiceResponseError) as err:
            failure = KeyStoreUnreachable(f"azure: {self._url}: {_reason(err)}")
        except HttpResponseError as err:
            if not_found and isinstance(err, ResourceNotFoundError):
                failure = KeyNotFoundError()
            else:
                failure = AzureError(f"azure: failed to {what}: {_reason(err)}")
        raise failure

    async def create(self, name: str, value: bytes) -> None:
        """GET first (exists → KeyExistsError), then SetSecret; a soft-deleted secret
        of the same name is purged and creation retried."""
        text = utf8_text("azure", name, value)
        await self._bounded(f"create '{name}'", self._create(name, text))

    async def _create(self, name: str, text: str) -> None:
        # Failures are raised outside the ``except`` blocks: a SetSecret error holds the
        # request (and so the value), and must not travel along as ``__context__``.
        failure: Exception | None = None
        try:
            await self._client.get_secret(name)
            failure = KeyExistsError()
        except ResourceNotFoundError:
            pass
        except HttpResponseError as err:
            failure = AzureError(f"azure: failed to create '{name}': {_reason(err)}")
        if failure is not None:
            raise failure
        for _ in range(CREATE_ATTEMPTS):
            try:
                secret = await self._client.set_secret(name, text)
                await self._settle_race(name, secret.properties.version)
                return
            except HttpResponseError as err:
                code, inner = _codes(err)
                if inner not in _SOFT_DELETED and code not in _SOFT_DELETED:
                    failure = AzureError(f"azure: failed to create '{name}': {_reason(err)}")
            if failure is not None:
                raise failure
            await self._purge(name, PURGE_TRIES_CREATE)
        raise AzureError(f"azure: failed to create '{name}': soft-deleted secret not purged")

    async def _settle_race(self, name: str, version: str | None) -> None:
        """Make concurrent creates have exactly one winner.

        GET-then-SetSecret is not atomic: two creators may both pass the GET, and the
        second SetSecret adds a version instead of failing. Reads use the oldest
        version, so its creator is the winner; a loser disables its own version and
        reports KeyExistsError (KES has this race and reports success to both).
        """
        versions = await self._versions(name)
        if not versions or version is None or _oldest(versions).version == version:
            return
        with contextlib.suppress(HttpResponseError):
            await self._client.update_secret_properties(name, version, enabled=False)
        raise KeyExistsError()

    async def _versions(self, name: str) -> list[Any]:
        """The first page of the secret's versions; more than one page is an error."""
        pages = self._client.list_properties_of_secret_versions(name).by_page()
        versions: list[Any] = []
        async for page in pages:
            versions = [v async for v in page]
            break
        if getattr(pages, "continuation_token", None):
            raise AzureError(f"azure: '{name}' has too many versions")
        return versions

    async def _purge(self, name: str, tries: int) -> bool:
        """Purge the soft-deleted secret ``name``; ``False`` if there was none."""
        failure: Exception | None = None
        for attempt in range(tries):
            if attempt:
                await asyncio.sleep(random.uniform(*self._purge_delay))
            try:
                await self._client.purge_deleted_secret(name)
                return True
            except ResourceNotFoundError:
                return False
            except HttpResponseError as err:
                code, inner = _codes(err)
                if inner != "ObjectIsBeingDeleted" and code != "ObjectIsBeingDeleted":
                    failure = AzureError(
                        f"azure: failed to purge deleted secret '{name}': {_reason(err)}"
                    )
            if failure is not None:
                raise failure
        raise AzureError(f"azure: failed to purge deleted secret '{name}': still being deleted")

    async def get(self, name: str) -> bytes:
        """The value of the oldest version (one page of versions; no versions →
        KeyNotFoundError; disabled, not-yet-valid or expired → error)."""
        return await self._bounded(f"read '{name}'", self._get(name), not_found=True)

    async def _get(self, name: str) -> bytes:
        versions = await self._versions(name)
        if not versions:
            raise KeyNotFoundError()
        oldest = _oldest(versions)
        now = datetime.datetime.now(datetime.UTC)
        if not oldest.enabled:
            raise AzureError(f"azure: '{name}' is disabled")
        if oldest.not_before is not None and oldest.not_before > now:
            raise AzureError(f"azure: '{name}' is not yet valid")
        if oldest.expires_on is not None and oldest.expires_on <= now:
            raise AzureError(f"azure: '{name}' has expired")
        secret = await self._client.get_secret(name, oldest.version)
        if secret.value is None:
            raise AzureError(f"azure: '{name}' has no value")
        return secret.value.encode("utf-8")

    async def delete(self, name: str) -> None:
        """DeleteSecret, then purge the deleted secret.

        Unlike KES, a missing key raises KeyNotFoundError (DeleteSecret answers 404);
        a soft-deleted leftover of an earlier, interrupted delete is still purged.
        """
        missing = await self._bounded(f"delete '{name}'", self._delete(name))
        if missing:
            raise KeyNotFoundError()

    async def _delete(self, name: str) -> bool:
        """DeleteSecret and the purge; whether the secret was missing."""
        missing = False
        try:
            await self._client.delete_secret(name)
        except ResourceNotFoundError:
            missing = True
        await self._purge(name, PURGE_TRIES_DELETE)
        return missing

    async def _names(self) -> list[str]:
        return [p.name async for p in self._client.list_properties_of_secrets() if p.name]

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """Every secret name of the vault, then the shared list helper."""
        return list_page(await self._bounded("list secrets", self._names()), prefix, n)

    async def close(self) -> None:
        """Close the client and the credential (and their HTTP sessions)."""
        try:
            await self._client.close()
        finally:
            await self._credential.close()


async def connect(config: AzureKeyStoreConfig, **options: Any) -> AzureKeyVaultKeyStore:
    """The ``keystore.azure.keyvault`` section → a keystore whose vault answered.

    ``options`` are the keyword arguments of :class:`AzureKeyVaultKeyStore`. An
    unreachable vault raises :class:`~pykes.errors.KeyStoreUnreachable`.
    """
    store = AzureKeyVaultKeyStore(config, **options)
    return await connected(store, AzureKeyVaultKeyStore.status)
