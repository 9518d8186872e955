"""Abuse accounting for one HTTP/2 connection (issue 9): frame floods that carry no
request (PING, SETTINGS, PRIORITY, empty and unknown frames, frames on closed streams)
and rapid reset (CVE-2023-44487: client resets of unfinished streams)."""

from __future__ import annotations

import time

CONTROL_FRAMES_PER_SECOND = 1_000
RESETS_BEFORE_CHECK = 100  # client resets of unfinished streams tolerated outright…
RESET_RATIO = 0.5  # …and beyond that while they stay under this share of answered requests


class FloodGuard:
    __slots__ = ("_frames", "_since", "_resets", "answered")

    def __init__(self) -> None:
        self._frames = 0
        self._since = 0.0
        self._resets = 0
        self.answered = 0

    def frame(self) -> bool:
        """Count a frame that carries no request; False once there were more than
        ``CONTROL_FRAMES_PER_SECOND`` within a second."""
        self._frames += 1
        if self._frames <= CONTROL_FRAMES_PER_SECOND:
            return True
        now = time.monotonic()
        if now - self._since >= 1.0:  # the last window ended: start a new one
            self._since = now
            self._frames = 1
            return True
        return False

    def reset(self) -> bool:
        """Count a client reset of an unfinished stream; False when they dominate."""
        self._resets += 1
        return self._resets <= RESETS_BEFORE_CHECK or self._resets <= self.answered * RESET_RATIO
