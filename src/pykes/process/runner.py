"""Start-up, serving, workers and shutdown of ``kes server`` (docs/compat/config.md §5).

The master process validates everything (config, TLS, keystore), prints the banner,
creates predefined keys and then serves — in-process for one worker, or by forking
``--workers`` processes that each bind the port with SO_REUSEPORT. Workers share
nothing but the metrics counters, the legacy API's ephemeral policies
(auth/ephemeral.py) and the record of key writes (keystore/changes.py), all in shared
memory created before the fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pykes.api.context import Context, ServerFacts
from pykes.api.routes import RouteOverride, RouteTable
from pykes.api.selector import DEFAULT_ENCLAVE
from pykes.api.state import ServerState
from pykes.auth.authorizer import Authorizer
from pykes.auth.ephemeral import DEFAULT_CAPACITY, EphemeralStore
from pykes.auth.policy import Policy
from pykes.auth.proxy import TLSProxy
from pykes.crypto import KeyVersion, decode_key_version, encode_key_version, generate_key_version
from pykes.errors import KeyExistsError
from pykes.keystore import KeyCache, KeyStore
from pykes.keystore.changes import KeyChanges
from pykes.observe.bus import LogBroker, LogBus, socket_pair
from pykes.observe.logs import Logs, route_python_logging
from pykes.observe.metrics import Metrics, SharedCounters
from pykes.process import memlock, memtrim
from pykes.wire.acceptor import http_handler, tls_protocol_factory
from pykes.wire.connection import Connection, ConnectionRegistry
from pykes.wire.tls import TLSSettings, server_context

if TYPE_CHECKING:  # stateful mode's (the store loads sqlite3: only then)
    from pykes.store import EnclaveStore

SHUTDOWN_GRACE = 1.0  # seconds in-flight requests get on SIGINT/SIGTERM
TLS_RELOAD_INTERVAL = 15 * 60.0  # seconds; PYKES_TLS_RELOAD_INTERVAL overrides it


@dataclass
class ServerSetup:
    """Everything needed to serve, independent of where it came from (config or --dev)."""

    host: str
    port: int
    tls: TLSSettings
    admin: str
    policies: dict[str, Policy]
    assignments: dict[str, str]  # identity -> policy name
    overrides: dict[str, RouteOverride]
    cache_any: float
    cache_unused: float
    cache_offline: float
    log_error: int
    log_audit: int
    open_keystore: Callable[[], Awaitable[KeyStore]]
    predefined_keys: list[str] = field(default_factory=list)
    workers: int = 1
    legacy_api: bool = True  # `api.legacy` (docs/legacy-api.md)
    # Re-reads the configuration for SIGHUP (None: nothing to reload, e.g. --dev).
    reload: Callable[[], ServerSetup] | None = None
    # tls.proxy (docs/compat/auth.md §10)
    proxy: TLSProxy = field(default_factory=lambda: TLSProxy(frozenset()))
    # Called once the first worker listens (prints "=> Server is up and running...").
    on_listening: Callable[[], None] | None = None
    # Stateful mode (a `store:` block, docs/stateful.md): opens the sealed store, in each
    # worker after the fork; ``open_keystore`` is then unused. None: stateless.
    open_store: Callable[[], Awaitable[EnclaveStore]] | None = None


@dataclass(frozen=True, slots=True)
class SharedRegions:
    """What every worker shares with the others, in memory mapped before the fork: the
    metrics counters, the legacy API's run-time policies and the record of key writes
    (issue 19). They outlive every state built on them, so SIGHUP keeps their contents."""

    counters: SharedCounters
    ephemeral: EphemeralStore
    key_changes: KeyChanges

    @classmethod
    def create(cls, workers: int) -> SharedRegions:
        capacity = int(os.environ.get("PYKES_EPHEMERAL_BYTES", DEFAULT_CAPACITY))
        return cls(SharedCounters(max(workers, 1)), EphemeralStore(capacity), KeyChanges())


def build_state(
    setup: ServerSetup,
    store: KeyStore,
    metrics: Metrics,
    logs: Logs,
    shared: SharedRegions | None = None,
) -> ServerState:
    """The request state of stateless mode, on ``shared``'s run-time policies and record
    of key writes (a single-process default when None)."""
    ephemeral = shared.ephemeral if shared is not None else None
    key_changes = shared.key_changes if shared is not None else None
    cache: KeyCache[KeyVersion] = KeyCache(
        store,
        decode=decode_key_version,
        any=setup.cache_any,
        unused=setup.cache_unused,
        offline=setup.cache_offline,
        changes=key_changes,
    )
    routes = RouteTable(setup.overrides, legacy=setup.legacy_api)
    context = Context(
        keys=cache,
        authorizer=Authorizer(setup.admin, setup.policies, setup.assignments, ephemeral),
        policies=setup.policies,
        facts=_facts(setup, routes, metrics, logs),
        log=logs,
    )
    return ServerState(routes=routes, context=context, proxy=setup.proxy)


def _facts(setup: ServerSetup, routes: RouteTable, metrics: Metrics, logs: Logs) -> ServerFacts:
    host = f"[{setup.host}]" if ":" in setup.host else setup.host
    return ServerFacts(
        log=logs,
        metrics=metrics,
        api_listing=routes.listing(),
        start_monotonic=metrics.start_monotonic,
        address=f"{host}:{setup.port}",
    )


async def build_stateful_state(
    setup: ServerSetup,
    store: EnclaveStore,
    metrics: Metrics,
    logs: Logs,
    shared: SharedRegions | None = None,
) -> ServerState:
    """The request state of stateful mode: each enclave's context (api/tenants.py) on
    ``store`` and a ring cache sharing ``shared``'s record of key writes."""
    from pykes.api.stored import StoredEnclaves, ring_cache
    from pykes.api.tenants import Tenants

    changes = shared.key_changes if shared is not None else KeyChanges()
    rings = ring_cache(
        store,
        any=setup.cache_any,
        unused=setup.cache_unused,
        offline=setup.cache_offline,
        changes=changes,
    )
    routes = RouteTable(setup.overrides, legacy=setup.legacy_api, stateful=True)
    tenants = Tenants(
        StoredEnclaves(store, rings),
        changes,
        admin=setup.admin,
        policies=setup.policies,
        assignments=setup.assignments,
        facts=_facts(setup, routes, metrics, logs),
        log=logs,
    )
    rings.on_expiry = tenants.expire  # another node's writes: bounded by cache.expiry.any
    default = await tenants.context(DEFAULT_ENCLAVE)
    if default is None:  # EnclaveStore.open creates it, nothing deletes it
        raise RuntimeError(f"store: {store.description} has no '{DEFAULT_ENCLAVE}' enclave")
    return ServerState(
        routes=routes, context=default, proxy=setup.proxy, reads_headers=True, tenants=tenants
    )


