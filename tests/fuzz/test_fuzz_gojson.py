"""Fuzzing the request-level JSON decoding of ``pykes.goformat.json`` (docs/compat/api.md §2).

Properties:

* ``parse_object`` (every request body) returns a dict of the asked fields or raises
  ``BodyError``; ``bytes_field`` / ``string_field`` raise only ``BodyError``.
* ``b64decode_std`` accepts exactly standard padded base64 (``\\r``/``\\n`` ignored), as
  described by an independent regular expression, and decodes like ``base64``.
* ``go_json`` / ``error_body`` output is valid JSON that decodes to the input, with
  ``<``, ``>``, ``&`` escaped and the Go framing (trailing newline).
Seeds: the request bodies recorded from the Go server (tests/vectors/vectors.json).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re

from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzz_corpus import corpus, edits, mutate, with_examples
from pykes.goformat.json import (
    BodyError,
    b64decode_std,
    bytes_field,
    error_body,
    go_json,
    go_json_fields,
    parse_object,
    string_field,
)

SEEDS = [data for _, data in corpus("gojson")]
FIELDS = ("plaintext", "ciphertext", "context", "version", "message", "key", "cipher", "bytes")
TOKENS = (b'"', b"\\", b"\\u", b"\\ud800", b"{", b"}", b"[", b"]", b":", b",", b"null", b"1e999",
          b'"CONTEXT"', b'"Context"', b"\xff", b"\x00", b"NaN", b"Infinity", b"[" * 50)  # fmt: skip
STD_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _check_body(body: bytes) -> None:
    try:
        obj = parse_object(body, FIELDS)
    except BodyError:
        return
    assert set(obj) <= set(FIELDS)
    for name in FIELDS:
        with contextlib.suppress(BodyError):
            assert isinstance(bytes_field(obj, name), bytes)
        with contextlib.suppress(BodyError):
            assert isinstance(string_field(obj, name), str)


@with_examples([{"index": i, "changes": []} for i in range(len(SEEDS))])
@given(index=st.integers(0, len(SEEDS) - 1), changes=edits)
def test_mutated_request_bodies(index: int, changes: list) -> None:
    _check_body(mutate(SEEDS[index], changes, TOKENS))


@given(data=st.binary(max_size=200))
def test_random_bodies(data: bytes) -> None:
    _check_body(data)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
flat_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=10)


@given(obj=st.dictionaries(st.sampled_from(FIELDS), flat_values), tail=st.binary(max_size=10))
def test_fields_are_found_with_any_tail(obj: dict, tail: bytes) -> None:
    """An object's exact-case fields are returned as decoded (nested objects aside: they
    stay pairs, which no field accepts); bytes after the first value are ignored."""
    body = json.dumps(obj).encode()
    assert parse_object(body + b" " + tail, FIELDS) == obj


@given(
    pairs=st.lists(
        st.tuples(
            st.sampled_from(["ciphertext", "context", "version", "x", "Context", ""]),
            st.text(alphabet="AQ+/=\\é", max_size=12),
        ),
        max_size=3,
    ),
    tail=st.binary(max_size=6),
)
def test_simple_bodies_decode_as_the_general_decoder(pairs: list, tail: bytes) -> None:
    """``parse_object``'s shortcut for ``{"name":"base64",…}`` bodies (what clients send)
    gives what the general decoder gives, repeated names and any tail included."""
    body = ("{" + ",".join(f'"{k}":"{v}"' for k, v in pairs) + "}").encode() + tail
    try:
        general = go_json_fields(body, FIELDS, first_value_only=True)
    except ValueError:
        general = None
    try:
        assert parse_object(body, FIELDS) == general
    except BodyError:
        assert general is None


@given(data=st.binary(max_size=64) | st.binary(max_size=48).map(base64.b64encode))
def test_b64decode_std_matches_the_grammar(data: bytes) -> None:
    stripped = data.replace(b"\r", b"").replace(b"\n", b"")
    valid = STD_BASE64.fullmatch(stripped) is not None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = None
    for value in (data, text) if text is not None else (data,):
        try:
            decoded = b64decode_std(value)
        except ValueError:
            assert not valid, f"rejected valid base64 {data!r}"
        else:
            assert valid, f"accepted invalid base64 {data!r}"
            assert decoded == base64.b64decode(stripped)


@given(raw=st.binary(max_size=48), newlines=st.lists(st.integers(0, 64), max_size=3))
def test_b64decode_std_round_trip(raw: bytes, newlines: list) -> None:
    text = base64.b64encode(raw)
    for at in sorted(newlines, reverse=True):
        text = text[:at] + b"\r\n" + text[at:]
    assert b64decode_std(text) == raw


@given(value=json_values)
def test_go_json_round_trip(value: object) -> None:
    out = go_json(value)
    assert out.endswith(b"\n") and not out.endswith(b"\n\n") or out == b"\n"
    assert b"<" not in out and b">" not in out and b"&" not in out
    assert json.loads(out) == value


@given(message=st.text())
def test_error_body(message: str) -> None:
    out = error_body(message)
    assert out.startswith(b'{"message":') and out.endswith(b"\n}")
    assert json.loads(out) == {"message": message}
