"""Encryption, decryption, legacy ciphertexts, HMAC and HChaCha20 (docs/compat/crypto.md §1–§7).

Every expected value below is copied from the spec; none is produced by pykes.
"""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from pykes.crypto import (
    KeyType,
    KeyVersion,
    generate_key_version,
    hchacha20,
    import_key_version,
    parse_cipher_name,
    parse_ciphertext,
)
from pykes.crypto.keys import _seal
from pykes.errors import ERR_HMAC_UNSUPPORTED, APIError, DecryptError

ZERO32 = bytes(32)
ZERO16 = bytes(16)


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def key(key_type: KeyType, material: bytes = ZERO32, hmac_key: bytes | None = None) -> KeyVersion:
    return KeyVersion(material, key_type, hmac_key, None, "")


AES = key(KeyType.AES256)
CHACHA = key(KeyType.CHACHA20)

# docs/compat/crypto.md §4.3 — upstream vectors, key = 32 zero bytes, plaintext = 16 zero bytes.
AES_JSON = (
    b'{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==",'
    b'"nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}'
)
CHACHA_JSON = (
    b'{"aead":"ChaCha20Poly1305","iv":"s3fSZ6vk5m+DfQA8yZWeUg==",'
    b'"nonce":"8/kHMnCMs3h9NZ2a","bytes":"cw22HjLq/4cx8507SW4hhSrYbDiMuRao4b5+GE+XfbE="}'
)
AES_MSGPACK = b64(
    "lbFBRVMyNTYtR0NNX1NIQTI1NtkgNjY2ODdhYWRmODYyYmQ3NzZjOGZjMThiOGU5ZjhlMjDEEExv7LAd4oz0"
    "SaHZrX5LBufEDEKME1ow1CDfUFrqv8QgJuy7Sw+jVqz99TK1HV851LT3K4mwwDv46TB2ngWkAJQ="
)
CHACHA_MSGPACK = b64(
    "lbJYQ0hBQ0hBMjAtUE9MWTEzMDXZIDY2Njg3YWFkZjg2MmJkNzc2YzhmYzE4YjhlOWY4ZTIwxBBAr+aptD4x"
    "2+qfOhiErbnkxAxYs8RmNC1JJXD1hiHEIJ2KqM0jjkME7ndx8nyVseesN83Np0rM5ejVUun+fNFu"
)
AES_RAW = b64("zwdDgHeRlIFRnJ7+DIhs/ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc")

# docs/compat/crypto.md §4.3 — associated-data vectors.
AD_KEY = b64("dDHbTWgo+Yh3u804SYB5OyVMy6RiLeJYBQth1f6KlEU=")
AD_PLAINTEXT = b64("CLcJoykFCWZDkEIiUq9bJRqwCwW9ZDvdgu8EMA==")
AD_AES_RAW = b64(
    "s2gmfQHeGdlyL8x1yEWSACUV3GrSoz3t160hugMgzKWgyqesXDVUJ5Dw5Mt076rR1PNiU9X4YjLH14D8a81t2r2x"
    "sz4gVZac"
)
AD_CHACHA_RAW = b64(
    "gO4woRIswAJdjUjW7z2ApsSQxJlwB24yjLrmH4eI7sB0uh5nfEJfk9ybTPFft5FRFaZCVBmzhx7OJs9n0WWtxH3s"
    "ySIxecIK"
)

# docs/compat/crypto.md §4.3, deterministic: IV 00..0f, nonce 10..1b, 32 zero bytes, AD {}.
DET_IV = bytes(range(16))
DET_NONCE = bytes(range(16, 28))
DET_AES = b64(
    "Tq5IFqwCstqmR5cBrIsY4gKMfRrmHwrm0OC9uXhJHBDEG/H+epATmA54syTFCyQOAAECAwQFBgcICQoLDA0ODxAR"
    "EhMUFRYXGBkaGw=="
)
DET_CHACHA = b64(
    "wV8UgphuCa7iU8OY0oyPwtPIV0FWqzpnUInjrcV4yPgRiaEHI+BM1oR3iwRI0VqeAAECAwQFBgcICQoLDA0ODxAR"
    "EhMUFRYXGBkaGw=="
)