async def create_predefined_keys(store: KeyStore, names: list[str], admin: str) -> None:
    """Create each configured key if missing; "exists" is fine (docs/compat/config.md §2)."""
    for name in names:
        key = generate_key_version(created_by=admin)
        with contextlib.suppress(KeyExistsError):
            await store.create(name, encode_key_version(key))


async def create_predefined_rings(store: EnclaveStore, names: list[str], admin: str) -> None:
    """Stateful mode: ``create_predefined_keys`` in the ``default`` enclave."""
    for name in names:
        with contextlib.suppress(KeyExistsError):
            await store.create_key(DEFAULT_ENCLAVE, name, created_by=admin)


async def prepare_store(setup: ServerSetup) -> str:
    """Stateful mode's start-up in the master: open the store (the seal key is checked,
    a new store gets its ``default`` enclave), create the predefined keys, close it
    again (each worker opens its own after the fork). Returns the banner's text."""
    assert setup.open_store is not None
    store = await setup.open_store()
    try:
        await create_predefined_rings(store, setup.predefined_keys, setup.admin)
        return store.description
    finally:
        await store.close()


def check_bind(host: str, port: int) -> None:
    """Fail early (before forking) if the address cannot be bound.

    The probe does not set SO_REUSEPORT, which the workers do: a port another server
    listens on with it (a second ``kes server`` started by mistake) is refused here
    instead of being silently shared, half of the connections going to each."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host or "0.0.0.0", port))


class Worker:
    """One event loop serving the port."""

    def __init__(
        self,
        setup: ServerSetup,
        store: KeyStore | None,
        shared: SharedRegions,
        slot: int = 0,
        bus_socket: socket.socket | None = None,
    ) -> None:
        self.setup = setup
        self.shared = shared
        self.store = store
        self.slot = slot
        self.bus_socket = bus_socket
        self.state: ServerState | None = None
        self.enclave_store: EnclaveStore | None = None  # stateful mode: this worker's
        self.stopping: asyncio.Event | None = None
        self.ssl_context: ssl.SSLContext | None = None
        self._reload_task: asyncio.Task[None] | None = None

    def current_state(self) -> ServerState:
        assert self.state is not None
        return self.state

    def _ssl_context(self) -> ssl.SSLContext:
        assert self.ssl_context is not None
        return self.ssl_context

    def _logs(self) -> Logs:
        return self.state.log if self.state is not None else self._startup_logs

    async def serve(self, reuse_port: bool) -> None:
        setup = self.setup
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        metrics = Metrics(time.monotonic(), self.shared.counters, self.slot)
        logs = Logs(setup.log_error, setup.log_audit)
        self._startup_logs = logs
        logs.audit_hub.on_delivered = metrics.requests.audit_event
        logs.error_hub.on_delivered = metrics.requests.error_event
        bus = None
        if self.bus_socket is not None:
            bus = LogBus(
                self.bus_socket,
                {b"a": logs.audit_hub, b"e": logs.error_hub},
                on_master_lost=self.stopping.set,  # the master died: do not linger
            )
            bus.attach(loop)
        route_python_logging(self._logs)
        if setup.open_store is not None:  # stateful: the store opens after the fork
            self.enclave_store = await setup.open_store()
            self.state = await build_stateful_state(
                setup, self.enclave_store, metrics, logs, self.shared
            )
        else:
            store = self.store if self.store is not None else await setup.open_keystore()
            self.state = build_state(setup, store, metrics, logs, self.shared)
        await self.state.start()
        loop.set_exception_handler(lambda _loop, ctx: _log_loop_error(logs, ctx))
        self.ssl_context = server_context(setup.tls)
        registry = ConnectionRegistry(self.current_state, http_handler)
        server = await loop.create_server(
            tls_protocol_factory(registry, self._ssl_context, self._logs),
            host=setup.host or None,
            port=setup.port,
            reuse_port=reuse_port,
            reuse_address=True,
            backlog=2048,
        )
        registry.start()
        if setup.on_listening is not None and self.slot == 0:
            setup.on_listening()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._schedule_reload)
        tls_refresh = loop.create_task(self._refresh_tls_periodically())
        # After a burst of connections, hand the freed heap back (memtrim.py, issue 7).
        trimming = loop.create_task(memtrim.BurstTrimmer(lambda: len(registry.connections)).run())
        try:
            await self.stopping.wait()
        finally:
            tls_refresh.cancel()
            trimming.cancel()
            server.close()
            for conn in list(registry.connections):
                if conn.handler is not None:
                    conn.handler.goaway()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_wait_idle(registry), SHUTDOWN_GRACE)
            for conn in list(registry.connections):
                conn.transport.abort()
            registry.stop()
            await self.state.close()
            if self.enclave_store is not None:
                await self.enclave_store.close()
            self.state.log.flush()
            if bus is not None:
                bus.detach(loop)

    async def _refresh_tls_periodically(self) -> None:
        """Every 15 minutes re-read the config file and re-apply only its TLS part
        (certificate rotation without SIGHUP, docs/compat/config.md §6)."""
        interval = float(os.environ.get("PYKES_TLS_RELOAD_INTERVAL", TLS_RELOAD_INTERVAL))
        while True:
            await asyncio.sleep(interval)
            if self.setup.reload is None:
                continue
            try:
                self.ssl_context = server_context(self.setup.reload().tls)
            except Exception as err:  # noqa: BLE001 - keep the current certificate
                print(f"Failed to reload TLS configuration: {err}", file=sys.stderr, flush=True)

    def _schedule_reload(self) -> None:
        self._reload_task = asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> None:
        """SIGHUP: re-read the config and swap in new policies, admin, routes, cache and
        keystore; in-flight requests finish with the old state. A bad config keeps the
        old one. (Listen address and TLS material are not changed.)"""
        print("SIGHUP signal received. Reloading configuration...", file=sys.stderr, flush=True)
        old = self.state
        if self.setup.reload is None or old is None:
            print("Failed to reload server config: nothing to reload", file=sys.stderr, flush=True)
            return
        try:
            setup = self.setup.reload()
            ssl_context = server_context(setup.tls)  # a new certificate for new connections
            state = await self._reloaded_state(setup, old)
        except Exception as err:  # noqa: BLE001 - report and keep serving
            print(f"Failed to reload server config: {err}", file=sys.stderr, flush=True)
            return
        old.log.error_level, old.log.audit_level = setup.log_error, setup.log_audit
        facts, old_facts = state.context.facts, old.context.facts
        facts.start_ns, facts.start_monotonic = old_facts.start_ns, old_facts.start_monotonic
        await state.start()
        self.setup, self.state, self.ssl_context = setup, state, ssl_context
        await old.close()
        print(
            "=> Reloading configuration after SIGHUP signal completed.", file=sys.stderr, flush=True
        )

    async def _reloaded_state(self, setup: ServerSetup, old: ServerState) -> ServerState:
        """The state of a re-read config: on a new keystore connection, or on this
        worker's store (its ``store`` block is read at start-up only)."""
        store = self.enclave_store
        if (setup.open_store is None) != (store is None):
            raise ValueError("switching between a keystore and a store needs a restart")
        if store is not None:
            await create_predefined_rings(store, setup.predefined_keys, setup.admin)
            return await build_stateful_state(setup, store, old.metrics, old.log, self.shared)
        keystore = await setup.open_keystore()
        await create_predefined_keys(keystore, setup.predefined_keys, setup.admin)
        return build_state(setup, keystore, old.metrics, old.log, self.shared)


