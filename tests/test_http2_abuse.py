"""HTTP/2 abuse bounds (issue 9): each attack, sent as raw frames (``hyperframe`` /
``hpack``) over a real mTLS connection, ends that connection with GOAWAY
ENHANCE_YOUR_CALM (or is refused stream by stream), leaves the server's memory bounded,
and a well-behaved client on another connection keeps getting answers.

* rapid reset (CVE-2023-44487): HEADERS + RST_STREAM pairs;
* more concurrent streams than SETTINGS_MAX_CONCURRENT_STREAMS: REFUSED_STREAM;
* PING and SETTINGS floods;
* CONTINUATION floods (CVE-2024-27316): an endless header block, and empty frames;
* empty DATA frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

import h2peer
from conftest import PKI, RunningServer, config_yaml, start_server
from h2peer import RawH2

KEY = "abuse-key"
MAX_STREAMS = 250  # what the server advertises
RSS_GROWTH_LIMIT_MB = 64


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("kes-h2-abuse")
    admin = pki.client("admin")
    extra = "log:\n  audit: off\n"
    server = start_server(root, pki, config_yaml(pki, admin.identity, root / "keys", extra))
    with server.client(admin) as c:
        assert c.post(f"/v1/key/create/{KEY}").status_code == 200
    yield server
    server.stop()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def bystander(kes: RunningServer, pki: PKI) -> Iterator[None]:
    """A well-behaved HTTP/2 client on its own connection, before and after the attack;
    the server's memory may not grow by more than a bound over the attack."""
    with kes.client(pki.client("admin"), http2=True) as c:
        assert c.post(f"/v1/key/generate/{KEY}", content=b"{}").status_code == 200
        before = _rss_mb(kes.proc.pid)
        yield
        r = c.post(f"/v1/key/generate/{KEY}", content=b"{}")
        assert r.status_code == 200 and r.http_version == "HTTP/2"
    assert _rss_mb(kes.proc.pid) - before < RSS_GROWTH_LIMIT_MB


def _calm_goaway(peer: RawH2) -> None:
    goaway = peer.goaway(timeout=30)
    assert goaway is not None, "connection closed without GOAWAY"
    assert goaway.error_code == h2peer.ENHANCE_YOUR_CALM


def test_rapid_reset_is_cut(kes: RunningServer, pki: PKI, bystander: None) -> None:
    with RawH2(kes, pki.client("admin")) as peer:
        block = peer.block("POST", f"/v1/key/generate/{KEY}", [("content-length", "2")])
        for batch in range(20):
            frames = []
            for i in range(50):
                sid = 1 + 2 * (batch * 50 + i)
                frames += [HeadersFrame(sid, block, flags=["END_HEADERS"]), RstStreamFrame(sid, 8)]
            peer.send(*frames)
            if peer.closed:
                break
        _calm_goaway(peer)


def test_streams_beyond_the_limit_are_refused(
    kes: RunningServer, pki: PKI, bystander: None
) -> None:
    """Sent before the client has read the server's SETTINGS: the 10 streams over the
    limit are refused; the ones within it are served once their bodies come."""
    extra = 10
    with RawH2(kes, pki.client("admin")) as peer:
        block = peer.block("POST", f"/v1/key/generate/{KEY}", [("content-length", "2")])
        sids = [1 + 2 * i for i in range(MAX_STREAMS + extra)]
        peer.send(*(HeadersFrame(sid, block, flags=["END_HEADERS"]) for sid in sids))
        refused: set[int] = set()
        while len(refused) < extra:
            frames = peer.until(lambda fr: isinstance(fr, RstStreamFrame))
            assert frames, "connection closed"
            rst = frames[-1]
            assert rst.error_code == h2peer.REFUSED_STREAM
            refused.add(rst.stream_id)
        assert refused == set(sids[MAX_STREAMS:])
        peer.send(DataFrame(sids[0], b"{}", flags=["END_STREAM"]))
        status, _, body = peer.response(sids[0])
        assert status == 200, body


