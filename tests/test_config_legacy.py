"""Configuration files of older KES releases (docs/compat/config.md §7) load as their v1
equivalent, with one deprecation line; a v1 file is untouched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import PKI, RunningServer, free_port, kes_command, wait_until_serving
from pykes.config import AWSKeyStoreConfig, FSKeyStoreConfig, VaultKeyStoreConfig, load_config

ADMIN = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"
APP = "c3e1f9b7e0f8f2a54b1b17f2c0f4e6a8b9d0c1e2f3a4b5c6d7e8f9a0b1c2d3e4"


def test_v0_7_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "server-config.toml"
    cfg.write_text(
        f'''address = "127.0.0.1:7373"
root = "{ADMIN}"

[tls]
key = "/etc/kes/server.key"
cert = "/etc/kes/server.crt"

[policy.my-app]
paths = ["/v1/key/create/my-app-*", "/v1/key/generate/my-app-*"]
identities = ["{APP}"]

[cache.expiry]
all = "5m0s"
unused = "20s"

[log.error]
file = ["/dev/stderr"]

[keystore.vault]
address = "https://vault:8200"
name = "kes"

[keystore.vault.approle]
id = "role-id"
secret = "secret-id"
retry = "15s"

[keystore.vault.status]
ping = "10s"
'''
    )
    config = load_config(str(cfg))
    assert config.admin_identity == ADMIN
    assert config.address == "127.0.0.1:7373"
    assert config.tls.key == "/etc/kes/server.key"
    assert config.policies["my-app"].allow == [
        "/v1/key/create/my-app-*",
        "/v1/key/generate/my-app-*",
    ]
    assert config.policies["my-app"].identities == [APP]
    assert (config.cache.any, config.cache.unused) == (300.0, 20.0)
    ks = config.keystore
    assert isinstance(ks, VaultKeyStoreConfig)
    assert ks.endpoint == "https://vault:8200" and ks.prefix == "kes"
    assert (
        ks.approle is not None and ks.approle.id == "role-id" and ks.approle.secret == "secret-id"
    )
    assert ks.status_ping == 10.0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TOML format of KES v0.4" in err


def test_v0_10_yaml_with_keys_backends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(
        f"""address: 0.0.0.0:7373
root: {ADMIN}
tls:
  key: ./server.key
  cert: ./server.crt
  auth: off
policy:
  app:
    paths:
    - /v1/key/decrypt/app-*
    identities:
    - {APP}
cache:
  expiry:
    any: 5m0s
    unused: 20s
log:
  error: on
  audit: off
keys:
  aws:
    secretsmanager:
      endpoint: secretsmanager.us-east-2.amazonaws.com
      region: us-east-2
      credentials:
        accesskey: AKIA
        secretkey: SECRET
"""
    )
    config = load_config(str(cfg))
    assert config.admin_identity == ADMIN
    assert config.tls.auth == "off"
    assert config.policies["app"].allow == ["/v1/key/decrypt/app-*"]
    assert config.log_error == 0 and config.log_audit > 8  # on / off
    ks = config.keystore
    assert isinstance(ks, AWSKeyStoreConfig)
    assert (ks.endpoint, ks.region, ks.access_key) == (
        "secretsmanager.us-east-2.amazonaws.com",
        "us-east-2",
        "AKIA",
    )
    assert "YAML layout of KES v0.8" in capsys.readouterr().err


@pytest.mark.parametrize("root", ["_", "disabled"])
def test_v0_17_root_disabled_and_predefined_keys(tmp_path: Path, root: str) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(
        f"root: {root}\ntls:\n  key: k\n  cert: c\nkeys:\n- name: k1\n"
        f"keystore:\n  fs:\n    path: {tmp_path / 'keys'}\n"
    )
    config = load_config(str(cfg))
    assert config.admin_identity == "disabled"
    assert config.keys == ["k1"]
    assert isinstance(config.keystore, FSKeyStoreConfig)


def test_v1_file_is_not_translated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(
        f"admin:\n  identity: {ADMIN}\ntls:\n  key: k\n  cert: c\n"
        "keystore:\n  fs:\n    path: /tmp/x\n"
    )
    assert load_config(str(cfg)).admin_identity == ADMIN
    assert capsys.readouterr().err == ""


def test_server_starts_from_a_toml_config(tmp_path: Path, pki: PKI) -> None:
    admin = pki.client("admin")
    cfg = tmp_path / "server-config.toml"
    cfg.write_text(
        f'root = "{admin.identity}"\n[tls]\nkey = "{pki.server_key}"\ncert = "{pki.server_cert}"\n'
        f'[keystore.fs]\npath = "{tmp_path / "keys"}"\n'
    )
    port = free_port()
    proc = subprocess.Popen(
        kes_command(
            "server", "--config", str(cfg), "--addr", f"127.0.0.1:{port}", "--workers", "1"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        while "Server is up" not in line:
            assert line, proc.stderr.read()
            line = proc.stdout.readline()
        server = RunningServer(proc, port, cfg, pki, tmp_path / "o", tmp_path / "e")
        wait_until_serving(server)
        with server.client(admin) as c:
            assert c.get("/v1/identity/self/describe").json()["admin"] is True
    finally:
        proc.terminate()
        proc.wait(10)
