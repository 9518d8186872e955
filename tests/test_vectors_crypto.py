"""Crypto against the vectors recorded from the real Go KES (tests/vectors/vectors.json)."""

from __future__ import annotations

import base64
import functools
from typing import Any

import pytest

from conftest import spec_vectors
from pykes.crypto import (
    KeyVersion,
    decode_key_version,
    encode_key_version,
    import_key_version,
    parse_cipher_name,
)
from pykes.errors import DecryptError
from pykes.goformat.timestamp import format_rfc3339_nano


@functools.cache
def vectors() -> dict[str, Any]:
    return spec_vectors()


def b64(text: str | None) -> bytes:
    return base64.b64decode(text or "", validate=True)


def key_entry(name: str) -> dict[str, Any]:
    (entry,) = [k for k in vectors()["keys"] if k["name"] == name]
    return entry


def imported_key(name: str) -> KeyVersion:
    """The key as the recorder imported it: key_hex with the recorded cipher name."""
    entry = key_entry(name)
    return import_key_version(bytes.fromhex(entry["key_hex"]), parse_cipher_name(entry["cipher"]))


def stored_key(name: str) -> KeyVersion:
    """The key as the Go server stored it in its fs keystore (includes the HMAC key)."""
    return decode_key_version(key_entry(name)["fs_keystore_file"]["content"].encode())


def ids(section: str) -> list[str]:
    return [f"{i}-{v['key']}" for i, v in enumerate(vectors()[section])]


def test_vector_counts() -> None:
    counts = {name: len(vectors()[name]) for name in ("vectors", "decrypt_legacy", "hmac", "keys")}
    assert counts == {"vectors": 36, "decrypt_legacy": 6, "hmac": 4, "keys": 2}
    assert len(vectors()["decrypt_negative"]) == 12


@pytest.mark.parametrize("vector", vectors()["vectors"], ids=ids("vectors"))
def test_decrypt_recorded_ciphertext(vector: dict[str, Any]) -> None:
    plaintext, context = b64(vector["plaintext_b64"]), b64(vector["context_b64"])
    ciphertext = b64(vector["ciphertext_b64"])
    assert len(ciphertext) == len(plaintext) + 44
    for kv in (imported_key(vector["key"]), stored_key(vector["key"])):
        assert kv.key_type.text == vector["cipher"]
        assert kv.decrypt(ciphertext, context) == plaintext
    assert b64(vector["decrypt_roundtrip"]["response_body"]["plaintext"]) == plaintext


@pytest.mark.parametrize("vector", vectors()["vectors"], ids=ids("vectors"))
def test_encrypt_round_trip_with_recorded_inputs(vector: dict[str, Any]) -> None:
    plaintext, context = b64(vector["plaintext_b64"]), b64(vector["context_b64"])
    kv = imported_key(vector["key"])
    ciphertext = kv.encrypt(plaintext, context)
    assert len(ciphertext) == len(plaintext) + 44
    assert kv.decrypt(ciphertext, context) == plaintext
    assert stored_key(vector["key"]).decrypt(ciphertext, context) == plaintext


@pytest.mark.parametrize("vector", vectors()["decrypt_legacy"], ids=ids("decrypt_legacy"))
def test_decrypt_legacy_encodings(vector: dict[str, Any]) -> None:
    body = vector["exchange"]["request_body"]
    expected = b64(vector["expected_plaintext_b64"])
    kv = imported_key(vector["key"])
    assert kv.decrypt(b64(body["ciphertext"]), b64(body.get("context"))) == expected
    assert b64(vector["exchange"]["response_body"]["plaintext"]) == expected


@pytest.mark.parametrize("vector", vectors()["decrypt_negative"], ids=ids("decrypt_negative"))
def test_decrypt_negative(vector: dict[str, Any]) -> None:
    body, exchange = vector["exchange"]["request_body"], vector["exchange"]
    with pytest.raises(DecryptError) as exc:
        imported_key(vector["key"]).decrypt(b64(body["ciphertext"]), b64(body.get("context")))
    assert exc.value.status == exchange["status"] == 400
    assert exc.value.message == exchange["response_body"]["message"]


@pytest.mark.parametrize("vector", vectors()["hmac"], ids=ids("hmac"))
def test_hmac(vector: dict[str, Any]) -> None:
    mac = stored_key(vector["key"]).hmac(b64(vector["message_b64"]))
    assert mac.hex() == vector["hmac_hex"]
    assert mac == b64(vector["exchange"]["response_body"]["hmac"])


@pytest.mark.parametrize("entry", vectors()["keys"], ids=[k["name"] for k in vectors()["keys"]])
def test_fs_keystore_file(entry: dict[str, Any]) -> None:
    stored = entry["fs_keystore_file"]
    kv = decode_key_version(stored["content"].encode())
    assert kv.key.hex() == stored["decoded_secret_key_hex"] == entry["key_hex"]
    assert int(kv.key_type) == stored["decoded_secret_key_type"]
    assert kv.hmac_key is not None and kv.hmac_key.hex() == stored["decoded_hmac_key_hex"]
    assert stored["decoded_hmac_hash"] == 1
    assert format_rfc3339_nano(kv.created_at_ns) == stored["decoded_created_at"]
    assert kv.created_by == stored["decoded_created_by"]
    assert encode_key_version(kv) == stored["content"].encode("ascii")


@pytest.mark.parametrize("entry", vectors()["keys"], ids=[k["name"] for k in vectors()["keys"]])
def test_describe_fields_from_stored_key(entry: dict[str, Any]) -> None:
    described = entry["describe"]["response_body"]
    kv = decode_key_version(entry["fs_keystore_file"]["content"].encode())
    assert kv.key_type.text == described["algorithm"]
    assert format_rfc3339_nano(kv.created_at_ns) == described["created_at"]
    assert kv.created_by == described["created_by"] == vectors()["admin_identity"]
