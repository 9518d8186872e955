"""Keystore encoding of key versions: base64 protobuf and legacy JSON (docs/compat/crypto.md §2).

Expected values are the upstream vector and hand-written layouts of §2.1.
"""

from __future__ import annotations

import base64
import json
import traceback

import pytest

from pykes.crypto import KeyType, KeyVersion, decode_key_version, encode_key_version
from pykes.goformat.timestamp import format_rfc3339_nano

# docs/compat/crypto.md §2.1 upstream vector.
UPSTREAM = (
    b"CiQKIMiHG7XrN94FuwblJJor4f7f6rbqAl7DwsLaiIoyz0D2EAESJAognLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkX"
    b"wa20YQZa9HgQARoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyNmExMDMwZjgxZTk2Yjc1MzM2NWE0"
    b"Njc2MGFlNmI1Nzg2OThhOTdjNTlmZDIy"
)
UPSTREAM_KEY = base64.b64decode("yIcbtes33gW7BuUkmivh/t/qtuoCXsPCwtqIijLPQPY=")
UPSTREAM_HMAC = base64.b64decode("nLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20YQZa9Hg=")
UPSTREAM_CREATED_BY = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"
UPSTREAM_NS = 1705055960 * 10**9 + 886816000
RAW = base64.b64decode(UPSTREAM)

ZERO_KEY_B64 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
# docs/compat/crypto.md §4.3: raw AES and JSON ChaCha ciphertexts of 16 zero bytes, zero key.
AES_RAW = base64.b64decode(
    "zwdDgHeRlIFRnJ7+DIhs/ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc"
)
CHACHA_JSON = (
    b'{"aead":"ChaCha20Poly1305","iv":"s3fSZ6vk5m+DfQA8yZWeUg==",'
    b'"nonce":"8/kHMnCMs3h9NZ2a","bytes":"cw22HjLq/4cx8507SW4hhSrYbDiMuRao4b5+GE+XfbE="}'
)


def pb_key(key: bytes, key_type: int = 1) -> bytes:
    inner = b"\x0a" + bytes([len(key)]) + key + b"\x10" + bytes([key_type])
    return b"\x0a" + bytes([len(inner)]) + inner


def pb_hmac(key: bytes, hash_id: int = 1) -> bytes:
    inner = b"\x0a" + bytes([len(key)]) + key + b"\x10" + bytes([hash_id])
    return b"\x12" + bytes([len(inner)]) + inner


# Field 3 of the upstream vector: seconds 1705055960, nanos 886816000.
UPSTREAM_TIMESTAMP = b"\x1a\x0c\x08\xd8\xad\x84\xad\x06\x10\x80\xfa\xee\xa6\x03"


# --- protobuf ---------------------------------------------------------------------------


def test_upstream_vector_decodes() -> None:
    kv = decode_key_version(UPSTREAM)
    assert kv.key == UPSTREAM_KEY
    assert kv.key_type is KeyType.AES256
    assert kv.hmac_key == UPSTREAM_HMAC
    assert kv.created_at_ns == UPSTREAM_NS
    assert format_rfc3339_nano(kv.created_at_ns) == "2024-01-12T10:39:20.886816Z"
    assert kv.created_by == UPSTREAM_CREATED_BY


def test_upstream_vector_reencodes_exactly() -> None:
    kv = KeyVersion(UPSTREAM_KEY, KeyType.AES256, UPSTREAM_HMAC, UPSTREAM_NS, UPSTREAM_CREATED_BY)
    assert encode_key_version(kv) == UPSTREAM
    assert encode_key_version(decode_key_version(UPSTREAM)) == UPSTREAM


def test_layout_matches_spec_table() -> None:
    assert (
        pb_key(UPSTREAM_KEY)
        + pb_hmac(UPSTREAM_HMAC)
        + UPSTREAM_TIMESTAMP
        + b"\x22\x40"
        + UPSTREAM_CREATED_BY.encode()
    ) == RAW


def test_empty_created_by_is_omitted() -> None:
    kv = KeyVersion(UPSTREAM_KEY, KeyType.CHACHA20, UPSTREAM_HMAC, UPSTREAM_NS, "")
    expected = pb_key(UPSTREAM_KEY, 2) + pb_hmac(UPSTREAM_HMAC) + UPSTREAM_TIMESTAMP
    assert base64.b64decode(encode_key_version(kv)) == expected
    assert decode_key_version(base64.b64encode(expected)) == kv


