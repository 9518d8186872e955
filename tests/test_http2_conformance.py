"""HTTP/2 conformance of the server (RFC 9113), driven by peers that are not our code:
the ``h2`` library's client state machine and raw frames from ``hyperframe``/``hpack``,
over real mTLS sockets to a real ``kes server`` (the lean implementation, the default).

Covered: SETTINGS and their ACK, PING, flow control both ways with tiny client windows
(stream and connection level, large answers on many streams), padding, PRIORITY,
CONTINUATION, client RST_STREAM, malformed requests → stream errors, protocol errors →
GOAWAY with the right code, and GOAWAY on shutdown.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

import h2peer
from conftest import PKI, RunningServer, config_yaml, start_server
from h2peer import RawH2, raw_frame, tls_socket

KEYS = 260
NAME = "conformance-" + "x" * 50


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("kes-h2")
    admin = pki.client("admin")
    server = start_server(root, pki, config_yaml(pki, admin.identity, root / "keys"))
    with server.client(admin, http2=True) as c:
        for i in range(KEYS):
            assert c.post(f"/v1/key/create/{NAME}-{i:04d}").status_code == 200
    yield server
    server.stop()


def _h2_client(kes: RunningServer, pki: PKI, **settings: int) -> tuple[socket.socket, object]:
    tls = tls_socket(kes, pki.client("admin"))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.local_settings = h2.settings.Settings(
        client=True,
        initial_values={getattr(h2.settings.SettingCodes, k): v for k, v in settings.items()},
    )
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    return tls, conn


def _pump(tls: socket.socket, conn, want, timeout: float = 10.0) -> list:
    """Read and feed events until ``want(events_so_far)`` is true."""
    tls.settimeout(timeout)
    events: list = []
    while not want(events):
        data = tls.recv(1 << 16)
        assert data, f"connection closed; events so far: {events}"
        events.extend(conn.receive_data(data))
        for e in events:
            if isinstance(e, h2.events.DataReceived) and not getattr(e, "_acked", False):
                conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                e._acked = True
        tls.sendall(conn.data_to_send())
    return events


def _get(conn, sid: int, path: str) -> None:
    conn.send_headers(
        sid,
        [(":method", "GET"), (":scheme", "https"), (":authority", "x"), (":path", path)],
        end_stream=True,
    )


def test_settings_ack_and_ping(kes: RunningServer, pki: PKI) -> None:
    tls, conn = _h2_client(kes, pki)
    with tls:
        events = _pump(
            tls, conn, lambda ev: any(isinstance(e, h2.events.SettingsAcknowledged) for e in ev)
        )
        changed = next(e for e in events if isinstance(e, h2.events.RemoteSettingsChanged))
        advertised = {k: v.new_value for k, v in changed.changed_settings.items()}
        assert advertised[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 250
        assert advertised[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == 1 << 20
        assert advertised[h2.settings.SettingCodes.ENABLE_PUSH] == 0
        conn.ping(b"12345678")
        tls.sendall(conn.data_to_send())
        events = _pump(
            tls, conn, lambda ev: any(isinstance(e, h2.events.PingAckReceived) for e in ev)
        )
        ack = next(e for e in events if isinstance(e, h2.events.PingAckReceived))
        assert ack.ping_data == b"12345678"


def test_large_answers_through_tiny_client_windows(kes: RunningServer, pki: PKI) -> None:
    """The client grants 100 bytes per stream and never more than 65,535 on the
    connection at a time; eight ~17 KB answers at once must all arrive intact."""
    with kes.client(pki.client("admin")) as c:  # HTTP/1.1: the reference body
        expected = c.get(f"/v1/key/list/{NAME}*").content
    assert len(expected) > 12_000
    assert len(json.loads(expected)["names"]) == KEYS
    tls, conn = _h2_client(kes, pki, INITIAL_WINDOW_SIZE=100, MAX_FRAME_SIZE=16384)
    with tls:
        _pump(tls, conn, lambda ev: any(isinstance(e, h2.events.SettingsAcknowledged) for e in ev))
        sids = [1 + 2 * i for i in range(8)]
        for sid in sids:
            _get(conn, sid, f"/v1/key/list/{NAME}*")
        tls.sendall(conn.data_to_send())
        events = _pump(
            tls,
            conn,
            lambda ev: (
                {e.stream_id for e in ev if isinstance(e, h2.events.StreamEnded)} >= set(sids)
            ),
            timeout=20,
        )
        for sid in sids:
            body = b"".join(
                e.data
                for e in events
                if isinstance(e, h2.events.DataReceived) and e.stream_id == sid
            )
            assert body == expected
            assert all(
                len(e.data) <= 100
                for e in events
                if isinstance(e, h2.events.DataReceived) and e.stream_id == sid
            )


def test_answers_are_split_at_the_clients_max_frame_size(kes: RunningServer, pki: PKI) -> None:
    """A ~17 KB answer to a client with the default 16,384-byte SETTINGS_MAX_FRAME_SIZE
    (h2 rejects larger frames) and a large window: DATA frames of at most 16,384."""
    with kes.client(pki.client("admin")) as c:
        expected = c.get(f"/v1/key/list/{NAME}*").content
    assert len(expected) > 16_384
    tls, conn = _h2_client(kes, pki, INITIAL_WINDOW_SIZE=1 << 20)
    with tls:
        conn.increment_flow_control_window(1 << 20)
        _get(conn, 1, f"/v1/key/list/{NAME}*")
        tls.sendall(conn.data_to_send())
        events = _pump(tls, conn, lambda ev: any(isinstance(e, h2.events.StreamEnded) for e in ev))
        chunks = [e.data for e in events if isinstance(e, h2.events.DataReceived)]
        assert b"".join(chunks) == expected
        assert max(len(c) for c in chunks) == 16_384


def test_padding_priority_and_continuation(kes: RunningServer, pki: PKI) -> None:
    with RawH2(kes, pki.client("admin")) as peer:
        block = peer.block("POST", f"/v1/key/generate/{NAME}-0000", [("content-length", "2")])
        third = len(block) // 3
        head = HeadersFrame(1, block[:third], flags=["PADDED", "PRIORITY"], pad_length=17)
        head.depends_on, head.stream_weight = 0, 200
        peer.send(
            PriorityFrame(3, depends_on=1, stream_weight=10),  # for an idle stream: allowed
            head,
            ContinuationFrame(1, block[third : 2 * third]),
            ContinuationFrame(1, block[2 * third :], flags=["END_HEADERS"]),
            DataFrame(1, b"{}", flags=["PADDED", "END_STREAM"], pad_length=40),
        )
        status, headers, body = peer.response(1)
        assert status == 200, body
        assert headers[b"content-type"] == b"application/json"
        assert len(base64.b64decode(json.loads(body)["plaintext"])) == 32
        # A second request on the same connection: the HPACK state stayed in sync.
        peer.request(5, "GET", "/version")
        status, _, body = peer.response(5)
        assert status == 200 and b"version" in body


def test_large_request_header_block_in_continuations(kes: RunningServer, pki: PKI) -> None:
    """A 50 KB header block (h2 splits it into HEADERS + CONTINUATION frames)."""
    tls, conn = _h2_client(kes, pki)
    with tls:
        conn.send_headers(
            1,
            [
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "x"),
                (":path", "/v1/status"),
                ("x-large", "v" * 50_000),
            ],
            end_stream=True,
        )
        tls.sendall(conn.data_to_send())
        events = _pump(tls, conn, lambda ev: any(isinstance(e, h2.events.StreamEnded) for e in ev))
        response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
        assert dict(response.headers)[b":status"] == b"200"


def test_client_reset_leaves_the_connection_usable(kes: RunningServer, pki: PKI) -> None:
    tls, conn = _h2_client(kes, pki)
    with tls:
        conn.send_headers(
            1,
            [
                (":method", "POST"),
                (":scheme", "https"),
                (":authority", "x"),
                (":path", f"/v1/key/generate/{NAME}-0001"),
            ],
        )
        conn.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
        _get(conn, 3, "/v1/status")
        tls.sendall(conn.data_to_send())
        events = _pump(tls, conn, lambda ev: any(isinstance(e, h2.events.StreamEnded) for e in ev))
        ended = [e.stream_id for e in events if isinstance(e, h2.events.StreamEnded)]
        assert ended == [3]


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ([("content-length", "10")], b"{}"),  # content-length disagrees with DATA
        ([("X-Upper", "a")], b"{}"),  # upper-case header name
        ([("connection", "keep-alive")], b"{}"),  # connection-specific header
    ],
)
def test_malformed_requests_are_stream_errors(
    kes: RunningServer, pki: PKI, headers: list[tuple[str, str]], body: bytes
) -> None:
    with RawH2(kes, pki.client("admin")) as peer:
        block = peer.block("POST", f"/v1/key/generate/{NAME}-0000", headers)
        peer.send(
            HeadersFrame(1, block, flags=["END_HEADERS"]), DataFrame(1, body, flags=["END_STREAM"])
        )
        frames = peer.until(lambda fr: isinstance(fr, RstStreamFrame) and fr.stream_id == 1)
        assert frames and frames[-1].error_code == h2peer.PROTOCOL_ERROR
        peer.request(3, "GET", "/version")  # the connection is fine
        assert peer.response(3)[0] == 200


def test_missing_pseudo_header_is_a_stream_error(kes: RunningServer, pki: PKI) -> None:
    with RawH2(kes, pki.client("admin")) as peer:
        block = peer.encoder.encode([(":method", "GET"), (":scheme", "https")])
        peer.send(HeadersFrame(1, block, flags=["END_HEADERS", "END_STREAM"]))
        frames = peer.until(lambda fr: isinstance(fr, RstStreamFrame))
        assert frames[-1].error_code == h2peer.PROTOCOL_ERROR


def _protocol_errors() -> list:
    big = DataFrame(1, b"x" * 20_000, flags=["END_STREAM"])
    return [
        pytest.param(
            lambda p: [raw_frame(0x0, 0, 0, b"x")], h2peer.PROTOCOL_ERROR, id="data-on-stream-0"
        ),
        pytest.param(lambda p: [big], h2peer.FRAME_SIZE_ERROR, id="frame-over-max-size"),
        pytest.param(
            lambda p: [raw_frame(0x6, 0, 0, b"1234567")],
            h2peer.FRAME_SIZE_ERROR,
            id="ping-wrong-length",
        ),
        pytest.param(
            lambda p: [HeadersFrame(1, b"\xff\xff\xff\x0f", flags=["END_HEADERS", "END_STREAM"])],
            h2peer.COMPRESSION_ERROR,
            id="bad-hpack",
        ),
        pytest.param(
            lambda p: [WindowUpdateFrame(0, 2**31 - 1)],
            h2peer.FLOW_CONTROL_ERROR,
            id="window-overflow",
        ),
        pytest.param(
            lambda p: [ContinuationFrame(1, b"", flags=["END_HEADERS"])],
            h2peer.PROTOCOL_ERROR,
            id="continuation-without-headers",
        ),
        pytest.param(
            lambda p: [HeadersFrame(1, p.block("GET", "/version")), PingFrame(0, b"12345678")],
            h2peer.PROTOCOL_ERROR,
            id="frame-inside-header-block",
        ),
        pytest.param(
            lambda p: [PushPromiseFrame(1, promised_stream_id=2, data=b"", flags=["END_HEADERS"])],
            h2peer.PROTOCOL_ERROR,
            id="push-promise",
        ),
        pytest.param(
            lambda p: [
                HeadersFrame(2, p.block("GET", "/version"), flags=["END_HEADERS", "END_STREAM"])
            ],
            h2peer.PROTOCOL_ERROR,
            id="even-stream-id",
        ),
        pytest.param(
            lambda p: [SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 2**31})],
            h2peer.FLOW_CONTROL_ERROR,
            id="initial-window-too-large",
        ),
        pytest.param(
            lambda p: [SettingsFrame(0, settings={SettingsFrame.MAX_FRAME_SIZE: 100})],
            h2peer.PROTOCOL_ERROR,
            id="max-frame-size-too-small",
        ),
        pytest.param(
            lambda p: [RstStreamFrame(9, 0)], h2peer.PROTOCOL_ERROR, id="reset-idle-stream"
        ),
    ]


@pytest.mark.parametrize(("frames", "code"), _protocol_errors())
def test_protocol_errors_end_in_goaway(kes: RunningServer, pki: PKI, frames, code: int) -> None:
    with RawH2(kes, pki.client("admin")) as peer:
        peer.send(*frames(peer))
        goaway = peer.goaway()
        assert goaway is not None, "closed without GOAWAY"
        assert goaway.error_code == code
        assert peer.read_frame() is None  # and the connection is closed
    with kes.client(pki.client("admin"), http2=True) as c:  # the server is fine
        assert c.get("/v1/status").status_code == 200


def test_bad_preface_is_refused(kes: RunningServer, pki: PKI) -> None:
    with RawH2(kes, pki.client("admin"), preface=False) as peer:
        peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        goaway = peer.goaway()
        assert goaway is not None and goaway.error_code == h2peer.PROTOCOL_ERROR


def test_goaway_on_shutdown(tmp_path: Path, pki: PKI) -> None:
    admin = pki.client("admin")
    server = start_server(tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"))
    try:
        with RawH2(server, admin) as peer:
            peer.request(1, "GET", "/version")
            assert peer.response(1)[0] == 200
            server.proc.send_signal(signal.SIGTERM)
            goaway = peer.goaway()
            assert goaway is not None
            assert (goaway.error_code, goaway.last_stream_id) == (h2peer.NO_ERROR, 1)
            assert peer.read_frame() is None
        assert server.proc.wait(15) == 0
    finally:
        server.stop()


def test_random_frames_never_break_the_server(kes: RunningServer, pki: PKI) -> None:
    """Seeded random frames (any type, flags, stream, payload): each connection either
    still answers a PING or ends with GOAWAY; the server logs no internal error."""
    import random

    rng = random.Random(7)
    for _ in range(25):
        with RawH2(kes, pki.client("admin")) as peer:
            frames = []
            for _ in range(rng.randrange(1, 40)):
                kind = rng.choice([0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 0xFF])
                payload = rng.randbytes(rng.choice([0, 1, 4, 5, 6, 8, 9, rng.randrange(64)]))
                sid = rng.choice([0, 1, 2, 3, 5, 7, 2**31 - 1])
                frames.append(raw_frame(kind, rng.randrange(256), sid, payload))
            peer.send(*frames, PingFrame(0, b"liveness"))
            last = peer.until(
                lambda fr: (
                    isinstance(fr, GoAwayFrame)
                    or (isinstance(fr, PingFrame) and fr.opaque_data == b"liveness")
                )
            )
            assert last, "closed without GOAWAY"
            assert isinstance(last[-1], (GoAwayFrame, PingFrame))
    with kes.client(pki.client("admin"), http2=True) as c:
        assert c.get("/v1/status").status_code == 200
    _, stderr = kes.output()
    assert "internal error" not in stderr and "Traceback" not in stderr


def test_same_header_bytes_follow_the_dynamic_table(kes: RunningServer, pki: PKI) -> None:
    """The server caches decoded header blocks by their bytes; the same bytes must be
    read anew once the client's dynamic table changed what index 62 means."""
    get = b"\x82\x87"  # :method GET, :scheme https (static table)

    def add_path(path: bytes) -> bytes:  # literal with incremental indexing, name :path
        return get + b"\x44" + bytes([len(path)]) + path

    by_index = get + b"\xbe"  # :path = dynamic entry 62, the newest
    with RawH2(kes, pki.client("admin")) as peer:
        statuses = []
        for sid, block in enumerate(
            [add_path(b"/version"), by_index, by_index, add_path(b"/nope"), by_index, by_index],
        ):
            peer.send(HeadersFrame(2 * sid + 1, block, flags=["END_HEADERS", "END_STREAM"]))
            statuses.append(peer.response(2 * sid + 1)[0])
        assert statuses == [200, 200, 200, 404, 404, 404]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/key/describe/é-ключ", "é-ключ"),  # raw UTF-8 in :path (Go takes it as is)
        ("/v1/key/describe/%C3%A9", "é"),  # the same, escaped
    ],
)
def test_utf8_in_path_reads_as_utf8_in_the_answer(
    kes: RunningServer, pki: PKI, path: str, name: str
) -> None:
    with RawH2(kes, pki.client("admin")) as h2:
        block = h2.encoder.encode(
            [
                (":method", "GET"),
                (":scheme", "https"),
                (":path", path.encode()),
                (":authority", "127.0.0.1"),
            ]  # fmt: skip
        )
        h2.send(HeadersFrame(1, block, flags=["END_HEADERS", "END_STREAM"]))
        status, _, body = h2.response(1)
    message = f"key name '{name}' is empty, too long or contains invalid characters"
    assert (status, json.loads(body)) == (400, {"message": message})
