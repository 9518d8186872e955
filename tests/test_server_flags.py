"""The older `kes server` flags (issue 6: --root, --key/--cert, --auth/--mtls-auth,
--mlock) and memory locking (issue 9): real servers started with the flags, real mTLS
clients proving each flag's effect, /proc proving the locks."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from conftest import (
    PKI,
    RunningServer,
    _pem_key,
    config_yaml,
    free_port,
    kes_command,
    make_certificate,
    spki_identity,
    start_server,
    wait_until_serving,
)

REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


def _client(server: RunningServer, cert: Path, key: Path) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(server.pki.server_cert))
    ctx.load_cert_chain(str(cert), str(key))
    return httpx.Client(base_url=server.url, verify=ctx, timeout=10)


def _error_line(args: list[str]) -> str:
    r = subprocess.run(kes_command(*args), capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    return r.stderr.strip().splitlines()[-1]


def _wait_for(server: RunningServer, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.output()[1]:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)


def _keystore_only_config(root: Path, extra: str = "") -> str:
    """A v0.x-style file: no admin, no tls — the flags supply them."""
    return f"keystore:\n  fs:\n    path: {root / 'keys'}\n{extra}"


def test_root_key_cert_override_the_config_file_and_survive_sighup(
    tmp_path: Path, pki: PKI
) -> None:
    cfg_admin, root = pki.client("cfg-admin"), pki.client("flag-root")
    # The file names a different server certificate: the client trusts only the one
    # given by --cert, so a handshake proves which one is served.
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = make_certificate(
        other_key, "other", ips=("127.0.0.1",), eku=(ExtendedKeyUsageOID.SERVER_AUTH,)
    )
    (tmp_path / "other.crt").write_bytes(other.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "other.key").write_bytes(_pem_key(other_key))
    text = (
        config_yaml(pki, cfg_admin.identity, tmp_path / "keys")
        .replace(str(pki.server_key), str(tmp_path / "other.key"))
        .replace(str(pki.server_cert), str(tmp_path / "other.crt"))
    )
    flags = ("--root", root.identity, "--key", str(pki.server_key), "--cert", str(pki.server_cert))
    server = start_server(tmp_path, pki, text, extra_args=flags)
    try:
        for reload in (False, True):
            if reload:  # the flags still override the re-read file
                server.proc.send_signal(signal.SIGHUP)
                _wait_for(server, "Reloading configuration after SIGHUP signal completed")
            with _client(server, root.cert_file, root.key_file) as c:
                assert c.post(f"/v1/key/create/by-root-{reload}").status_code == 200
                assert c.get("/v1/identity/self/describe").json()["admin"] is True
            with _client(server, cfg_admin.cert_file, cfg_admin.key_file) as c:
                r = c.post("/v1/key/create/by-config-admin")
                assert (r.status_code, r.json()) == (
                    403,
                    {"message": "not authorized: insufficient permissions"},
                )
    finally:
        server.stop()
    out, err = server.output()
    assert f"Admin       {root.identity}" in out
    for flag, field in (("root", "admin.identity"), ("key", "tls.key"), ("cert", "tls.cert")):
        assert err.count(f"WARNING: '--{flag}' flag is deprecated.") == 1
        assert f"({field})" in err


@pytest.mark.parametrize("root_value", ["_", "disabled"])
def test_root_disabled_and_a_file_without_admin_or_tls(
    tmp_path: Path, pki: PKI, root_value: str
) -> None:
    user = pki.client("flag-policy-user")
    policy = f"policy:\n  p:\n    allow: [/v1/key/create/*]\n    identities: [{user.identity}]\n"
    flags = (f"--root={root_value}", "--key", str(pki.server_key), "--cert", str(pki.server_cert))
    server = start_server(tmp_path, pki, _keystore_only_config(tmp_path, policy), extra_args=flags)
    try:
        with _client(server, user.cert_file, user.key_file) as c:
            assert c.post("/v1/key/create/allowed").status_code == 200
            assert c.delete("/v1/key/delete/allowed").status_code == 403
            me = c.get("/v1/identity/self/describe").json()
            assert (me["policy"], me.get("admin", False)) == ("p", False)
    finally:
        server.stop()
    assert "Admin       <disabled>" in server.output()[0]


def test_mtls_auth_verify_refuses_unknown_certificates_and_auth_off_overrides_the_file(
    tmp_path: Path, pki: PKI
) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_certificate(ca_key, "Flags CA", ca=True, eku=())
    (tmp_path / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    signed_key = ec.generate_private_key(ec.SECP256R1())
    signed = make_certificate(signed_key, "signed", issuer_key=ca_key, issuer_name=ca.subject)
    (tmp_path / "signed.crt").write_bytes(signed.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "signed.key").write_bytes(_pem_key(signed_key))
    self_signed = pki.client("flags-self-signed")

    def config(auth: str) -> str:
        tls_extra = f"  ca: {tmp_path / 'ca.crt'}\n" + (f"  auth: {auth}\n" if auth else "")
        policy = (
            f"policy:\n  p:\n    allow: [/v1/status]\n    identities: [{self_signed.identity}]\n"
        )
        return config_yaml(pki, spki_identity(signed), tmp_path / auth / "keys", policy).replace(
            f"  cert: {pki.server_cert}\n", f"  cert: {pki.server_cert}\n{tls_extra}"
        )

    (tmp_path / "verify").mkdir()
    (tmp_path / "off").mkdir()
    verify = start_server(tmp_path / "verify", pki, config(""), extra_args=("--mtls-auth=verify",))
    ignore = start_server(tmp_path / "off", pki, config("on"), extra_args=("--auth", "off"))
    try:
        with _client(verify, tmp_path / "signed.crt", tmp_path / "signed.key") as c:
            assert c.get("/v1/identity/self/describe").json()["admin"] is True
        with (
            pytest.raises(REFUSED),
            _client(verify, self_signed.cert_file, self_signed.key_file) as c,
        ):
            c.get("/v1/status")
        with _client(ignore, self_signed.cert_file, self_signed.key_file) as c:
            assert c.get("/v1/status").status_code == 200  # its policy applies
    finally:
        verify.stop()
        ignore.stop()
    assert "WARNING: '--mtls-auth' flag is deprecated." in verify.output()[1]
    assert "WARNING: '--auth' flag is deprecated." in ignore.output()[1]
    assert "(tls.auth)" in ignore.output()[1]


HELP = "See 'kes server --help'"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--auth", "maybe"],
            f"""Error: invalid argument "maybe" for "--auth" flag: must be 'on' or 'off'. {HELP}""",
        ),
        (
            ["--mtls-auth=on"],
            f"""Error: invalid argument "on" for "--mtls-auth" flag: must be 'verify' or """
            f"""'ignore'. {HELP}""",
        ),
        (
            ["--root", "ABC"],
            f"""Error: invalid argument "ABC" for "--root" flag: must be an identity """
            f"""(64 lower-case hex characters), '_' or 'disabled'. {HELP}""",
        ),
        (
            ["--key="],
            f"""Error: invalid argument "" for "--key" flag: no file specified. {HELP}""",
        ),
        (
            ["--auth", "on", "--mtls-auth", "verify"],
            f"Error: '--auth' and '--mtls-auth' cannot be used at the same time. {HELP}",
        ),
        (["--dev", "--root", "_"], "Error: '--root' flag is not supported in development mode"),
        (["--dev", "--auth=off"], "Error: '--auth' flag is not supported in development mode"),
    ],
)
def test_bad_flag_values_are_one_line_errors(args: list[str], message: str) -> None:
    assert _error_line(["server", *args]) == message


def test_root_flag_is_validated_like_the_file(tmp_path: Path, pki: PKI) -> None:
    user = pki.client("flag-policy-user")
    config = tmp_path / "c.yml"
    config.write_text(
        config_yaml(pki, pki.client("admin").identity, tmp_path / "keys")
        + f"policy:\n  p:\n    allow: [/v1/status]\n    identities: [{user.identity}]\n"
    )
    assert _error_line(["server", "--config", str(config), "--root", user.identity]) == (
        f"Error: kesconf: invalid policy 'p': identity '{user.identity}' is already admin"
    )
    missing = tmp_path / "nokeys.yml"
    missing.write_text(_keystore_only_config(tmp_path))
    line = _error_line(["server", "--config", str(missing), "--root", user.identity])
    assert line == "Error: kesconf: invalid tls config: no private key"


def _vmlck_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    raise AssertionError("no VmLck line")


def _children(pid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 10
    while True:
        kids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        if len(kids) == count or time.monotonic() > deadline:
            return kids
        time.sleep(0.05)


def _has_cap_ipc_lock() -> bool:
    status = Path("/proc/self/status").read_text()
    cap_eff = next(line for line in status.splitlines() if line.startswith("CapEff:"))
    return bool(int(cap_eff.split()[1], 16) >> 14 & 1)


@pytest.mark.skipif(not _has_cap_ipc_lock(), reason="needs CAP_IPC_LOCK (root)")
def test_memory_is_locked_in_the_master_and_every_worker(tmp_path: Path, pki: PKI) -> None:
    admin = pki.client("admin")
    server = start_server(
        tmp_path,
        pki,
        config_yaml(pki, admin.identity, tmp_path / "keys"),
        workers=2,
        extra_args=("--mlock",),
    )
    try:
        workers = _children(server.proc.pid, 2)
        assert len(workers) == 2
        for _ in range(4):  # new connections: reach both workers
            with server.client(admin) as c:
                assert c.post("/v1/key/generate/absent", json={}).status_code == 404
        for pid in [server.proc.pid, *workers]:
            assert _vmlck_kb(pid) > 0, pid
    finally:
        server.stop()
    out, err = server.output()
    assert "MLock       enabled" in out
    assert "WARNING: '--mlock' flag is deprecated. Memory is locked by default" in err
    assert "memory is not locked" not in err


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_without_permission_the_server_warns_and_serves(tmp_path: Path, pki: PKI) -> None:
    """Root without CAP_IPC_LOCK (dropped from the bounding set) and a finite
    RLIMIT_MEMLOCK: not permitted, one warning line, the server serves unlocked."""
    admin = pki.client("admin")
    config = tmp_path / "config.yml"
    config.write_text(config_yaml(pki, admin.identity, tmp_path / "keys"))
    port = free_port()
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    argv = kes_command("server", "--config", str(config), "--addr", f"127.0.0.1:{port}")
    proc = subprocess.Popen(
        ["setpriv", "--bounding-set=-ipc_lock", "prlimit", "--memlock=65536:65536", "--"]
        + [*argv, "--workers", "2"],
        stdout=out.open("wb"),
        stderr=err.open("wb"),
        stdin=subprocess.DEVNULL,
    )
    server = RunningServer(proc, port, config, pki, out, err)
    try:
        wait_until_serving(server)
        with server.client(admin) as c:
            assert c.get("/v1/status").status_code == 200
        workers = _children(proc.pid, 2)
        assert len(workers) == 2
        for pid in [proc.pid, *workers]:
            assert _vmlck_kb(pid) == 0
    finally:
        server.stop()
    stderr = server.output()[1]
    assert stderr.count("WARNING: memory is not locked (no CAP_IPC_LOCK and RLIMIT_MEMLOCK") == 1
    assert "MLock" not in server.output()[0]
