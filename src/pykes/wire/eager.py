"""Run a coroutine eagerly: most requests (a cached key, no I/O) finish without ever
waiting, so they need no ``asyncio.Task`` (Python 3.12's eager tasks, by hand).

``start(coro)`` runs the coroutine up to its first suspension. If it finished, its
result is returned; otherwise ``resume(coro, awaited)`` is an awaitable a Task can drive
to completion: it hands the awaited object to the Task exactly as the coroutine's own
``await`` would have, and forwards results and exceptions back into the coroutine.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_PENDING = object()


class Suspended(Generic[T]):
    """A coroutine stopped at its first ``await``; ``await`` this to finish it."""

    __slots__ = ("coro", "awaited")

    def __init__(self, coro: Coroutine[Any, Any, T], awaited: Any) -> None:
        self.coro = coro
        self.awaited = awaited

    def __await__(self) -> Generator[Any, Any, T]:
        coro, value = self.coro, self.awaited
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # cancellation and errors go into the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]


def start(coro: Coroutine[Any, Any, T]) -> T | Suspended[T]:
    """Run ``coro`` until it finishes (→ its result) or first suspends (→ Suspended)."""
    try:
        awaited = coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    return Suspended(coro, awaited)
