"""pykes served to Go's own HTTP client (tests/goclient: net/http + crypto/tls, what the
Go SDK and MinIO use): many goroutines sharing one HTTP/2 connection — pykes's own
HTTP/2 implementation against Go's — and HTTP/1.1 keep-alive, every data key round
trip checked (decrypt returns what generate gave)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import PKI, config_yaml, start_server


def _api(goclient: Path, port: int, pki: PKI, *args: str) -> dict:
    admin = pki.client("admin")
    done = subprocess.run(
        [
            str(goclient),
            "-mode=api",
            f"-addr=127.0.0.1:{port}",
            f"-ca={pki.server_cert}",
            f"-cert={admin.cert_file}",
            f"-key={admin.key_file}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("protocol", "flags"),
    [("HTTP/2.0", ()), ("HTTP/1.1", ("-http1",))],
    ids=["h2", "h1"],
)
def test_go_client_round_trips(
    tmp_path: Path, pki: PKI, goclient: Path, protocol: str, flags: tuple[str, ...]
) -> None:
    admin = pki.client("admin")
    server = start_server(
        tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"), workers=2
    )
    try:
        summary = _api(
            goclient,
            server.port,
            pki,
            "-keyname=go-interop",
            "-concurrency=48",
            "-requests=1500",
            *flags,
        )
    finally:
        server.stop()
    assert summary["create_status"] == 200
    assert summary["errors"] is None, summary["errors"]
    assert summary["generated"] == summary["decrypted"] == 1500
    assert summary["mismatches"] == 0
    assert summary["protocols"] == [protocol]
