"""``kes server`` start-up as a newcomer meets it: errors that name the file and the
thing that failed, nothing claiming the server is up before it listens, ``--check``
to validate a config without starting, a warning per unknown config key, and a
``--dev`` banner whose ``export`` line and hints work as printed."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from conftest import (
    PKI,
    _pem_key,
    config_yaml,
    free_port,
    kes_command,
    make_certificate,
    start_server,
)
from dev_server import dev_server as start_dev_server
from test_cli_support import clean_env


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        kes_command(*args), capture_output=True, text=True, timeout=timeout, env=clean_env()
    )


def _config(tmp_path: Path, pki: PKI, text: str | None = None) -> Path:
    cfg = tmp_path / "config.yml"
    cfg.write_text(text if text is not None else config_yaml(pki, "disabled", tmp_path / "keys"))
    return cfg


def _error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, (r.stdout, r.stderr)
    last = r.stderr.splitlines()[-1]
    assert last.startswith("Error: "), r.stderr
    assert "Traceback" not in r.stderr
    return last.removeprefix("Error: ")


# ------------------------------------------------------------------ errors name the file
@pytest.mark.parametrize(
    ("setting", "thing"),
    [("server_key", "TLS private key"), ("server_cert", "TLS certificate")],
)
def test_missing_tls_file_is_named(tmp_path: Path, pki: PKI, setting: str, thing: str) -> None:
    missing = tmp_path / "missing.pem"
    text = config_yaml(pki, "disabled", tmp_path / "keys")
    cfg = _config(tmp_path, pki, text.replace(str(getattr(pki, setting)), str(missing)))
    r = _run("server", "--config", str(cfg), "--addr", f"127.0.0.1:{free_port()}")
    assert _error(r) == f"failed to read {thing}: open {missing}: no such file or directory"
    assert r.stdout == ""


def test_private_key_of_another_certificate_is_named(tmp_path: Path, pki: PKI) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "other.key").write_bytes(_pem_key(other))
    cfg = _config(
        tmp_path,
        pki,
        config_yaml(pki, "disabled", tmp_path / "keys").replace(
            str(pki.server_key), str(tmp_path / "other.key")
        ),
    )
    r = _run("server", "--config", str(cfg), "--addr", f"127.0.0.1:{free_port()}")
    assert _error(r) == (
        f"failed to read TLS private key: {tmp_path / 'other.key'}: "
        f"it does not match the certificate {pki.server_cert}"
    )


def test_certificate_without_names_is_named(tmp_path: Path, pki: PKI) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_certificate(key, "no-san", eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    from cryptography.hazmat.primitives import serialization

    (tmp_path / "nosan.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "nosan.key").write_bytes(_pem_key(key))
    text = (
        config_yaml(pki, "disabled", tmp_path / "keys")
        .replace(str(pki.server_cert), str(tmp_path / "nosan.crt"))
        .replace(str(pki.server_key), str(tmp_path / "nosan.key"))
    )
    r = _run("server", "--config", str(_config(tmp_path, pki, text)), "--check")
    assert _error(r) == (
        f"invalid TLS certificate: {tmp_path / 'nosan.crt'}: "
        "certificate does not contain any DNS or IP address as SAN"
    )


# ------------------------------------------------------------------ up means listening
def test_port_in_use_fails_before_any_banner(tmp_path: Path, pki: PKI) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = _run("server", "--config", str(_config(tmp_path, pki)), "--addr", f"127.0.0.1:{port}")
    assert _error(r) == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
    assert "Server is up and running" not in r.stdout
    assert r.stdout == ""  # no banner at all: the server never started


def test_a_second_server_on_a_served_port_is_refused(tmp_path: Path, pki: PKI) -> None:
    """Workers bind with SO_REUSEPORT; a second `kes server` on the same port must not
    silently join the first and take half of its connections (Go refuses it)."""
    server = start_server(tmp_path, pki, config_yaml(pki, "disabled", tmp_path / "keys"), workers=2)
    port = server.port
    try:
        second_dir = tmp_path / "second"
        second_dir.mkdir()
        r = _run(
            "server", "--config", str(_config(second_dir, pki)), "--addr", f"127.0.0.1:{port}",
            "--workers", "2",
        )  # fmt: skip
        assert _error(r) == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
        assert r.stdout == ""
    finally:
        server.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_up_and_running_means_listening(tmp_path: Path, pki: PKI, workers: int) -> None:
    port = free_port()
    proc = subprocess.Popen(
        kes_command(
            "server",
            "--config",
            str(_config(tmp_path, pki)),
            "--addr",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        while not (lines and lines[-1] == "=> Server is up and running...\n"):
            line = proc.stdout.readline()
            assert line, (lines, proc.stderr.read() if proc.stderr else "")
            lines.append(line)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # no retry: the line came after the port was listening
        assert lines[-2] == "\n" and lines[0].startswith("Version")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert out.count("Server is up and running") == 0  # printed once, read above


# ------------------------------------------------------------------ --check
def test_check_accepts_a_valid_config_without_serving(tmp_path: Path, pki: PKI) -> None:
    cfg = _config(tmp_path, pki)
    with socket.socket() as taken:  # checking the config of a running server works
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = _run("server", "--config", str(cfg), "--addr", f"127.0.0.1:{port}", "--check")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{cfg}: the configuration is valid\n"
    assert r.stderr == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: v2\n", "edge: invalid server config version 'v2'"),
        ("admin: [\n", None),
    ],
)
def test_check_rejects_a_bad_config_with_one_error_line(
    tmp_path: Path, pki: PKI, text: str, message: str | None
) -> None:
    r = _run("server", "--config", str(_config(tmp_path, pki, text)), "--check")
    line = _error(r)
    assert r.stderr.count("\n") == 1 and r.stdout == ""
    if message is not None:
        assert line == message


def test_check_connects_the_keystore(tmp_path: Path, pki: PKI) -> None:
    (tmp_path / "keys").write_text("a file, not a directory")
    r = _run("server", "--config", str(_config(tmp_path, pki)), "--check")
    assert _error(r) == f"fs: '{tmp_path / 'keys'}' is not a directory"


def test_check_with_dev_is_an_error() -> None:
    r = _run("server", "--dev", "--check")
    assert _error(r) == "'--check' flag is not supported in development mode"


# ------------------------------------------------------------------ unknown keys
def test_unknown_keys_get_a_warning_line_each(tmp_path: Path, pki: PKI) -> None:
    text = (
        config_yaml(pki, "disabled", tmp_path / "keys").replace(
            "tls:\n", "adress: 0.0.0.0:7000\ntls:\n  cetr: typo.crt\n"
        )
        + "cache:\n  expiry:\n    unusd: 10s\n"
    )
    cfg = _config(tmp_path, pki, text)
    r = _run("server", "--config", str(cfg), "--check")
    assert r.returncode == 0, r.stderr
    lines = text.splitlines()
    where = {k: lines.index(k) + 1 for k in ("adress: 0.0.0.0:7000", "  cetr: typo.crt")}
    assert r.stderr.splitlines() == [
        f"WARNING: {cfg}: line {where['adress: 0.0.0.0:7000']}: unknown key 'adress' is ignored",
        f"WARNING: {cfg}: line {where['  cetr: typo.crt']}: unknown key 'tls.cetr' is ignored",
        f"WARNING: {cfg}: line {len(lines)}: unknown key 'cache.expiry.unusd' is ignored",
    ]


def test_unknown_key_warning_comes_before_the_error_it_explains(tmp_path: Path, pki: PKI) -> None:
    text = config_yaml(pki, "disabled", tmp_path / "keys").replace("  cert:", "  cetr:")
    cfg = _config(tmp_path, pki, text)
    r = _run("server", "--config", str(cfg), "--addr", f"127.0.0.1:{free_port()}")
    assert r.returncode == 1
    warning, error = r.stderr.splitlines()
    assert re.fullmatch(
        rf"WARNING: {re.escape(str(cfg))}: line \d+: unknown key 'tls.cetr' is ignored", warning
    )
    assert error == "Error: kesconf: invalid tls config: no certificate"


def test_known_keys_get_no_warning(tmp_path: Path, pki: PKI) -> None:
    text = "version: v1\naddress: 127.0.0.1:7373\n" + config_yaml(
        pki,
        "disabled",
        tmp_path / "keys",
        "policy:\n  p:\n    allow: [/v1/status]\n    identities: []\n"
        "cache:\n  expiry:\n    any: 5m\n    unused: 30s\n    offline: 0s\n"
        "log:\n  error: on\n  audit: off\n"
        "api:\n  legacy: on\n  /v1/status:\n    skip_auth: false\n    timeout: 10s\n"
        "keys:\n  - name: k1\n",
    ).removeprefix("version: v1\n")
    r = _run("server", "--config", str(_config(tmp_path, pki, text)), "--check")
    assert r.returncode == 0 and r.stderr == "", r.stderr


# ------------------------------------------------------------------ --dev hints
@pytest.fixture
def dev_server() -> Iterator[tuple[str, int]]:
    with start_dev_server(clean_env()) as started:
        yield started


def test_dev_banner_export_line_and_hints_work_as_printed(
    dev_server: tuple[str, int], tmp_path: Path
) -> None:
    banner, port = dev_server
    api_key = re.search(r"^API Key\s+(kes:v1:\S+)$", banner, re.M).group(1)
    export = f"   export KES_SERVER=https://127.0.0.1:{port} KES_API_KEY={api_key}\n"
    assert export in banner
    hints = [line.strip() for line in banner.splitlines() if line.startswith("   ")]
    # Run the printed lines as a user pastes them (`kes` as printed: on PATH here).
    script = "set -e\n" + "\n".join(h for h in hints if h.startswith(("export", "kes", "SSL_")))
    bin_dir = Path(kes_command()[0]).parent
    env = clean_env(PATH=f"{bin_dir}:{clean_env()['PATH']}")
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, (script, r.stderr)
    assert r.stdout.count('"version":') == 2  # `kes status -k` and the SSL_CERT_FILE one
    # Without -k (and without the certificate) the CLI says what is wrong.
    r = subprocess.run(
        ["bash", "-c", "\n".join(h for h in hints if h.startswith("export")) + "\nkes status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 1
    assert "self-signed certificate" in r.stderr and "-k" in r.stderr, r.stderr


def test_dev_server_certificate_verifies_for_its_address(dev_server: tuple[str, int]) -> None:
    banner, port = dev_server
    cert = re.search(r"SSL_CERT_FILE=(\S+)", banner).group(1)
    ctx = ssl.create_default_context(cafile=cert)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"),
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.05)
        tls.recv(10)  # verified the server; refused for having no client certificate