def json_ciphertext(**fields: object) -> bytes:
    """The AES JSON vector with some fields replaced (None removes a field)."""
    obj = json.loads(AES_JSON)
    for name, value in fields.items():
        if value is None:
            obj.pop(name, None)
        else:
            obj[name] = value
    return json.dumps(obj).encode()


# --- HChaCha20 ------------------------------------------------------------------------


def test_hchacha20_xchacha_draft_vector() -> None:
    out = hchacha20(bytes(range(32)), bytes.fromhex("000000090000004a0000000031415927"))
    assert out.hex() == "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"


def test_hchacha20_zero_key_vector() -> None:
    out = hchacha20(ZERO32, bytes(range(16)))
    assert out.hex() == "fd61b7edf2db91f11667b660d170334f381356d287168639668314a8b8cec327"


@pytest.mark.parametrize(("k", "n"), [(bytes(31), ZERO16), (ZERO32, bytes(12))])
def test_hchacha20_rejects_wrong_sizes(k: bytes, n: bytes) -> None:
    with pytest.raises(ValueError):
        hchacha20(k, n)


# --- key types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AES256", KeyType.AES256),
        ("AES256-GCM_SHA256", KeyType.AES256),
        ("ChaCha20", KeyType.CHACHA20),
        ("XCHACHA20-POLY1305", KeyType.CHACHA20),
    ],
)
def test_parse_cipher_name(name: str, expected: KeyType) -> None:
    assert parse_cipher_name(name) is expected


@pytest.mark.parametrize("name", ["", "aes256", "CHACHA20", "undefined", "AES-256-GCM", "AES256 "])
def test_parse_cipher_name_rejects(name: str) -> None:
    with pytest.raises(ValueError):
        parse_cipher_name(name)


def test_key_type_values_and_text() -> None:
    assert (int(KeyType.AES256), int(KeyType.CHACHA20)) == (1, 2)
    assert (KeyType.AES256.text, KeyType.CHACHA20.text) == ("AES256", "ChaCha20")


# --- deterministic and upstream vectors -----------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "expected"), [(KeyType.AES256, DET_AES), (KeyType.CHACHA20, DET_CHACHA)]
)
def test_deterministic_seal_vectors(key_type: KeyType, expected: bytes) -> None:
    assert _seal(key_type, ZERO32, DET_IV, DET_NONCE, ZERO32, b"{}") == expected
    assert key(key_type).decrypt(expected, b"{}") == ZERO32


@pytest.mark.parametrize(
    ("kv", "ciphertext"),
    [
        (AES, AES_JSON),
        (CHACHA, CHACHA_JSON),
        (AES, AES_MSGPACK),
        (CHACHA, CHACHA_MSGPACK),
        (AES, AES_RAW),
    ],
    ids=["aes-json", "chacha-json", "aes-msgpack", "chacha-msgpack", "aes-raw"],
)
def test_upstream_decrypt_vectors(kv: KeyVersion, ciphertext: bytes) -> None:
    assert kv.decrypt(ciphertext) == ZERO16
    assert kv.decrypt(ciphertext, b"") == ZERO16
    with pytest.raises(DecryptError):
        kv.decrypt(ciphertext, b"{}")  # "{}" is not empty associated data


@pytest.mark.parametrize(
    ("key_type", "ciphertext"),
    [(KeyType.AES256, AD_AES_RAW), (KeyType.CHACHA20, AD_CHACHA_RAW)],
)
def test_associated_data_vectors(key_type: KeyType, ciphertext: bytes) -> None:
    kv = key(key_type, AD_KEY)
    assert kv.decrypt(ciphertext, ZERO16) == AD_PLAINTEXT
    with pytest.raises(DecryptError):
        kv.decrypt(ciphertext)
    with pytest.raises(DecryptError):
        key(key_type, ZERO32).decrypt(ciphertext, ZERO16)


def test_stored_key_type_decides_cipher_not_the_legacy_algorithm() -> None:
    # The ChaCha JSON vector names ChaCha20Poly1305; an AES key must not open it.
    with pytest.raises(DecryptError):
        AES.decrypt(CHACHA_JSON)
    with pytest.raises(DecryptError):
        CHACHA.decrypt(AES_MSGPACK)


