"""SIGKILL of the server during 1,000 concurrent creates (issue 9): no corrupt, partial
or duplicate key file, and every create a client saw succeed is on disk."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from conftest import PKI, config_yaml, start_server
from pykes.crypto import decode_key_version
from pykes.keystore.fs import TEMP_PREFIX


def test_sigkill_during_concurrent_creates(tmp_path: Path, pki: PKI) -> None:
    admin = pki.client("admin")
    keys = tmp_path / "keys"
    server = start_server(tmp_path, pki, config_yaml(pki, admin.identity, keys), workers=2)
    acknowledged: list[str] = []
    lock = threading.Lock()
    names = iter(range(1000))

    def creator() -> None:
        with server.client(admin) as c:
            while True:
                with lock:
                    i = next(names, None)
                if i is None:
                    return
                try:
                    r = c.post(f"/v1/key/create/crash-{i:04d}")
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 200:
                    with lock:
                        acknowledged.append(f"crash-{i:04d}")

    threads = [threading.Thread(target=creator, daemon=True) for _ in range(16)]
    try:
        time.sleep(0.3)
        for t in threads:
            t.start()
        while len(acknowledged) < 200:  # well inside the run
            time.sleep(0.01)
        workers = _children(server.proc.pid)
        assert len(workers) == 2
        for pid in [*workers, server.proc.pid]:
            _kill(pid)  # the workers and the master at once: a crash of the whole node
        server.proc.wait()
        for t in threads:
            t.join(20)
    finally:
        server.stop()
    files = {p.name: p for p in keys.iterdir() if not p.name.startswith(TEMP_PREFIX)}
    assert len(acknowledged) < 1000  # the crash really interrupted the run
    assert set(acknowledged) <= set(files)  # nothing acknowledged is lost
    for name, path in files.items():  # every key file is whole and decodes
        key = decode_key_version(path.read_bytes())
        assert key.created_by == admin.identity, name
        assert path.stat().st_mode & 0o777 == 0o600
    assert len(files) == len(set(files))


def _children(pid: int) -> list[int]:
    import subprocess

    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _kill(pid: int) -> None:
    import contextlib
    import os

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
