"""How a key version is stored in a keystore (docs/compat/crypto.md §2).

Current format: standard base64 (padded) of the proto3 message ``miniohq.kms.KeyVersion``,
serialized in the field order Go emits::

    0A 24  { 0A 20 <32 key bytes>   10 <type: 1 AES256 | 2 ChaCha20> }       Key
    12 24  { 0A 20 <32 hmac bytes>  10 01 (SHA256) }                          HMACKey
    1A len { 08 <seconds, omitted if 0>  10 <nanos, omitted if 0> }           CreatedAt
    22 len <utf-8 identity>   (omitted if empty)                              CreatedBy

Legacy format (read only; any value that is valid JSON):
``{"bytes":<b64 32 bytes>,"algorithm":…,"created_at":<RFC 3339>,"created_by":…}``
where every field but ``bytes`` may be missing; such keys have no HMAC key.

Error messages never contain the stored value or key bytes.
"""

from __future__ import annotations

import base64
from typing import Any

from pykes.crypto.keys import KEY_SIZE, KeyType, KeyVersion, parse_cipher_name
from pykes.goformat.json import b64decode_std, go_json_fields
from pykes.goformat.timestamp import ZERO_TIME_NS, parse_rfc3339_nano

_NS = 1_000_000_000
_U64 = (1 << 64) - 1
_HASH_SHA256 = 1
_LEGACY_FIELDS = ("bytes", "algorithm", "created_at", "created_by")


class _Invalid(ValueError):
    """A generic decode failure (never carries key material)."""


# --- protobuf wire format -------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= _U64  # negative int64/int32 values are sign-extended to 10 bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a base-128 varint (at most 10 bytes, no 64-bit overflow, as protowire)."""
    value = shift = 0
    for i in range(pos, min(pos + 10, len(data))):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if shift == 63 and byte > 1:
                break
            return value, i + 1
        shift += 7
    raise _Invalid("invalid protobuf varint")


_Fields = dict[tuple[int, int], list[Any]]  # (number, wire type) → values in order


def _fields(data: bytes) -> _Fields:
    """Decode one message level into (field number, wire type) → values in order.

    Callers use the last varint / the last bytes value, or join all payloads of a
    message field (proto3 merges repeated occurrences). Fixed-width fields and groups
    are skipped; a field with an unexpected wire type is never looked at, which is how
    Go treats it (as an unknown field).
    """
    fields: _Fields = {}
    pos, size = 0, len(data)
    while pos < size:
        tag, pos = _read_varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0 or number >= 1 << 29:
            raise _Invalid("invalid protobuf field number")
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            if length > size - pos:
                raise _Invalid("truncated protobuf field")
            value, pos = data[pos : pos + length], pos + length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > size:
                raise _Invalid("truncated protobuf field")
            continue
        elif wire == 3:
            pos = _skip_group(data, pos, number, 1)
            continue
        else:
            raise _Invalid("invalid protobuf wire type")
        fields.setdefault((number, wire), []).append(value)
    return fields


def _skip_group(data: bytes, pos: int, number: int, depth: int) -> int:
    """Skip a (deprecated) group up to its matching end-group tag."""
    if depth > 100:
        raise _Invalid("protobuf groups nested too deep")
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        inner, wire = tag >> 3, tag & 7
        if wire == 4:
            if inner != number:
                raise _Invalid("mismatched protobuf end group")
            return pos
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 3:
            pos = _skip_group(data, pos, inner, depth + 1)
        else:
            raise _Invalid("invalid protobuf wire type")
        if pos > len(data):
            break
    raise _Invalid("truncated protobuf group")


def _message(fields: _Fields, number: int) -> _Fields | None:
    chunks = fields.get((number, 2))
    return None if chunks is None else _fields(b"".join(chunks))


def _bytes(fields: _Fields, number: int) -> bytes:
    values = fields.get((number, 2))
    return values[-1] if values else b""


def _uint(fields: _Fields, number: int, bits: int) -> int:
    values = fields.get((number, 0))
    return values[-1] & ((1 << bits) - 1) if values else 0


def _sint(fields: _Fields, number: int, bits: int) -> int:
    value = _uint(fields, number, bits)
    return value - (1 << bits) if value >> (bits - 1) else value