# --- must-fail list (docs/compat/crypto.md §4.3) ------------------------------------------


@pytest.mark.parametrize(
    "ciphertext",
    [
        json_ciphertext(aead="AES-256-GCM"),
        json_ciphertext(iv=base64.b64encode(bytes(20)).decode()),
        json_ciphertext(nonce=base64.b64encode(bytes(8)).decode()),
        json_ciphertext(bytes="WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmM="),  # tampered
        AES_JSON[:-1],  # syntactically broken JSON
        AES_JSON + b"x",
        json_ciphertext(aead=None),
        json_ciphertext(iv=None),
        json_ciphertext(iv="xLxIN3tSCkg2xMafuvwUwg"),  # unpadded base64
        json_ciphertext(nonce="gu0mGwUkwcvMEoi5="),  # excess padding
        json_ciphertext(bytes="WVgRjeIJm3w50C_l-y7y2i6mbNg5NCAqN1zvOYWZKmc="),  # URL-safe
        json_ciphertext(iv=123),
        json_ciphertext(id=5),
        b"[" + AES_JSON + b"]",
        AES_RAW[:-1] + bytes([AES_RAW[-1] ^ 1]),
        AES_RAW[:28],
        AES_RAW[:29],
        b"",
    ],
)
def test_must_fail(ciphertext: bytes) -> None:
    with pytest.raises(DecryptError) as exc:
        AES.decrypt(ciphertext)
    assert (exc.value.status, exc.value.message) == (
        400,
        "decryption failed: ciphertext is not authentic",
    )


@pytest.mark.parametrize(
    "ciphertext",
    [
        json_ciphertext(id="0123456789abcdef"),
        json_ciphertext(id=None),
        json.dumps({k.upper(): v for k, v in json.loads(AES_JSON).items()}).encode(),
        json_ciphertext(version="v1", extra={"a": [1, 2]}),
        AES_JSON + b" \r\n\t",
    ],
)
def test_json_variants_go_accepts(ciphertext: bytes) -> None:
    # Optional id, and Go's case-insensitive field matching.
    assert AES.decrypt(ciphertext) == ZERO16


def test_json_base64_may_contain_newlines() -> None:
    obj = json.loads(AES_JSON)
    obj["bytes"] = obj["bytes"][:20] + "\r\n" + obj["bytes"][20:]
    assert AES.decrypt(json.dumps(obj).encode()) == ZERO16


def test_json_last_duplicate_field_wins() -> None:
    obj = json.loads(AES_JSON)
    text = AES_JSON[:-1] + b',"Nonce":"' + obj["nonce"].encode() + b'"}'
    assert AES.decrypt(b'{"nonce":"AAAAAAAAAAAAAAAA",' + text[1:]) == ZERO16


def test_format_detected_by_first_byte_only() -> None:
    with pytest.raises(DecryptError):
        AES.decrypt(b" " + AES_JSON)


# --- MessagePack encodings (docs/compat/crypto.md §4.2) -----------------------------------

_ALG = b"AES256-GCM_SHA256"
_ID = b"66687aadf862bd776c8fc18b8e9f8e20"
# Layout of the vector: 95 | B1 alg(17) | D9 20 id(32) | C4 10 iv | C4 0C nonce | C4 20 body
_IV = AES_MSGPACK[55:71]
_NONCE = AES_MSGPACK[73:85]
_BODY = AES_MSGPACK[87:]


def _mp_str(data: bytes, width: int) -> bytes:
    if width == 0:
        return bytes([0xA0 | len(data)]) + data
    lead = {1: 0xD9, 2: 0xDA, 4: 0xDB}[width]
    return bytes([lead]) + len(data).to_bytes(width, "big") + data


def _mp_bin(data: bytes, width: int) -> bytes:
    lead = {1: 0xC4, 2: 0xC5, 4: 0xC6}[width]
    return bytes([lead]) + len(data).to_bytes(width, "big") + data


