"""Log events across worker processes (``--workers N``).

Every worker has one ``SOCK_SEQPACKET`` socket pair with the master. A worker tells the
master how many local subscribers each stream has (``S``), and the master tells every
worker whether *another* worker has subscribers (``R``); only then does a worker send
its events up (``E``), and the master forwards them to the workers that have
subscribers. So a subscriber on any worker sees the events of all workers, and with
nobody listening no event crosses a process boundary. Sends never block: a full socket
drops the event (counted), like a slow subscriber's full buffer.

Messages: ``S<kind><count>``, ``R<kind><0|1>``, ``E<kind><line>``; kind ``a`` (audit)
or ``e`` (error).
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pykes.observe.hub import Hub

KINDS = (b"a", b"e")
MAX_MESSAGE = 1 << 20


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """(master end, worker end)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


class LogBus:
    """The worker side."""

    def __init__(
        self,
        sock: socket.socket,
        hubs: Mapping[bytes, Hub],
        on_master_lost: Callable[[], None] | None = None,
    ) -> None:
        self.sock = sock
        self.hubs = hubs
        self.dropped = 0
        self.on_master_lost = on_master_lost
        self._loop: asyncio.AbstractEventLoop | None = None
        sock.setblocking(False)
        for hub in hubs.values():
            hub.bus = self

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)

    def detach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not None:
            loop.remove_reader(self.sock.fileno())
            self._loop = None

    def _master_lost(self) -> None:
        """EOF from the master: it died. Stop listening (an EOF stays readable, so
        leaving the reader would spin) and let the worker shut down."""
        if self._loop is not None:
            self.detach(self._loop)
        if self.on_master_lost is not None:
            self.on_master_lost()

    def _readable(self) -> None:
        while True:
            try:
                msg = self.sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._master_lost()
                return
            if not msg:
                self._master_lost()
                return
            hub = self.hubs.get(msg[1:2])
            if hub is None:
                continue
            if msg[:1] == b"E":
                hub.deliver(msg[2:])
            elif msg[:1] == b"R":
                hub.remote_subscribers = msg[2:3] == b"1"

    def _send(self, msg: bytes) -> None:
        try:
            self.sock.send(msg)
        except (BlockingIOError, InterruptedError):
            self.dropped += 1
        except OSError:
            self.dropped += 1

    def send_subscribers(self, kind: bytes, count: int) -> None:
        self._send(b"S" + kind + str(count).encode())

    def send_event(self, kind: bytes, line: bytes) -> None:
        self._send(b"E" + kind + line)


class LogBroker:
    """The master side: subscriber bookkeeping and forwarding between workers."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.sockets: dict[int, socket.socket] = {}
        self.counts: dict[int, dict[bytes, int]] = {}
        self.remote: dict[int, dict[bytes, bool]] = {}

    def add(self, worker: int, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sockets[worker] = sock
        self.counts[worker] = dict.fromkeys(KINDS, 0)
        self.remote[worker] = dict.fromkeys(KINDS, False)
        self.selector.register(sock, selectors.EVENT_READ, worker)
        for kind in KINDS:  # a (re)started worker learns the current state
            self._update(kind, force=worker)

    def remove(self, worker: int) -> None:
        sock = self.sockets.pop(worker, None)
        if sock is not None:
            self.selector.unregister(sock)
            sock.close()
        self.counts.pop(worker, None)
        self.remote.pop(worker, None)
        for kind in KINDS:
            self._update(kind)

    def poll(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            worker: int = key.data
            sock = self.sockets.get(worker)
            while sock is not None:
                try:
                    msg = sock.recv(MAX_MESSAGE)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    msg = b""
                if not msg:  # the worker is gone
                    self.remove(worker)
                    break
                self._message(worker, msg)

    def _message(self, worker: int, msg: bytes) -> None:
        kind = msg[1:2]
        if kind not in KINDS:
            return
        if msg[:1] == b"S":
            with contextlib.suppress(ValueError):
                self.counts[worker][kind] = int(msg[2:])
            self._update(kind)
        elif msg[:1] == b"E":
            for other, counts in self.counts.items():
                if other != worker and counts[kind] > 0:
                    with contextlib.suppress(OSError):
                        self.sockets[other].send(msg)

    def _update(self, kind: bytes, force: int | None = None) -> None:
        for worker in self.sockets:
            others = any(c[kind] > 0 for w, c in self.counts.items() if w != worker)
            if others != self.remote[worker][kind] or worker == force:
                self.remote[worker][kind] = others
                with contextlib.suppress(OSError):
                    self.sockets[worker].send(b"R" + kind + (b"1" if others else b"0"))

    def drop_inherited(self) -> None:
        """In a freshly forked worker: close the inherited copies of the master's
        sockets and selector *without* unregistering anything — the epoll instance is
        shared with the master, and an unregister here would silence it there."""
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()
        self.selector.close()

    def close(self) -> None:
        for worker in list(self.sockets):
            self.remove(worker)
        self.selector.close()
