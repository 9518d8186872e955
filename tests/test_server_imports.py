"""What a ``kes server`` with a fs keystore imports (issue 7: every module imported by
the master is copied into each worker's RSS). Python's ``-X importtime`` log
(``PYTHONPROFILEIMPORTTIME``, inherited by the forked workers) lists every module the
master and the workers import, including those imported lazily while serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import PKI, config_yaml, start_server

#: Packages a server with a fs keystore must not load: the other keystores' SDKs, the
#: client commands' terminal output (rich) and the ``h2`` library (the server's HTTP/2
#: is its own; only the SDK's httpx uses ``h2``).
NOT_FOR_FS = (
    "azure",
    "boto3",
    "botocore",
    "google",
    "grpc",
    "h2",
    "hvac",
    "httpx",
    "prometheus_client",
    "requests",
    "rich",
)


def imported_modules(stderr_text: str) -> set[str]:
    """Module names from ``import time: self | cumulative | name`` lines."""
    names = set()
    for line in stderr_text.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    return names


def serve_both_protocols(tmp_path: Path, pki: PKI, http2_versions: tuple[bool, ...]) -> set[str]:
    """Start a 2-worker fs server, make key requests over each protocol on fresh
    connections (so both workers serve), stop it; the modules it imported."""
    admin = pki.client("admin")
    server = start_server(
        tmp_path, pki, config_yaml(pki, admin.identity, tmp_path / "keys"), workers=2
    )
    try:
        for http2 in http2_versions:
            for i in range(4):  # new connections: spread over both workers
                with server.client(admin, http2=http2) as c:
                    name = f"k-{int(http2)}-{i}"
                    assert c.post(f"/v1/key/create/{name}").status_code == 200
                    dek = c.post(f"/v1/key/generate/{name}", json={}).json()
                    r = c.post(f"/v1/key/decrypt/{name}", json={"ciphertext": dek["ciphertext"]})
                    assert r.status_code == 200
                    assert c.get("/v1/key/list/k-*").status_code == 200
    finally:
        assert server.stop() == 0
    modules = imported_modules(server.stderr.read_text())
    assert {"uvloop", "pykes.process.runner", "pykes.keystore.fs"} <= modules  # log works
    return modules


def test_fs_server_and_workers_import_no_cloud_sdk_nor_rich(
    tmp_path: Path, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    modules = serve_both_protocols(tmp_path, pki, (False, True))
    loaded = sorted(m for m in modules if m.split(".")[0] in NOT_FOR_FS)
    assert loaded == []