@pytest.mark.parametrize(
    ("ns", "timestamp"),
    [
        (0, b"\x1a\x00"),  # both parts zero: empty message, still present
        (5 * 10**9, b"\x1a\x02\x08\x05"),  # nanos omitted
        (7, b"\x1a\x02\x10\x07"),  # seconds omitted
        # Go's zero time: seconds -62135596800 as a sign-extended 10-byte varint.
        (None, b"\x1a\x0b\x08" + bytes.fromhex("8092b8c398feffffff01")),
    ],
)
def test_timestamp_encoding(ns: int | None, timestamp: bytes) -> None:
    kv = KeyVersion(UPSTREAM_KEY, KeyType.AES256, UPSTREAM_HMAC, ns, "")
    raw = pb_key(UPSTREAM_KEY) + pb_hmac(UPSTREAM_HMAC) + timestamp
    assert base64.b64decode(encode_key_version(kv)) == raw
    assert decode_key_version(base64.b64encode(raw)).created_at_ns == ns


def test_pre_epoch_timestamp_round_trips() -> None:
    ns = -1  # 1969-12-31T23:59:59.999999999Z: seconds -1, nanos 999999999
    kv = KeyVersion(UPSTREAM_KEY, KeyType.AES256, UPSTREAM_HMAC, ns, "x")
    decoded = decode_key_version(encode_key_version(kv))
    assert format_rfc3339_nano(decoded.created_at_ns) == "1969-12-31T23:59:59.999999999Z"


def test_missing_timestamp_is_unix_epoch_like_go() -> None:
    # timestamppb's AsTime() of a nil timestamp is 1970-01-01T00:00:00Z.
    raw = pb_key(UPSTREAM_KEY) + pb_hmac(UPSTREAM_HMAC)
    kv = decode_key_version(base64.b64encode(raw))
    assert format_rfc3339_nano(kv.created_at_ns) == "1970-01-01T00:00:00Z"


def test_decoder_ignores_unknown_fields_and_order() -> None:
    unknown = b"\x78\x2a" + b"\x4a\x03abc" + b"\x7d\x01\x02\x03\x04" + b"\x79" + bytes(8)
    raw = unknown + RAW[76:] + pb_hmac(UPSTREAM_HMAC) + unknown + pb_key(UPSTREAM_KEY)
    kv = decode_key_version(base64.b64encode(raw))
    assert (kv.key, kv.hmac_key, kv.created_by) == (
        UPSTREAM_KEY,
        UPSTREAM_HMAC,
        UPSTREAM_CREATED_BY,
    )
    assert kv.created_at_ns == UPSTREAM_NS


def test_decoder_merges_repeated_message_fields() -> None:
    # proto3: a repeated message field is merged; the type set later wins.
    raw = pb_key(UPSTREAM_KEY, 1) + b"\x0a\x02\x10\x02" + pb_hmac(UPSTREAM_HMAC) + RAW[76:]
    kv = decode_key_version(base64.b64encode(raw))
    assert kv.key == UPSTREAM_KEY and kv.key_type is KeyType.CHACHA20


def test_decoder_ignores_base64_line_breaks() -> None:
    wrapped = UPSTREAM[:40] + b"\r\n" + UPSTREAM[40:100] + b"\n" + UPSTREAM[100:]
    assert decode_key_version(wrapped).key == UPSTREAM_KEY


