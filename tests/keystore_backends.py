"""Keystore backends for the shared contract suite (tests/test_keystore_contract.py),
plus the real services they need (a moto AWS server process).

:data:`BACKENDS` maps a backend name to a :class:`Backend`: an async factory that
returns a connected keystore, the names of the session fixtures (real servers) it
needs, and the few behaviours the spec leaves backend-dependent. Adding a backend is
one entry in that dict plus its factory.

Fixtures defined here are registered by importing them into a test module (pytest
only sees fixtures in a module's namespace or in conftest.py), e.g.
``from keystore_backends import moto_endpoint_fixture  # noqa: F401``. Each importing
module gets its own fixture definition, so the moto process itself is a process-wide
singleton: it is started on first use and stopped at session end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import vault_harness
from pykes.config import AWSKeyStoreConfig
from pykes.keystore import FSKeyStore, KeyStore, MemoryKeyStore, aws, vault

MOTO_REGION = "us-east-1"
MOTO_ACCESS_KEY = "testing"
MOTO_SECRET_KEY = "testing"


# ------------------------------------------------------------------------ moto server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Run in the child itself (not via preexec_fn, which is unsafe with threads): on Linux
# ask for SIGTERM when pytest dies without running its finalizers, then serve.
_MOTO_MAIN = (
    "import ctypes, sys\n"
    "if sys.platform == 'linux':\n"
    "    try: ctypes.CDLL(None).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM\n"
    "    except Exception: pass\n"
    "from moto.server import main\n"
    "main()\n"
)


@dataclass
class MotoServer:
    """A ``moto_server`` child process listening on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_moto(log_dir: Path, env: Mapping[str, str] | None = None) -> MotoServer:
    """Start a moto server process and wait until it accepts TCP connections.

    Readiness is probed with bare TCP connects, not HTTP requests, so a server started
    with ``INITIAL_NO_AUTH_ACTION_COUNT`` has all its unauthenticated actions left.
    """
    port = _free_port()
    log = log_dir / f"moto-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _MOTO_MAIN] + ["-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
    server = MotoServer(proc, port, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("moto server did not start")


_shared_moto: MotoServer | None = None


def shared_moto(log_dir: Path) -> MotoServer:
    """The process-wide moto server (started on first use)."""
    global _shared_moto
    if _shared_moto is None or _shared_moto.proc.poll() is not None:
        _shared_moto = start_moto(log_dir)
    return _shared_moto


def stop_shared_moto() -> None:
    global _shared_moto
    if _shared_moto is not None:
        _shared_moto.stop()
        _shared_moto = None


@pytest.fixture(scope="session", name="moto_endpoint")
def moto_endpoint_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the shared real moto server (``http://127.0.0.1:<port>``)."""
    yield shared_moto(tmp_path_factory.getbasetemp()).endpoint
    stop_shared_moto()  # session end: every user of the server is done


async def reset_moto(endpoint: str) -> None:
    """Drop all state of a moto server (its ``/moto-api/reset`` endpoint)."""
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(f"{endpoint}/moto-api/reset")
        r.raise_for_status()


def aws_config(endpoint: str, **overrides: str) -> AWSKeyStoreConfig:
    """The ``keystore.aws.secretsmanager`` section for a moto endpoint."""
    values = {
        "endpoint": endpoint,
        "region": MOTO_REGION,
        "access_key": MOTO_ACCESS_KEY,
        "secret_key": MOTO_SECRET_KEY,
        **overrides,
    }
    return AWSKeyStoreConfig(**values)


# ------------------------------------------------------------------------ OpenBao
@pytest.fixture(scope="session", name="vault_kv2")
def vault_kv2_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A K/V v2 keystore config on a real OpenBao dev server (or VAULT_ADDR/VAULT_TOKEN),
    mounted once per session; each test gets its own ``prefix``."""
    server = vault_harness.external_server() or vault_harness.start_dev_server(
        tmp_path_factory.mktemp("bao-contract")
    )
    try:
        yield vault_harness.kes_config(server, 2)
    finally:
        server.cleanup()
        server.stop()


# ------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class BackendEnv:
    """What a factory gets: a fresh per-test directory and the resolved services."""

    tmp_path: Path
    services: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Backend:
    """One keystore backend under the contract suite.

    * ``open``: returns a connected keystore; called once or more per test, every
      call must see the same (initially empty) store when ``shared`` is true.
    * ``needs``: session fixture names resolved before the test and passed in
      ``BackendEnv.services`` (real servers; started lazily, only if selected).
    * ``reset``: makes the store empty before each test (e.g. wipes a shared server).
    * ``shared``: separate ``open`` calls see each other's keys (all real backends;
      not the in-memory store).
    * ``silent_delete``: deleting a missing name succeeds instead of raising
      KeyNotFoundError (allowed by spec/keystore.md §1; AWS and Vault do this).
    """

    open: Callable[[BackendEnv], Awaitable[KeyStore]]
    needs: tuple[str, ...] = ()
    reset: Callable[[BackendEnv], Awaitable[None]] | None = None
    shared: bool = True
    silent_delete: bool = False


async def _open_memory(env: BackendEnv) -> KeyStore:
    return MemoryKeyStore()


async def _open_fs(env: BackendEnv) -> KeyStore:
    return FSKeyStore(str(env.tmp_path / "keys"))


async def _open_aws(env: BackendEnv) -> KeyStore:
    return await aws.connect(aws_config(env.services["moto_endpoint"]))


async def _open_vault(env: BackendEnv) -> KeyStore:
    config = dataclasses.replace(env.services["vault_kv2"], prefix=env.tmp_path.name)
    return await vault.connect(config)


async def _reset_aws(env: BackendEnv) -> None:
    await reset_moto(env.services["moto_endpoint"])


BACKENDS: dict[str, Backend] = {
    "memory": Backend(_open_memory, shared=False),
    "fs": Backend(_open_fs),
    "aws": Backend(_open_aws, needs=("moto_endpoint",), reset=_reset_aws, silent_delete=True),
    # Unlike the Go server, our Vault backend reports deleting a missing key.
    "vault": Backend(_open_vault, needs=("vault_kv2",)),
}


@dataclass(frozen=True)
class BackendCase:
    """A backend bound to one test: ``run(scenario)`` opens a store, awaits
    ``scenario(store)`` and closes the store, all in one fresh event loop."""

    name: str
    backend: Backend
    env: BackendEnv

    async def open(self) -> KeyStore:
        return await self.backend.open(self.env)

    def run(self, scenario: Callable[[KeyStore], Awaitable[None]]) -> None:
        async def main() -> None:
            if self.backend.reset is not None:
                await self.backend.reset(self.env)
            store = await self.open()
            try:
                await scenario(store)
            finally:
                await store.close()

        asyncio.run(main())
