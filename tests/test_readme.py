"""The README and the docs' quickstarts are run, not just read: every fenced block
marked ``<!-- run: tests/test_readme.py … -->`` runs here, in order, in an empty
directory, substituting only what the text tells the reader to substitute (the
``export`` line and directory the dev server printed; a quickstart's paths and port).
docs/minio.md has its own runner (tests/test_docs_minio.py). Also: no link of README.md
or docs/*.md leaves the repository."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, free_port, until
from dev_server import dev_server as start_dev_server

MARK = re.compile(
    r"^<!-- run: tests/test_readme\.py(?P<how>[^>]*?) -->\n```(?P<lang>\w*)\n(?P<body>.*?)^```",
    re.M | re.S,
)
# Variables of an outer shell that would change what the commands do.
CLEARED = re.compile(r"^(KES_|MINIO_|SSL_CERT_|COMP_)")
VENV_BIN = Path(sys.executable).parent


@dataclass
class Block:
    lang: str
    body: str
    how: str  # what the marker adds: "save as <path>", "in the background until listening"


def marked(doc: Path) -> list[Block]:
    return [
        Block(m["lang"], m["body"], m["how"].strip(", ")) for m in MARK.finditer(doc.read_text())
    ]


def shell_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not CLEARED.match(k)}
    env.update(extra)
    return env


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def replace_line(body: str, starts: str, line: str) -> str:
    """``body`` with its one line starting with ``starts`` replaced by ``line``."""
    lines = body.splitlines()
    hits = [i for i, text in enumerate(lines) if text.startswith(starts)]
    assert len(hits) == 1, (starts, body)
    lines[hits[0]] = line
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the dev server
@dataclass
class DevServer:
    banner: str
    export: str  # the printed `export KES_SERVER=… KES_API_KEY=…` line
    directory: str  # where its client certificate files are

    @property
    def api_key(self) -> str:
        return re.search(r"KES_API_KEY=(\S+)", self.export).group(1)

    @property
    def server(self) -> str:
        return re.search(r"KES_SERVER=(\S+)", self.export).group(1)


@pytest.fixture
def dev_server() -> Iterator[DevServer]:
    """`make run` = `.venv/bin/kes server --dev`; the README's other port, a free one."""
    with start_dev_server(shell_env()) as (banner, _port):
        export = re.search(r"^ *(export KES_SERVER=.*)$", banner, re.M).group(1)
        cert = re.search(r"^Client Cert +(\S+)/client\.crt$", banner, re.M).group(1)
        yield DevServer(banner, export, cert)


# ------------------------------------------------------------------ README.md
def test_readme_commands_run_as_written(dev_server: DevServer, tmp_path: Path) -> None:
    blocks = marked(REPO / "README.md")
    assert [b.lang for b in blocks] == ["sh", "sh", "python"]
    cli, curl, sdk = (b.body for b in blocks)
    # What the README tells the reader to substitute, and nothing else:
    cli = replace_line(cli, "export KES_SERVER=", dev_server.export)
    curl = replace_line(curl, "D=", f"D={dev_server.directory}")
    # `.venv/bin/…` of the repository directory: this test's venv, in an empty directory.
    (tmp_path / ".venv").symlink_to(VENV_BIN.parent)
    script = cli + curl + f".venv/bin/python - <<'PYTHON'\n{sdk}PYTHON\n"
    r = bash(script, tmp_path, shell_env())
    assert r.returncode == 0, f"{script}\n{r.stdout}\n{r.stderr}"
    # Not a terminal: kes prints JSON, `key dek` without a newline (as Go's kes).
    data_key = r'\{"plaintext":"[A-Za-z0-9+/=]{44}","ciphertext":"[A-Za-z0-9+/=]+"\}'
    assert re.fullmatch(
        r'\{"version":"[^"]+".*\}\n'  # kes status -k
        + data_key  # kes key dek -k my-key
        + r"Key\nmy-key\n"  # kes key ls -k (key create printed nothing)
        + r"(\{\}|)\n?"  # curl … /v1/key/create/my-curl-key
        + data_key  # curl … /v1/key/generate/my-curl-key
        + r"\n?data key: decrypted\n",  # the Python SDK
        r.stdout,
        re.S,
    ), r.stdout
    assert "Error" not in r.stderr  # (curl's progress meter is on stderr)


