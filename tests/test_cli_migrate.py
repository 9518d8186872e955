"""``kes migrate --from CFG --to CFG`` between two fs keystores (docs/compat/cli.md §11): raw
values copied unchanged, interrupted once with SIGKILL and completed with --merge."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PKI, config_yaml, kes_command
from pykes.crypto import decode_key_version, encode_key_version, generate_key_version
from pykes.keystore.fs import TEMP_PREFIX
from test_cli_support import clean_env, error_line, run_kes

COUNT = 1000
LEGACY = b'{"bytes":"' + b"A" * 43 + b'=","algorithm":"AES256"}'  # legacy JSON key value


def _config(tmp_path: Path, pki: PKI, name: str) -> tuple[Path, Path]:
    keys = tmp_path / name
    cfg = tmp_path / f"{name}.yml"
    cfg.write_text(config_yaml(pki, "disabled", keys))
    return cfg, keys


def _names(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith(TEMP_PREFIX))


def _fill(directory: Path) -> dict[str, bytes]:
    directory.mkdir(parents=True)
    values: dict[str, bytes] = {}
    for i in range(COUNT):
        name = f"key-{i:04d}"
        values[name] = LEGACY if i % 100 == 7 else encode_key_version(generate_key_version())
        fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(values[name])
    return values


def test_interrupted_migration_completes_with_merge(tmp_path: Path, pki: PKI) -> None:
    src_cfg, src_keys = _config(tmp_path, pki, "src")
    dst_cfg, dst_keys = _config(tmp_path, pki, "dst")
    values = _fill(src_keys)
    env = clean_env()

    proc = subprocess.Popen(
        kes_command("migrate", "--from", str(src_cfg), "--to", str(dst_cfg)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while len(_names(dst_keys)) < 50 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    copied = _names(dst_keys)
    assert 50 <= len(copied) < COUNT, len(copied)  # really interrupted part-way

    # without --merge the first existing key aborts the migration
    r = run_kes("migrate", "--from", str(src_cfg), "--to", str(dst_cfg), env=env)
    assert error_line(r) == "key already exists"
    assert r.stdout.startswith("Starting key migration:\n\n")

    r = run_kes("migrate", "--merge", "--from", str(src_cfg), "--to", str(dst_cfg), env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"Migrated {COUNT - len(copied):6d} keys successfully!"
    assert _names(dst_keys) == sorted(values)
    for name, value in values.items():
        path = dst_keys / name
        assert path.read_bytes() == value, name  # raw values, byte-identical
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert decode_key_version((dst_keys / "key-0007").read_bytes()).hmac_key is None  # legacy

    r = run_kes("migrate", "--merge", "--from", str(src_cfg), "--to", str(dst_cfg), env=env)
    assert r.stdout.splitlines()[-1] == "Migration succeeded! No keys migrated."


def test_pattern_force_and_flag_errors(tmp_path: Path, pki: PKI) -> None:
    src_cfg, src_keys = _config(tmp_path, pki, "src")
    dst_cfg, dst_keys = _config(tmp_path, pki, "dst")
    src_keys.mkdir()
    dst_keys.mkdir()
    for name in ("app-1", "app-2", "db-1"):
        (src_keys / name).write_bytes(encode_key_version(generate_key_version()))
    (dst_keys / "app-1").write_bytes(b"stale")
    env = clean_env()
    migrate = ("migrate", "--from", str(src_cfg), "--to", str(dst_cfg))

    r = run_kes(*migrate, "--force", "app-?", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "Migrated      2 keys successfully!"
    assert _names(dst_keys) == ["app-1", "app-2"]
    assert (dst_keys / "app-1").read_bytes() == (src_keys / "app-1").read_bytes()

    r = run_kes(*migrate, "[^a]*", env=env)
    assert r.returncode == 0 and _names(dst_keys) == ["app-1", "app-2", "db-1"]

    assert error_line(run_kes(*migrate, "--force", "--merge", env=env)) == (
        "'--force' and '--merge' flags are mutually exclusive"
    )
    assert error_line(run_kes("migrate", "--to", str(dst_cfg), env=env)) == (
        "no source specified. Use '--from' flag"
    )
    assert error_line(run_kes(*migrate, "-s", "127.0.0.1:7373", env=env)) == (
        "cannot use '-s / --server' and '--to' flag"
    )
    assert error_line(run_kes("migrate", "--from", str(src_cfg), env=env)) == (
        "missing migration target. Use '--to' or '--server'"
    )
    r = run_kes("migrate", "--from", str(src_cfg), "-s", "kms:7373", "-e", "e", "-a", "k", env=env)
    assert error_line(r) == "parsing API key: invalid API key: illegal base64 data"


@pytest.mark.parametrize("broken", ["version: v9\n", "admin: [\n"])
def test_invalid_config(tmp_path: Path, pki: PKI, broken: str) -> None:
    src_cfg, _ = _config(tmp_path, pki, "src")
    bad = tmp_path / "bad.yml"
    bad.write_text(broken)
    r = run_kes("migrate", "--from", str(src_cfg), "--to", str(bad), env=clean_env())
    assert r.returncode == 1 and r.stderr.startswith("Error: ") and len(r.stderr.splitlines()) == 1
