"""bench/kesload, the bench's load generator, against a real pykes server over mTLS:
what it prints is what the driver (bench/kesbench) parses, its counts are real requests,
and its failures say why. Short windows (0.3 s): nothing here asserts a speed."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import PKI, RunningServer, go_build, load_bench_driver, start_server
from pykes.pki.apikey import APIKey

BENCH = Path(__file__).resolve().parents[1] / "bench"


kesload_output = load_bench_driver("kesload_output")


@pytest.fixture(scope="module")
def kesload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return go_build(BENCH / "kesload", "kesload", tmp_path_factory)


def _run(
    kesload: Path, server: RunningServer, credentials: list[str], *args: str
) -> subprocess.CompletedProcess[str]:
    cmd = [str(kesload), "--server", f"https://127.0.0.1:{server.port}"]
    cmd += ["--ca", str(server.pki.server_cert), *credentials, "--key-name", "load-key"]
    cmd += ["--duration", "300ms", "--warmup", "100ms", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def _client_files(pki: PKI, name: str) -> list[str]:
    ident = pki.client(name)
    return ["--cert", str(ident.cert_file), "--key", str(ident.key_file)]


@pytest.mark.parametrize(
    ("op", "args", "protocol"),
    [
        ("generate", ("--http2", "off"), "HTTP/1.1"),
        ("decrypt", ("--http2", "on", "--verify"), "HTTP/2.0"),
        ("encrypt", ("--http2", "off", "--new-conn", "--verify"), "HTTP/1.1"),
    ],
)
def test_rows_parse_as_the_driver_expects(
    kesload: Path,
    server_factory: Callable[..., RunningServer],
    pki: PKI,
    op: str,
    args: tuple[str, ...],
    protocol: str,
) -> None:
    server = server_factory()
    done = _run(
        kesload, server, _client_files(pki, "admin"), "--op", op, "--concurrency", "4", *args
    )
    assert done.returncode == 0, done.stderr
    fields = kesload_output.parse_result_line(done.stdout)
    assert (fields["op"], fields["conc"], fields["errors"]) == (op, 4, 0)
    assert fields["total"] > 0 and fields["rps"] > 0
    assert 0 < fields["p50_ms"] <= fields["p90_ms"] <= fields["p99_ms"] <= fields["max_ms"]
    assert fields["http2"] == ("on" if protocol == "HTTP/2.0" else "off")
    assert fields["new_conn"] is ("--new-conn" in args)
    assert kesload_output.parse_protocol(done.stdout) == protocol  # what the server answered over
    assert 0.3 <= fields["duration_s"] < 5
    assert 'created key "load-key"' in done.stdout


def test_api_key_becomes_the_sdks_client_certificate(
    kesload: Path, server_factory: Callable[..., RunningServer]
) -> None:
    key = APIKey.generate()
    server = server_factory(admin=key.identity)  # served only if kesload derives this identity
    done = _run(kesload, server, ["--api-key", str(key)], "--op", "generate", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    assert f"identity={key.identity}" in done.stdout.splitlines()[0]
    assert kesload_output.parse_result_line(done.stdout)["errors"] == 0


def test_refused_requests_are_counted_and_named(
    kesload: Path, server_factory: Callable[..., RunningServer], pki: PKI
) -> None:
    app = pki.client("generate-only")
    policy = (
        "policy:\n  app:\n    allow: [/v1/key/create/*, /v1/key/generate/*]\n"
        f"    identities: [{app.identity}]\n"
    )
    server = server_factory(policy)
    credentials = ["--cert", str(app.cert_file), "--key", str(app.key_file)]
    done = _run(kesload, server, credentials, "--op", "decrypt", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    fields = kesload_output.parse_result_line(done.stdout)
    assert fields["errors"] == fields["total"] > 0  # every decrypt is refused
    total = fields["total"]
    assert kesload_output.parse_error_lines(done.stdout) == [
        f"{total} x HTTP 403: not authorized: insufficient permissions"  # one line
    ]


def test_a_failed_setup_exits_with_its_reason(
    kesload: Path, server_factory: Callable[..., RunningServer], pki: PKI
) -> None:
    server = server_factory()
    done = _run(kesload, server, _client_files(pki, "stranger"), "--op", "generate")
    assert done.returncode == 2
    reason = kesload_output.failure_reason(done.stdout + done.stderr)
    assert reason.startswith("kesload: setup: generate a data key: HTTP 403")
    bad = _run(kesload, server, ["--api-key", "kes:v1:nonsense"], "--op", "generate")
    assert bad.returncode == 2 and bad.stderr.startswith(
        "kesload: client certificate: invalid API key"
    )


def _sqlite_server(tmp_path: Path, pki: PKI, request: pytest.FixtureRequest) -> RunningServer:
    """A stateful pykes on the bench's SQLite store, ``admin`` its admin."""
    stores = load_bench_driver("stores")
    config = (
        f"version: v1\nadmin:\n  identity: {pki.client('admin').identity}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
        f"{stores.SQLITE.setup(tmp_path).section}"
    )
    server = start_server(tmp_path, pki, config)
    request.addfinalizer(server.stop)
    return server


