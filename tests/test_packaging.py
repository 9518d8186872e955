"""pykes as a user installs it: ``python -m build`` makes the sdist and, from it, the
wheel; the wheel goes into a fresh venv with the runtime dependencies only, whose
``kes server --dev`` serves over mTLS. A config naming a cloud keystore whose extra is
not installed fails at start-up with one line naming the extra.

Cost: one build and one install per run (module fixture), ~8 s on 2 idle cores (build
~3 s without build isolation, install ~5 s of wheels from pip's cache) and a 60 MB
venv in a temp dir.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import httpx
import pytest

from conftest import PKI, REPO, api_key_tls_context, free_port

pytestmark = pytest.mark.timeout(300)

#: Modules only the extras (or the test toolchain) bring; unused ones must not return.
# (google.protobuf is a runtime dependency: the cloud SDK is google.cloud)
NOT_AT_RUNTIME = ("boto3", "botocore", "google.cloud", "azure", "hvac", "msgspec", "pytest", "go")


@dataclass
class Installed:
    sdist: Path
    wheel: Path
    venv: Path

    def command(self, *args: str) -> list[str]:
        return [str(self.venv / "bin" / args[0]), *args[1:]]


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: nothing points into this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("packaging")
    dist = root / "dist"
    # Without build isolation: the build backend comes from the [test] extra, so nothing
    # is downloaded. The wheel is built from the unpacked sdist, as pip does with one.
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (sdist,) = dist.glob("pykes-*.tar.gz")
    (wheel,) = dist.glob("pykes-*.whl")
    venv = root / "venv"
    # No pip in the new venv: this suite's pip installs into it (--python), which saves
    # bootstrapping one; the wheels come from pip's cache.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
        + ["install", "--no-input", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    return Installed(sdist, wheel, venv)


def _package_sources() -> set[str]:
    """Every module of the package and its type stubs (the generated protobuf
    messages' ``.pyi``), relative to src/."""
    src = REPO / "src"
    return {
        p.relative_to(src).as_posix()
        for pattern in ("*.py", "*.pyi")
        for p in (src / "pykes").rglob(pattern)
        if "__pycache__" not in p.parts
    }


def test_sdist_holds_the_package_and_its_metadata_only(installed: Installed) -> None:
    with tarfile.open(installed.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"PKG-INFO", "README.md", "pyproject.toml", "setup.cfg", "MANIFEST.in", "src"}
    assert {f"src/{m}" for m in _package_sources()} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".so"))]


def test_wheel_holds_every_module_and_declares_the_extras(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(whl.read(meta_name).decode())
        entry_points = whl.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    assert {n for n in names if not n.startswith("pykes-")} == _package_sources()
    assert "kes = pykes.cli.main:main" in entry_points
    requires = meta.get_all("Requires-Dist") or []
    runtime = {
        re.split(r"[\s<>=~!;\[]", r, maxsplit=1)[0].lower() for r in requires if "extra ==" not in r
    }
    assert runtime == {"cryptography", "uvloop", "httptools", "hpack", "pyyaml"} | {
        "prometheus_client",
        "httpx",
        "rich",
        "protobuf",
    }
    assert {"aws", "gcp", "azure", "all", "test", "bench"} <= set(
        meta.get_all("Provides-Extra") or []
    )
    for extra, sdk in (("aws", "boto3"), ("gcp", "google-cloud-secret-manager")) + (
        ("azure", "azure-keyvault-secrets"),
        ("azure", "azure-identity"),
    ):
        assert any(r.startswith(sdk) and f'extra == "{extra}"' in r for r in requires)


def test_the_venv_has_the_runtime_dependencies_only(installed: Installed) -> None:
    probe = (
        "import importlib.util, sys, pykes\n"
        "print(pykes.__file__)\n"
        f"print([m for m in {NOT_AT_RUNTIME!r} if importlib.util.find_spec(m)])\n"
    )
    done = subprocess.run(
        installed.command("python", "-c", probe),
        capture_output=True,
        text=True,
        check=True,
        cwd=installed.venv,
        env=_clean_env(),
    )
    location, found = done.stdout.splitlines()
    assert Path(location).is_relative_to(installed.venv)  # the wheel, not this checkout
    assert found == "[]"


def _read_api_key(proc: subprocess.Popen[str], timeout: float) -> str:
    """The API key the dev server prints, read by a thread so that a silent server
    fails the test instead of blocking it."""
    assert proc.stdout is not None
    seen: list[str] = []
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            seen.append(line)
            match = re.search(r"kes:v1:[A-Za-z0-9+/]{44}", line)
            if match:
                found.put(match.group(0))
                return

    threading.Thread(target=read, daemon=True).start()
    try:
        return found.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"no API key from kes server --dev within {timeout} s: {''.join(seen)}")


@pytest.fixture
def dev_server(installed: Installed, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``kes server --dev`` of the installed wheel: (URL, API key)."""
    port = free_port()
    proc = subprocess.Popen(
        installed.command("kes", "server", "--dev", "--addr", f"127.0.0.1:{port}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env=_clean_env(),
    )
    try:
        yield f"https://127.0.0.1:{port}", _read_api_key(proc, 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_dev_server_from_the_wheel_serves_over_mtls(
    installed: Installed, dev_server: tuple[str, str], tmp_path: Path
) -> None:
    url, api_key = dev_server
    tls = api_key_tls_context(api_key, tmp_path)  # --dev: a throw-away server certificate
    with httpx.Client(base_url=url, verify=tls, timeout=10) as client:
        for _ in range(200):  # the banner comes just before the listener
            try:
                created = client.post("/v1/key/create/wheel-key")
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        else:
            pytest.fail("the dev server did not accept connections")
        assert created.status_code == 200
        dek = client.post("/v1/key/generate/wheel-key", json={}).json()
        back = client.post("/v1/key/decrypt/wheel-key", json={"ciphertext": dek["ciphertext"]})
        assert back.json()["plaintext"] == dek["plaintext"]
    # … and the wheel's own `kes` CLI, as a user runs it next.
    listed = subprocess.run(
        installed.command("kes", "key", "ls", "-k", "--json"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_clean_env(KES_SERVER=url, KES_API_KEY=api_key),
    )
    assert listed.returncode == 0, listed.stderr
    assert "wheel-key" in listed.stdout


@pytest.mark.parametrize(
    ("extra", "section"),
    [
        ("aws", "aws:\n    secretsmanager:\n      endpoint: e.example\n      region: r\n"),
        ("gcp", "gcp:\n    secretmanager:\n      project_id: p\n"),
        ("azure", "azure:\n    keyvault:\n      endpoint: https://v.example\n"),
    ],
)
def test_a_cloud_keystore_without_its_extra_fails_in_one_line(
    installed: Installed, pki: PKI, tmp_path: Path, extra: str, section: str
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        f"version: v1\nadmin:\n  identity: {pki.client('admin').identity}\n"
        f"tls:\n  key: {pki.server_key}\n  cert: {pki.server_cert}\n"
        f"keystore:\n  {section}"
    )
    done = subprocess.run(
        installed.command("kes", "server", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_clean_env(),
    )
    assert done.returncode != 0
    assert done.stdout == ""  # nothing claims the server is up
    (line,) = done.stderr.splitlines()
    assert line.startswith("Error: ") and f"pip install 'pykes[{extra}]'" in line, line
