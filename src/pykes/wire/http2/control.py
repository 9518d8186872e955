"""HTTP/2 control frames of a connection (RFC 9113 §6.3–§6.9): WINDOW_UPDATE, RST_STREAM,
SETTINGS, PING and GOAWAY, as a part of ``H2Handler`` (handler.py)."""

from __future__ import annotations

from collections.abc import Callable

from pykes.wire.http2 import frames as f
from pykes.wire.http2.state import ConnectionState
from pykes.wire.http2.streams import ConnectionError_, Stream


class ControlFrames(ConnectionState):
    """The control-frame handlers of ``H2Handler``, on its connection state."""

    _last_sid: int
    _peer_initial_window: int
    _reading_paused: bool
    _goaway_sent: bool
    _send_pending: Callable[[Stream], None]
    _reset: Callable[[int, int], None]
    _count_junk: Callable[[], None]
    _close_if_idle: Callable[[], None]

    def _on_window_update(self, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionError_(f.FRAME_SIZE_ERROR, "WINDOW_UPDATE size")
        increment = int.from_bytes(payload, "big") & 0x7FFFFFFF
        if sid == 0:
            if increment == 0:
                raise ConnectionError_(f.PROTOCOL_ERROR, "zero window increment")
            self._send_window += increment
            if self._send_window > f.MAX_WINDOW:
                raise ConnectionError_(f.FLOW_CONTROL_ERROR, "window overflow")
            for stream in list(self._blocked.values()):
                if self._send_window <= 0:
                    break
                self._send_pending(stream)
            return
        stream = self.streams.get(sid)
        if stream is None:
            if sid > self._last_sid:
                raise ConnectionError_(f.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
            self._count_junk()  # a closed stream: ignored
            return
        if increment == 0:
            self._reset(sid, f.PROTOCOL_ERROR)
            return
        stream.send_window += increment
        if stream.send_window > f.MAX_WINDOW:
            self._reset(sid, f.FLOW_CONTROL_ERROR)
        elif stream.pending is not None:
            self._send_pending(stream)

    def _on_rst(self, sid: int, payload: bytes) -> None:
        if sid == 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if len(payload) != 4:
            raise ConnectionError_(f.FRAME_SIZE_ERROR, "RST_STREAM size")
        if sid > self._last_sid:
            raise ConnectionError_(f.PROTOCOL_ERROR, "RST_STREAM on an idle stream")
        stream = self.streams.get(sid)
        if stream is None:
            self._count_junk()
            return
        if not self._guard.reset():
            raise ConnectionError_(f.ENHANCE_YOUR_CALM, "rapid reset")
        self._drop(sid)

    def _on_settings(self, flags: int, sid: int, payload: bytes) -> None:
        if sid != 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & f.ACK:
            if payload:
                raise ConnectionError_(f.FRAME_SIZE_ERROR, "SETTINGS ACK with payload")
            return
        if len(payload) % 6:
            raise ConnectionError_(f.FRAME_SIZE_ERROR, "SETTINGS size")
        self._count_junk()
        for key, value in f.parse_settings(payload):
            if key == f.INITIAL_WINDOW_SIZE:
                if value > f.MAX_WINDOW:
                    raise ConnectionError_(f.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE")
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
                    if stream.send_window > f.MAX_WINDOW:
                        raise ConnectionError_(f.FLOW_CONTROL_ERROR, "window overflow")
            elif key == f.MAX_FRAME_SIZE:
                if not f.DEFAULT_MAX_FRAME <= value <= f.MAX_FRAME_LIMIT:
                    raise ConnectionError_(f.PROTOCOL_ERROR, "MAX_FRAME_SIZE")
                self._max_frame = value
            elif key == f.ENABLE_PUSH and value > 1:
                raise ConnectionError_(f.PROTOCOL_ERROR, "ENABLE_PUSH")
        self._control_reply(f.SETTINGS_ACK)
        for stream in list(self._blocked.values()):
            if stream.send_window > 0 and self._send_window > 0:
                self._send_pending(stream)

    def _on_ping(self, flags: int, sid: int, payload: bytes) -> None:
        if sid != 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise ConnectionError_(f.FRAME_SIZE_ERROR, "PING size")
        if flags & f.ACK:
            return
        self._count_junk()
        self._control_reply(f.frame(f.PING, f.ACK, 0, payload))

    def _control_reply(self, data: bytes) -> None:
        if self._reading_paused:
            raise ConnectionError_(f.ENHANCE_YOUR_CALM, "control replies not read")
        self._out.append(data)

    def _on_goaway(self) -> None:
        """The client will open no more streams: finish the open ones, then close."""
        self._goaway_sent = True  # treat like our own: no new streams
        if not self.streams:
            self._loop.call_soon(self._close_if_idle)
