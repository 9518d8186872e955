"""The pykes server under test: its config (on any store of kesbench/stores.py), its
start with the bench key created (in the store's enclave) and checked, and its
start-up time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from kesbench.pinning import pinned
from kesbench.servers import BenchServer, client_ssl_context, free_port, write_tls_files
from kesbench.stores import FS, Backing, Store

#: The key every row works on (created by ``create_bench_key``, named to kesload).
KEY_NAME = "bench-key"


class ServerFiles(NamedTuple):
    api_key: str
    identity: str  # the admin's
    config: Path
    ca: Path  # the server's certificate
    backing: Backing | None  # what the store runs on, started (stop it with the server)


def write_server_files(workdir: Path, port: int, audit: bool, store: Store = FS) -> ServerFiles:
    """Certificates (``write_tls_files``), API key and config (keys on ``store``, whose
    backing server this starts) for one server."""
    api_key = write_tls_files(workdir)
    setup = store.setup(workdir)
    config = workdir / "config.yml"
    config.write_text(
        "version: v1\n"
        f"address: 127.0.0.1:{port}\n"
        "admin:\n"
        f"  identity: {api_key.identity}\n"
        "tls:\n"
        f"  key: {workdir / 'server.key'}\n"
        f"  cert: {workdir / 'server.crt'}\n"
        "log:\n"
        "  error: on\n"
        f"  audit: {'on' if audit else 'off'}\n"
        f"{setup.section}"
    )
    return ServerFiles(
        str(api_key), api_key.identity, config, workdir / "server.crt", setup.backing
    )


@dataclass(frozen=True)
class ServerOptions:
    workers: int
    audit: bool
    src: Path | None = None  # serve pykes from this source tree (PYTHONPATH) instead


def server_env(src: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", "")) if p)
    return env


def server_package_path(src: Path | None) -> str:
    """Where the server process will import pykes from."""
    done = subprocess.run(
        [sys.executable, "-c", "import pykes; print(pykes.__file__)"],
        capture_output=True,
        text=True,
        env=server_env(src),
        check=False,
    )
    return done.stdout.strip() or done.stderr.strip()[-200:]


def start_server(workdir: Path, opts: ServerOptions, store: Store = FS) -> BenchServer:
    """A pykes server keeping its keys on ``store``, with the bench key created (in the
    store's enclave, created first) and checked."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    files = write_server_files(workdir, port, opts.audit, store)
    kes = Path(sys.executable).parent / "kes"
    cmd = [str(kes), "server", "--config", str(files.config), "--addr", f"127.0.0.1:{port}"]
    cmd += ["--workers", str(opts.workers)]
    stderr_file = workdir / "server.stderr"
    try:
        with stderr_file.open("wb") as stderr:
            proc = subprocess.Popen(
                cmd,
                cwd=workdir,
                env=server_env(opts.src),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # audit events (if on) go to stdout: discard them
                stderr=stderr,
                start_new_session=True,
                preexec_fn=pinned("server"),
            )
    except BaseException:
        if files.backing is not None:
            files.backing.stop()
        raise
    server = BenchServer(
        proc,
        port,
        workdir,
        files.api_key,
        files.ca,
        stderr_file,
        enclave=store.enclave,
        backing=files.backing,
    )
    try:
        wait_ready(server)
        create_bench_key(server)
    except Exception as err:
        server.stop()
        raise SystemExit(
            f"bench setup against pykes failed: {type(err).__name__}: {err}\n"
            f"server stderr (tail):\n{server.stderr_tail()}"
        ) from None
    except BaseException:
        server.stop()
        raise
    return server


def _client(server: BenchServer, http2: bool = False) -> Any:
    """An httpx client of the admin, in the server's enclave (if it has one)."""
    import httpx

    ctx = client_ssl_context(server.workdir)  # written by write_server_files
    headers = {"Kes-Enclave": server.enclave} if server.enclave else None
    return httpx.Client(base_url=server.url, verify=ctx, http2=http2, timeout=10, headers=headers)


def wait_ready(server: BenchServer, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise SystemExit(f"pykes exited with {server.proc.returncode}:\n{server.stderr_tail()}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", server.port), 0.5):
            return
        time.sleep(0.1)
    raise SystemExit(f"pykes did not listen within {timeout:.0f}s:\n{server.stderr_tail()}")


def create_bench_key(server: BenchServer) -> None:
    """Create the bench key (in the server's enclave, created first) and check a
    generate → decrypt round trip (HTTP/1.1 and 2)."""
    for http2 in (False, True):
        with _client(server, http2=http2) as client:
            if not http2 and server.enclave:
                r = client.put(f"/v1/enclave/create/{server.enclave}")
                if r.status_code != 200:
                    raise SystemExit(f"creating the bench enclave failed: {r.status_code} {r.text}")
            if not http2:
                r = client.post(f"/v1/key/create/{KEY_NAME}")
                if r.status_code != 200:
                    raise SystemExit(f"creating the bench key failed: {r.status_code} {r.text}")
            r = client.post(f"/v1/key/generate/{KEY_NAME}", content=b"{}")
            r.raise_for_status()
            dek = r.json()
            r = client.post(
                f"/v1/key/decrypt/{KEY_NAME}",
                content=json.dumps({"ciphertext": dek["ciphertext"]}).encode(),
            )
            r.raise_for_status()
            if r.json()["plaintext"] != dek["plaintext"]:
                raise SystemExit("decrypt returned a different plaintext")
            want = "HTTP/2" if http2 else "HTTP/1.1"
            if r.http_version != want:
                raise SystemExit(f"expected {want}, the server negotiated {r.http_version}")


def measure_startup(workdir: Path, opts: ServerOptions, runs: int) -> dict[str, Any]:
    """Seconds from spawning ``kes server --config … --workers N`` to the first 200 from
    ``GET /v1/ready`` (polled over mTLS every 5 ms), ``runs`` times with a fresh server."""
    import httpx

    times: list[float] = []
    for i in range(runs):
        wd = workdir / f"startup{i}"
        wd.mkdir(parents=True, exist_ok=True)
        port = free_port()
        api_key, _identity, config, ca, _none = write_server_files(wd, port, opts.audit)
        ctx = client_ssl_context(wd)
        kes = Path(sys.executable).parent / "kes"
        cmd = [str(kes), "server", "--config", str(config), "--addr", f"127.0.0.1:{port}"]
        cmd += ["--workers", str(opts.workers)]
        stderr_file = wd / "server.stderr"
        with httpx.Client(verify=ctx, timeout=2) as client, stderr_file.open("wb") as stderr:
            t0 = time.monotonic()
            proc = subprocess.Popen(
                cmd,
                cwd=wd,
                env=server_env(opts.src),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
            server = BenchServer(proc, port, wd, api_key, ca, stderr_file)
            try:
                while True:
                    if not server.alive():
                        raise SystemExit(f"kes server exited at start-up:\n{server.stderr_tail()}")
                    if time.monotonic() - t0 > 60:
                        raise SystemExit("kes server was not ready within 60 s")
                    try:
                        if client.get(f"{server.url}/v1/ready").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.005)
                times.append(time.monotonic() - t0)
            finally:
                server.stop()
        print(f"    start-up {i + 1}/{runs}: {times[-1]:.3f} s", flush=True)
    return {
        "runs_s": [round(t, 3) for t in times],
        "min_s": round(min(times), 3) if times else None,
        "max_s": round(max(times), 3) if times else None,
        "workers": opts.workers,
    }
