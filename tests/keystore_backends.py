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
import importlib
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

import replay_server
import vault_harness
from pykes.config import (
    AWSKeyStoreConfig,
    EntrustKeyStoreConfig,
    FortanixKeyStoreConfig,
    GemaltoKeyStoreConfig,
)
from pykes.keystore import (
    FSKeyStore,
    KeyStore,
    MemoryKeyStore,
    aws,
    entrust,
    fortanix,
    gemalto,
    vault,
)

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


# ------------------------------------------------------------------------ replayed vendor APIs
# Fortanix, CipherTrust and Entrust cannot run here: tests/replay_server.py serves their
# documented REST exchanges over real HTTPS with the test PKI's server certificate.
FORTANIX_API_KEY = "NjQ5OWQ3NDktYTFhMy00ZjQ0LWI2ZGYtZmI0YjRlMDgzYTU3OnJlcGxheQ=="
GEMALTO_REFRESH_TOKEN = "replay-refresh-token"
ENTRUST_VAULT_ID = "2c9a0b42-4e51-4d8a-9c7f-0d1f5a6b7c80"
ENTRUST_BOX_ID = "kes-box"
ENTRUST_USER = "kes"
ENTRUST_PASSWORD = "replay-password"


@dataclass
class ReplayService:
    """A running replay server and the keystore config section pointing at it."""

    server: replay_server.ReplayServer
    config: Any


def fortanix_config(url: str, ca: Path | str, **overrides: str) -> FortanixKeyStoreConfig:
    values = {"endpoint": url, "group_id": "grp-kes", "api_key": FORTANIX_API_KEY}
    return FortanixKeyStoreConfig(**{**values, "ca": str(ca), **overrides})


def gemalto_config(url: str, ca: Path | str, **overrides: str) -> GemaltoKeyStoreConfig:
    values = {"endpoint": url, "token": GEMALTO_REFRESH_TOKEN, "domain": "root"}
    return GemaltoKeyStoreConfig(**{**values, "ca": str(ca), **overrides})


def entrust_config(url: str, ca: Path | str, **overrides: str) -> EntrustKeyStoreConfig:
    values = {
        "endpoint": url,
        "vault_id": ENTRUST_VAULT_ID,
        "box_id": ENTRUST_BOX_ID,
        "username": ENTRUST_USER,
        "password": ENTRUST_PASSWORD,
    }
    return EntrustKeyStoreConfig(**{**values, "ca": str(ca), **overrides})


def fortanix_emulator() -> replay_server.FortanixEmulator:
    return replay_server.FortanixEmulator(FORTANIX_API_KEY)


def gemalto_emulator(duration: int = 300) -> replay_server.GemaltoEmulator:
    return replay_server.GemaltoEmulator(GEMALTO_REFRESH_TOKEN, duration)


def entrust_emulator() -> replay_server.EntrustEmulator:
    return replay_server.EntrustEmulator(
        ENTRUST_VAULT_ID, ENTRUST_BOX_ID, ENTRUST_USER, ENTRUST_PASSWORD
    )


def serve_replay(
    pki: Any, emulator: replay_server.Emulator
) -> Iterator[replay_server.ReplayServer]:
    """Fixture body: run a replay server for ``emulator`` and stop it afterwards."""
    server = replay_server.start(emulator, pki.server_cert, pki.server_key)
    try:
        yield server
    finally:
        server.stop()


def _replay_service(
    pki: Any, emulator: replay_server.Emulator, make_config: Callable[..., Any]
) -> Iterator[ReplayService]:
    for server in serve_replay(pki, emulator):
        yield ReplayService(server, make_config(server.url, pki.server_cert))


@pytest.fixture(scope="session", name="fortanix_replay")
def fortanix_replay_fixture(pki: Any) -> Iterator[ReplayService]:
    """A replayed Fortanix DSM API and the keystore config for it."""
    yield from _replay_service(pki, fortanix_emulator(), fortanix_config)


@pytest.fixture(scope="session", name="gemalto_replay")
def gemalto_replay_fixture(pki: Any) -> Iterator[ReplayService]:
    """A replayed CipherTrust Manager API and the keystore config for it."""
    yield from _replay_service(pki, gemalto_emulator(), gemalto_config)


@pytest.fixture(scope="session", name="entrust_replay")
def entrust_replay_fixture(pki: Any) -> Iterator[ReplayService]:
    """A replayed Entrust KeyControl API and the keystore config for it."""
    yield from _replay_service(pki, entrust_emulator(), entrust_config)


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
      KeyNotFoundError (allowed by docs/compat/keystore.md §1; AWS and Vault do this).
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


