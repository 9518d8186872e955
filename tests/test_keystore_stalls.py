"""A network keystore whose server accepts connections and never answers must fail
within its configured timeouts and never block the event loop (docs/compat/keystore.md §4).

Each backend is pointed at :class:`HangingServer` (a real TCP listener on 127.0.0.1
that accepts and holds every connection without sending a byte): plain HTTP for
Vault and AWS, HTTPS (a TLS handshake that never completes) for the others. The
store is constructed directly with short timeouts — ``connect()`` would run its own
start-up probe against the hanging server first. The rest of each config (auth, CA,
GCP/Azure token endpoints) comes from the session fixtures of the real/replay
servers, so authentication itself works and only the data endpoint stalls.

While ``status()`` and ``get()`` run, a ticker task on the same loop records the
largest gap between its 10 ms sleeps; a blocking call would stretch it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from keystore_backends import (  # noqa: F401
    BACKENDS,
    aws_config,
    azure_replay_fixture,
    entrust_replay_fixture,
    fortanix_replay_fixture,
    gcp_replay_fixture,
    gemalto_replay_fixture,
    moto_endpoint_fixture,
    vault_kv2_fixture,
)
from pykes.errors import KeyStoreUnreachable
from pykes.keystore import KeyStore

TICK = 0.01
MAX_GAP = 0.3  # a blocked loop stalls ≥ 0.4 s (the per-request timeout); margin for a loaded CI
REQUEST_TIMEOUT = 0.4  # per request / per attempt
ATTEMPTS = 2  # the httpx vendor backends retry a failed request this often in total
BACKOFF = 0.05
OPERATION_TIMEOUT = 1.0  # the SDK backends' (aws, gcp, azure) overall deadline
MARGIN = 1.0


class HangingServer:
    """Accepts TCP connections on 127.0.0.1 and never reads or writes."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="hanging-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)
            self.accepted += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._sock.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.stop()


@dataclass(frozen=True)
class Stalled:
    """A store pointed at the hanging server, the errors it may raise and the bound
    (seconds) within which one call must fail; ``floor`` is the shortest plausible
    failure time (the call really waited for the server)."""

    store: KeyStore
    errors: tuple[type[BaseException], ...]
    bound: float
    floor: float


def _vendor_bound() -> float:
    return ATTEMPTS * REQUEST_TIMEOUT + (ATTEMPTS - 1) * BACKOFF * 4 + MARGIN


async def _vault(services: dict[str, Any], url: str) -> Stalled:
    from pykes.keystore import vault
    from pykes.vault.client import client_for
    from pykes.vault.http import VaultError

    config = dataclasses.replace(services["vault_kv2"], endpoint=f"http://{url}")
    store = vault.VaultKeyStore(config, client_for(config, timeout=REQUEST_TIMEOUT))
    return Stalled(store, (KeyStoreUnreachable, VaultError), REQUEST_TIMEOUT + MARGIN, 0.3)


async def _aws(services: dict[str, Any], url: str) -> Stalled:
    from pykes.keystore import aws

    store = await asyncio.to_thread(  # the constructor builds a boto3 client (blocking)
        aws.AWSSecretsManagerKeyStore,
        aws_config(f"http://{url}"),
        connect_timeout=REQUEST_TIMEOUT,
        read_timeout=REQUEST_TIMEOUT,
        max_attempts=ATTEMPTS,
        operation_timeout=OPERATION_TIMEOUT,
    )
    return Stalled(store, (KeyStoreUnreachable, aws.AWSError), OPERATION_TIMEOUT + MARGIN, 0.3)


async def _gcp(services: dict[str, Any], url: str) -> Stalled:
    from pykes.keystore import gcp

    replay = services["gcp_replay"]
    config = dataclasses.replace(replay.config, endpoint=url)
    store = await asyncio.to_thread(  # loads the service account (blocking)
        gcp.GCPSecretManagerKeyStore,
        config,
        **{
            **replay.options,
            "call_timeout": REQUEST_TIMEOUT,
            "operation_timeout": OPERATION_TIMEOUT,
        },
    )
    return Stalled(store, (KeyStoreUnreachable, gcp.GCPError), OPERATION_TIMEOUT + MARGIN, 0.3)


