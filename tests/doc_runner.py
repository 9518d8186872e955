"""Runs a guide of docs/ as a user would: every ```sh block, in order, in one bash
shell, in an empty directory, with the real `kes` entry point (and Python) of the venv
on PATH — the doc's own commands start its servers. Only `KES_PORT` (which the guides
read) is set from here."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from conftest import free_port

BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
# Variables of an outer shell that would change what the doc's commands do.
CLEARED = re.compile(r"^(KES_|MINIO_|SSL_CERT_)")


def blocks(doc: Path, kind: str) -> list[str]:
    """The bodies of ``doc``'s fenced blocks of language ``kind``, in order."""
    return [body for lang, body in FENCE.findall(doc.read_text()) if lang == kind]


def run_guide(doc: Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run every ``sh`` block of ``doc`` in ``cwd``; the server whose pid the doc wrote to
    ``kes.pid`` is stopped afterwards if the doc did not get to stop it."""
    assert (BIN / "kes").exists()
    script = "set -euo pipefail\n" + "\n".join(blocks(doc, "sh"))
    env = {k: v for k, v in os.environ.items() if not CLEARED.match(k)}
    env.update(PATH=f"{BIN}:{env['PATH']}", KES_PORT=str(free_port()))
    try:
        return subprocess.run(
            ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
    finally:
        pid_file = cwd / "kes.pid"
        if pid_file.exists():  # the doc's last step stops it; a failure may not get there
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
