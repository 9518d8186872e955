"""Google Cloud Secret Manager keystore (docs/compat/keystore.md §4.5, config.md §3.6).

Storage mapping (must never change, or existing deployments lose their keys): one
secret per key, secret ID = key name, automatic replication, the encoded value is the
payload of version **1** — reads always access ``versions/1``, never ``latest``.
Listing returns every secret of the project (foreign secrets included) through the
shared list helper.

The client is ``SecretManagerServiceClient`` over its REST (HTTP/JSON) transport. It is
blocking, so every call runs on a small executor owned by the keystore; each call has a
per-attempt timeout and a bounded retry of throttling / 5xx answers, and each operation
an overall deadline. Credentials: the four ``credentials`` fields form a service-account
key whose signed JWT is exchanged for an OAuth2 access token at the token URI (the
JWT-bearer grant); with none set, application default credentials are used. Error
messages carry key names and Google error texts, never values or credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import google.auth
import httpx
import requests
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.api_core.retry import Retry, if_exception_type
from google.auth import exceptions as auth_exc
from google.cloud.secretmanager import SecretManagerServiceClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports.rest import (
    SecretManagerServiceRestTransport,
)
from google.oauth2 import service_account

from pykes.errors import KeyExistsError, KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore.base import connected
from pykes.keystore.httpclient import probe_once
from pykes.keystore.listing import list_page

if TYPE_CHECKING:
    from pykes.config import GCPKeyStoreConfig

DEFAULT_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
"""OAuth scopes used when the config lists none (Secret Manager's default)."""
TOKEN_URI = "https://oauth2.googleapis.com/token"
AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
CERT_URL = "https://www.googleapis.com/oauth2/v1/certs"

CALL_TIMEOUT = 10.0
"""Seconds one HTTP attempt may take (connect + response)."""
OPERATION_TIMEOUT = 15.0
"""Overall deadline of one keystore operation (one list page), retries included."""
RETRY_INITIAL = 0.2
RETRY_MAXIMUM = 0.8
"""Back-off bounds (seconds) between retries of throttled / 5xx calls."""
MAX_WORKERS = 10
"""Concurrent Secret Manager calls per keystore."""
LIST_PAGE_SIZE = 250
"""``pageSize`` of one ``ListSecrets`` call."""

_SCHEME = re.compile(r"^[^:]+://")
_RETRYABLE = (
    gexc.TooManyRequests,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.ServiceUnavailable,
    gexc.GatewayTimeout,
)
T = TypeVar("T")


class GCPError(Exception):
    """A Secret Manager failure other than "exists", "not found" or "unreachable"."""


def endpoint_host(endpoint: str) -> str:
    """``host[:port]`` of the configured endpoint (a scheme, if given, is dropped)."""
    return _SCHEME.sub("", endpoint).rstrip("/") or "secretmanager.googleapis.com:443"


def service_account_info(config: GCPKeyStoreConfig, token_uri: str = TOKEN_URI) -> dict[str, str]:
    """The four credential fields as a service-account key (docs/compat/config.md §3.6).

    Raises ValueError naming the first missing field. Literal ``\\n`` sequences in the
    private key become newlines.
    """
    if not config.client_email:
        raise ValueError("gcp: no client email provided")
    if not config.client_id:
        raise ValueError("gcp: no client ID provided")
    if not config.private_key:
        raise ValueError("gcp: no client private key provided")
    if not config.private_key_id:
        raise ValueError("gcp: no client private key ID provided")
    return {
        "type": "service_account",
        "project_id": config.project_id,
        "private_key_id": config.private_key_id,
        "private_key": config.private_key.replace("\\n", "\n"),
        "client_email": config.client_email,
        "client_id": config.client_id,
        "auth_uri": AUTH_URI,
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": CERT_URL,
    }


def _has_credentials(config: GCPKeyStoreConfig) -> bool:
    return bool(
        config.client_email or config.client_id or config.private_key_id or config.private_key
    )


class GCPSecretManagerKeyStore:
    """A keystore backed by Google Cloud Secret Manager.

    The constructor is blocking (it loads credentials); use :func:`connect`, which also
    performs the start-up reachability check. Keyword arguments exist for tests:
    ``token_uri`` replaces Google's OAuth2 token endpoint, ``ca_file`` is a PEM bundle
    trusted for the API, token and status connections instead of the default roots,
    and the timeouts can be shrunk.
    """

    def __init__(
        self,
        config: GCPKeyStoreConfig,
        *,
        token_uri: str = TOKEN_URI,
        ca_file: str | None = None,
        call_timeout: float = CALL_TIMEOUT,
        operation_timeout: float = OPERATION_TIMEOUT,
        max_workers: int = MAX_WORKERS,
    ) -> None:
        if not config.project_id:
            raise ValueError("gcp: no project ID specified")
        self.description = config.description
        self._project = config.project_id
        self._host = endpoint_host(config.endpoint)
        self._url = "https://" + self._host
        self._call_timeout = call_timeout
        self._operation_timeout = operation_timeout
        self._ca_file = ca_file
        scopes = list(config.scopes) or list(DEFAULT_SCOPES)
        scopes = [s for s in scopes if s] or list(DEFAULT_SCOPES)

        credentials: Any
        if _has_credentials(config):
            info = service_account_info(config, token_uri)
            try:
                credentials = service_account.Credentials.from_service_account_info(
                    info, scopes=scopes
                )
            except (ValueError, auth_exc.GoogleAuthError):
                # The parser's message may quote the key; report only what failed.
                raise ValueError("gcp: invalid service account private key") from None
        else:
            try:
                credentials, _ = google.auth.default(scopes=scopes)
            except auth_exc.GoogleAuthError as err:
                raise GCPError(f"gcp: no application default credentials: {err}") from None

        # The JWT-bearer token exchange (not a self-signed JWT per request) works with
        # any endpoint, as in KES.
        transport = SecretManagerServiceRestTransport(
            host=self._host, credentials=credentials, always_use_jwt_access=False
        )
        if ca_file is not None:
            _trust(transport, ca_file)
        self._client = SecretManagerServiceClient(
            transport=transport, client_options=ClientOptions(api_endpoint=self._host)
        )
        self._retry = Retry(
            predicate=if_exception_type(*_RETRYABLE),
            initial=RETRY_INITIAL,
            maximum=RETRY_MAXIMUM,
            multiplier=2.0,
            timeout=operation_timeout,
        )
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="pykes-gcp")

    @property
    def endpoint(self) -> str:
        """The service URL requests and status probes go to."""
        return self._url

    def _secret(self, name: str) -> str:
        return f"projects/{self._project}/secrets/{name}"

    async def _run(self, fn: Callable[..., T], **kwargs: Any) -> T:
        """Run one blocking client call on the keystore's executor, with a deadline.

        Transport and token failures are re-raised as fresh exceptions outside the
        ``except`` blocks, so no library exception (which may quote a request) travels
        along as ``__context__``.
        """
        loop = asyncio.get_running_loop()
        call = partial(fn, retry=self._retry, timeout=self._call_timeout, **kwargs)
        failure: Exception
        try:
            async with asyncio.timeout(self._operation_timeout):
                return await loop.run_in_executor(self._executor, call)
        except TimeoutError:
            failure = KeyStoreUnreachable(
                f"gcp: no response from {self._url} within {self._operation_timeout:g}s"
            )
        except (requests.ConnectionError, requests.Timeout, auth_exc.TransportError) as err:
            failure = KeyStoreUnreachable(f"gcp: {self._url}: {type(err).__name__}")
        except gexc.RetryError as err:
            cause = err.cause if err.cause is not None else err
            failure = GCPError(f"gcp: retries exhausted: {cause}")
        except auth_exc.RefreshError as err:
            failure = GCPError(f"gcp: failed to obtain an access token: {err}")
        raise failure

    async def status(self) -> float:
        """Time a plain GET of the service endpoint; any HTTP status is "reachable"."""
        timeout = httpx.Timeout(self._call_timeout)
        verify: ssl.SSLContext | bool = True
        if self._ca_file is not None:
            verify = ssl.create_default_context(cafile=self._ca_file)
        return await probe_once(
            "gcp", self._url, verify=verify, timeout=timeout, deadline=self._operation_timeout
        )

    async def create(self, name: str, value: bytes) -> None:
        """``CreateSecret`` (automatic replication) then ``AddSecretVersion``.

        ``ALREADY_EXISTS`` raises KeyExistsError. If adding the version fails, the
        just-created empty secret is removed (best effort) so the name stays free.
        """
        failure: Exception | None = None
        try:
            await self._run(
                self._client.create_secret,
                request={
                    "parent": f"projects/{self._project}",
                    "secret_id": name,
                    "secret": {"replication": {"automatic": {}}},
                },
            )
        except gexc.Conflict:
            failure = KeyExistsError()
        except gexc.GoogleAPICallError as err:
            failure = GCPError(f"gcp: failed to create '{name}': {err.message}")
        if failure is not None:
            raise failure
        try:
            await self._run(
                self._client.add_secret_version,
                request={"parent": self._secret(name), "payload": {"data": bytes(value)}},
            )
            return
        except gexc.GoogleAPICallError as err:
            failure = GCPError(f"gcp: failed to add a version to '{name}': {err.message}")
        except BaseException:
            await self._discard(name)
            raise
        await self._discard(name)
        raise failure

    async def _discard(self, name: str) -> None:
        # Best effort: the original failure is what gets reported.
        with contextlib.suppress(Exception):
            await self._run(self._client.delete_secret, request={"name": self._secret(name)})

    async def get(self, name: str) -> bytes:
        """``AccessSecretVersion`` of version 1; ``NOT_FOUND`` raises KeyNotFoundError."""
        try:
            out = await self._run(
                self._client.access_secret_version,
                request={"name": self._secret(name) + "/versions/1"},
            )
        except gexc.NotFound:
            raise KeyNotFoundError() from None
        except gexc.GoogleAPICallError as err:
            raise GCPError(f"gcp: failed to read '{name}': {err.message}") from None
        return bytes(out.payload.data)

    async def delete(self, name: str) -> None:
        """``DeleteSecret``; ``NOT_FOUND`` raises KeyNotFoundError."""
        try:
            await self._run(self._client.delete_secret, request={"name": self._secret(name)})
        except gexc.NotFound:
            raise KeyNotFoundError() from None
        except gexc.GoogleAPICallError as err:
            raise GCPError(f"gcp: failed to delete '{name}': {err.message}") from None

    def _list_page(self, token: str, **call: Any) -> tuple[list[str], str]:
        pager = self._client.list_secrets(
            request={
                "parent": f"projects/{self._project}",
                "page_size": LIST_PAGE_SIZE,
                "page_token": token,
            },
            **call,
        )
        page = next(iter(pager.pages))
        return [s.name.rsplit("/", 1)[-1] for s in page.secrets], page.next_page_token

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """Every secret name of the project (``ListSecrets`` pages, last path element),
        then the shared list helper. Each page is one call with its own deadline."""
        names: list[str] = []
        token = ""
        while True:
            try:
                page, token = await self._run(self._list_page, token=token)
            except gexc.GoogleAPICallError as err:
                raise GCPError(f"gcp: failed to list secrets: {err.message}") from None
            names.extend(page)
            if not token:
                break
        return list_page(names, prefix, n)

    async def close(self) -> None:
        """Stop the executor (queued calls are cancelled) and close the HTTP session."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.transport.close()


def _trust(transport: SecretManagerServiceRestTransport, ca_file: str) -> None:
    """Trust ``ca_file`` on the transport's API session and its token session.

    The REST transport builds its ``requests`` sessions itself and offers no CA option,
    so ``verify`` (the documented ``requests`` setting) is set on them after the fact.
    ``trust_env`` is turned off as well: ``requests`` lets ``REQUESTS_CA_BUNDLE`` /
    ``CURL_CA_BUNDLE`` override a session's ``verify``. Fails loudly if a library update
    moves the sessions.
    """
    session = getattr(transport, "_session", None)
    token_session = getattr(session, "_auth_request_session", None)
    if not isinstance(session, requests.Session) or not isinstance(token_session, requests.Session):
        raise RuntimeError("gcp: cannot configure a CA file on this google-cloud version")
    for s in (session, token_session):
        s.verify = ca_file
        s.trust_env = False


async def connect(config: GCPKeyStoreConfig, **options: Any) -> GCPSecretManagerKeyStore:
    """The ``keystore.gcp.secretmanager`` section → a keystore whose endpoint answered.

    ``options`` are the keyword arguments of :class:`GCPSecretManagerKeyStore`. An
    unreachable endpoint raises :class:`~pykes.errors.KeyStoreUnreachable`.
    """
    store = await asyncio.to_thread(partial(GCPSecretManagerKeyStore, config, **options))
    return await connected(store, GCPSecretManagerKeyStore.status)