@pytest.mark.parametrize("kind", ["ping", "settings"])
def test_control_frame_floods_are_cut(
    kes: RunningServer, pki: PKI, bystander: None, kind: str
) -> None:
    frame = PingFrame(0, b"12345678") if kind == "ping" else SettingsFrame(0, {0x3: 100})
    data = frame.serialize() * 500
    with RawH2(kes, pki.client("admin")) as peer:
        for _ in range(20):  # 10,000 frames, without reading the acknowledgements
            peer.send(data)
            if peer.closed:
                break
        _calm_goaway(peer)


def test_endless_continuation_is_cut(kes: RunningServer, pki: PKI, bystander: None) -> None:
    """CVE-2024-27316: a header block that never ends is not buffered without bound."""
    with RawH2(kes, pki.client("admin")) as peer:
        peer.send(HeadersFrame(1, peer.block("GET", "/version")))
        chunk = ContinuationFrame(1, b"\x00" * 16_000).serialize() * 8
        for _ in range(40):  # up to 5 MB, far over the 1 MiB header limit
            peer.send(chunk)
            if peer.closed:
                break
        _calm_goaway(peer)


@pytest.mark.parametrize("kind", ["continuation", "data"])
def test_empty_frame_floods_are_cut(
    kes: RunningServer, pki: PKI, bystander: None, kind: str
) -> None:
    with RawH2(kes, pki.client("admin")) as peer:
        if kind == "continuation":
            peer.send(HeadersFrame(1, peer.block("GET", "/version")))
            empty = ContinuationFrame(1, b"")
        else:
            block = peer.block("POST", f"/v1/key/generate/{KEY}", [("content-length", "2")])
            peer.send(HeadersFrame(1, block, flags=["END_HEADERS"]))
            empty = DataFrame(1, b"")
        data = empty.serialize() * 1000
        for _ in range(20):
            peer.send(data)
            if peer.closed:
                break
        _calm_goaway(peer)


def test_unread_answers_stop_the_reading(kes: RunningServer, pki: PKI, bystander: None) -> None:
    """A client that grants the largest flow-control windows, sends requests and never
    reads the answers: the server stops reading once its socket's send buffer is full,
    so the client's sending blocks instead of the server buffering without bound."""
    largest = 2**31 - 1
    with RawH2(
        kes, pki.client("admin"), settings={SettingsFrame.INITIAL_WINDOW_SIZE: largest}
    ) as peer:
        peer.send(WindowUpdateFrame(0, largest - 65_535))
        block = peer.block("POST", f"/v1/key/generate/{KEY}", [("content-length", "2")])
        sent, sid = 0, 1
        peer.sock.settimeout(3)
        with pytest.raises(TimeoutError):
            while sent < 200 << 20:
                batch = b"".join(
                    HeadersFrame(s, block, flags=["END_HEADERS"]).serialize()
                    + DataFrame(s, b"{}", flags=["END_STREAM"]).serialize()
                    for s in range(sid, sid + 200, 2)
                )
                peer.sock.sendall(batch)
                sent += len(batch)
                sid += 200
        assert sent < 100 << 20
        # What was read is answered: the first stream's response is complete.
        peer.sock.settimeout(10)
        assert peer.response(1)[0] == 200


def test_hpack_bomb_is_cut(kes: RunningServer, pki: PKI, bystander: None) -> None:
    """A 4 KB dynamic-table entry referenced 400 times: a 5 KB block that would decode
    to 1.6 MB of headers (over the 1 MiB header list limit)."""
    with RawH2(kes, pki.client("admin")) as peer:
        base = peer.block("GET", "/version")
        value = b"v" * 4000
        # literal with incremental indexing, new name (RFC 7541 §6.2.1), then index 62
        entry = b"\x40\x05x-big" + b"\x7f" + _hpack_int(len(value) - 127) + value
        bomb = base + entry + b"\xbe" * 400
        peer.send(HeadersFrame(1, bomb, flags=["END_HEADERS", "END_STREAM"]))
        _calm_goaway(peer)


def _hpack_int(rest: int) -> bytes:
    """The continuation bytes of an HPACK integer whose prefix is full (RFC 7541 §5.1)."""
    out = bytearray()
    while rest >= 128:
        out.append(rest % 128 + 128)
        rest //= 128
    out.append(rest)
    return bytes(out)
