"""``kes server --dev`` on a free port for the tests of what it prints (no tests here):
started as ``make run`` starts it, read up to the banner's last line."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from conftest import free_port, kes_command


@contextmanager
def dev_process(env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str, int]]:
    """(process, banner up to "=> Server is up and running...", port); stopped on exit
    if the test has not stopped it. ``env`` None: this process's environment."""
    port = free_port()
    proc = subprocess.Popen(
        kes_command("server", "--dev", "--addr", f"127.0.0.1:{port}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        banner = ""
        while "=> Server is up and running..." not in banner:
            line = proc.stdout.readline()
            assert line, banner
            banner += line
        yield proc, banner, port
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


@contextmanager
def dev_server(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """(banner up to "=> Server is up and running...", port); stopped on exit."""
    with dev_process(env) as (_proc, banner, port):
        yield banner, port