def test_readme_says_why_k_and_names_the_cli() -> None:
    text = (REPO / "README.md").read_text()
    assert "pykes's own `kes` command is **`.venv/bin/kes`**" in text
    assert "**Why `-k`** (`--insecure`)" in text
    assert "docs/compat/config.md" in text


# ------------------------------------------------------------------ docs/client.md
@pytest.mark.skipif(shutil.which("jq") is None, reason="the quickstart uses jq")
def test_client_quickstart_runs(dev_server: DevServer, tmp_path: Path) -> None:
    (block,) = marked(REPO / "docs" / "client.md")
    ca = f"{dev_server.directory}/server.crt"
    script = replace_line(
        block.body,
        "export KES_SERVER=",
        f"export KES_SERVER={dev_server.server} KES_API_KEY={dev_server.api_key} "
        f"SSL_CERT_FILE={ca}",
    )
    r = bash(script, tmp_path, shell_env(PATH=f"{VENV_BIN}:{os.environ['PATH']}"))
    assert r.returncode == 0, f"{script}\n{r.stderr}"
    ciphertext, listing = r.stdout.splitlines()
    assert len(ciphertext) > 40 and json.loads(listing) == ["my-key"]


# ------------------------------------------------------------------ docs/deploy.md §1
def test_deploy_single_node_quickstart_runs(tmp_path: Path) -> None:
    etc, var, port = tmp_path / "etc" / "kes", tmp_path / "var" / "lib" / "kes", free_port()
    etc.mkdir(parents=True)

    def local(text: str) -> str:  # the doc's paths and port are the reader's to choose
        text = text.replace("/etc/kes", str(etc)).replace("/var/lib/kes", str(var))
        return text.replace(":7373", f":{port}")

    script = ""
    for block in marked(REPO / "docs" / "deploy.md"):
        body = local(block.body)
        if block.how.startswith("save as "):
            Path(local(block.how.removeprefix("save as "))).write_text(body)
        elif block.how == "in the background until listening":
            script += (  # set -m: its own process group, for the kill below
                f"set -m\n{{\n{body}}} > kes.log 2>&1 &\necho $! > kes.pid\nset +m\n"
                "for i in $(seq 200); do grep -q 'Server is up and running' kes.log && break; "
                "sleep 0.1; done\n"
            )
        else:
            assert block.how == "" and block.lang == "sh", block.how
            script += body
    try:
        r = bash(script, tmp_path, shell_env(PATH=f"{VENV_BIN}:{os.environ['PATH']}"))
    finally:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.killpg(int((tmp_path / "kes.pid").read_text()), signal.SIGTERM)  # kes too
    log = (tmp_path / "kes.log").read_text() if (tmp_path / "kes.log").exists() else ""
    assert r.returncode == 0, f"{script}\n{r.stdout}\n{r.stderr}\n--- kes.log\n{log}"
    assert f"{etc}/config.yml: the configuration is valid" in r.stdout
    assert '"version":' in r.stdout  # kes status (admin)
    assert r.stdout.rstrip().endswith("Key\nminio-default-key")  # kes key ls (MinIO)
    assert (var / "keys" / "minio-default-key").exists()
    until(lambda: "=> Stopping server... Goodbye." in (tmp_path / "kes.log").read_text(), 10)


def test_the_marked_docs_are_the_ones_run_here() -> None:
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert {d.name for d in docs if marked(d)} == {"README.md", "client.md", "deploy.md"}, (
        "a doc with blocks marked for tests/test_readme.py needs a runner here"
    )


# ------------------------------------------------------------------ links
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize(
    "doc",
    [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_links_stay_inside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    assert "../shared" not in text
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor of this page
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO), (doc.name, target)
        assert path.exists(), (doc.name, target)