def _mp(alg: bytes = _ALG, key_id: bytes = _ID, sw: int = 1, bw: int = 1, **kw: bytes) -> bytes:
    iv, nonce, body = kw.get("iv", _IV), kw.get("nonce", _NONCE), kw.get("body", _BODY)
    return (
        b"\x95"
        + _mp_str(alg, 0 if sw == 1 and len(alg) < 32 else sw)
        + _mp_str(key_id, sw)
        + _mp_bin(iv, bw)
        + _mp_bin(nonce, bw)
        + _mp_bin(body, bw)
    )


def test_msgpack_vector_layout_matches_spec() -> None:
    assert _mp() == AES_MSGPACK  # fixstr algorithm, str8 id, bin8 fields as Go wrote them


@pytest.mark.parametrize("sw", [1, 2, 4])
@pytest.mark.parametrize("bw", [1, 2, 4])
def test_msgpack_all_str_and_bin_widths(sw: int, bw: int) -> None:
    assert AES.decrypt(_mp(sw=sw, bw=bw)) == ZERO16


@pytest.mark.parametrize(
    "alg", [b"AES256-GCM_SHA256", b"XCHACHA20-POLY1305", b"AES256", b"ChaCha20"]
)
def test_msgpack_algorithm_names(alg: bytes) -> None:
    assert AES.decrypt(_mp(alg=alg)) == ZERO16
    assert AES.decrypt(_mp(alg=alg, key_id=b"")) == ZERO16


@pytest.mark.parametrize(
    "ciphertext",
    [
        _mp(alg=b"AES-256-GCM"),
        _mp(alg=b"aes256"),
        _mp(iv=_IV + b"\x00"),
        _mp(nonce=_NONCE[:8]),
        _mp() + b"\x00",  # trailing byte
        _mp()[:-1],  # truncated
        _mp()[:40],
        b"\x95",
        _mp()[:19] + _mp_bin(_ID, 1) + _mp()[53:],  # key id as bin, not str
        _mp()[:53] + _mp_str(_IV, 1) + _mp()[71:],  # IV as str, not bin
        b"\x96" + _mp()[1:] + b"\xc0",  # six elements
    ],
)
def test_msgpack_invalid_is_not_normalized(ciphertext: bytes) -> None:
    assert parse_ciphertext(ciphertext) == ciphertext
    with pytest.raises(DecryptError):
        AES.decrypt(ciphertext)


def test_parse_ciphertext_normalizes_to_raw() -> None:
    iv, nonce = b64("xLxIN3tSCkg2xMafuvwUwg=="), b64("gu0mGwUkwcvMEoi5")
    body = b64("WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=")
    assert parse_ciphertext(AES_JSON) == body + iv + nonce
    assert parse_ciphertext(AES_MSGPACK) == _BODY + _IV + _NONCE
    assert parse_ciphertext(AES_RAW) == AES_RAW
    assert parse_ciphertext(b"") == b""
    assert parse_ciphertext(b"{not json") == b"{not json"


# --- encrypt ----------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", [KeyType.AES256, KeyType.CHACHA20])
@pytest.mark.parametrize("plaintext", [b"", b"x", ZERO32, bytes(range(256)) * 40])
@pytest.mark.parametrize("ad", [b"", b"{}", b"context"])
def test_encrypt_round_trip(key_type: KeyType, plaintext: bytes, ad: bytes) -> None:
    kv = generate_key_version(key_type)
    ciphertext = kv.encrypt(plaintext, ad)
    assert len(ciphertext) == len(plaintext) + 44
    assert kv.decrypt(ciphertext, ad) == plaintext
    with pytest.raises(DecryptError):
        kv.decrypt(ciphertext, ad + b"!")


def test_encrypt_uses_fresh_randomness_and_the_spec_layout() -> None:
    a, b = AES.encrypt(ZERO32), AES.encrypt(ZERO32)
    assert a != b and a[-28:] != b[-28:]
    # The trailing 28 bytes are IV ‖ nonce: re-sealing with them reproduces the output.
    assert _seal(KeyType.AES256, ZERO32, a[-28:-12], a[-12:], ZERO32, b"") == a


