"""``kes log`` and ``kes metric`` stop on SIGINT however they were started: a background
job of a non-interactive shell (``make test > log &``) inherits SIGINT *ignored*, and
Go's CLI (signal.NotifyContext) still stops on it — so must ours (docs/compat/cli.md: Ctrl-C
exits 1, silently)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from conftest import PKI, kes_command
from test_cli_support import KesServer, start_kes


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[KesServer]:
    server = start_kes(tmp_path_factory.mktemp("cli-interrupt"), pki)
    yield server
    server.stop()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a script does


@pytest.mark.parametrize(
    "args",
    [("log", "--json"), ("log", "--error"), ("metric", "--rate", "200ms")],
    ids=["log-audit", "log-error", "metric"],
)
def test_stops_on_sigint_inherited_as_ignored(kes: KesServer, args: tuple[str, ...]) -> None:
    proc = subprocess.Popen(
        kes_command(*args),
        env=kes.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=_ignore_sigint,
    )
    try:
        if args[0] == "metric":
            assert proc.stdout is not None and proc.stdout.readline().startswith("{")
        else:
            time.sleep(1.5)  # connected to the stream and waiting for events
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 1
    assert proc.stderr is not None and proc.stderr.read() == ""
