"""AWS Secrets Manager keystore (docs/compat/keystore.md §4.4, config.md §3.5).

Storage mapping (must never change, or existing deployments lose their keys): one
secret per key, secret **Name = key name**, **SecretString = encoded value** (base64
text), ``KmsKeyId`` set when ``kmskey`` is configured. Reads use the current version
(``SecretString``, else ``SecretBinary``); deletes are immediate
(``ForceDeleteWithoutRecovery``); listing returns every secret name of the
account/region (foreign secrets included) through the shared list helper.

boto3 is blocking, so every AWS call runs on a small executor owned by the keystore and
the event loop never waits on a socket. botocore bounds each attempt (connect/read
timeouts) and retries transient errors and throttling in its ``standard`` mode; on top
of that each operation has an overall deadline so an API request never waits longer
than the server's own request timeout. Error messages carry key names and AWS error
texts, never values.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.session
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, ParamValidationError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.httpsession import get_cert_path

from pykes.errors import KeyExistsError, KeyNotFoundError, KeyStoreUnreachable
from pykes.keystore.base import connected, utf8_text
from pykes.keystore.httpclient import probe_once
from pykes.keystore.listing import list_page

if TYPE_CHECKING:
    from pykes.config import AWSKeyStoreConfig

CONNECT_TIMEOUT = 5.0
"""Seconds to establish a connection (per attempt)."""
READ_TIMEOUT = 10.0
"""Seconds to wait for response data (per attempt)."""
MAX_ATTEMPTS = 3
"""Total attempts per AWS call (botocore ``standard`` retry mode)."""
OPERATION_TIMEOUT = 15.0
"""Overall deadline of one keystore operation (one list page), retries included."""
MAX_WORKERS = 10
"""Concurrent AWS calls per keystore (= botocore's connection pool size)."""

LIST_PAGE_SIZE = 100
"""``MaxResults`` of one ``ListSecrets`` call (the AWS maximum)."""

_SCHEME = re.compile(r"^[^:]+://")
T = TypeVar("T")


class AWSError(Exception):
    """A Secrets Manager failure other than "exists", "not found" or "unreachable"."""


def endpoint_url(endpoint: str) -> str:
    """The configured endpoint as a URL: a bare ``host[:port]`` gets ``https://``
    (like the Go SDK's ``AddScheme``); a value with a scheme is used as is."""
    return endpoint if _SCHEME.match(endpoint) else "https://" + endpoint


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class AWSSecretsManagerKeyStore:
    """A keystore backed by AWS Secrets Manager.

    The constructor builds the boto3 client and is blocking (it loads the service
    model); use :func:`connect`, which also performs the start-up reachability check.
    The timeouts and retry budget are keyword arguments so tests can shrink them.
    """

    def __init__(
        self,
        config: AWSKeyStoreConfig,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        max_attempts: int = MAX_ATTEMPTS,
        operation_timeout: float = OPERATION_TIMEOUT,
        max_workers: int = MAX_WORKERS,
    ) -> None:
        self.description = config.description
        self._url = endpoint_url(config.endpoint)
        self._kms_key = config.kms_key
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._operation_timeout = operation_timeout

        core = botocore.session.Session()
        # The shared config file (~/.aws/config) is disabled as in KES; without static
        # credentials the default chain (environment, shared credentials file, container
        # / instance role) is used.
        core.set_config_variable("config_file", os.devnull)
        static: dict[str, Any] = {}
        if config.access_key or config.secret_key or config.session_token:
            static = {
                "aws_access_key_id": config.access_key,
                "aws_secret_access_key": config.secret_key,
                "aws_session_token": config.session_token or None,
            }
        session = boto3.session.Session(botocore_session=core, region_name=config.region)
        self._client: Any = session.client(
            "secretsmanager",
            endpoint_url=self._url,
            config=Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"mode": "standard", "total_max_attempts": max_attempts},
                max_pool_connections=max_workers,
                user_agent_extra="pykes",
            ),
            **static,
        )
        self._tls: ssl.SSLContext | None = None
        if self._url.lower().startswith("https://"):
            # Trust the same roots as botocore (AWS_CA_BUNDLE, else its default bundle).
            cafile = get_cert_path(core.get_config_variable("ca_bundle") or True)
            self._tls = ssl.create_default_context(cafile=cafile)
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="pykes-aws")

    @property
    def endpoint(self) -> str:
        """The service URL requests and status probes go to."""
        return self._url

    async def _run(self, fn: Callable[..., T], **kwargs: Any) -> T:
        """Run one blocking botocore call on the keystore's executor, with a deadline."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._operation_timeout):
                return await loop.run_in_executor(self._executor, partial(fn, **kwargs))
        except TimeoutError:
            raise KeyStoreUnreachable(
                f"aws: no response from {self._url} within {self._operation_timeout:g}s"
            ) from None
        except (BotoConnectionError, HTTPClientError) as err:
            raise KeyStoreUnreachable(f"aws: {err}") from None

    async def status(self) -> float:
        """Time a plain GET of the service endpoint; any HTTP status is "reachable"."""
        timeout = httpx.Timeout(self._read_timeout, connect=self._connect_timeout)
        verify: ssl.SSLContext | bool = self._tls if self._tls is not None else False
        return await probe_once(
            "aws", self._url, verify=verify, timeout=timeout, deadline=self._operation_timeout
        )

    async def create(self, name: str, value: bytes) -> None:
        """``CreateSecret``; an existing secret of that name raises KeyExistsError.

        Failures are raised as fresh exceptions outside the ``except`` blocks, so no
        chained exception (a UnicodeDecodeError holds the whole value, botocore's
        parameter report may quote it) ever travels with the error.
        """
        text = utf8_text("aws", name, value)
        params: dict[str, str] = {"Name": name, "SecretString": text}
        if self._kms_key:
            params["KmsKeyId"] = self._kms_key
        failure: Exception
        try:
            await self._run(self._client.create_secret, **params)
            return
        except ClientError as err:
            if _error_code(err) == "ResourceExistsException":
                failure = KeyExistsError()
            else:
                failure = AWSError(f"aws: failed to create '{name}': {err}")
        except ParamValidationError:
            failure = ValueError(f"aws: failed to create '{name}': invalid request")
        except BotoCoreError as err:
            failure = AWSError(f"aws: failed to create '{name}': {err}")
        raise failure

    async def get(self, name: str) -> bytes:
        """``GetSecretValue`` of the current version: SecretString, else SecretBinary."""
        try:
            out = await self._run(self._client.get_secret_value, SecretId=name)
        except ClientError as err:
            code = _error_code(err)
            if code == "ResourceNotFoundException":
                raise KeyNotFoundError() from None
            if code == "DecryptionFailure":
                raise AWSError(f"aws: cannot access '{name}': {err}") from None
            raise AWSError(f"aws: failed to read '{name}': {err}") from None
        except ParamValidationError:
            raise ValueError(f"aws: failed to read '{name}': invalid request") from None
        except BotoCoreError as err:
            raise AWSError(f"aws: failed to read '{name}': {err}") from None
        if out.get("SecretString") is not None:
            return str(out["SecretString"]).encode("utf-8")
        if out.get("SecretBinary") is not None:
            return bytes(out["SecretBinary"])
        raise AWSError(f"aws: secret '{name}' has no value")

    async def delete(self, name: str) -> None:
        """``DeleteSecret`` without a recovery window.

        ``ResourceNotFoundException`` raises KeyNotFoundError; note that AWS (and moto)
        answer a forced delete of a missing secret with success, so in practice a
        missing name is usually not reported (allowed by docs/compat/keystore.md §1).
        """
        try:
            await self._run(
                self._client.delete_secret, SecretId=name, ForceDeleteWithoutRecovery=True
            )
        except ClientError as err:
            if _error_code(err) == "ResourceNotFoundException":
                raise KeyNotFoundError() from None
            raise AWSError(f"aws: failed to delete '{name}': {err}") from None
        except ParamValidationError:
            raise ValueError(f"aws: failed to delete '{name}': invalid request") from None
        except BotoCoreError as err:
            raise AWSError(f"aws: failed to delete '{name}': {err}") from None

    async def list(self, prefix: str, n: int) -> tuple[list[str], str]:
        """Every secret name of the account/region (``ListSecrets`` pages), then the
        shared list helper. Each page is one call with its own deadline."""
        names: list[str] = []
        params: dict[str, Any] = {"MaxResults": LIST_PAGE_SIZE}
        while True:
            try:
                page = await self._run(self._client.list_secrets, **params)
            except (ClientError, BotoCoreError) as err:
                raise AWSError(f"aws: failed to list secrets: {err}") from None
            names.extend(str(s["Name"]) for s in page.get("SecretList", ()) if "Name" in s)
            token = page.get("NextToken")
            if not token:
                break
            params["NextToken"] = token
        return list_page(names, prefix, n)

    async def close(self) -> None:
        """Stop the executor (queued calls are cancelled) and close the HTTP pool."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()


async def connect(config: AWSKeyStoreConfig, **options: Any) -> AWSSecretsManagerKeyStore:
    """The ``keystore.aws.secretsmanager`` section → a keystore whose endpoint answered.

    ``options`` are the keyword arguments of :class:`AWSSecretsManagerKeyStore`. An
    unreachable endpoint raises :class:`~pykes.errors.KeyStoreUnreachable`, which
    aborts start-up (docs/compat/keystore.md §4.4).
    """
    store = await asyncio.to_thread(partial(AWSSecretsManagerKeyStore, config, **options))
    return await connected(store, AWSSecretsManagerKeyStore.status)
