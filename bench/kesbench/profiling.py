"""``--profile``: py-spy attached to the server's process tree during a row, and the
collapsed stacks it writes summed per function."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def start_py_spy(
    pid: int, output: Path, seconds: int, rate: int, native: bool
) -> subprocess.Popen[bytes]:
    """Record the server's process tree with py-spy for ``seconds`` (raw format)."""
    exe = Path(sys.executable).parent / "py-spy"
    cmd = [str(exe), "record", "--pid", str(pid), "--subprocesses", "--format", "raw"]
    cmd += ["--rate", str(rate), "--duration", str(seconds), "--output", str(output)]
    # --native unwinds C frames (OpenSSL, uvloop, cryptography) and must pause the
    # process for each sample; without it py-spy reads the stacks without stopping it.
    cmd += ["--native"] if native else ["--nonblocking"]
    with output.with_suffix(".log").open("wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``handle (pykes/api/pipeline.py:97)`` → ``handle (pykes/api/pipeline.py)``.

    Line numbers are dropped so that one function is one entry, and native frames
    without a symbol (``0x7f… (libcrypto.so.3)``) become one entry per library
    (``? (libcrypto.so.3)``).
    """
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    func = m.group("func")
    if func.startswith("0x"):
        func = "?"
    return f"{func} ({m.group('file')})"


#: Functions that mean "this thread is waiting", not working. py-spy drops idle Python
#: threads itself, but with ``--native`` it keeps e.g. idle thread-pool workers blocked
#: in a lock and the event loop blocked in epoll.
IDLE_FUNCTIONS = frozenset(
    {
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        "poll",
        "select",
        "PyThread_acquire_lock_timed",
        "pthread_cond_wait",
        "pthread_cond_timedwait",
        "sem_wait",
        "sem_timedwait",
        "sem_clockwait",
    }
)


def summarize_collapsed(lines: Iterable[str], top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample counts per function from collapsed stacks
    (``frame;frame;… count`` — py-spy's ``--format raw``).

    Process and thread pseudo-frames (``process 12:"…"``, ``thread (0x…)``) are
    skipped; stacks through one of :data:`IDLE_FUNCTIONS` count as ``idle`` and not in
    ``samples``. Returns ``{"samples": N, "idle": N, "top": [{"function", "self",
    "inclusive"}, …] (by self samples), "inclusive": [[name, n], …]}``.
    """
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    total = idle = 0
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        frames = [
            frame_name(f)
            for f in stack.split(";")
            if f and not f.startswith(("process ", "thread ("))
        ]
        if not frames:
            continue
        if any(f.split(" (", 1)[0] in IDLE_FUNCTIONS for f in frames):
            idle += n
            continue
        total += n
        self_counts[frames[-1]] += n
        for name in set(frames):
            incl_counts[name] += n
    return {
        "samples": total,
        "idle": idle,
        "top": [
            {"function": name, "self": n, "inclusive": incl_counts[name]}
            for name, n in self_counts.most_common(top)
        ],
        "inclusive": [[name, n] for name, n in incl_counts.most_common(top)],
    }


def print_profile_summary(name: str, summary: dict[str, Any], top: int) -> None:
    total = summary["samples"] or 1
    print(f"\nprofile {name}: {summary['samples']} busy samples ({summary['idle']} idle left out)")
    print("  self%   incl%  function")
    for entry in summary["top"][:top]:
        self_pct = entry["self"] / total * 100
        incl_pct = entry["inclusive"] / total * 100
        print(f"  {self_pct:5.1f}  {incl_pct:5.1f}  {entry['function']}")


def summarize_profiles(row_ids: Iterable[str], profile_dir: Path) -> None:
    """Print and save (``summary.json``) the summary of each row's recorded stacks."""
    summaries = {}
    for row_id in row_ids:
        raw = profile_dir / f"{row_id}.pyspy.txt"
        if raw.exists():
            summary = summarize_collapsed(raw.read_text().splitlines(), top=25)
            summaries[row_id] = summary
            print_profile_summary(row_id, summary, top=10)
    (profile_dir / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n")
