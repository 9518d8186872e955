"""What a run measured: the machine, the checkout's commit, and a commit exported to
serve instead of the working tree (``--server-ref``)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from contextlib import suppress
from pathlib import Path
from typing import Any

from kesbench.paths import REPO


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    mem_kb = 0
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "mem_total_gb": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
    }


def git_info() -> dict[str, Any]:
    """Commit and dirty files of the checkout (read-only git commands)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", "-C", str(REPO), *args],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout.rstrip()  # not strip(): porcelain lines start with a status column
        except (OSError, subprocess.SubprocessError):
            return ""

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "dirty_files": [ln[3:] for ln in status.splitlines() if ln],
    }


def export_ref(ref: str, dest: Path) -> tuple[Path, str]:
    """``git archive <ref> src`` into ``dest``; returns (the exported src/, full commit).
    Read-only for the repository: the checkout and index are not touched."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if commit.returncode != 0:
        raise SystemExit(f"--server-ref: unknown revision {ref!r}")
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(
        ["git", "-C", str(REPO), "archive", commit.stdout.strip(), "src"],
        stdout=subprocess.PIPE,
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    assert archive.stdout is not None
    archive.stdout.close()
    if archive.wait() != 0:
        raise SystemExit(f"--server-ref: git archive {ref} failed")
    return dest / "src", commit.stdout.strip()