async def _open_fortanix(env: BackendEnv) -> KeyStore:
    return await fortanix.connect(env.services["fortanix_replay"].config)


async def _open_gemalto(env: BackendEnv) -> KeyStore:
    return await gemalto.connect(env.services["gemalto_replay"].config)


async def _open_entrust(env: BackendEnv) -> KeyStore:
    return await entrust.connect(env.services["entrust_replay"].config)


def _reset_replay(fixture: str) -> Callable[[BackendEnv], Awaitable[None]]:
    async def reset(env: BackendEnv) -> None:
        env.services[fixture].server.reset()

    return reset


BACKENDS: dict[str, Backend] = {
    "memory": Backend(_open_memory, shared=False),
    "fs": Backend(_open_fs),
    "aws": Backend(_open_aws, needs=("moto_endpoint",), reset=_reset_aws, silent_delete=True),
    # Unlike the Go server, our Vault backend reports deleting a missing key.
    "vault": Backend(_open_vault, needs=("vault_kv2",)),
    # Replayed vendor APIs (tests/replay_server.py); Gemalto deletes 404 → success.
    "fortanix": Backend(
        _open_fortanix, needs=("fortanix_replay",), reset=_reset_replay("fortanix_replay")
    ),
    "gemalto": Backend(
        _open_gemalto,
        needs=("gemalto_replay",),
        reset=_reset_replay("gemalto_replay"),
        silent_delete=True,
    ),
    "entrust": Backend(
        _open_entrust, needs=("entrust_replay",), reset=_reset_replay("entrust_replay")
    ),
}


# ------------------------------------------------------------------------ GCP / Azure
# BEGIN cloud_replay block: GCP Secret Manager / Azure Key Vault replay servers
# (tests/cloud_replay.py). Self-contained; registers its BACKENDS entries below.
@dataclass
class CloudReplay:
    """A running cloud replay server, the keystore config for it and the extra
    ``connect`` options (token endpoint, trusted CA)."""

    server: Any
    config: Any
    options: dict[str, Any]


def _cloud_replay(
    server: Any,
    make_config: Callable[[Any], Any],
    make_options: Callable[[Any, Path], dict[str, Any]],
    pki: Any,
) -> Iterator[CloudReplay]:
    """Fixture body: yield ``server`` with its config and connect options, then stop it."""
    try:
        yield CloudReplay(server, make_config(server), make_options(server, pki.server_cert))
    finally:
        server.stop()


@pytest.fixture(scope="session", name="gcp_replay")
def gcp_replay_fixture(pki: Any) -> Iterator[CloudReplay]:
    """A replayed Google Cloud Secret Manager REST API (plus its OAuth2 token URI)."""
    import cloud_replay

    account = cloud_replay.make_service_account()
    server = cloud_replay.GCPSecretManager(
        pki.server_cert, pki.server_key, account, cloud_replay.GCP_PROJECT
    )
    yield from _cloud_replay(server, cloud_replay.gcp_config, cloud_replay.gcp_options, pki)


def _open_cloud(backend: str) -> Callable[[BackendEnv], Awaitable[KeyStore]]:
    """Open ``pykes.keystore.<backend>`` against the ``<backend>_replay`` fixture."""

    async def open_store(env: BackendEnv) -> KeyStore:
        module = importlib.import_module(f"pykes.keystore.{backend}")
        replay: CloudReplay = env.services[f"{backend}_replay"]
        store: KeyStore = await module.connect(replay.config, **replay.options)
        return store

    return open_store


BACKENDS["gcp"] = Backend(
    _open_cloud("gcp"), needs=("gcp_replay",), reset=_reset_replay("gcp_replay")
)


@pytest.fixture(scope="session", name="azure_replay")
def azure_replay_fixture(pki: Any) -> Iterator[CloudReplay]:
    """A replayed Azure Key Vault secrets REST API (plus its token endpoint)."""
    import cloud_replay

    server = cloud_replay.azure_vault(pki.server_cert, pki.server_key)
    yield from _cloud_replay(server, cloud_replay.azure_config, cloud_replay.azure_options, pki)


# Unlike the Go server, our Azure backend reports deleting a missing key.
BACKENDS["azure"] = Backend(
    _open_cloud("azure"), needs=("azure_replay",), reset=_reset_replay("azure_replay")
)
# END cloud_replay block


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
