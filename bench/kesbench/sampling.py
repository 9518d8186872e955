"""CPU and memory of a process tree and of the machine, read from /proc while a row
runs; the memory floor of one bare Python process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid …" — comm may contain spaces and parentheses
        rest = stat[stat.rfind(")") + 2 :].split()
        if len(rest) > 1:
            children.setdefault(int(rest[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def tree_memory_kb(root: int) -> tuple[int, int | None]:
    """(summed VmRSS, summed Pss) in KiB of ``root``'s process tree. RSS counts the
    pages forked workers share with the master once per process; PSS splits them."""
    rss, pss, pss_ok = 0, 0, True
    for pid in process_tree(root):
        with suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                    break
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                    break
        except (OSError, ValueError, IndexError):
            pss_ok = False
    return rss, (pss if pss_ok else None)


def process_memory_mb(root: int) -> list[list[float]]:
    """[RSS, PSS] in MB of each process of ``root``'s tree, the master first."""
    procs = []
    for pid in process_tree(root):
        rss = pss = 0
        with suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
        procs.append([round(rss / 1024, 1), round(pss / 1024, 1)])
    return procs


@dataclass(frozen=True)
class CPUSnapshot:
    """CPU time counters at one instant (seconds)."""

    wall: float
    machine_busy: float  # all cores, from /proc/stat (everything not idle/iowait)
    server: float  # user+system of the server's process tree
    children: float  # user+system of this driver's waited-for children (kesload, py-spy)


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 100


def machine_busy_seconds() -> float:
    with suppress(OSError, ValueError, IndexError):
        first = Path("/proc/stat").read_text().splitlines()[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
        return (user + nice + system + irq + softirq + steal) / _clock_ticks()
    return 0.0


def tree_cpu_seconds(root: int) -> float:
    ticks = 0
    for pid in process_tree(root):
        with suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            rest = stat[stat.rfind(")") + 2 :].split()
            ticks += int(rest[11]) + int(rest[12])  # utime, stime (fields 14, 15)
    return ticks / _clock_ticks()


def cpu_snapshot(server_pid: int) -> CPUSnapshot:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CPUSnapshot(
        wall=time.monotonic(),
        machine_busy=machine_busy_seconds(),
        server=tree_cpu_seconds(server_pid),
        children=usage.ru_utime + usage.ru_stime,
    )


def cpu_shares(before: CPUSnapshot, after: CPUSnapshot, cores: int) -> dict[str, float]:
    """Who used the machine between two snapshots, in % of its capacity (100 % = every
    core busy): the server, the client (kesload, plus py-spy when profiling) and
    everything else — the other work on the machine that skews the numbers."""
    capacity = max(after.wall - before.wall, 1e-9) * max(cores, 1)
    server = after.server - before.server
    client = after.children - before.children
    busy = after.machine_busy - before.machine_busy
    other = max(busy - server - client, 0.0)

    def pct(x: float) -> float:
        return round(max(x, 0.0) / capacity * 100, 1)

    return {
        "cpu_server_pct": pct(server),
        "cpu_client_pct": pct(client),
        "cpu_other_pct": pct(other),
    }


class MemorySampler:
    """Samples the tree's memory every ``interval`` seconds; keeps the maxima."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval = pid, interval
        self.max_rss_kb = 0
        self.max_pss_kb: int | None = None
        self.idle_rss_kb = 0  # the first sample: before the load starts
        self.idle_pss_kb: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss, pss = tree_memory_kb(self.pid)
        self.max_rss_kb = max(self.max_rss_kb, rss)
        if pss is not None:
            self.max_pss_kb = max(self.max_pss_kb or 0, pss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemorySampler:
        self._sample()
        self.idle_rss_kb, self.idle_pss_kb = self.max_rss_kb, self.max_pss_kb
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


#: Seconds the server gets after the last row before its "settled" memory is read:
#: longer than a worker's heap-trim interval (pykes's memtrim.py, BurstTrimmer).
SETTLE_S = 3.0


#: What a pykes process cannot do without: the floor of one process's memory.
FLOOR_IMPORTS = "import ssl, uvloop, httptools, cryptography.x509"


def python_floor_mb() -> dict[str, float | None]:
    """RSS and PSS (MB) of a bare ``python -c '<FLOOR_IMPORTS>'`` process: every pykes
    process (master and each worker) has at least this much resident."""
    code = f"{FLOOR_IMPORTS}; import sys; print('ok', flush=True); sys.stdin.read()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        rss, pss = tree_memory_kb(proc.pid)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
    return {
        "imports": FLOOR_IMPORTS,
        "rss_mb": round(rss / 1024, 1),
        "pss_mb": round(pss / 1024, 1) if pss is not None else None,
    }
