"""Scale-out: several pykes server processes sharing one OpenBao Raft cluster.

Everything is real: a three-node OpenBao cluster with integrated Raft storage
(:mod:`bao_cluster`), three ``kes server`` processes with mTLS, and the pykes SDK with
all three endpoints as the MinIO-style client (multi-endpoint failover, docs/compat/minio.md §5).

* keys are shared between nodes; a delete on one node reaches the others' caches
  within ``cache.expiry.any`` (eventual consistency, docs/compat/keystore.md §5) — measured;
* a SIGKILLed pykes node under load costs zero failed operations (client failover);
* losing an OpenBao standby, and then the leader (Raft elects a new one), with each
  pykes node pointed at a different OpenBao node;
* a complete OpenBao outage with ``cache.expiry.offline``: cached keys keep working,
  uncached keys fail fast with 502, the service recovers by itself;
* every YAML config in ``docs/deploy.md`` and ``deploy/kubernetes/kes.yaml`` parses.

The module's cluster is started once (~4 s); the whole file runs in about a minute.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from bao_cluster import BaoCluster, cluster_fixture  # noqa: F401 (the fixture cluster)
from conftest import PKI, REPO, ClientIdentity, RunningServer, free_port, kes_command, until
from conftest import wait_until_serving as _wait_tcp
from pykes.client import Client
from pykes.config import VaultKeyStoreConfig, parse_config
from pykes.errors import ConfigError
from vault_harness import find_binary, kes_config, keystore_yaml

pytestmark = pytest.mark.skipif(find_binary() is None, reason="no bao binary")

CONTEXT = b'{"bucket":"scaleout"}'


# ------------------------------------------------------------------ fixtures / helpers
@pytest.fixture(scope="module")
def store(cluster: BaoCluster) -> VaultKeyStoreConfig:
    """One K/V v2 engine + AppRole shared by every pykes node in this module."""
    return kes_config(cluster.admin(), 2)


def vault_config(
    pki: PKI,
    admin: ClientIdentity,
    store: VaultKeyStoreConfig,
    endpoint: str,
    prefix: str,
    cache: str,
) -> str:
    """A complete pykes config with ``keystore: vault:`` (as in docs/deploy.md)."""
    return (
        "version: v1\n"
        f"admin:\n  identity: {admin.identity}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
        f"cache:\n  expiry:\n{cache}"
        "log:\n  audit: off\n"
    ) + keystore_yaml(store, prefix, endpoint)


def start_node(workdir: Path, pki: PKI, config_text: str, port: int | None = None) -> RunningServer:
    """``kes server --workers 1`` on a given (or free) port, restartable on the same
    port, in its own process group (killed as a whole, like a container)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = workdir / "config.yml"
    config.write_text(config_text)
    out, err = workdir / "stdout.log", workdir / "stderr.log"
    proc = subprocess.Popen(
        kes_command(
            "server", "--config", str(config), "--addr", f"127.0.0.1:{port}", "--workers", "1"
        ),
        start_new_session=True,
        stdout=out.open("ab"),
        stderr=err.open("ab"),
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = RunningServer(proc, port, config, pki, out, err)
    _wait_tcp(server)
    return server


def sdk(pki: PKI, ident: ClientIdentity, nodes: list[RunningServer]) -> Client:
    return Client(
        [n.url for n in nodes],
        cert_file=str(ident.cert_file),
        key_file=str(ident.key_file),
        ca_file=str(pki.server_cert),
        timeout=10,
    )


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for node in started:
        node.stop()
        kill_group(node)


def kill_group(node: RunningServer) -> None:
    """SIGKILL the node's whole process group (master and any workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.proc.pid, signal.SIGKILL)
    node.proc.wait(10)


def prefix_for(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^a-z0-9]", "", request.node.name.lower())[:40]


@dataclass
class Load:
    """generate+decrypt in a loop on ``threads`` threads until stopped, one SDK client
    per thread (httpcore's sync HTTP/2 connection is not safe to share between threads
    when a connection dies: encode/httpx#3072)."""

    make_client: Callable[[], Client]
    key: str
    threads: int = 4
    ok: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        with self.make_client() as client:
            self._loop(client)

    def _loop(self, client: Client) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                dek = client.generate_key(self.key, CONTEXT)
                plain = client.decrypt(self.key, dek.ciphertext, CONTEXT)
                if plain != dek.plaintext:
                    raise AssertionError("decrypt returned a different plaintext")
            except Exception as err:  # every failure counts, whatever its kind
                with self._lock:
                    self.failures.append((time.monotonic(), repr(err)))
                time.sleep(0.05)
            else:
                with self._lock:
                    self.ok += 1
                    self.latencies.append(time.monotonic() - t)

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)

    def run_for(self, seconds: float) -> None:
        time.sleep(seconds)


def generate_status(client: httpx.Client, key: str) -> int:
    return client.post(f"/v1/key/generate/{key}", json={"context": "e30="}).status_code


# ------------------------------------------------------------------ tests
@pytest.mark.timeout(180)  # slow: real clusters, seconds of load
def test_three_nodes_share_keys_and_deletes_expire_within_cache_any(
    tmp_path: Path,
    pki: PKI,
    cluster: BaoCluster,
    store: VaultKeyStoreConfig,
    nodes: list[RunningServer],
    request: pytest.FixtureRequest,
) -> None:
    """Three pykes nodes on one Vault: a key created on A works on B and C; after a
    delete on A, B (which has the key cached and keeps using it) answers 404 within
    ``cache.expiry.any`` = 2 s, C (never cached it) immediately."""
    admin = pki.client("admin")
    cache = "    any: 2s\n    unused: 1s\n"
    config = vault_config(pki, admin, store, cluster.active().addr, prefix_for(request), cache)
    for name in "abc":
        nodes.append(start_node(tmp_path / name, pki, config))
    a, b, c = nodes
    with a.client(admin) as ca, b.client(admin) as cb, c.client(admin) as cc:
        assert ca.post("/v1/key/create/shared").status_code == 200
        dek = cb.post("/v1/key/generate/shared", json={"context": "e30="}).json()
        r = cc.post(
            "/v1/key/decrypt/shared", json={"ciphertext": dek["ciphertext"], "context": "e30="}
        )
        assert r.status_code == 200 and r.json() == {"plaintext": dek["plaintext"]}
        # Created on B → visible on A at once (cache miss → backend read).
        assert cb.post("/v1/key/create/from-b").status_code == 200
        assert generate_status(ca, "from-b") == 200
        assert cc.post("/v1/key/create/from-b").status_code == 400  # exists (CAS create)

        assert generate_status(cb, "shared") == 200  # B: cached and used
        assert ca.delete("/v1/key/delete/shared").status_code == 200
        deleted = time.monotonic()
        assert generate_status(ca, "shared") == 404  # the deleting node evicts at once
        stale = {"b": 0, "c": 0}
        seen: dict[str, float] = {}

        def gone(name: str, http: httpx.Client) -> None:
            if name in seen:
                return
            status = generate_status(http, "shared")
            assert status in (200, 404)
            if status == 200:
                stale[name] += 1
            else:
                seen[name] = time.monotonic() - deleted

        def both_gone() -> bool:
            gone("b", cb)  # B keeps using the key: only the `any` tick drops it
            if stale["c"] == 0 and "c" not in seen:
                gone("c", cc)  # C probed once, then left unused: the `unused` tick
            elif "c" not in seen and time.monotonic() - deleted > 1.2:
                gone("c", cc)
            return len(seen) == 2

        until(both_gone, timeout=6, step=0.05)
    print(
        f"\ndelete on A → 404 on B (key in use) after {seen['b']:.2f} s "
        f"({stale['b']} stale 200s), on C (idle) after {seen['c']:.2f} s"
    )
    assert seen["b"] <= 2.0 + 1.0  # any = 2 s (coarse ticker) + scheduling slack
    assert seen["c"] <= 2.0 + 1.0


@pytest.mark.timeout(180)  # slow: real clusters, seconds of load
def test_pykes_node_killed_under_load_zero_failures(
    tmp_path: Path,
    pki: PKI,
    cluster: BaoCluster,
    store: VaultKeyStoreConfig,
    nodes: list[RunningServer],
    request: pytest.FixtureRequest,
) -> None:
    """4 SDK threads run generate+decrypt against all three endpoints while one pykes
    node is SIGKILLed and restarted on the same port: no operation fails."""
    admin = pki.client("admin")
    cache = "    any: 30s\n    unused: 30s\n"
    config = vault_config(pki, admin, store, cluster.active().addr, prefix_for(request), cache)
    for name in "abc":
        nodes.append(start_node(tmp_path / name, pki, config))
    victim = nodes[1]
    with sdk(pki, admin, nodes) as client:
        client.create_key("load")
        with Load(lambda: sdk(pki, admin, nodes), "load", threads=4) as load:
            load.run_for(1.5)
            before_kill = load.ok
            kill_group(victim)
            killed = time.monotonic()
            load.run_for(1.5)
            restarted = start_node(tmp_path / "b", pki, config, port=victim.port)
            nodes[1] = restarted
            restart_s = time.monotonic() - killed
            load.run_for(1.5)
        # The restarted node serves the shared key (decrypts what the others made).
        dek = client.generate_key("load", CONTEXT)
    with restarted.client(admin) as direct:
        r = direct.post(
            "/v1/key/decrypt/load",
            json={
                "ciphertext": base64.b64encode(dek.ciphertext).decode(),
                "context": base64.b64encode(CONTEXT).decode(),
            },
        )
        assert r.status_code == 200
    p99 = sorted(load.latencies)[int(len(load.latencies) * 0.99) - 1]
    print(
        f"\nfailover: {load.ok} generate+decrypt pairs ({before_kill} before the kill), "
        f"{len(load.failures)} failures, node back after {restart_s:.2f} s, "
        f"max latency {max(load.latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    for failure in load.failures[:5]:
        print("   ", failure[1][:300])
    assert before_kill > 20 and load.ok > before_kill + 20
    assert load.failures == []


@pytest.mark.timeout(180)  # slow: real clusters, seconds of load
def test_losing_openbao_standby_and_leader(
    tmp_path: Path,
    pki: PKI,
    cluster: BaoCluster,
    store: VaultKeyStoreConfig,
    nodes: list[RunningServer],
    request: pytest.FixtureRequest,
) -> None:
    """pykes node i → OpenBao node i; the SDK has all three pykes endpoints. Three
    phases, each followed by restarting the stopped OpenBao node: (1) a standby stops,
    (2) the leader stops gracefully (SIGTERM: Raft hands leadership over), (3) the new
    leader crashes (SIGKILL: a real election). Cached keys never fail; "fresh-key
    rounds" (create + generate + decrypt of a new key: Vault writes and reads) fail only
    between the crash and the election, then work again."""
    admin = pki.client("admin")
    cluster.wait_voters()
    cache = "    any: 30s\n    unused: 30s\n"
    prefix = prefix_for(request)
    for i, bao in enumerate(cluster.nodes):
        config = vault_config(pki, admin, store, bao.addr, prefix, cache)
        nodes.append(start_node(tmp_path / f"n{i}", pki, config))
    rounds: list[tuple[float, str, str]] = []  # (time, phase, "" or the error)

    with sdk(pki, admin, nodes) as client, sdk(pki, admin, nodes) as fresh:
        client.create_key("hot")

        def fresh_key_round(phase: str) -> None:
            name = f"k-{phase}-{len(rounds)}"
            try:
                fresh.create_key(name)
                dek = fresh.generate_key(name, CONTEXT)
                assert fresh.decrypt(name, dek.ciphertext, CONTEXT) == dek.plaintext
            except Exception as err:
                rounds.append((time.monotonic(), phase, repr(err)))
            else:
                rounds.append((time.monotonic(), phase, ""))

        def lose(phase: str, victim_role: str, sig: int) -> tuple[str, float]:
            """Stop one node, run fresh-key rounds until 2 s after a leader is known,
            restart it; returns (victim name, seconds until an active node existed)."""
            victim = cluster.standbys()[0] if victim_role == "standby" else cluster.active()
            victim.stop(sig)
            t_stop = time.monotonic()
            elected: list[float] = []

            def watch() -> None:
                cluster.active(timeout=20)
                elected.append(time.monotonic() - t_stop)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            while not elected or time.monotonic() - t_stop < elected[0] + 2.0:
                fresh_key_round(phase)
                if time.monotonic() - t_stop > 25:
                    break
            watcher.join(1)
            cluster.restart(victim)
            cluster.wait_healthy()
            return victim.name, elected[0] if elected else float("inf")

        with Load(lambda: sdk(pki, admin, nodes), "hot", threads=2) as load:
            load.run_for(0.5)
            results = {
                "standby": lose("standby", "standby", signal.SIGTERM),
                "leader-sigterm": lose("leader-sigterm", "leader", signal.SIGTERM),
                "leader-sigkill": lose("leader-sigkill", "leader", signal.SIGKILL),
            }
    print()
    summary: dict[str, tuple[int, int, float]] = {}
    for phase, (victim, election) in results.items():
        mine = [r for r in rounds if r[1] == phase]
        failed = [r for r in mine if r[2]]
        span = (failed[-1][0] - failed[0][0]) if failed else 0.0
        summary[phase] = (len(mine) - len(failed), len(failed), span)
        print(
            f"{phase}: stopped {victim}, active node after {election:.2f} s, fresh-key rounds "
            f"{len(mine) - len(failed)} ok / {len(failed)} failed (over {span:.2f} s)"
            + (f", e.g. {failed[0][2][:80]}" if failed else "")
        )
        # Every phase ends with successful rounds: recovery needs no intervention.
        assert mine and not mine[-1][2], phase
    print(f"cached-key load: {load.ok} generate+decrypt pairs, {len(load.failures)} failed")
    assert load.failures == [] and load.ok > 50
    assert summary["standby"][1] == 0  # a standby loss is invisible
    # Failures only while there is no leader (plus slack for the in-flight round).
    for phase in ("leader-sigterm", "leader-sigkill"):
        assert summary[phase][2] <= results[phase][1] + 1.5, phase


@pytest.mark.timeout(180)  # slow: real clusters, seconds of load
def test_vault_outage_offline_cache(
    tmp_path: Path,
    pki: PKI,
    cluster: BaoCluster,
    store: VaultKeyStoreConfig,
    nodes: list[RunningServer],
    request: pytest.FixtureRequest,
) -> None:
    """All three OpenBao nodes stopped for 60 s (the issue's outage). With
    ``cache.expiry.offline: 90s``
    the cached key serves generate/decrypt with zero failures, also across the
    ``any`` tick (15 s) inside the outage; a control node with the same cache but
    ``offline: 0s`` loses the key at that tick (502s). An uncached key fails fast with
    502. When OpenBao returns, the node recovers by itself (no restart/reload)."""
    admin = pki.client("admin")
    # any = 15 s: the first ``any`` tick comes after the first 10 s status probe, which
    # is the one that notices the outage and switches the cache offline.
    prefix = prefix_for(request)
    endpoint = cluster.active().addr
    cache = "    any: 15s\n    unused: 30s\n"
    node = start_node(
        tmp_path / "n",
        pki,
        vault_config(pki, admin, store, endpoint, prefix, cache + "    offline: 90s\n"),
    )
    nodes.append(node)
    control = start_node(
        tmp_path / "control",
        pki,
        vault_config(pki, admin, store, endpoint, prefix, cache + "    offline: 0s\n"),
    )
    nodes.append(control)
    t_serving = time.monotonic()  # both caches (and their tickers) started before this
    ready: list[tuple[float, int]] = []
    stop_polling = threading.Event()

    def poll_ready() -> None:
        with node.client(admin) as http:
            while not stop_polling.is_set():
                status = http.get("/v1/ready").status_code
                if not ready or ready[-1][1] != status:
                    ready.append((time.monotonic() - t_serving, status))
                time.sleep(0.2)

    poller = threading.Thread(target=poll_ready, daemon=True)
    with sdk(pki, admin, [node]) as client, node.client(admin) as raw:
        client.create_key("hot")
        client.create_key("cold")  # exists, never read → not cached
        poller.start()
        with (
            Load(lambda: sdk(pki, admin, [node]), "hot", threads=2) as load,
            Load(lambda: sdk(pki, admin, [control]), "hot", threads=1) as control_load,
        ):
            until(lambda: load.ok > 5 and control_load.ok > 5, 10)
            t_down = time.monotonic()
            for bao in cluster.nodes:
                bao.stop()
            # Uncached key during the outage: 502, fast.
            t = time.monotonic()
            r = raw.post("/v1/key/generate/cold", json={"context": "e30="})
            cold_latency = time.monotonic() - t
            assert r.status_code == 502, r.text
            # Stay down 60 s: past the first status probe (10 s), the any ticks (15 s)
            # and the unused ticks (15 s), inside the 90 s offline expiry.
            time.sleep(max(0.0, t_down + 60.0 - time.monotonic()))
            t = time.monotonic()
            r = raw.post("/v1/key/generate/cold", json={"context": "e30="})
            cold_latency = max(cold_latency, time.monotonic() - t)
            assert r.status_code == 502
            ok_during_outage = load.ok
            t_up = time.monotonic()
            outage = t_up - t_down
            for bao in cluster.nodes:
                cluster.restart(bao)
            cluster.wait_healthy()
            bao_back = time.monotonic() - t_up
            recovered = until(lambda: generate_status(raw, "cold") == 200, 15, 0.1)
            ready_again = until(lambda: bool(ready) and ready[-1][1] == 200, 15, 0.2)
            control_recovered = until(lambda: control_load.ok > 0 and _ok_since(control_load), 15)
        stop_polling.set()
        poller.join(5)
        client.create_key("after-outage")
        client.generate_key("after-outage", CONTEXT)
    control_first = min(t for t, _ in control_load.failures) - t_serving
    print(
        f"\noutage {outage:.1f} s (t+{t_down - t_serving:.1f} → t+{t_up - t_serving:.1f} s after "
        f"start): {ok_during_outage} generate+decrypt pairs on the cached key, "
        f"{len(load.failures)} failures; control (offline: 0s): {len(control_load.failures)} "
        f"failures from t+{control_first:.1f} s; uncached key 502 in ≤ "
        f"{cold_latency * 1000:.0f} ms; /v1/ready timeline {ready}; OpenBao back after "
        f"{bao_back:.1f} s, uncached key works {recovered:.2f} s later, /v1/ready 200 "
        f"{ready_again:.1f} s after OpenBao, control node {control_recovered:.1f} s"
    )
    assert load.failures == []
    assert ok_during_outage > 50
    assert outage >= 60.0
    assert cold_latency < 2.0
    # The control node lost the key at its `any` tick, i.e. inside the outage.
    assert control_load.failures and control_first >= t_down - t_serving
    assert 504 in {status for _, status in ready}  # the node reported the outage


def _ok_since(load: Load) -> bool:
    """Whether ``load`` succeeded again after its last failure."""
    before = load.ok
    time.sleep(0.3)
    return load.ok > before and (not load.failures or load.failures[-1][0] < time.monotonic() - 0.3)


# ------------------------------------------------------------------ docs / deploy files
DOCS_ENV = {
    "KES_ADMIN_IDENTITY": "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22",
    "KES_VAULT_ENDPOINT": "https://vault.example.net:8200",
    "KES_VAULT_APPROLE_ID": "f11b9ba5-d4a8-4b52-b1cf-b8cd64bcbdea",
    "KES_VAULT_APPROLE_SECRET": "7a2dd1b9-f5ee-49e4-a79f-1d9e7f7fc9a1",
    "MINIO_IDENTITY": "aa8b5c8f7e2d96c2d0c26ad4a55d88d1cc0a3f0d5f8c1b74af8b4be3af9a1f6b",
}


def yaml_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```", markdown, flags=re.S | re.M)


def test_deploy_doc_configs_parse() -> None:
    """Every ```yaml block of docs/deploy.md is a valid pykes config, with the
    ``${VAR}`` references resolved and both cache expiries set (the doc's advice)."""
    blocks = yaml_blocks((REPO / "docs" / "deploy.md").read_text())
    assert len(blocks) >= 3
    kinds = set()
    for block in blocks:
        cfg = parse_config(block, DOCS_ENV)
        assert "${" not in repr(cfg)
        assert cfg.admin_identity in (DOCS_ENV["KES_ADMIN_IDENTITY"], "disabled")
        assert cfg.cache.any >= 60 and cfg.cache.unused > 0
        kinds.add(type(cfg.keystore).__name__)
        if isinstance(cfg.keystore, VaultKeyStoreConfig):
            assert cfg.keystore.endpoint == DOCS_ENV["KES_VAULT_ENDPOINT"]
            assert cfg.keystore.version == "v2"
            assert cfg.cache.offline > 0
    assert kinds == {"FSKeyStoreConfig", "VaultKeyStoreConfig"}
    # an unresolved variable is an error, so the env above is really needed
    with pytest.raises(ConfigError):
        parse_config(blocks[0], {})


def test_kubernetes_manifest() -> None:
    """deploy/kubernetes/kes.yaml: the ConfigMap's config parses; the Deployment mounts
    it and the TLS Secret; a Service and an HPA target the Deployment."""
    docs = [d for d in yaml.safe_load_all((REPO / "deploy/kubernetes/kes.yaml").read_text()) if d]
    kinds = {d["kind"]: d for d in docs}
    assert {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"} <= set(kinds)
    config_text = kinds["ConfigMap"]["data"]["config.yml"]
    parse_config(config_text, DOCS_ENV)
    deploy = kinds["Deployment"]
    spec = deploy["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert any("secret" in v for v in volumes.values())
    assert any(
        v.get("configMap", {}).get("name") == kinds["ConfigMap"]["metadata"]["name"]
        for v in volumes.values()
    )
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == deploy["metadata"]["name"]
    assert hpa["minReplicas"] >= 2
    selector = kinds["Service"]["spec"]["selector"]
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    # every ${VAR} the config uses is provided by the container env
    env_names = {e["name"] for c in spec["containers"] for e in c.get("env", [])}
    assert set(re.findall(r"\$\{(\w+)\}", config_text)) <= env_names


def test_systemd_unit() -> None:
    unit = (REPO / "deploy/systemd/kes.service").read_text()
    assert re.search(r"^ExecStart=\S*kes server --config /etc/kes/config.yml", unit, re.M)
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "User=kes"):
        assert option in unit