def _encode_pb(kv: KeyVersion) -> bytes:
    if kv.hmac_key is None:
        raise ValueError("legacy key versions without an HMAC key cannot be encoded")
    secret = b"\x0a\x20" + kv.key + b"\x10" + _varint(int(kv.key_type))
    hmac_key = b"\x0a\x20" + kv.hmac_key + b"\x10" + _varint(_HASH_SHA256)
    ns = ZERO_TIME_NS if kv.created_at_ns is None else kv.created_at_ns
    seconds, nanos = divmod(ns, _NS)
    timestamp = (b"\x08" + _varint(seconds) if seconds else b"") + (
        b"\x10" + _varint(nanos) if nanos else b""
    )
    out = _field(1, secret) + _field(2, hmac_key) + _field(3, timestamp)
    if kv.created_by:
        out += _field(4, kv.created_by.encode("utf-8"))
    return out


def _decode_pb(data: bytes) -> KeyVersion:
    top = _fields(data)
    secret, hmac_key = _message(top, 1), _message(top, 2)
    if secret is None or hmac_key is None:
        raise _Invalid("invalid key: missing secret or HMAC key")
    key, key_type = _bytes(secret, 1), _uint(secret, 2, 32)
    if len(key) != KEY_SIZE or key_type not in (KeyType.AES256, KeyType.CHACHA20):
        raise _Invalid("invalid secret key")
    mac_key, mac_hash = _bytes(hmac_key, 1), _uint(hmac_key, 2, 32)
    if len(mac_key) != KEY_SIZE or mac_hash != _HASH_SHA256:
        raise _Invalid("invalid HMAC key")
    timestamp = _message(top, 3) or {}
    ns = _sint(timestamp, 1, 64) * _NS + _sint(timestamp, 2, 32)
    try:
        created_by = _bytes(top, 4).decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("invalid key: created_by is not UTF-8") from None
    created_at = None if ns == ZERO_TIME_NS else ns
    return KeyVersion(key, KeyType(key_type), mac_key, created_at, created_by)


# --- legacy JSON ------------------------------------------------------------------------


def _decode_legacy_json(obj: dict[str, Any]) -> KeyVersion:
    raw, algorithm = obj.get("bytes"), obj.get("algorithm")
    created_at, created_by = obj.get("created_at"), obj.get("created_by")
    for value in (raw, algorithm, created_at, created_by):
        if value is not None and not isinstance(value, str):
            raise _Invalid("invalid legacy key: wrong field type")
    try:
        key = b64decode_std(raw or "")
    except ValueError:
        raise _Invalid("invalid legacy key: bytes are not base64") from None
    if len(key) != KEY_SIZE:
        raise _Invalid("invalid legacy key: wrong key length")
    try:
        key_type = parse_cipher_name(algorithm) if algorithm else KeyType.AES256
    except ValueError:
        raise _Invalid("invalid legacy key: unsupported algorithm") from None
    try:
        ns = None if created_at is None else parse_rfc3339_nano(created_at)
    except ValueError:
        raise _Invalid("invalid legacy key: created_at is not RFC 3339") from None
    if ns == ZERO_TIME_NS:
        ns = None
    return KeyVersion(key, key_type, None, ns, created_by or "")


# --- public API -------------------------------------------------------------------------


def encode_key_version(kv: KeyVersion) -> bytes:
    """The keystore value of ``kv``: ASCII std base64 of its protobuf encoding.

    Raises ``ValueError`` for legacy key versions (no HMAC key); those are never
    rewritten by the server.
    """
    return base64.b64encode(_encode_pb(kv))


def decode_key_version(value: bytes) -> KeyVersion:
    """Parse a keystore value: legacy JSON if it is valid JSON, else base64 protobuf.

    Raises ``ValueError`` with a generic message (never the value or key bytes).
    """
    try:
        obj = go_json_fields(value, _LEGACY_FIELDS)
    except ValueError:
        obj = None
    try:
        if obj is not None:
            return _decode_legacy_json(obj)
        return _decode_pb(b64decode_std(value))
    except _Invalid:
        raise
    except (ValueError, TypeError):
        raise _Invalid("invalid key encoding") from None