def test_encrypt_output_is_decryptable_by_the_spec_construction() -> None:
    out = CHACHA.encrypt(b"portable", b"ad")
    assert _seal(KeyType.CHACHA20, ZERO32, out[-28:-12], out[-12:], b"portable", b"ad") == out


# --- HMAC -------------------------------------------------------------------------------


def test_hmac_spec_example() -> None:
    kv = KeyVersion(AD_KEY, KeyType.AES256, ZERO32, None, "")
    mac = kv.hmac(b"root access key")
    assert mac.hex() == "4db17ed6590726d7ba2c97b25f436f1cb705fc7b084a271824fc3334c0301eef"
    assert kv.hmac(b"root access key") == mac  # deterministic


def test_hmac_without_hmac_key_is_409() -> None:
    with pytest.raises(APIError) as exc:
        AES.hmac(b"message")
    assert exc.value == ERR_HMAC_UNSUPPORTED
    assert (exc.value.status, exc.value.message) == (409, "key does not support HMAC")


# --- key construction -------------------------------------------------------------------


@pytest.mark.parametrize("key_type", [KeyType.AES256, KeyType.CHACHA20])
def test_generate_key_version(key_type: KeyType) -> None:
    a, b = generate_key_version(key_type, "creator"), generate_key_version(key_type)
    assert a.key_type is key_type and a.created_by == "creator" and b.created_by == ""
    assert len(a.key) == 32 and len(a.hmac_key or b"") == 32
    assert a.key != b.key and a.hmac_key != b.hmac_key and a.key != a.hmac_key
    assert a.created_at_ns is not None and a.created_at_ns > 1_700_000_000 * 10**9


def test_generate_key_version_defaults_to_aes() -> None:
    assert generate_key_version().key_type is KeyType.AES256


def test_import_key_version() -> None:
    kv = import_key_version(AD_KEY, KeyType.CHACHA20, "me")
    assert (kv.key, kv.key_type, kv.created_by) == (AD_KEY, KeyType.CHACHA20, "me")
    assert kv.hmac_key is not None and len(kv.hmac_key) == 32
    assert import_key_version(AD_KEY, KeyType.CHACHA20).hmac_key != kv.hmac_key
    assert kv.decrypt(AD_CHACHA_RAW, ZERO16) == AD_PLAINTEXT


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_import_key_version_rejects_wrong_size(size: int) -> None:
    with pytest.raises(ValueError):
        import_key_version(bytes(size), KeyType.AES256)


@pytest.mark.parametrize(
    ("material", "key_type", "hmac_key"),
    [(bytes(31), KeyType.AES256, None), (ZERO32, 3, None), (ZERO32, KeyType.AES256, bytes(16))],
)
def test_key_version_validates(material: bytes, key_type: KeyType, hmac_key: bytes | None) -> None:
    with pytest.raises(ValueError):
        KeyVersion(material, key_type, hmac_key, None, "")


def test_repr_never_shows_key_bytes() -> None:
    material, mac = bytes(range(1, 33)), bytes(range(101, 133))
    kv = KeyVersion(material, KeyType.AES256, mac, 0, "creator-id")
    for text in (repr(kv), str(kv), f"{kv}", repr([kv])):
        for secret in (material, mac):
            assert secret.hex() not in text
            assert base64.b64encode(secret).decode() not in text
            assert repr(secret) not in text
            assert str(list(secret)) not in text
    assert "AES256" in repr(kv) and "creator-id" in repr(kv)


def test_key_version_is_immutable() -> None:
    kv = generate_key_version()
    with pytest.raises(AttributeError):
        kv.key = ZERO32  # type: ignore[misc]


def test_replace_keeps_working_key() -> None:
    kv = KeyVersion(AD_KEY, KeyType.AES256, ZERO32, None, "")
    copy = dataclasses.replace(kv, created_by="other")
    assert copy.created_by == "other" and copy == dataclasses.replace(kv, created_by="other")
    assert copy.decrypt(AD_AES_RAW, ZERO16) == AD_PLAINTEXT
    assert copy.hmac(b"root access key") == kv.hmac(b"root access key")
