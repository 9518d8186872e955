"""Spin-polling after an answer: keep the event loop awake for a moment instead of
sleeping in ``epoll_wait``, so a client's next request is read the instant it lands.

A client that waits for each answer before it sends the next request pays the
server's wake-up on every request: the worker blocks in ``epoll_wait``, its CPU goes
idle, and the kernel (on a virtual machine, probably the hypervisor too) has to wake it
when the request arrives. Go's scheduler avoids this by spinning for a while, yielding the
CPU, before it parks a thread. We do the same, bounded:

* After answers are written, ``kick()`` keeps the loop polling with a zero timeout
  (one ``call_soon`` per loop turn) for up to ``SPIN_SECONDS``; every answer written
  meanwhile extends the window. With no requests, nothing spins.
* Each idle turn calls ``sched_yield()``: a process that wants this CPU (another
  worker, a client on the same machine) gets it first.
* Only a worker with at most ``MAX_CONNECTIONS`` connections spins. With many, the
  next request is usually waiting already, and a worker that sleeps until several
  are ready answers them in one loop turn, with one write batch (http1.py), which
  spinning would break up.
* Spinning must catch requests to be worth it. Every spin ends with one wait in vain
  (its window expired); it pays if it caught requests before that. A client across a
  real network whose next request comes a millisecond later is never caught. Every
  ``REVIEW_SPINS`` spins, if they caught fewer than one request per 16 spins, the
  spinner rests, then tries again. The rest starts at ``MIN_REST_SECONDS`` (a client on
  this machine can be slow for a moment, and then spinning pays again) and doubles with
  each review in vain, up to ``MAX_REST_SECONDS``: then at most ~13 ms of spinning in
  vain per second.

Measured (docs/performance.md, "Fifth round"): one keep-alive connection over HTTP/1.1
went from ~5,300 to ~7,300 requests/s on the 2-core bench machine, over HTTP/2 from
~4,700 to ~5,900. ``PYKES_SPIN_US`` (microseconds; 0 turns it off) sets the window.
"""

from __future__ import annotations

import asyncio
import os
import time

SPIN_SECONDS = int(os.environ.get("PYKES_SPIN_US", "100")) / 1e6
MAX_CONNECTIONS = 4
REVIEW_SPINS = 256
MIN_REST_SECONDS = 0.1
MAX_REST_SECONDS = 2.0

_perf_counter = time.perf_counter
_sched_yield = getattr(os, "sched_yield", lambda: None)  # not on every platform (macOS)


class Spinner:
    """One per event loop (``spinner_of``); ``kick()`` after writing answers."""

    __slots__ = (
        "loop",
        "window",
        "spinning",
        "until",
        "turns",
        "spins",
        "caught",
        "rest",
        "rest_until",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, window: float = SPIN_SECONDS) -> None:
        self.loop = loop
        self.window = window
        self.spinning = False
        self.until = 0.0  # spin until then (perf_counter seconds)
        self.turns = 0  # loop turns spent polling, in all (for tests and curious readers)
        self.spins = 0  # spins ended since the last review
        self.caught = 0  # answers written during those spins: requests a spin caught
        self.rest = MIN_REST_SECONDS  # the next rest, if the next review is in vain
        self.rest_until = 0.0  # no spinning before then

    def kick(self, connections: int) -> None:
        """Answers were just written on a worker with ``connections`` connections:
        poll for the next request for a while."""
        if connections > MAX_CONNECTIONS or self.window <= 0.0:
            return
        now = _perf_counter()
        if self.spinning:
            self.caught += 1
            self.until = now + self.window
        elif now >= self.rest_until:
            self.until = now + self.window
            self.spinning = True
            self.loop.call_soon(self._poll)

    def _poll(self) -> None:
        if _perf_counter() < self.until:
            self.turns += 1
            _sched_yield()
            self.loop.call_soon(self._poll)  # the loop polls (timeout 0) and comes back
            return
        self.spinning = False
        self.spins += 1
        if self.spins >= REVIEW_SPINS:
            if self.caught * 16 < self.spins:  # nearly every spin waited in vain: rest
                self.rest_until = _perf_counter() + self.rest
                self.rest = min(2 * self.rest, MAX_REST_SECONDS)
            else:
                self.rest = MIN_REST_SECONDS
            self.spins = self.caught = 0


_spinners: dict[asyncio.AbstractEventLoop, Spinner] = {}


def spinner_of(loop: asyncio.AbstractEventLoop) -> Spinner:
    """The loop's spinner (one per loop: a worker has one loop; tests make many)."""
    spinner = _spinners.get(loop)
    if spinner is None:
        if len(_spinners) >= 64:  # forget the loops of finished tests
            for old in [old for old in _spinners if old.is_closed()]:
                del _spinners[old]
        spinner = _spinners[loop] = Spinner(loop)
    return spinner
