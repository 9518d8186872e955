"""Listing a huge fs keystore (issue 7: "listing 1,000,000 keys in a fs keystore pages in
constant memory"). Not part of CI: creating a million files takes a while.

    .venv/bin/python bench/fs_listing.py --keys 1000000 --dir /tmp/kes-1m
    .venv/bin/python bench/fs_listing.py --keys 1000000 --dir /tmp/kes-1m --src /tmp/old/src

Creates ``--keys`` empty key files in ``--dir`` (kept for the next run), starts
``kes server --workers 1`` on it (``--src``: import pykes from another source tree, e.g.
a copy with the previous ``keystore/fs.py`` to compare), then

* runs ``kes key ls`` (the CLI pages as the Go SDK does: ``continue_at`` is sent back as
  the next prefix) and times it,
* times single list pages: everything (``*``: one page of 1,024 names plus
  ``continue_at``, since all names would exceed the SDK's 1 MiB response) and prefix
  pages of 1,000 names (``k0123*``),

and prints the server's peak RSS (``VmHWM``) after start-up and after the listing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from kesbench.servers import client_ssl_context, free_port, write_tls_files


def make_keys(directory: Path, count: int) -> float:
    directory.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    existing = sum(1 for _ in os.scandir(directory))
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
    for i in range(existing, count):
        os.close(os.open(directory / f"k{i:07d}", flags, 0o600))
    return time.monotonic() - start


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/kes-fs-listing"))
    parser.add_argument("--src", type=Path, default=None, help="PYTHONPATH for the server")
    opts = parser.parse_args()

    created = make_keys(opts.dir, opts.keys)
    work = Path(tempfile.mkdtemp(prefix="kes-listing-"))
    api_key = write_tls_files(work)
    port = free_port()
    (work / "config.yml").write_text(
        f"version: v1\nadmin:\n  identity: {api_key.identity}\n"
        f"tls:\n  key: {work / 'server.key'}\n  cert: {work / 'server.crt'}\n"
        f"log:\n  audit: off\nkeystore:\n  fs:\n    path: {opts.dir}\n"
    )
    env = dict(os.environ)
    if opts.src is not None:
        env["PYTHONPATH"] = str(opts.src)
    kes = [sys.executable, "-m", "pykes.cli.main"]
    server = subprocess.Popen(
        [*kes, "server", "--config", str(work / "config.yml"), "--addr", f"127.0.0.1:{port}"]
        + ["--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "stderr.log").open("wb"),
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.5)
        result: dict[str, object] = {
            "keys": opts.keys,
            "src": str(opts.src or "this tree"),
            "create_s": round(created, 1),
            "rss_peak_start_mb": round(peak_rss_mb(server.pid), 1),
        }
        cli_env = {**os.environ, "KES_SERVER": f"127.0.0.1:{port}", "KES_API_KEY": str(api_key)}
        t = time.monotonic()
        out = subprocess.run(
            [*kes, "key", "ls", "-k", "--json"], env=cli_env, capture_output=True, text=True
        )
        result["kes_key_ls_s"] = round(time.monotonic() - t, 2)
        result["kes_key_ls_names"] = len(json.loads(out.stdout or "[]"))
        result["rss_peak_after_kes_key_ls_mb"] = round(peak_rss_mb(server.pid), 1)
        ctx = client_ssl_context(work)
        pages: dict[str, tuple[float, int]] = {}
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=300) as c:
            for pattern in ["*", "k0000*", "k0123*", "k0999*"]:
                t = time.monotonic()
                r = c.get(f"/v1/key/list/{pattern}")
                r.raise_for_status()
                pages[pattern] = (round(time.monotonic() - t, 2), len(r.json()["names"]))
        result["page_s_names"] = pages
        result["rss_peak_end_mb"] = round(peak_rss_mb(server.pid), 1)
        print(json.dumps(result, indent=1))
    finally:
        server.terminate()
        server.wait(20)


if __name__ == "__main__":
    main()
