"""Fuzzing API-key parsing (``pykes.pki.apikey.APIKey.parse``).

Property: any text either parses to a key — whose canonical text parses back to the
same key and whose identity is the SHA-256 of its Ed25519 SPKI, computed here with
``cryptography`` — or raises ``ValueError("invalid API key: …")`` whose message never
echoes the input. Seeds: the API keys of docs/compat/auth.md and keys from random seeds.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzz_corpus import corpus, edits, mutate, with_examples
from pykes.pki.apikey import APIKey

SEEDS = [data.decode("utf-8", "replace") for _, data in corpus("apikey")]
TOKENS = (b"kes:v1:", b"kes:", b"v1:", b"=", b"==", b"-", b"_", b"+", b"/", b"\n", b" ", b"\x00")


def _identity(key: APIKey) -> str:
    spki = key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def _check(text: str) -> None:
    try:
        key = APIKey.parse(text)
    except ValueError as err:
        message = str(err)
        assert message.startswith("invalid API key: "), message
        secret = text.strip().removeprefix("kes:v1:")
        assert len(secret) < 8 or secret not in message, "the key text leaked into the error"
        return
    canonical = str(key)
    assert canonical.startswith("kes:v1:") and len(canonical) == 51
    assert APIKey.parse(canonical) == key
    assert key.identity == _identity(key)
    assert canonical[7:] not in repr(key)


@with_examples([{"index": i, "changes": []} for i in range(len(SEEDS))])
@given(index=st.integers(0, len(SEEDS) - 1), changes=edits)
def test_mutated_api_keys(index: int, changes: list) -> None:
    text = mutate(SEEDS[index].encode(), changes, TOKENS).decode("utf-8", "replace")
    _check(text)


@given(text=st.text(max_size=80))
def test_random_text(text: str) -> None:
    _check(text)


@given(seed=st.binary(min_size=33, max_size=33), prefix=st.sampled_from(["", "kes:v1:"]))
def test_every_33_byte_value(seed: bytes, prefix: str) -> None:
    text = prefix + base64.b64encode(seed).decode()
    if seed[0] != 0:
        try:
            APIKey.parse(text)
        except ValueError as err:
            assert str(err) == "invalid API key: unsupported type"
            return
        raise AssertionError("a key with a non-zero type byte was accepted")
    key = APIKey.parse(text)
    assert key.private_key.private_bytes_raw() == seed[1:]
    _check(text)


def test_spec_examples_have_the_documented_identities() -> None:
    """docs/compat/auth.md §7: the three example keys and their identities."""
    expected = {
        "kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw": (
            "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb"
        ),
        "kes:v1:AMxvd2uV1l5dDSRwuKZxSjuM5BDemlr+685+JAHA1TuJ": (
            "ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7"
        ),
        "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs": (
            "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"
        ),
    }
    for text, identity in expected.items():
        assert text in SEEDS
        key = APIKey.parse(text)
        assert key.identity == identity == _identity(key)
