"""Load and abuse (issue 9): 1,000 keep-alive connections for 60 s with 0 errors while
slow-loris clients, half-open TLS handshakes, slow readers and oversized requests hit
the same server (docs/compat/api.md §1, §3.4, §3.5).

One asyncio client process (this one) speaks raw HTTP/1.1 over stdlib ``ssl`` to a real
two-worker ``kes server``. The attackers must be cut by the server's own timeouts:

* headers dribbled one byte at a time, or no request at all after the handshake → the
  5 s header timeout (docs/compat/api.md §1);
* a body announced (``Content-Length``) but never sent → the route's write deadline
  (15 s, docs/compat/api.md §3.5): the connection is torn down, no response;
* a TLS handshake never finished (a partial ClientHello) → the 10 s handshake timeout;
* pipelined requests whose responses are never read → the server stops reading and the
  write deadline cuts the connection (it must not buffer responses without bound);
* headers over 1 MiB → ``431``; a body over the route's limit → ``400 invalid request
  body`` with ``Connection: close``.

No timing is asserted beyond "cut at all, before a generous bound".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import resource
import socket
import ssl
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import PKI, RunningServer, config_yaml, start_server

CONNECTIONS = 1000
SOAK_SECONDS = 60.0
ATTACKERS = 50  # per kind of attack
GENERATE = b'{"context":"eyJidWNrZXQiOiJhYnVzZSJ9"}'
HEADER_TIMEOUT = 5.0
ROUTE_TIMEOUT = 15.0
HANDSHAKE_TIMEOUT = 10.0
CUT_MARGIN = 15.0  # a loaded 2-core machine; the sweeper runs every 0.25 s


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[RunningServer]:
    _raise_fd_limit(4 * CONNECTIONS)
    root = tmp_path_factory.mktemp("kes-abuse")
    admin = pki.client("admin")
    extra = "log:\n  audit: off\n"
    server = start_server(
        root, pki, config_yaml(pki, admin.identity, root / "keys", extra), workers=2
    )
    with server.client(admin) as c:
        assert c.post("/v1/key/create/soak").status_code == 200
    yield server
    server.stop()


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted}")


def _client_context(kes: RunningServer, pki: PKI) -> ssl.SSLContext:
    ctx = kes.ssl_context(pki.client("admin"))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


# ------------------------------------------------------------------------- client side
async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    return status, headers, await reader.read()  # Connection: close, body until EOF


@dataclass
class Soak:
    """Well-behaved keep-alive clients: generate, then pause 0.5–1.5 s, for a while."""

    ok: int = 0
    errors: list[str] = field(default_factory=list)
    per_connection: list[int] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (when, seconds)

    async def connection(
        self, port: int, ctx: ssl.SSLContext, until: float, opened: asyncio.Semaphore
    ) -> None:
        done = 0
        try:
            async with opened:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"
                )
            request = (
                b"POST /v1/key/generate/soak HTTP/1.1\r\nHost: kes\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(GENERATE), GENERATE)
            )
            while time.monotonic() < until:
                start = time.monotonic()
                writer.write(request)
                status, headers, body = await _read_response(reader)
                if status != 200 or b'"ciphertext"' not in body:
                    self.errors.append(f"{status} {body[:80]!r}")
                    return
                self.ok += 1
                done += 1
                self.latencies.append((start, time.monotonic() - start))
                await asyncio.sleep(random.uniform(0.5, 1.5))
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
        except Exception as err:  # every failure counts, whatever its kind
            self.errors.append(repr(err))
        finally:
            self.per_connection.append(done)


async def _time_until_closed(reader: asyncio.StreamReader, started: float) -> float:
    """Read (and drop) until the server closes the connection; seconds since start."""
    with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
        while await reader.read(65536):
            pass
    return time.monotonic() - started


async def header_dribbler(port: int, ctx: ssl.SSLContext) -> float:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"
    )
    started = time.monotonic()
    closed = asyncio.ensure_future(_time_until_closed(reader, started))

    async def dribble() -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError, RuntimeError):
            for byte in b"GET /v1/status HTTP/1.1\r\nHost: kes\r\nX-Slow: " + b"a" * 10_000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.5)

    feeder = asyncio.ensure_future(dribble())
    try:
        return await closed
    finally:
        feeder.cancel()
        writer.close()


async def silent_after_handshake(port: int, ctx: ssl.SSLContext) -> float:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"
    )
    try:
        return await _time_until_closed(reader, time.monotonic())
    finally:
        writer.close()


async def body_withholder(port: int, ctx: ssl.SSLContext) -> float:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"
    )
    writer.write(b"POST /v1/key/generate/soak HTTP/1.1\r\nHost: kes\r\nContent-Length: 100\r\n\r\n")
    started = time.monotonic()
    try:
        data = b""
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            while chunk := await reader.read(65536):
                data += chunk
        assert data == b"", data[:100]  # torn down without a response (docs/compat/api.md §3.5)
        return time.monotonic() - started
    finally:
        writer.close()


async def handshake_staller(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # The first bytes of a TLS record header of a ClientHello, then nothing.
    writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    started = time.monotonic()
    try:
        return await _time_until_closed(reader, started)
    finally:
        writer.close()


async def slow_reader(port: int, ctx: ssl.SSLContext) -> tuple[float, int]:
    """Pipelines requests as fast as the server reads them and never reads a response.
    Returns (seconds until cut, bytes the server accepted)."""
    sock = socket.socket()
    # A small receive window: the server's responses back up into its own buffer soon.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname="127.0.0.1")
    transport = writer.transport
    transport.set_write_buffer_limits(high=1 << 20)
    request = b"GET /v1/status HTTP/1.1\r\nHost: kes\r\n\r\n"
    budget = ROUTE_TIMEOUT + 3 * CUT_MARGIN
    started = time.monotonic()
    sent = 0
    try:
        transport.pause_reading()  # never read a response
        while not transport.is_closing():
            writer.write(request * 64)
            sent += 64 * len(request)
            left = budget - (time.monotonic() - started)
            try:
                await asyncio.wait_for(writer.drain(), max(left, 0.01))
            except TimeoutError:
                return math.inf, sent  # the server never cut the connection
    except (ConnectionError, ssl.SSLError, RuntimeError):
        pass  # cut by the server
    finally:
        writer.close()
    return time.monotonic() - started, sent


async def oversized(port: int, ctx: ssl.SSLContext, kind: str) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"
    )
    try:
        if kind == "header":
            writer.write(
                b"GET /v1/status HTTP/1.1\r\nHost: kes\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
            )
        else:
            body = b'{"plaintext":"' + b"A" * 1_000_100 + b'"}'
            writer.write(
                b"POST /v1/key/encrypt/soak HTTP/1.1\r\nHost: kes\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.drain()
        return await _read_response(reader)
    finally:
        writer.close()


def _server_rss_mb(kes: RunningServer) -> float:
    pids = [kes.proc.pid] + [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(kes.proc.pid)], capture_output=True, text=True
        ).stdout.split()
    ]
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


async def _gather(n: int, make: Callable[[], Awaitable[object]]) -> list[object]:
    return await asyncio.gather(*(make() for _ in range(n)), return_exceptions=True)


# ------------------------------------------------------------------------- the test
@pytest.mark.timeout(150)
def test_thousand_connections_for_a_minute_under_attack(kes: RunningServer, pki: PKI) -> None:
    ctx = _client_context(kes, pki)
    port = kes.port
    soak = Soak()
    rss: list[float] = []

    lags: list[tuple[float, float]] = []

    async def lag_monitor() -> None:
        """How late this client's own loop wakes up: its stalls inflate the latencies."""
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.05)
            lags.append((t, time.monotonic() - t - 0.05))

    async def scenario() -> dict[str, list[object]]:
        monitor = asyncio.ensure_future(lag_monitor())
        opened = asyncio.Semaphore(100)  # handshakes in flight while connecting
        until = time.monotonic() + SOAK_SECONDS
        clients = [
            asyncio.ensure_future(soak.connection(port, ctx, until, opened))
            for _ in range(CONNECTIONS)
        ]
        await asyncio.sleep(10)  # all connected and in their request loop
        rss.append(_server_rss_mb(kes))
        attack_started = time.monotonic()
        attacks = {
            "header dribble": _gather(ATTACKERS, lambda: header_dribbler(port, ctx)),
            "silent after handshake": _gather(ATTACKERS, lambda: silent_after_handshake(port, ctx)),
            "body never sent": _gather(ATTACKERS, lambda: body_withholder(port, ctx)),
            "handshake never finished": _gather(ATTACKERS, lambda: handshake_staller(port)),
            "responses never read": _gather(5, lambda: slow_reader(port, ctx)),
            "oversized header": _gather(10, lambda: oversized(port, ctx, "header")),
            "oversized body": _gather(10, lambda: oversized(port, ctx, "body")),
        }
        names = list(attacks)
        results = await asyncio.gather(*attacks.values())
        rss.append(_server_rss_mb(kes))
        outcome = dict(zip(names, results, strict=True))
        outcome["_attack_seconds"] = [time.monotonic() - attack_started]
        await asyncio.gather(*clients)
        rss.append(_server_rss_mb(kes))
        monitor.cancel()
        return outcome

    outcome = asyncio.run(scenario())
    attack_seconds = outcome.pop("_attack_seconds")[0]
    before = [lat for when, lat in soak.latencies]
    print(
        f"\n{CONNECTIONS} keep-alive connections for {SOAK_SECONDS:.0f} s: {soak.ok} requests, "
        f"{len(soak.errors)} errors, per connection min {min(soak.per_connection)}; latency "
        f"p50 {statistics.median(before) * 1000:.1f} ms, "
        f"p99 {statistics.quantiles(before, n=100)[98] * 1000:.1f} ms; "
        f"server RSS (2 workers + master) {', '.join(f'{r:.0f}' for r in rss)} MB; "
        f"attacks lasted {attack_seconds:.1f} s"
    )
    t0 = soak.latencies[0][0]
    for lo in range(0, int(SOAK_SECONDS) + 10, 5):
        window = [lat for when, lat in soak.latencies if lo <= when - t0 < lo + 5]
        lag = [lg for when, lg in lags if lo <= when - t0 < lo + 5]
        if len(window) > 2:
            p99 = statistics.quantiles(window, n=100)[98]
            print(
                f"  t+{lo:2d}s: {len(window)} req, p99 {p99 * 1000:.0f} ms, max "
                f"{max(window) * 1000:.0f} ms; this client's loop lag max "
                f"{max(lag, default=0) * 1000:.0f} ms"
            )
    for name, results in outcome.items():
        fails = [r for r in results if isinstance(r, BaseException)]
        shown = [r for r in results if not isinstance(r, BaseException)]
        if shown and isinstance(shown[0], float):
            print(f"  {name}: cut after {min(shown):.1f}–{max(shown):.1f} s, {len(fails)} failed")
        else:
            print(f"  {name}: {shown[:1]!r:.200} … {len(fails)} failed {fails[:1]!r:.300}")
    assert soak.errors == [], soak.errors[:5]
    assert len(soak.per_connection) == CONNECTIONS
    assert min(soak.per_connection) >= 20  # every connection kept being served
    for name, bound in [
        ("header dribble", HEADER_TIMEOUT),
        ("silent after handshake", HEADER_TIMEOUT),
        ("body never sent", ROUTE_TIMEOUT),
        ("handshake never finished", HANDSHAKE_TIMEOUT),
    ]:
        results = outcome[name]
        assert all(isinstance(r, float) for r in results), (name, results[:3])
        assert max(results) < bound + CUT_MARGIN, (name, max(results))  # cut, not left open
    for elapsed, sent in outcome["responses never read"]:  # type: ignore[misc]
        # the kernel buffers fill first (seconds of pipelined requests), then the
        # write deadline runs; a server that keeps reading is never cut (measured: not
        # within 46 s before the fix)
        assert elapsed < ROUTE_TIMEOUT + 2 * CUT_MARGIN, (elapsed, sent)
    for status, _headers, body in outcome["oversized header"]:  # type: ignore[misc]
        assert (status, body) == (431, b"431 Request Header Fields Too Large")
    for status, headers, body in outcome["oversized body"]:  # type: ignore[misc]
        assert (status, json.loads(body)) == (400, {"message": "invalid request body"})
        assert headers["connection"] == "close"


