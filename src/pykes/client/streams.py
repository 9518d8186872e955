"""Log streams: ``/v1/log/audit`` and ``/v1/log/error`` as iterators of typed events.

The server sends one JSON object per line (``application/x-ndjson``) until the client
closes the stream. Iterating ends when the server ends the stream; a broken
connection raises :class:`~pykes.client.errors.ConnError`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

import httpx

from pykes.client.closing import AsyncClosing, Closing
from pykes.client.errors import ConnError, ResponseError
from pykes.client.types import AuditEvent, ErrorEvent

__all__ = ["AsyncAuditStream", "AsyncErrorStream", "AuditStream", "ErrorStream", "parse_event"]

E = TypeVar("E", AuditEvent, ErrorEvent)


def parse_event(line: str, parse: Callable[[Any], E]) -> E:
    try:
        value = json.loads(line)
    except ValueError as err:
        raise ResponseError(f"kes: invalid log event: {err}") from None
    return parse(value)


def _broken(response: httpx.Response, err: httpx.TransportError) -> ConnError:
    host = response.url.netloc.decode("ascii", "replace")
    return ConnError(host, f"{host}: {str(err) or 'stream broken'}")


class _Stream(Closing, Generic[E]):
    _parse: Callable[[Any], E]

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._lines: Iterator[str] = response.iter_lines()

    def __iter__(self) -> Iterator[E]:
        return self

    def __next__(self) -> E:
        try:
            for line in self._lines:
                if line.strip():
                    return parse_event(line, type(self)._parse)
        except httpx.TransportError as err:
            raise _broken(self._response, err) from err
        raise StopIteration

    def close(self) -> None:
        self._response.close()


class _AsyncStream(AsyncClosing, Generic[E]):
    _parse: Callable[[Any], E]

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._lines: AsyncIterator[str] = response.aiter_lines()

    def __aiter__(self) -> AsyncIterator[E]:
        return self

    async def __anext__(self) -> E:
        try:
            async for line in self._lines:
                if line.strip():
                    return parse_event(line, type(self)._parse)
        except httpx.TransportError as err:
            raise _broken(self._response, err) from err
        raise StopAsyncIteration

    async def aclose(self) -> None:
        await self._response.aclose()


class AuditStream(_Stream[AuditEvent]):
    """Iterator of :class:`AuditEvent`; use as a context manager or call :meth:`close`."""

    _parse = staticmethod(AuditEvent.from_json)


class ErrorStream(_Stream[ErrorEvent]):
    """Iterator of :class:`ErrorEvent`; use as a context manager or call :meth:`close`."""

    _parse = staticmethod(ErrorEvent.from_json)


class AsyncAuditStream(_AsyncStream[AuditEvent]):
    """Async iterator of :class:`AuditEvent`; ``async with`` or :meth:`aclose`."""

    _parse = staticmethod(AuditEvent.from_json)


class AsyncErrorStream(_AsyncStream[ErrorEvent]):
    """Async iterator of :class:`ErrorEvent`; ``async with`` or :meth:`aclose`."""

    _parse = staticmethod(ErrorEvent.from_json)