async def _wait_idle(registry: ConnectionRegistry) -> None:
    while any(c.handler is not None and _busy(c) for c in registry.connections):
        await asyncio.sleep(0.05)


def _busy(conn: Connection) -> bool:
    handler = conn.handler
    if handler is None:
        return False
    return bool(getattr(handler, "worker", None) or getattr(handler, "streams", None))


def _log_loop_error(logs: Logs, context: dict[str, object]) -> None:
    """asyncio reports TLS handshake failures here; Go logs them at INFO."""
    exc = context.get("exception")
    message = str(context.get("message", ""))
    transport = context.get("transport")
    peer = ""
    if transport is not None:
        with contextlib.suppress(Exception):
            name = transport.get_extra_info("peername")  # type: ignore[attr-defined]
            peer = f"{name[0]}:{name[1]}" if name else ""
    if exc is not None and ("SSL" in message or "handshake" in message.lower()):
        logs.info(f"http: TLS handshake error from {peer}: {exc}")
    else:
        logs.error(f"{message}: {type(exc).__name__ if exc else ''}".rstrip(": "))


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a hard dependency on Linux
        return asyncio.new_event_loop()


def run_worker(
    setup: ServerSetup,
    store: KeyStore | None,
    reuse_port: bool,
    shared: SharedRegions,
    slot: int = 0,
    bus_socket: socket.socket | None = None,
) -> None:
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        worker = Worker(setup, store, shared, slot, bus_socket)
        loop.run_until_complete(worker.serve(reuse_port))
    finally:
        loop.close()


