"""Context-manager plumbing shared by the clients and the log streams: ``with`` /
``async with`` return the object itself and close it on exit."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """``with obj:`` → ``obj``; leaving the block calls :meth:`close`."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClosing:
    """``async with obj:`` → ``obj``; leaving the block awaits :meth:`aclose`."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
