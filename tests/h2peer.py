"""A raw HTTP/2 client for conformance and abuse tests: frames built and parsed by
``hyperframe``, headers by ``hpack`` (the libraries under ``h2``, not our code), over a
real mTLS socket to a real server. It sends exactly what a test asks for, including
frames a well-behaved client never sends."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterable

from h2.errors import ErrorCodes
from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
)

from conftest import ClientIdentity, RunningServer

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# RFC 9113 §7 error codes, from the h2 library (not from the server under test)
NO_ERROR = ErrorCodes.NO_ERROR
PROTOCOL_ERROR = ErrorCodes.PROTOCOL_ERROR
FLOW_CONTROL_ERROR = ErrorCodes.FLOW_CONTROL_ERROR
STREAM_CLOSED = ErrorCodes.STREAM_CLOSED
FRAME_SIZE_ERROR = ErrorCodes.FRAME_SIZE_ERROR
REFUSED_STREAM = ErrorCodes.REFUSED_STREAM
CANCEL = ErrorCodes.CANCEL
COMPRESSION_ERROR = ErrorCodes.COMPRESSION_ERROR
ENHANCE_YOUR_CALM = ErrorCodes.ENHANCE_YOUR_CALM


def raw_frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame hyperframe refuses to build (invalid on purpose)."""
    return (
        len(payload).to_bytes(3, "big")
        + bytes((kind, flags))
        + stream_id.to_bytes(4, "big")
        + payload
    )


def tls_socket(server: RunningServer, ident: ClientIdentity) -> ssl.SSLSocket:
    ctx = server.ssl_context(ident)
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", server.port))
    tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    assert tls.selected_alpn_protocol() == "h2"
    return tls


class RawH2:
    def __init__(
        self,
        server: RunningServer,
        ident: ClientIdentity,
        settings: dict[int, int] | None = None,
        preface: bool = True,
    ) -> None:
        self.sock = tls_socket(server, ident)
        self.encoder = Encoder()
        self.decoder = Decoder(max_header_list_size=1 << 22)
        self._buf = b""
        self.closed = False
        if preface:
            self.send(PREFACE, SettingsFrame(0, settings=settings or {}))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawH2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ sending
    def send(self, *parts: bytes | Frame) -> None:
        data = b"".join(p if isinstance(p, bytes) else p.serialize() for p in parts)
        try:
            self.sock.sendall(data)
        except OSError:  # the server may already have closed on us
            self.closed = True

    def block(self, method: str, path: str, extra: Iterable[tuple[str, str]] = ()) -> bytes:
        headers = [(":method", method), (":scheme", "https"), (":path", path)]
        headers.append((":authority", "127.0.0.1"))
        return self.encoder.encode([*headers, *extra])

    def request(
        self, sid: int, method: str, path: str, body: bytes | None = None, **kw: object
    ) -> None:
        extra = [("content-length", str(len(body)))] if body is not None else []
        block = self.block(method, path, extra)
        flags = ["END_HEADERS"] if body else ["END_HEADERS", "END_STREAM"]
        frames: list[Frame] = [HeadersFrame(sid, block, flags=flags)]
        if body:
            frames.append(DataFrame(sid, body, flags=["END_STREAM"]))
        self.send(*frames)

    # ------------------------------------------------------------ receiving
    def read_frame(self, timeout: float = 10.0) -> Frame | None:
        """The next frame, or None once the server closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self._buf) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self._buf[:9]))
                if len(self._buf) >= 9 + length:
                    frame.parse_body(memoryview(self._buf[9 : 9 + length]))
                    self._buf = self._buf[9 + length :]
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the server")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except (ConnectionError, ssl.SSLError):
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self._buf += chunk

    def until(self, done: Callable[[Frame], bool], timeout: float = 10.0) -> list[Frame]:
        """Frames up to and including the first for which ``done`` is true (or EOF).
        Header blocks are decoded on the way, to keep the HPACK state in sync."""
        frames: list[Frame] = []
        while True:
            frame = self.read_frame(timeout)
            if frame is None:
                return frames
            if isinstance(frame, (HeadersFrame, ContinuationFrame)):
                frame.decoded = self._decode(frame)  # type: ignore[attr-defined]
            frames.append(frame)
            if done(frame):
                return frames

    _pending_block = b""

    def _decode(self, frame: HeadersFrame | ContinuationFrame) -> list[tuple[bytes, bytes]]:
        self._pending_block += frame.data
        if "END_HEADERS" not in frame.flags:
            return []
        block, self._pending_block = self._pending_block, b""
        return self.decoder.decode(block, raw=True)  # type: ignore[return-value]

    def goaway(self, timeout: float = 15.0) -> GoAwayFrame | None:
        """The GOAWAY the server sends before closing (None: closed without one)."""
        frames = self.until(lambda fr: isinstance(fr, GoAwayFrame), timeout)
        last = frames[-1] if frames else None
        return last if isinstance(last, GoAwayFrame) else None

    def response(self, sid: int, timeout: float = 10.0) -> tuple[int, dict[bytes, bytes], bytes]:
        """Status, headers and body of stream ``sid`` (window updates sent as needed)."""
        status, headers, body = 0, {}, b""
        while True:
            frame = self.read_frame(timeout)
            assert frame is not None, "connection closed before the response ended"
            if isinstance(frame, (HeadersFrame, ContinuationFrame)):
                decoded = self._decode(frame)
                if frame.stream_id == sid and decoded:
                    headers = dict(decoded)
                    status = int(headers[b":status"])
            elif isinstance(frame, DataFrame) and frame.stream_id == sid:
                body += frame.data
            elif isinstance(frame, RstStreamFrame) and frame.stream_id == sid:
                raise AssertionError(f"stream {sid} reset with code {frame.error_code}")
            if frame.stream_id == sid and "END_STREAM" in frame.flags:
                return status, headers, body
