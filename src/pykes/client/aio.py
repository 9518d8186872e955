"""The asyncio KES client: the same :mod:`.ops` and load-balancing plan as
:class:`~pykes.client.Client`, driven over ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import httpx

from pykes.client import ops
from pykes.client.base import ClientBase, Exchange, connection_error, read_limit
from pykes.client.closing import AsyncClosing
from pykes.client.metrics import Metric
from pykes.client.streams import AsyncAuditStream, AsyncErrorStream
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


class AsyncBase(ClientBase, AsyncClosing):
    """The asyncio transport of the SDK's clients: one request's way through the shared
    load-balancing plan over ``httpx.AsyncClient``, its size-limited body, and
    :meth:`_call`, which turns an :mod:`.ops` request into its result."""

    _http: httpx.AsyncClient

    def _make_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(**self._http_options())  # type: ignore[arg-type]

    # ------------------------------------------------------------------ transport
    async def _send(self, op: ops.Op[object], stream: bool) -> httpx.Response:
        exchange = Exchange(self._lb.plan())
        while (attempt := exchange.attempt) is not None:
            if attempt.delay:
                await asyncio.sleep(attempt.delay)
            request = self._http.build_request(**self._request_args(op, attempt.url, stream))
            try:
                response = await self._http.send(request, stream=True)
            except httpx.TransportError as err:
                exchange.failed(err)
                continue
            if not exchange.answered(response):
                await response.aclose()
        return exchange.response()

    async def _read(self, op: ops.Op[object], response: httpx.Response) -> ops.Reply:
        body = bytearray()
        limit = read_limit(op)
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= limit:
                    break
        except httpx.TransportError as err:
            raise connection_error(str(response.url), err) from err
        finally:
            await response.aclose()
        return ops.Reply(
            response.status_code, response.headers.get("content-type", ""), bytes(body)
        )

    async def _call(self, op: ops.Op[T]) -> T:
        response = await self._send(op, stream=False)  # type: ignore[arg-type]
        return ops.finish(op, await self._read(op, response))  # type: ignore[arg-type]

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._http.aclose()


class AsyncClient(AsyncBase):
    """A KES client for asyncio. Same constructor and methods as
    :class:`~pykes.client.Client`, as coroutines; list methods return async iterators,
    log methods async streams. Use ``async with`` or :meth:`aclose`."""

    async def _open(self, op: ops.Op[None]) -> httpx.Response:
        response = await self._send(op, stream=True)  # type: ignore[arg-type]
        if response.status_code != 200:
            ops.finish(op, await self._read(op, response))  # type: ignore[arg-type]
        return response

    async def _paginate(
        self, make: Callable[[str], ops.Op[ops.Page]], prefix: str
    ) -> AsyncIterator[str]:
        pager = ops.Pager(prefix)
        while pager.next_prefix is not None:
            for name in pager.feed(await self._call(make(pager.next_prefix))):
                yield name

    # ------------------------------------------------------------------ system
    async def version(self) -> str:
        return await self._call(ops.version())

    async def ready(self) -> bool:
        return await self._call(ops.ready())

    async def status(self) -> State:
        return await self._call(ops.status())

    async def apis(self) -> list[API]:
        return await self._call(ops.apis())

    async def metrics(self) -> Metric:
        return await self._call(ops.metrics())

    # ------------------------------------------------------------------ keys
    async def create_key(self, name: str) -> None:
        await self._call(ops.create_key(name))

    async def import_key(
        self, name: str, key: bytes, cipher: KeyAlgorithm = KeyAlgorithm.AES256
    ) -> None:
        await self._call(ops.import_key(name, key, cipher))

    async def describe_key(self, name: str) -> KeyInfo:
        return await self._call(ops.describe_key(name))

    async def delete_key(self, name: str) -> None:
        await self._call(ops.delete_key(name))

    async def generate_key(self, name: str, context: bytes | None = None) -> DEK:
        return await self._call(ops.generate_key(name, context))

    async def encrypt(self, name: str, plaintext: bytes, context: bytes | None = None) -> Versioned:
        return await self._call(ops.encrypt(name, plaintext, context))

    async def decrypt(
        self,
        name: str,
        ciphertext: bytes,
        context: bytes | None = None,
        version: str | int = "",
    ) -> bytes:
        return await self._call(ops.decrypt(name, ciphertext, context, version))

    async def hmac(self, name: str, message: bytes) -> Versioned:
        return await self._call(ops.hmac(name, message))

    async def rotate_key(self, name: str) -> str:
        return await self._call(ops.rotate_key(name))

    async def delete_key_version(self, name: str, version: str | int) -> None:
        await self._call(ops.delete_key_version(name, version))

    async def set_key_min_version(self, name: str, version: str | int) -> None:
        await self._call(ops.set_key_min_version(name, version))

    def list_keys(self, prefix: str = "") -> AsyncIterator[str]:
        return self._paginate(ops.list_keys, prefix)

    async def list_keys_page(self, prefix: str = "") -> ops.Page:
        return await self._call(ops.list_keys(prefix))

    # ------------------------------------------------------------------ enclaves
    async def create_enclave(self, name: str) -> None:
        await self._call(ops.create_enclave(name))

    async def describe_enclave(self, name: str) -> EnclaveInfo:
        return await self._call(ops.describe_enclave(name))

    async def delete_enclave(self, name: str, force: bool = False) -> None:
        await self._call(ops.delete_enclave(name, force))

    def list_enclaves(self, prefix: str = "") -> AsyncIterator[str]:
        return self._paginate(ops.list_enclaves, prefix)

    # ------------------------------------------------------------------ policies
    async def describe_policy(self, name: str) -> PolicyInfo:
        return await self._call(ops.describe_policy(name))

    async def get_policy(self, name: str) -> Policy:
        return await self._call(ops.get_policy(name))

    def list_policies(self, prefix: str = "") -> AsyncIterator[str]:
        return self._paginate(ops.list_policies, prefix)

    # ------------------------------------------------------------------ identities
    async def describe_identity(self, identity: str) -> IdentityInfo:
        return await self._call(ops.describe_identity(identity))

    async def describe_self(self) -> tuple[IdentityInfo, Policy]:
        return await self._call(ops.describe_self())

    def list_identities(self, prefix: str = "") -> AsyncIterator[str]:
        return self._paginate(ops.list_identities, prefix)

    # ------------------------------------------------------------------ logs
    async def audit_log(self) -> AsyncAuditStream:
        return AsyncAuditStream(await self._open(ops.audit_log()))

    async def error_log(self) -> AsyncErrorStream:
        return AsyncErrorStream(await self._open(ops.error_log()))
