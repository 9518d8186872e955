"""Checked-in seed corpora (``tests/fuzz/corpus/<target>/``) and byte-level mutators.

Every corpus file becomes an explicit ``@example`` of the property tests that read it,
so CI always replays the real inputs and the ``regress-*`` inputs that once crashed a
parser. ``tests/fuzz/make_corpus.py`` (re)creates the seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import example
from hypothesis import strategies as st

CORPUS = Path(__file__).resolve().parent / "corpus"
F = TypeVar("F", bound=Callable[..., Any])


def corpus(target: str) -> list[tuple[str, bytes]]:
    """``(file name, content)`` of every file of a target, sorted by name."""
    folder = CORPUS / target
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert files, f"empty corpus {folder}"
    return [(p.name, p.read_bytes()) for p in files]


def corpus_json(target: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, json.loads(data)) for name, data in corpus(target)]


def with_examples(values: list[dict[str, Any]]) -> Callable[[F], F]:
    """Apply ``@example(**kwargs)`` for each entry of ``values``."""

    def decorate(func: F) -> F:
        for kwargs in reversed(values):
            func = example(**kwargs)(func)
        return func

    return decorate


# ------------------------------------------------------------------ mutations
# An edit is (kind, position in [0, 1), payload); applied in order to the bytes.
TOKENS = (
    b"\x00", b"\xff", b"\x80", b"\xc3\xa9", b"\xed\xa0\x80", b"\n", b"\r\n", b"\t", b" ",
    b"{", b"}", b"[", b"]", b'"', b"'", b":", b",", b"-", b"=", b"\\", b"\\u0000",
    b"null", b"true", b"1e999", b"-0", b"99999999999999999999",
)  # fmt: skip

edits = st.lists(
    st.tuples(
        st.sampled_from(("flip", "delete", "insert", "replace", "truncate", "duplicate")),
        st.floats(min_value=0, max_value=1, exclude_max=True),
        st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(TOKENS)),
    ),
    max_size=6,
)


def mutate(
    data: bytes, changes: list[tuple[str, float, bytes]], tokens: tuple[bytes, ...] = ()
) -> bytes:
    """Apply byte-level edits: bit flips, deletions, insertions (random bytes or format
    tokens), overwrites, truncation and span duplication."""
    out = bytearray(data)
    for kind, where, payload in changes:
        pos = int(where * (len(out) + 1))
        pos = min(pos, len(out))
        if kind == "flip" and out:
            at = min(pos, len(out) - 1)
            out[at] ^= 1 << (payload[0] % 8)
        elif kind == "delete":
            del out[pos : pos + 1 + payload[0] % 16]
        elif kind == "insert":
            token = tokens[payload[0] % len(tokens)] if tokens and len(payload) > 1 else payload
            out[pos:pos] = token
        elif kind == "replace":
            out[pos : pos + len(payload)] = payload
        elif kind == "truncate":
            del out[pos:]
        elif kind == "duplicate":
            span = bytes(out[pos : pos + 1 + payload[0] % 32])
            out[pos:pos] = span
    return bytes(out)