async def _azure(services: dict[str, Any], url: str) -> Stalled:
    from pykes.keystore import azure

    replay = services["azure_replay"]
    config = dataclasses.replace(replay.config, endpoint=f"https://{url}")
    store = azure.AzureKeyVaultKeyStore(
        config,
        **{
            **replay.options,
            "connect_timeout": REQUEST_TIMEOUT,
            "read_timeout": REQUEST_TIMEOUT,
            "operation_timeout": OPERATION_TIMEOUT,
        },
    )
    return Stalled(store, (KeyStoreUnreachable, azure.AzureError), OPERATION_TIMEOUT + MARGIN, 0.3)


def _vendor(
    module: str, fixture: str, cls: str, error: str
) -> Callable[[dict[str, Any], str], Awaitable[Stalled]]:
    async def build(services: dict[str, Any], url: str) -> Stalled:
        import importlib

        mod = importlib.import_module(f"pykes.keystore.{module}")
        config = dataclasses.replace(services[fixture].config, endpoint=f"https://{url}")
        store = getattr(mod, cls)(
            config, timeout=REQUEST_TIMEOUT, max_attempts=ATTEMPTS, backoff=BACKOFF
        )
        errors = (KeyStoreUnreachable, getattr(mod, error))
        return Stalled(store, errors, _vendor_bound(), REQUEST_TIMEOUT * 0.8)

    return build


FACTORIES: dict[str, Callable[[dict[str, Any], str], Awaitable[Stalled]]] = {
    "vault": _vault,
    "aws": _aws,
    "gcp": _gcp,
    "azure": _azure,
    "fortanix": _vendor("fortanix", "fortanix_replay", "FortanixKeyStore", "FortanixError"),
    "gemalto": _vendor("gemalto", "gemalto_replay", "GemaltoKeyStore", "GemaltoError"),
    "entrust": _vendor("entrust", "entrust_replay", "EntrustKeyStore", "EntrustError"),
}


def test_every_network_backend_is_covered() -> None:
    assert set(FACTORIES) == set(BACKENDS) - {"memory", "fs"}


async def _timed_under_ticker(call: Callable[[], Awaitable[Any]]) -> tuple[Any, float, float]:
    """Run ``call`` beside a 10 ms ticker; returns (exception or result, elapsed,
    the ticker's largest gap)."""
    gaps: list[float] = []
    started = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        started.set()
        while True:
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await started.wait()
    start = time.perf_counter()
    try:
        outcome: Any = await call()
    except Exception as err:
        outcome = err
    elapsed = time.perf_counter() - start
    await asyncio.sleep(3 * TICK)  # one more tick after the call returned
    task.cancel()
    assert len(gaps) >= 3
    return outcome, elapsed, max(gaps)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_hanging_server_fails_in_time_without_blocking_the_loop(
    name: str, request: pytest.FixtureRequest, hanging: HangingServer
) -> None:
    needs = BACKENDS[name].needs
    services = {n: request.getfixturevalue(n) for n in needs}
    url = f"127.0.0.1:{hanging.port}"

    async def main() -> None:
        stalled = await FACTORIES[name](services, url)
        try:
            for label, call in (
                ("status", stalled.store.status),
                ("get", lambda: stalled.store.get("stalled-key")),
            ):
                accepted = hanging.accepted
                outcome, elapsed, gap = await _timed_under_ticker(call)
                detail = f"{name}.{label}: {outcome!r} after {elapsed:.3f}s, max gap {gap:.3f}s"
                assert isinstance(outcome, stalled.errors), detail
                assert hanging.accepted > accepted, detail  # it did reach the server
                assert stalled.floor <= elapsed < stalled.bound, detail
                assert gap < MAX_GAP, detail
        finally:
            await stalled.store.close()

    asyncio.run(main())