def test_server_raises_its_fd_soft_limit(tmp_path: Path, pki: PKI) -> None:
    """1,000 connections need more descriptors than the usual soft limit of 1,024:
    ``kes server`` raises its soft RLIMIT_NOFILE to the hard limit at start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = (1 << 20) if hard == resource.RLIM_INFINITY else hard
    if expected <= 1024:
        pytest.skip(f"hard RLIMIT_NOFILE is {hard}: nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # inherited by the server
    try:
        server = start_server(
            tmp_path, pki, config_yaml(pki, pki.client("admin").identity, tmp_path / "keys")
        )
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        limits = Path(f"/proc/{server.proc.pid}/limits").read_text().splitlines()
        line = next(x for x in limits if x.startswith("Max open files"))
        assert line.split()[3] == str(expected), line
    finally:
        server.stop()


def test_long_pipeline_is_answered_in_order(kes: RunningServer, pki: PKI) -> None:
    """500 pipelined requests in one write: answered in batches (other connections get
    their turn in between, ``EAGER_BATCH``), all of them, in order."""
    ctx = _client_context(kes, pki)
    count = 500
    requests = b"".join(
        b"GET /version HTTP/1.1\r\nHost: kes\r\n\r\n"
        if i % 2
        else b"GET /v1/key/describe/missing-%d HTTP/1.1\r\nHost: kes\r\n\r\n" % i
        for i in range(count)
    )

    async def scenario() -> list[int]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", kes.port, ssl=ctx, server_hostname="127.0.0.1"
        )
        writer.write(requests)
        statuses = [(await _read_response(reader))[0] for _ in range(count)]
        writer.close()
        return statuses

    assert asyncio.run(scenario()) == [200 if i % 2 else 404 for i in range(count)]
