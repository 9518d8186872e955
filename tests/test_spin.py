"""Spin-polling after an answer (wire/spin.py, issue 7): a worker with few connections
keeps its event loop polling for a moment after it answers, instead of sleeping until
the next request wakes it; a worker with many connections, or a zero window, sleeps.

The server tests look at the worker's CPU time after one request, with a 300 ms
window: a spinning worker burns CPU with nobody asking, a sleeping one burns none. The
margins are wide (≥ 60 ms against ≤ 30 ms), so this tests what the loop does, not how
fast anything is."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import pytest
import uvloop

from conftest import PKI, RunningServer, config_yaml, start_server
from pykes.wire import spin

WINDOW_US = 300_000  # the test servers' spin window (PYKES_SPIN_US): 0.3 s
SPINNING_MIN_S = 0.06
SLEEPING_MAX_S = 0.03


# ------------------------------------------------------------------ the Spinner
def _run(coro_fn) -> None:
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(coro_fn(loop))
    finally:
        loop.close()


def test_a_kick_keeps_the_loop_polling_for_the_window_then_stops() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        spinner = spin.Spinner(loop, window=0.05)
        spinner.kick(1)
        assert spinner.spinning
        await asyncio.sleep(0.01)
        turns = spinner.turns
        assert turns > 10, f"the loop came back to poll only {turns} times in 10 ms"
        await asyncio.sleep(0.1)
        assert not spinner.spinning
        stopped = spinner.turns
        await asyncio.sleep(0.02)
        assert spinner.turns == stopped, "it kept polling after the window"

    _run(body)


def test_each_kick_extends_the_window() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        spinner = spin.Spinner(loop, window=0.03)
        spinner.kick(1)
        first = spinner.until
        await asyncio.sleep(0.02)
        spinner.kick(1)
        assert spinner.until > first + 0.015
        await asyncio.sleep(0.02)  # past the first window, inside the second
        assert spinner.spinning
        await asyncio.sleep(0.05)
        assert not spinner.spinning

    _run(body)


def test_many_connections_or_a_zero_window_never_spin() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        busy = spin.Spinner(loop, window=0.05)
        busy.kick(spin.MAX_CONNECTIONS + 1)
        off = spin.Spinner(loop, window=0.0)
        off.kick(1)
        await asyncio.sleep(0.01)
        assert not busy.spinning and busy.turns == 0
        assert not off.spinning and off.turns == 0

    _run(body)


def test_spins_that_catch_nothing_rest_longer_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spin, "REVIEW_SPINS", 16)
    monkeypatch.setattr(spin, "MIN_REST_SECONDS", 0.05)

    async def body(loop: asyncio.AbstractEventLoop) -> None:
        spinner = spin.Spinner(loop, window=0.002)

        async def spins_in_vain() -> None:
            for _ in range(spin.REVIEW_SPINS):  # a client whose requests come 5 ms apart
                spinner.kick(1)
                assert spinner.spinning
                await asyncio.sleep(0.005)

        await spins_in_vain()
        spinner.kick(1)
        assert not spinner.spinning, "it kept spinning after 16 spins that caught nothing"
        assert spinner.rest == 0.1  # the next rest is twice as long
        await asyncio.sleep(0.06)
        await spins_in_vain()  # it tried again after 50 ms, in vain again
        assert spinner.rest == 0.2
        await asyncio.sleep(0.06)
        spinner.kick(1)
        assert not spinner.spinning, "the second rest was not longer than the first"
        await asyncio.sleep(0.05)
        spinner.kick(1)
        assert spinner.spinning, "it did not try again after its rest"

    _run(body)


def test_spins_that_catch_requests_keep_spinning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spin, "REVIEW_SPINS", 16)

    async def body(loop: asyncio.AbstractEventLoop) -> None:
        spinner = spin.Spinner(loop, window=0.01)
        for _ in range(3 * spin.REVIEW_SPINS):
            spinner.kick(1)
            await asyncio.sleep(0)  # the next request lands during the spin
            spinner.kick(1)
            await asyncio.sleep(0.015)  # then a pause: the spin ends
        spinner.kick(1)
        assert spinner.spinning
        assert spinner.rest == spin.MIN_REST_SECONDS

    _run(body)


def test_one_spinner_per_loop() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        assert spin.spinner_of(loop) is spin.spinner_of(loop)
        assert spin.spinner_of(loop).loop is loop

    _run(body)
    loops = [uvloop.new_event_loop() for _ in range(2)]
    try:
        assert spin.spinner_of(loops[0]) is not spin.spinner_of(loops[1])
    finally:
        for loop in loops:
            loop.close()


# ------------------------------------------------------------------ a real server
def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (the workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


async def _requests(kes: RunningServer, ctx: ssl.SSLContext, idle_connections: int) -> float:
    """Open ``idle_connections`` more, answer one /version over one keep-alive
    connection, and return the server's CPU seconds over the next window."""
    idle = [
        await asyncio.open_connection("127.0.0.1", kes.port, ssl=ctx)
        for _ in range(idle_connections)
    ]
    reader, writer = await asyncio.open_connection("127.0.0.1", kes.port, ssl=ctx)
    try:
        await asyncio.sleep(0.5)  # handshakes and their spins are over
        before = _tree_cpu_seconds(kes.proc.pid)
        writer.write(b"GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        await asyncio.sleep(WINDOW_US / 1e6 + 0.1)
        return _tree_cpu_seconds(kes.proc.pid) - before
    finally:
        for _, w in [*idle, (reader, writer)]:
            w.close()


@pytest.fixture
def spin_server(tmp_path: Path, pki: PKI, monkeypatch: pytest.MonkeyPatch):
    def start(window_us: int) -> RunningServer:
        monkeypatch.setenv("PYKES_SPIN_US", str(window_us))
        admin = pki.client("admin")
        return start_server(tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"))

    return start


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_worker_with_one_connection_spins_after_answering(spin_server, pki: PKI) -> None:
    kes = spin_server(WINDOW_US)
    try:
        ctx = kes.ssl_context(pki.client("admin"))
        alone = asyncio.run(_requests(kes, ctx, idle_connections=0))
        crowded = asyncio.run(_requests(kes, ctx, idle_connections=spin.MAX_CONNECTIONS))
    finally:
        kes.stop()
    assert alone >= SPINNING_MIN_S, f"one connection: {alone:.3f} s of CPU after answering"
    assert crowded <= SLEEPING_MAX_S, (
        f"{spin.MAX_CONNECTIONS + 1} connections: {crowded:.3f} s of CPU after answering"
    )


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_zero_window_turns_spinning_off(spin_server, pki: PKI) -> None:
    kes = spin_server(0)
    try:
        used = asyncio.run(_requests(kes, kes.ssl_context(pki.client("admin")), 0))
    finally:
        kes.stop()
    assert used <= SLEEPING_MAX_S, f"PYKES_SPIN_US=0: {used:.3f} s of CPU after answering"