@pytest.mark.parametrize(
    "raw",
    [
        pb_key(UPSTREAM_KEY) + RAW[76:],  # no HMAC key
        pb_hmac(UPSTREAM_HMAC) + RAW[76:],  # no secret key
        pb_key(UPSTREAM_KEY[:31]) + pb_hmac(UPSTREAM_HMAC),
        pb_key(UPSTREAM_KEY + b"\x00") + pb_hmac(UPSTREAM_HMAC),
        pb_key(UPSTREAM_KEY, 0) + pb_hmac(UPSTREAM_HMAC),
        pb_key(UPSTREAM_KEY, 3) + pb_hmac(UPSTREAM_HMAC),
        pb_key(UPSTREAM_KEY) + pb_hmac(UPSTREAM_HMAC[:16]),
        pb_key(UPSTREAM_KEY) + pb_hmac(UPSTREAM_HMAC, 2),
        pb_key(UPSTREAM_KEY) + pb_hmac(UPSTREAM_HMAC, 0),
        RAW[:-1],  # truncated field
        RAW + b"\x80",  # truncated varint tag
        RAW + b"\x00\x00",  # field number 0
        RAW + b"\x0f",  # wire type 7
        RAW + b"\x0c",  # end group without start
        RAW[:76] + b"\x22\x02\xff\xfe",  # created_by not UTF-8
        b"",
    ],
)
def test_invalid_protobuf_is_rejected(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_key_version(base64.b64encode(raw))


@pytest.mark.parametrize(
    "value",
    [
        UPSTREAM[:-1],  # bad padding / length
        UPSTREAM[:8] + b"-_" + UPSTREAM[10:],  # URL-safe alphabet
        UPSTREAM + b"=",
        UPSTREAM[:4] + b" " + UPSTREAM[4:],
        b"not base64 at all!",
        b"",
        b"\xff\xfe",
    ],
)
def test_invalid_base64_is_rejected(value: bytes) -> None:
    with pytest.raises(ValueError):
        decode_key_version(value)


def test_errors_never_leak_the_value() -> None:
    secret = bytes(range(200, 232))
    bad_pb = base64.b64encode(pb_key(secret) + pb_hmac(secret[:16]))
    legacy = json.dumps({"bytes": base64.b64encode(secret).decode(), "algorithm": "x"}).encode()
    for value in (bad_pb, legacy, bad_pb[:-3], legacy[:-1]):
        with pytest.raises(ValueError) as exc:
            decode_key_version(value)
        text = "".join(traceback.format_exception(exc.value)) + repr(exc.value)
        for fragment in (secret.hex(), base64.b64encode(secret).decode()[:12], value.decode()[:12]):
            assert fragment not in text


def test_legacy_key_is_not_encodable() -> None:
    kv = decode_key_version(b'{"bytes":"' + ZERO_KEY_B64.encode() + b'"}')
    with pytest.raises(ValueError):
        encode_key_version(kv)


# --- legacy JSON (docs/compat/crypto.md §2.2) ---------------------------------------------

CREATOR = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"


@pytest.mark.parametrize(
    ("value", "key_type", "created_at", "created_by"),
    [
        # ≤ v0.13: bytes only.
        ({"bytes": ZERO_KEY_B64}, KeyType.AES256, "0001-01-01T00:00:00Z", ""),
        # v0.14 – v0.22: version, algorithm names of that era, timestamps.
        (
            {
                "version": "v1",
                "bytes": ZERO_KEY_B64,
                "algorithm": "AES256-GCM_SHA256",
                "created_at": "2021-06-01T12:30:45.123456789Z",
                "created_by": CREATOR,
            },
            KeyType.AES256,
            "2021-06-01T12:30:45.123456789Z",
            CREATOR,
        ),
        (
            {
                "version": "v1",
                "bytes": ZERO_KEY_B64,
                "algorithm": "XCHACHA20-POLY1305",
                "created_at": "2022-01-02T03:04:05Z",
                "created_by": CREATOR,
            },
            KeyType.CHACHA20,
            "2022-01-02T03:04:05Z",
            CREATOR,
        ),
        (
            {"version": "v1", "bytes": ZERO_KEY_B64, "created_at": "2021-09-09T09:09:09.5Z"},
            KeyType.AES256,
            "2021-09-09T09:09:09.5Z",
            "",
        ),
        # 2023 – Jan 2024: "ChaCha20", AES keys with algorithm omitted.
        (
            {
                "bytes": ZERO_KEY_B64,
                "algorithm": "ChaCha20",
                "created_at": "2023-05-06T07:08:09.1Z",
                "created_by": CREATOR,
            },
            KeyType.CHACHA20,
            "2023-05-06T07:08:09.1Z",
            CREATOR,
        ),
        (
            {"bytes": ZERO_KEY_B64, "created_at": "2023-05-06T07:08:09Z", "created_by": CREATOR},
            KeyType.AES256,
            "2023-05-06T07:08:09Z",
            CREATOR,
        ),
        ({"bytes": ZERO_KEY_B64, "algorithm": ""}, KeyType.AES256, "0001-01-01T00:00:00Z", ""),
        (
            {"bytes": ZERO_KEY_B64, "algorithm": "AES256"},
            KeyType.AES256,
            "0001-01-01T00:00:00Z",
            "",
        ),
        # Explicit nulls and the zero time.
        (
            {"bytes": ZERO_KEY_B64, "algorithm": None, "created_at": None, "created_by": None},
            KeyType.AES256,
            "0001-01-01T00:00:00Z",
            "",
        ),
        (
            {"bytes": ZERO_KEY_B64, "created_at": "0001-01-01T00:00:00Z"},
            KeyType.AES256,
            "0001-01-01T00:00:00Z",
            "",
        ),
        # A non-UTC offset is the same instant.
        (
            {"bytes": ZERO_KEY_B64, "created_at": "2022-03-04T07:06:07.25+02:00"},
            KeyType.AES256,
            "2022-03-04T05:06:07.25Z",
            "",
        ),
    ],
)
def test_legacy_json_shapes(
    value: dict[str, object], key_type: KeyType, created_at: str, created_by: str
) -> None:
    kv = decode_key_version(json.dumps(value).encode())
    assert kv.key == bytes(32)
    assert kv.key_type is key_type
    assert kv.hmac_key is None
    assert format_rfc3339_nano(kv.created_at_ns) == created_at
    assert kv.created_by == created_by


def test_legacy_json_zero_time_is_none() -> None:
    assert decode_key_version(b'{"bytes":"' + ZERO_KEY_B64.encode() + b'"}').created_at_ns is None


def test_legacy_keys_decrypt_spec_vectors() -> None:
    aes = decode_key_version(b'{"bytes":"' + ZERO_KEY_B64.encode() + b'"}')
    assert aes.decrypt(AES_RAW) == bytes(16)
    chacha = decode_key_version(
        b'{"bytes":"' + ZERO_KEY_B64.encode() + b'","algorithm":"XCHACHA20-POLY1305"}'
    )
    assert chacha.decrypt(CHACHA_JSON) == bytes(16)


def test_legacy_json_field_names_are_case_insensitive() -> None:
    kv = decode_key_version(b' {"Bytes":"' + ZERO_KEY_B64.encode() + b'","ALGORITHM":"ChaCha20"}\n')
    assert kv.key == bytes(32) and kv.key_type is KeyType.CHACHA20


@pytest.mark.parametrize(
    "value",
    [
        {"bytes": ZERO_KEY_B64, "algorithm": "undefined"},
        {"bytes": ZERO_KEY_B64, "algorithm": "aes256"},
        {"bytes": ZERO_KEY_B64, "algorithm": "AES-256-GCM-HMAC-SHA-256"},
        {"bytes": base64.b64encode(bytes(31)).decode()},
        {"bytes": base64.b64encode(bytes(33)).decode()},
        {"bytes": base64.b64encode(bytes(16)).decode(), "algorithm": "AES256"},
        {"bytes": ZERO_KEY_B64.rstrip("=")},  # unpadded
        {"bytes": ZERO_KEY_B64, "created_at": "2021-13-01T00:00:00Z"},
        {"bytes": ZERO_KEY_B64, "created_at": "yesterday"},
        {"bytes": ZERO_KEY_B64, "created_at": 1234},
        {"bytes": ZERO_KEY_B64, "created_by": 7},
        {"bytes": 12},
        {"algorithm": "AES256"},
        {},
    ],
)
def test_legacy_json_rejected(value: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        decode_key_version(json.dumps(value).encode())


@pytest.mark.parametrize("value", [b"null", b"[]", b'"text"', b"42", b"{", b"{}"])
def test_other_json_values_rejected(value: bytes) -> None:
    with pytest.raises(ValueError):
        decode_key_version(value)


def test_decoder_skips_unknown_groups() -> None:
    group = b"\x4b" + b"\x08\x01" + b"\x53\x10\x02\x54" + b"\x4c"  # field 9 { 1: 1, group 10 {} }
    kv = decode_key_version(base64.b64encode(RAW + group))
    assert kv.key == UPSTREAM_KEY and kv.created_by == UPSTREAM_CREATED_BY
    with pytest.raises(ValueError):
        decode_key_version(base64.b64encode(RAW + b"\x4b\x08\x01\x54"))  # wrong end group
    with pytest.raises(ValueError):
        decode_key_version(base64.b64encode(RAW + b"\x4b\x08\x01"))  # unterminated


def test_uint32_fields_are_truncated_like_go() -> None:
    # SecretKey.Type = (1 << 32) | 2, a 5-byte varint; Go's uint32 conversion keeps 2.
    inner = b"\x0a\x20" + UPSTREAM_KEY + b"\x10" + bytes.fromhex("8280808010")
    raw = b"\x0a" + bytes([len(inner)]) + inner + pb_hmac(UPSTREAM_HMAC)
    assert decode_key_version(base64.b64encode(raw)).key_type is KeyType.CHACHA20


def test_overlong_varint_is_rejected() -> None:
    overflow = b"\x08" + b"\xff" * 9 + b"\x02"  # 10th byte > 1 overflows 64 bits
    with pytest.raises(ValueError):
        decode_key_version(base64.b64encode(RAW + overflow))
