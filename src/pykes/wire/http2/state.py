"""The connection state that ``H2Handler``'s parts (answers.py, control.py) share: declared
once here, set by ``H2Handler.__init__`` (handler.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pykes.wire.http2.limits import FloodGuard
from pykes.wire.http2.streams import Stream


class ConnectionState:
    """Annotations only: what every part of the handler reads and writes."""

    streams: dict[int, Stream]
    _blocked: dict[int, Stream]
    _out: list[bytes]
    _loop: asyncio.AbstractEventLoop
    _guard: FloodGuard
    _send_window: int
    _max_frame: int
    _drop: Callable[[int], None]
