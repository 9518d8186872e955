"""`kes server`: --dev, config errors, banner, predefined keys, workers, shutdown."""

from __future__ import annotations

import re
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import PKI, config_yaml, free_port, kes_command, start_server
from dev_server import dev_process
from pykes.pki import APIKey, client_certificate


def _run(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(kes_command(*args), capture_output=True, text=True, timeout=timeout)


def test_dev_mode_prints_api_key_and_serves_it(tmp_path: Path) -> None:
    with dev_process() as (proc, text, port):
        api_key = re.search(r"API Key\s+(kes:v1:\S+)", text).group(1)
        key = APIKey.parse(api_key)
        assert re.search(r"Admin\s+" + key.identity, text)
        cert, pkey = client_certificate(key)
        (tmp_path / "c.crt").write_bytes(cert)
        (tmp_path / "c.key").write_bytes(pkey)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # --dev uses a throw-away self-signed certificate
        ctx.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
        url = f"https://127.0.0.1:{port}"
        for _ in range(100):
            try:
                with httpx.Client(base_url=url, verify=ctx) as c:
                    assert c.post("/v1/key/create/dev-key").status_code == 200
                    dek = c.post("/v1/key/generate/dev-key", json={}).json()
                    r = c.post("/v1/key/decrypt/dev-key", json={"ciphertext": dek["ciphertext"]})
                    assert r.json()["plaintext"] == dek["plaintext"]
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        else:
            pytest.fail("dev server did not accept connections")
        # The printed client certificate files work too (for curl).
        cert_path = re.search(r"Client Cert\s+(\S+)", text).group(1)
        assert Path(cert_path).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "=> Stopping server... Goodbye." in out
        assert not Path(cert_path).exists()  # throw-away material is removed


def test_dev_with_config_is_an_error() -> None:
    r = _run(["server", "--dev", "--config", "x.yml"])
    assert r.returncode == 1
    assert r.stderr == "Error: '--config' flag is not supported in development mode\n"


@pytest.mark.parametrize(
    "yaml_text,message",
    [
        ("version: v2\n", "edge: invalid server config version 'v2'"),
        ("admin:\n  identity: ''\n", "kesconf: invalid admin identity: no admin identity"),
        ("admin: [\n", None),
    ],
)
def test_bad_config_is_one_line_error(tmp_path: Path, yaml_text: str, message: str | None) -> None:
    cfg = tmp_path / "bad.yml"
    cfg.write_text(yaml_text)
    r = _run(["server", "--config", str(cfg)])
    assert r.returncode == 1
    assert r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    if message:
        assert r.stderr == f"Error: {message}\n"


def test_missing_tls_file_is_one_line_error(tmp_path: Path, pki: PKI) -> None:
    cfg = tmp_path / "c.yml"
    text = config_yaml(pki, "disabled", tmp_path / "keys").replace(
        str(pki.server_cert), str(tmp_path / "nope.crt")
    )
    cfg.write_text(text)
    r = _run(["server", "--config", str(cfg), "--addr", f"127.0.0.1:{free_port()}"])
    assert r.returncode == 1
    assert (
        r.stderr.startswith("Error: failed to read TLS certificate") and r.stderr.count("\n") == 1
    )


def test_banner_predefined_keys_and_graceful_shutdown(tmp_path: Path, pki: PKI) -> None:
    admin = pki.client("admin")
    server = start_server(
        tmp_path,
        pki,
        config_yaml(
            pki,
            admin.identity,
            tmp_path / "keys",
            "keys:\n  - name: predefined-1\n  - name: predefined-2\n",
        ),
    )
    try:
        with server.client(admin) as c:
            r = c.get("/v1/key/describe/predefined-1")
            assert r.status_code == 200 and r.json()["created_by"] == admin.identity
            assert c.get("/v1/key/list/predefined*").json()["names"] == [
                "predefined-1",
                "predefined-2",
            ]
    finally:
        assert server.stop() == 0
    out, err = server.output()
    assert "Filesystem: " + str(tmp_path / "keys") in out
    assert f"Admin       {admin.identity}" in out
    assert "=> Server is up and running..." in out
    assert "=> Stopping server... Goodbye." in out


def test_disabled_admin_shows_in_banner(tmp_path: Path, pki: PKI) -> None:
    server = start_server(tmp_path, pki, config_yaml(pki, "disabled", tmp_path / "keys"))
    try:
        with server.client(pki.client("admin")) as c:
            assert c.get("/v1/status").status_code == 403
    finally:
        server.stop()
    assert "Admin       <disabled>" in server.output()[0]


def test_two_workers_share_the_port_and_keystore(tmp_path: Path, pki: PKI) -> None:
    admin = pki.client("admin")
    server = start_server(
        tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"), workers=2
    )
    try:
        time.sleep(0.5)
        seen = set()
        for i in range(12):
            with server.client(admin) as c:  # new connection each time: spread over workers
                assert c.post(f"/v1/key/create/w-{i}").status_code == 200
                assert c.get(f"/v1/key/describe/w-{(i * 7) % (i + 1)}").status_code == 200
                seen.add(c.get("/v1/key/list/w-*").status_code)
        assert seen == {200}
        out = subprocess.run(
            ["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True
        ).stdout
        assert len(out.split()) == 2
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_policies_and_keeps_old_config_on_error(
    tmp_path: Path, pki: PKI, workers: int
) -> None:
    admin, user = pki.client("admin"), pki.client("reload-user")
    base = config_yaml(pki, admin.identity, tmp_path / "keys")
    server = start_server(tmp_path, pki, base, workers=workers)
    try:
        time.sleep(0.3)
        with server.client(user) as c:
            assert c.get("/v1/status").status_code == 403
        server.config.write_text(
            base
            + f"policy:\n  status:\n    allow: [/v1/status]\n    identities: [{user.identity}]\n"
        )
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if server.output()[1].count("Reloading configuration after SIGHUP") >= workers:
                break
            time.sleep(0.05)
        for _ in range(6):  # new connections: reach every worker
            with server.client(user) as c:
                assert c.get("/v1/status").status_code == 200
        server.config.write_text("version: v1\nadmin: [broken\n")
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "Failed to reload server config" in server.output()[1]:
                break
            time.sleep(0.05)
        assert "Failed to reload server config: yaml: line" in server.output()[1]
        with server.client(user) as c:
            assert c.get("/v1/status").status_code == 200  # the old config still serves
        assert server.proc.poll() is None
    finally:
        assert server.stop() == 0


def test_fs_keystore_path_that_is_a_file(tmp_path: Path, pki: PKI) -> None:
    (tmp_path / "keys").write_text("not a directory")
    cfg = tmp_path / "c.yml"
    cfg.write_text(config_yaml(pki, "disabled", tmp_path / "keys"))
    r = _run(["server", "--config", str(cfg), "--addr", f"127.0.0.1:{free_port()}"])
    assert r.returncode == 1
    assert r.stderr == f"Error: fs: '{tmp_path / 'keys'}' is not a directory\n"
    assert "Server is up and running" not in r.stdout


def test_reload_under_load_drops_no_request(tmp_path: Path, pki: PKI) -> None:
    admin, user = pki.client("admin"), pki.client("load-user")
    base = config_yaml(pki, admin.identity, tmp_path / "keys")
    server = start_server(tmp_path, pki, base, workers=2)
    failures: list[str] = []
    done = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal done
        with server.client(admin) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/key/generate/load-key", json={})
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text}")
                    done += 1
                except httpx.HTTPError as err:
                    failures.append(repr(err))

    try:
        time.sleep(0.3)
        with server.client(admin) as c:
            assert c.post("/v1/key/create/load-key").status_code == 200
        threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        for round_ in range(3):
            allowed = "/v1/status" if round_ % 2 == 0 else "/v1/api"
            server.config.write_text(
                base + f"policy:\n  p:\n    allow: [{allowed}]\n    identities: [{user.identity}]\n"
            )
            server.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while server.output()[1].count("Reloading configuration after SIGHUP") < 2 * (
                round_ + 1
            ):
                assert time.monotonic() < deadline, server.output()[1]
                time.sleep(0.05)
            for _ in range(4):  # every worker enforces the new policy
                with server.client(user) as c:
                    assert c.get(allowed).status_code == 200
                    other = "/v1/api" if allowed == "/v1/status" else "/v1/status"
                    assert c.get(other).status_code == 403
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        stop.set()
        server.stop()
    assert failures == []
    assert done > 50


def test_workers_exit_when_the_master_is_killed(tmp_path: Path, pki: PKI) -> None:
    admin = pki.client("admin")
    server = start_server(
        tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"), workers=2
    )
    try:
        time.sleep(0.5)
        children = subprocess.run(
            ["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) == 2
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        deadline = time.monotonic() + 10
        alive = children
        while alive and time.monotonic() < deadline:
            alive = [
                pid
                for pid in children
                if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
            ]
            time.sleep(0.1)
        assert alive == []  # no orphaned worker keeps the port
    finally:
        server.stop()