def test_enclave_rows_act_in_the_named_enclave(
    kesload: Path, tmp_path: Path, pki: PKI, request: pytest.FixtureRequest
) -> None:
    """--enclave sends Kes-Enclave: on a stateful pykes (the bench's SQLite store) the
    load's key is created and used in that enclave only; an unknown enclave fails set-up."""
    server = _sqlite_server(tmp_path, pki, request)
    admin = pki.client("admin")
    credentials = _client_files(pki, "admin")

    missing = _run(kesload, server, credentials, "--enclave", "tenant", "--op", "generate")
    assert missing.returncode == 2
    assert kesload_output.failure_reason(missing.stdout + missing.stderr) == (
        "kesload: setup: create key: HTTP 404: enclave does not exist"
    )
    with server.client(admin) as client:
        assert client.put("/v1/enclave/create/tenant").status_code == 200
    for op in ("generate", "decrypt"):
        done = _run(kesload, server, credentials, "--enclave", "tenant", "--op", op, "--verify")
        assert done.returncode == 0, done.stderr
        assert kesload_output.parse_result_line(done.stdout)["errors"] == 0
    with server.client(admin) as client:
        in_tenant = client.get("/v1/key/describe/load-key", headers={"Kes-Enclave": "tenant"})
        assert in_tenant.status_code == 200
        assert client.get("/v1/key/describe/load-key").status_code == 404  # not in default


def test_openbao_rows_are_answered_from_the_cache(
    kesload: Path, tmp_path: Path, pki: PKI, request: pytest.FixtureRequest
) -> None:
    """The bench's OpenBao store (a ``bao server -dev`` it starts, ``store.vault`` on a
    K/V v2 mount): the load runs in the enclave, and once the key is cached OpenBao sees
    no request per data key — its audit log counts what it got."""
    stores = load_bench_driver("stores")
    setup = stores.OPENBAO.setup(tmp_path)
    request.addfinalizer(setup.backing.stop)  # after the server (finalizers run LIFO)
    admin = pki.client("admin")
    config = (
        f"version: v1\nadmin:\n  identity: {admin.identity}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n{setup.section}"
    )
    server = start_server(tmp_path, pki, config)
    request.addfinalizer(server.stop)
    with server.client(admin) as client:
        assert client.put(f"/v1/enclave/create/{stores.BENCH_ENCLAVE}").status_code == 200
    credentials = [*_client_files(pki, "admin"), "--enclave", stores.BENCH_ENCLAVE]
    first = _run(kesload, server, credentials, "--op", "generate")  # creates the key
    assert first.returncode == 0, first.stderr
    for op in ("generate", "decrypt"):
        before = setup.backing.requests()
        done = _run(kesload, server, credentials, "--op", op, "--concurrency", "4", "--verify")
        made = setup.backing.requests() - before
        assert done.returncode == 0, done.stderr
        fields = kesload_output.parse_result_line(done.stdout)
        assert fields["errors"] == 0 and fields["total"] >= 50
        # kesload's set-up ("create" of the existing key) may ask OpenBao; the load not
        assert made <= 2, f"{made} OpenBao requests for {fields['total']} {op} requests"


def test_kms_rows_send_batches_of_generate_key(
    kesload: Path, tmp_path: Path, pki: PKI, request: pytest.FixtureRequest
) -> None:
    """--op kms-generate posts --batch frames of GenerateKey (207) to /v1/kms/<enclave>
    and counts a request only when the answer is 200 with as many frames back."""
    server = _sqlite_server(tmp_path, pki, request)
    credentials = _client_files(pki, "admin")
    with server.client(pki.client("admin")) as client:
        assert client.put("/v1/enclave/create/bench").status_code == 200
    for batch in (1, 64):
        done = _run(
            kesload,
            server,
            credentials,
            "--op",
            "kms-generate",
            "--enclave",
            "bench",
            "--batch",
            str(batch),
            "--concurrency",
            "2",
            "--http2",
            "off",
        )
        assert done.returncode == 0, done.stderr
        fields = kesload_output.parse_result_line(done.stdout)
        assert (fields["op"], fields["batch"], fields["errors"]) == ("kms-generate", batch, 0)
        assert fields["total"] > 0
        assert fields["cmds_per_s"] == pytest.approx(fields["rps"] * batch, rel=0.01)

    over = _run(
        kesload, server, credentials, "--op", "kms-generate", "--enclave", "bench", "--batch", "257"
    )
    assert over.returncode == 2 and "--batch must be between 1 and 256" in over.stderr
    no_enclave = _run(kesload, server, credentials, "--op", "kms-generate")
    assert no_enclave.returncode == 2 and "needs --enclave" in no_enclave.stderr
