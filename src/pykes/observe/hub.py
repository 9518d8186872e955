"""Fan-out of encoded log events (audit, error) to live subscribers of the log streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Protocol

SUBSCRIBER_BUFFER = 1024  # events buffered per subscriber before new ones are dropped


class Link(Protocol):
    """The worker's link to the other workers' hubs (``pykes.observe.bus.LogBus``)."""

    def send_event(self, kind: bytes, line: bytes) -> None: ...

    def send_subscribers(self, kind: bytes, count: int) -> None: ...


class Hub:
    """Fan-out of encoded events to live subscribers with bounded buffers.

    A subscriber that falls more than ``SUBSCRIBER_BUFFER`` events behind loses the
    newest events (counted in ``dropped``) instead of slowing down request handling.
    With several worker processes a ``LogBus`` links the hubs of the same kind: events
    are forwarded to the other workers only while one of them has a subscriber.
    """

    def __init__(self, kind: bytes = b"a") -> None:
        self.kind = kind
        self._subscribers: set[asyncio.Queue[bytes]] = set()
        self.dropped = 0
        self.remote_subscribers = False  # another worker has subscribers (set by the bus)
        self.bus: Link | None = None
        self.on_delivered: Callable[[], None] = _nothing

    def __bool__(self) -> bool:
        return bool(self._subscribers) or self.remote_subscribers

    def publish(self, line: bytes) -> None:
        """An event of this process: to local subscribers and, via the bus, to others."""
        self.deliver(line)
        if self.remote_subscribers and self.bus is not None:
            self.bus.send_event(self.kind, line)

    def deliver(self, line: bytes) -> None:
        for queue in self._subscribers:
            try:
                queue.put_nowait(line)
            except asyncio.QueueFull:
                self.dropped += 1

    def _changed(self) -> None:
        if self.bus is not None:
            self.bus.send_subscribers(self.kind, len(self._subscribers))

    async def subscribe(self) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(SUBSCRIBER_BUFFER)
        self._subscribers.add(queue)
        self._changed()
        try:
            while True:
                line = await queue.get()
                self.on_delivered()
                yield line
        finally:
            self._subscribers.discard(queue)
            self._changed()


def _nothing() -> None:
    pass