def serve_forever(setup: ServerSetup, store: KeyStore | None) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit status."""
    shared = SharedRegions.create(setup.workers)  # before the fork: every worker's
    if setup.workers <= 1:
        run_worker(setup, store, False, shared)
        return 0
    return _Supervisor(setup, shared).run()


def _terminate_with_parent() -> None:
    """Linux: SIGTERM this worker when the master dies (even by SIGKILL), so no orphan
    keeps serving the port. The log bus's EOF is the portable second line of defence."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the master died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


class _Supervisor:
    """The master of ``--workers N``: forks the workers, relays log events between them
    (``LogBroker``), forwards signals and replaces a worker that dies unexpectedly."""

    def __init__(
        self,
        setup: ServerSetup,
        shared: SharedRegions,
    ) -> None:
        self.setup = setup
        self.shared = shared
        self.broker = LogBroker()
        self.children: dict[int, int] = {}  # pid -> worker slot
        self.stopping = False
        self.status = 0

    def _spawn(self, slot: int) -> None:
        master_end, worker_end = socket_pair()
        pid = os.fork()
        if pid == 0:  # worker process
            code = 0
            try:
                master_end.close()
                self.broker.drop_inherited()
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                _terminate_with_parent()
                memlock.relock_after_fork()  # memory locks are not inherited by fork()
                run_worker(self.setup, None, True, self.shared, slot, worker_end)
            except BaseException as err:  # noqa: BLE001 - report and exit the worker
                print(f"Error: worker failed: {err}", file=sys.stderr, flush=True)
                code = 1
            finally:
                os._exit(code)
        worker_end.close()
        self.children[pid] = slot
        self.broker.add(slot, master_end)

    def _signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            # Keep the master's copy current, so a replaced worker starts with it.
            with contextlib.suppress(Exception):
                if self.setup.reload is not None:
                    self.setup = self.setup.reload()
        else:
            self.stopping = True
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP if signum == signal.SIGHUP else signal.SIGTERM)

    def run(self) -> int:
        memtrim.before_fork()  # start-up garbage is not copied into the workers
        for slot in range(self.setup.workers):
            self._spawn(slot)
        self.setup = replace(self.setup, on_listening=None)  # a replaced worker says nothing
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._signal)
        while self.children:
            self.broker.poll(0.2)
            self._reap()
        self.broker.close()
        return self.status

    def _reap(self) -> None:
        while self.children:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            slot = self.children.pop(pid, None)
            if slot is None:
                continue
            self.broker.remove(slot)
            exit_code = os.waitstatus_to_exitcode(code)
            # It may have died between a key write and publishing it: no worker may keep
            # a copy of any key that write changed (issue 19).
            self.shared.key_changes.publish(None)
            if self.stopping:
                if exit_code not in (0, -signal.SIGTERM):
                    self.status = 1
                continue
            print(
                f"Worker {pid} exited unexpectedly (status {exit_code}); starting a new one",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(0.1)  # no busy fork loop if a worker dies at start-up
            self._spawn(slot)


__all__ = [
    "ServerSetup",
    "SharedRegions",
    "build_state",
    "check_bind",
    "build_stateful_state",
    "create_predefined_keys",
    "prepare_store",
    "serve_forever",
]
