"""A server under load, whichever it is (pykes or a yardstick): its process, port and
credentials, fresh certificates, and a start that waits for its ``ready`` line."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kesbench.pinning import pinned
from kesbench.stores import Backing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BenchServer:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    api_key: str
    ca_file: Path
    stderr_file: Path
    # kesload's client credentials: --api-key unless a certificate/key pair is given
    client_cert: Path | None = None
    client_key: Path | None = None
    enclave: str | None = None  # the Kes-Enclave kesload sends (a stateful server's)
    backing: Backing | None = None  # what its store runs on (OpenBao): stopped after it

    @property
    def client_args(self) -> list[str]:
        if self.client_cert is not None and self.client_key is not None:
            return ["--cert", str(self.client_cert), "--key", str(self.client_key)]
        return ["--api-key", self.api_key]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self, n: int = 2000) -> str:
        with suppress(OSError):
            return self.stderr_file.read_text(errors="replace")[-n:]
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # our own session only
                self.proc.wait()
        if self.backing is not None:
            self.backing.stop()


def write_tls_files(workdir: Path) -> Any:
    """A fresh self-signed server certificate for 127.0.0.1 (``server.crt``/``server.key``)
    and a fresh API key's client certificate (``client.crt``/``client.key``) in
    ``workdir``; returns the ``APIKey``."""
    from pykes.pki import APIKey, client_certificate, self_signed_server_certificate

    workdir.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = self_signed_server_certificate(["127.0.0.1"], ["localhost"])
    (workdir / "server.crt").write_bytes(cert_pem)
    (workdir / "server.key").write_bytes(key_pem)
    (workdir / "server.key").chmod(0o600)
    api_key = APIKey.generate()
    client_pem, client_key_pem = client_certificate(api_key)
    (workdir / "client.crt").write_bytes(client_pem)
    (workdir / "client.key").write_bytes(client_key_pem)
    (workdir / "client.key").chmod(0o600)
    return api_key


def client_ssl_context(workdir: Path) -> ssl.SSLContext:
    """Trusts ``workdir``'s server certificate and presents its client certificate."""
    ctx = ssl.create_default_context(cafile=str(workdir / "server.crt"))
    ctx.load_cert_chain(str(workdir / "client.crt"), str(workdir / "client.key"))
    return ctx


def start_until_ready(
    cmd: Sequence[str],
    name: str,
    workdir: Path,
    stderr_file: Path,
    server: Callable[[subprocess.Popen[bytes]], BenchServer],
) -> BenchServer:
    """Spawn ``cmd`` in its own session (stderr to ``stderr_file``), wrap it with
    ``server`` and wait for the ``ready`` line it prints on stdout once it listens."""
    with stderr_file.open("wb") as stderr:
        proc = subprocess.Popen(
            list(cmd),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=pinned("server"),
        )
    started = server(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode(errors="replace").strip()  # after every worker listens
    if line != "ready":
        started.stop()
        raise SystemExit(f"{name} failed to start:\n{started.stderr_tail()}")
    return started
