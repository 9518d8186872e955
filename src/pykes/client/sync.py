"""The blocking KES client. Every method is a one-line call of an :mod:`.ops` builder;
:meth:`Client._call` drives the shared load-balancing plan over ``httpx.Client``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import httpx

from pykes.client import ops
from pykes.client.base import ClientBase, Exchange, connection_error, read_limit
from pykes.client.closing import Closing
from pykes.client.metrics import Metric
from pykes.client.streams import AuditStream, ErrorStream
from pykes.client.types import (
    API,
    DEK,
    EnclaveInfo,
    IdentityInfo,
    KeyAlgorithm,
    KeyInfo,
    Policy,
    PolicyInfo,
    State,
    Versioned,
)

T = TypeVar("T")


class SyncBase(ClientBase, Closing):
    """The blocking transport of the SDK's clients: a connection pool per thread, one
    request's way through the shared load-balancing plan, its size-limited body, and
    :meth:`_call`, which turns an :mod:`.ops` request into its result.

    Each thread gets its own connection pool: httpcore's HTTP/2 connections are not safe
    to share between threads (a dying server then surfaced as ``KeyError``/``RuntimeError``
    instead of a connection error, defeating failover — encode/httpx#3072).
    """

    def _make_http(self) -> httpx.Client:
        self._local = threading.local()
        self._pools: list[httpx.Client] = []
        self._pools_lock = threading.Lock()
        return self._thread_http()

    def _thread_http(self) -> httpx.Client:
        http: httpx.Client | None = getattr(self._local, "http", None)
        if http is None:
            http = httpx.Client(**self._http_options())  # type: ignore[arg-type]
            self._local.http = http
            with self._pools_lock:
                self._pools.append(http)
        return http

    # ------------------------------------------------------------------ transport
    def _send(self, op: ops.Op[object], stream: bool) -> httpx.Response:
        exchange = Exchange(self._lb.plan())
        while (attempt := exchange.attempt) is not None:
            if attempt.delay:
                time.sleep(attempt.delay)
            http = self._thread_http()
            request = http.build_request(**self._request_args(op, attempt.url, stream))
            try:
                response = http.send(request, stream=True)
            except httpx.TransportError as err:
                exchange.failed(err)
                continue
            if not exchange.answered(response):
                response.close()
        return exchange.response()

    def _read(self, op: ops.Op[object], response: httpx.Response) -> ops.Reply:
        body = bytearray()
        limit = read_limit(op)
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) >= limit:
                    break
        except httpx.TransportError as err:
            raise connection_error(str(response.url), err) from err
        finally:
            response.close()
        return ops.Reply(
            response.status_code, response.headers.get("content-type", ""), bytes(body)
        )

    def _call(self, op: ops.Op[T]) -> T:
        response = self._send(op, stream=False)  # type: ignore[arg-type]
        return ops.finish(op, self._read(op, response))  # type: ignore[arg-type]

    def close(self) -> None:
        if not self._owns_transport:
            return
        with self._pools_lock:
            pools, self._pools = self._pools, []
        for http in pools:
            http.close()


class Client(SyncBase):
    """A KES client (blocking). Thread-safe; use as a context manager or :meth:`close`.

    ``Client(endpoints, api_key=… | cert_file=…, key_file=…, [password=…],
    [ca_file=… | insecure=True], [enclave=…])`` — see ``docs/client.md``.
    """

    def _open(self, op: ops.Op[None]) -> httpx.Response:
        response = self._send(op, stream=True)  # type: ignore[arg-type]
        if response.status_code != 200:
            ops.finish(op, self._read(op, response))  # type: ignore[arg-type]
        return response

    def _paginate(self, make: Callable[[str], ops.Op[ops.Page]], prefix: str) -> Iterator[str]:
        pager = ops.Pager(prefix)
        while pager.next_prefix is not None:
            yield from pager.feed(self._call(make(pager.next_prefix)))

    # ------------------------------------------------------------------ system
    def version(self) -> str:
        """The server version (``/version``)."""
        return self._call(ops.version())

    def ready(self) -> bool:
        """``True`` if the server is ready (``/v1/ready`` 200); error statuses raise
        (e.g. ``APIError(504, "key store is not reachable")``)."""
        return self._call(ops.ready())

    def status(self) -> State:
        """The server status (``/v1/status``)."""
        return self._call(ops.status())

    def apis(self) -> list[API]:
        """The server's routes (``/v1/api``)."""
        return self._call(ops.apis())

    def metrics(self) -> Metric:
        """A metrics snapshot (``/v1/metrics``)."""
        return self._call(ops.metrics())

    # ------------------------------------------------------------------ keys
    def create_key(self, name: str) -> None:
        """Create a key; raises :class:`KeyExists` if it exists."""
        self._call(ops.create_key(name))

    def import_key(self, name: str, key: bytes, cipher: KeyAlgorithm = KeyAlgorithm.AES256) -> None:
        """Import 32 raw key bytes as a key of type ``cipher``."""
        self._call(ops.import_key(name, key, cipher))

    def describe_key(self, name: str) -> KeyInfo:
        """Name, algorithm, creation time and creator of a key."""
        return self._call(ops.describe_key(name))

    def delete_key(self, name: str) -> None:
        """Delete a key; raises :class:`KeyNotFound` if the keystore reports it missing."""
        self._call(ops.delete_key(name))

    def generate_key(self, name: str, context: bytes | None = None) -> DEK:
        """A new data encryption key, encrypted with the latest version of key ``name``
        (``context`` = AAD); ``DEK.version`` is that version."""
        return self._call(ops.generate_key(name, context))

    def encrypt(self, name: str, plaintext: bytes, context: bytes | None = None) -> Versioned:
        """Encrypt ``plaintext`` with the latest version of key ``name``: the ciphertext,
        whose ``version`` is that version."""
        return self._call(ops.encrypt(name, plaintext, context))

    def decrypt(
        self,
        name: str,
        ciphertext: bytes,
        context: bytes | None = None,
        version: str | int = "",
    ) -> bytes:
        """Decrypt with version ``version`` of the key, or (without one) the version
        that made the ciphertext; raises :class:`DecryptError` for a wrong key, version
        or context or a modified ciphertext."""
        return self._call(ops.decrypt(name, ciphertext, context, version))

    def hmac(self, name: str, message: bytes) -> Versioned:
        """HMAC-SHA256 of ``message`` with the HMAC key of the key's latest version."""
        return self._call(ops.hmac(name, message))

    def rotate_key(self, name: str) -> str:
        """Add a version to key ``name`` (a pykes extension); returns its number. New
        data keys and ciphertexts use it; older ciphertexts still decrypt."""
        return self._call(ops.rotate_key(name))

    def delete_key_version(self, name: str, version: str | int) -> None:
        """Delete a version of key ``name`` (never the latest): what it encrypted no
        longer decrypts (a pykes extension)."""
        self._call(ops.delete_key_version(name, version))

    def set_key_min_version(self, name: str, version: str | int) -> None:
        """Versions of key ``name`` below ``version`` no longer decrypt; they stay stored,
        so a lower minimum brings them back (a pykes extension)."""
        self._call(ops.set_key_min_version(name, version))

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Key names starting with ``prefix`` (``*`` / empty = all), across pages."""
        return self._paginate(ops.list_keys, prefix)

    def list_keys_page(self, prefix: str = "") -> ops.Page:
        """One listing page: ``(names, continue_at)``."""
        return self._call(ops.list_keys(prefix))

    # ------------------------------------------------------------------ enclaves
    def create_enclave(self, name: str) -> None:
        """Create an enclave (the server's admin only); raises :class:`EnclaveExists`."""
        self._call(ops.create_enclave(name))

    def describe_enclave(self, name: str) -> EnclaveInfo:
        """Name, creation time and creator of an enclave; :class:`EnclaveNotFound`."""
        return self._call(ops.describe_enclave(name))

    def delete_enclave(self, name: str, force: bool = False) -> None:
        """Delete an enclave; one that holds keys, policies or identities only with
        ``force`` (which deletes them too). ``default`` cannot be deleted;
        :class:`EnclaveNotFound`."""
        self._call(ops.delete_enclave(name, force))

    def list_enclaves(self, prefix: str = "") -> Iterator[str]:
        """Enclave names starting with ``prefix`` (``*`` / empty = all), across pages."""
        return self._paginate(ops.list_enclaves, prefix)

    # ------------------------------------------------------------------ policies
    def describe_policy(self, name: str) -> PolicyInfo:
        return self._call(ops.describe_policy(name))

    def get_policy(self, name: str) -> Policy:
        return self._call(ops.get_policy(name))

    def list_policies(self, prefix: str = "") -> Iterator[str]:
        return self._paginate(ops.list_policies, prefix)

    # ------------------------------------------------------------------ identities
    def describe_identity(self, identity: str) -> IdentityInfo:
        return self._call(ops.describe_identity(identity))

    def describe_self(self) -> tuple[IdentityInfo, Policy]:
        """The caller's identity info and its policy's rules."""
        return self._call(ops.describe_self())

    def list_identities(self, prefix: str = "") -> Iterator[str]:
        return self._paginate(ops.list_identities, prefix)

    # ------------------------------------------------------------------ logs
    def audit_log(self) -> AuditStream:
        """Subscribe to the audit log (no past events)."""
        return AuditStream(self._open(ops.audit_log()))

    def error_log(self) -> ErrorStream:
        """Subscribe to the error log (no past events)."""
        return ErrorStream(self._open(ops.error_log()))
