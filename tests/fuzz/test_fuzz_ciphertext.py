"""Fuzzing the three ciphertext formats (raw, legacy JSON, legacy MessagePack).

Property: decrypting any input with the right key and context either raises the API's
``DecryptError`` (400 ``decryption failed: ciphertext is not authentic``) or returns the
original plaintext — and the latter only when the input still normalises to the very
same authenticated raw bytes (legacy framing may legitimately vary: JSON whitespace,
key order, the ignored key id, the msgpack str/bin width). Nothing else may escape.
Seeds: the ciphertexts recorded from the Go KES server (tests/vectors/vectors.json).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzz_corpus import corpus_json, edits, mutate, with_examples
from pykes.crypto import KeyType, KeyVersion, parse_ciphertext
from pykes.errors import DecryptError

FORMATS = ("ciphertext_raw", "ciphertext_json", "ciphertext_msgpack")
SEEDS: list[dict[str, Any]] = [entry for f in FORMATS for _, entry in corpus_json(f)]
VALID = [s for s in SEEDS if s["plaintext"] is not None]
LEGACY_JSON = [s for _, s in corpus_json("ciphertext_json") if s["plaintext"] is not None]
LEGACY_MSGPACK = [s for _, s in corpus_json("ciphertext_msgpack") if s["plaintext"] is not None]
JSON_TOKENS = (b'"aead"', b'"iv"', b'"nonce"', b'"bytes"', b'"id"', b'"AES256"', b"==", b"{}", b",")


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _key(seed: dict[str, Any]) -> KeyVersion:
    key_type = KeyType.AES256 if seed["cipher"] == "AES256" else KeyType.CHACHA20
    return KeyVersion(bytes.fromhex(seed["key_hex"]), key_type, None, None, "")


def _check(seed: dict[str, Any], ciphertext: bytes) -> None:
    """The decrypt property for ``ciphertext`` under the seed's key and context."""
    key = _key(seed)
    original = _b64(seed["ciphertext"])
    try:
        plaintext = key.decrypt(ciphertext, _b64(seed["context"]))
    except DecryptError as err:
        assert (err.status, err.message) == (400, "decryption failed: ciphertext is not authentic")
        return
    assert seed["plaintext"] is not None, "a ciphertext that must not decrypt was accepted"
    assert plaintext == _b64(seed["plaintext"])
    assert parse_ciphertext(ciphertext) == parse_ciphertext(original)


def test_seeds_decrypt_as_recorded() -> None:
    """The corpus itself: the Go server's ciphertexts give the recorded plaintexts."""
    for seed in SEEDS:
        _check(seed, _b64(seed["ciphertext"]))
        if seed["plaintext"] is not None:
            assert _key(seed).decrypt(_b64(seed["ciphertext"]), _b64(seed["context"])) == _b64(
                seed["plaintext"]
            )


@with_examples([{"index": i, "changes": []} for i in range(len(VALID))])
@given(index=st.integers(0, len(VALID) - 1), changes=edits)
def test_mutated_ciphertexts(index: int, changes: list) -> None:
    seed = VALID[index]
    _check(seed, mutate(_b64(seed["ciphertext"]), changes, JSON_TOKENS))


@given(data=st.binary(max_size=300), index=st.integers(0, len(VALID) - 1))
def test_random_bytes_never_decrypt(data: bytes, index: int) -> None:
    _check({**VALID[index], "plaintext": None}, data)


@given(data=st.binary(max_size=200))
def test_parse_ciphertext_is_total(data: bytes) -> None:
    """Normalising never raises and passes non-legacy input through unchanged."""
    raw = parse_ciphertext(data)
    assert isinstance(raw, bytes)
    if not data or data[0] not in (0x7B, 0x95):
        assert raw is data or raw == data


# ---------------------------------------------------------------- JSON, structured
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = ("aead", "id", "iv", "nonce", "bytes")


@given(
    index=st.integers(0, len(LEGACY_JSON) - 1),
    replace=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3),
    drop=st.sets(st.sampled_from(FIELDS), max_size=2),
    upper=st.sets(st.sampled_from(FIELDS), max_size=2),
    indent=st.sampled_from([None, 0, 2]),
    trailing=st.sampled_from([b"", b" ", b"\n", b"{}", b"x"]),
)
def test_structured_json_ciphertexts(
    index: int, replace: dict, drop: set, upper: set, indent: int | None, trailing: bytes
) -> None:
    seed = LEGACY_JSON[index]
    obj = json.loads(_b64(seed["ciphertext"]))
    obj.update(replace)
    for name in drop:
        obj.pop(name, None)
    obj = {(k.upper() if k in upper else k): v for k, v in obj.items()}
    _check(seed, json.dumps(obj, indent=indent).encode() + trailing)


# ----------------------------------------------------------- MessagePack, structured
def _mp_str(value: bytes, width: int) -> bytes:
    if width == 0 and len(value) < 32:
        return bytes([0xA0 | len(value)]) + value
    lead, size = {1: (0xD9, 1), 2: (0xDA, 2), 4: (0xDB, 4), 0: (0xD9, 1)}[width]
    return bytes([lead]) + len(value).to_bytes(size, "big") + value


def _mp_bin(value: bytes, width: int) -> bytes:
    lead, size = {1: (0xC4, 1), 2: (0xC5, 2), 4: (0xC6, 4)}[max(width, 1)]
    return bytes([lead]) + len(value).to_bytes(size, "big") + value


def _split_msgpack(data: bytes) -> list[bytes]:
    """The five items of a legacy msgpack ciphertext (a trusted seed)."""
    items, pos = [], 1
    for _ in range(5):
        lead = data[pos]
        if lead & 0xE0 == 0xA0:
            start, size = pos + 1, lead & 0x1F
        else:
            width = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4}[lead]
            start = pos + 1 + width
            size = int.from_bytes(data[pos + 1 : start], "big")
        items.append(data[start : start + size])
        pos = start + size
    return items


@given(
    index=st.integers(0, len(LEGACY_MSGPACK) - 1),
    widths=st.lists(st.sampled_from([0, 1, 2, 4]), min_size=5, max_size=5),
    swap_types=st.sets(st.integers(0, 4), max_size=2),
    replace=st.dictionaries(st.integers(0, 4), st.binary(max_size=40), max_size=2),
    header=st.sampled_from([0x95, 0x95, 0x94, 0x96, 0xDC]),
    trailing=st.sampled_from([b"", b"\x00", b"\xc0"]),
)
def test_structured_msgpack_ciphertexts(
    index: int, widths: list, swap_types: set, replace: dict, header: int, trailing: bytes
) -> None:
    seed = LEGACY_MSGPACK[index]
    items = _split_msgpack(_b64(seed["ciphertext"]))
    for i, value in replace.items():
        items[i] = value
    out = bytes([header])
    for i, value in enumerate(items):
        as_str = (i < 2) != (i in swap_types)
        out += _mp_str(value, widths[i]) if as_str else _mp_bin(value, widths[i])
    _check(seed, out + trailing)


@pytest.mark.parametrize("seed", VALID, ids=lambda s: s["ciphertext"][:12])
def test_wrong_context_and_truncations_fail(seed: dict[str, Any]) -> None:
    """Every prefix of a valid ciphertext and a changed context are rejected."""
    data = _b64(seed["ciphertext"])
    for cut in range(len(data)):
        _check({**seed, "plaintext": None}, data[:cut])
    with pytest.raises(DecryptError):
        _key(seed).decrypt(data, _b64(seed["context"]) + b"x")
