"""Ciphertext formats accepted by decrypt, normalized to the raw layout (docs/compat/crypto.md §4).

Raw (the only format written)::

    AEAD ciphertext ‖ tag (16) ‖ IV (16) ‖ nonce (12)

Legacy formats, detected by the first byte and converted to raw:

* ``0x7B`` (``{``) — JSON of ≤ v0.13 servers:
  ``{"aead":"AES-256-GCM-HMAC-SHA-256"|"ChaCha20Poly1305","id":…,"iv":<b64 16 bytes>,
  "nonce":<b64 12 bytes>,"bytes":<b64 ciphertext‖tag>}``
* ``0x95`` — MessagePack fixarray(5) of v0.14 – Jan 2024 servers:
  ``[str algorithm, str key id, bin IV(16), bin nonce(12), bin ciphertext‖tag]``

Input that does not parse as its legacy format is used unchanged (as raw). The
algorithm and key id recorded in a legacy ciphertext are validated but otherwise
ignored: the stored key's type decides the cipher.

Go's decoding rules (``b64decode_std``, ``go_json_fields``) live in ``pykes.goformat.json``.
"""

from __future__ import annotations

from typing import Any

from pykes.goformat.json import b64decode_std, go_json_fields

_IV_SIZE = 16
_NONCE_SIZE = 12

_JSON_AEADS = frozenset({"AES-256-GCM-HMAC-SHA-256", "ChaCha20Poly1305"})
_MSGPACK_ALGORITHMS = frozenset(
    {b"AES256-GCM_SHA256", b"XCHACHA20-POLY1305", b"AES256", b"ChaCha20"}
)
_JSON_FIELDS = ("aead", "id", "iv", "nonce", "bytes")
_STR = {0xD9: 1, 0xDA: 2, 0xDB: 4}  # str8/16/32 → length width; fixstr handled apart
_BIN = {0xC4: 1, 0xC5: 2, 0xC6: 4}  # bin8/16/32


def _json_bytes(obj: dict[str, Any], name: str) -> bytes:
    value = obj.get(name)
    if value is None:
        return b""
    if not isinstance(value, str):
        raise ValueError("not a string")
    return b64decode_std(value)


def _parse_json(data: bytes) -> bytes | None:
    """The raw form of a legacy JSON ciphertext, or None if it is not one."""
    try:
        obj = go_json_fields(data, _JSON_FIELDS)
        aead, key_id = obj.get("aead"), obj.get("id")
        if not isinstance(aead, str) or aead not in _JSON_AEADS:
            return None
        if key_id is not None and not isinstance(key_id, str):
            return None
        iv, nonce, body = (_json_bytes(obj, n) for n in ("iv", "nonce", "bytes"))
    except ValueError:
        return None
    if len(iv) != _IV_SIZE or len(nonce) != _NONCE_SIZE:
        return None
    return body + iv + nonce


def _msgpack_item(data: bytes, pos: int, widths: dict[int, int]) -> tuple[bytes, int]:
    """Read the str (``_STR``) or bin (``_BIN``) item at ``pos``; return it and the
    position after it."""
    lead = data[pos]
    if lead & 0xE0 == 0xA0 and widths is _STR:  # fixstr
        start, size = pos + 1, lead & 0x1F
    else:
        width = widths.get(lead)
        if width is None:
            raise ValueError("unexpected msgpack type")
        start = pos + 1 + width
        size = int.from_bytes(data[pos + 1 : start], "big")
    end = start + size
    if end > len(data):
        raise ValueError("short msgpack item")
    return data[start:end], end


def _parse_msgpack(data: bytes) -> bytes | None:
    """The raw form of a legacy MessagePack ciphertext, or None if it is not one."""
    try:
        algorithm, pos = _msgpack_item(data, 1, _STR)
        _key_id, pos = _msgpack_item(data, pos, _STR)
        iv, pos = _msgpack_item(data, pos, _BIN)
        nonce, pos = _msgpack_item(data, pos, _BIN)
        body, pos = _msgpack_item(data, pos, _BIN)
    except (IndexError, ValueError):
        return None
    if pos != len(data) or len(iv) != _IV_SIZE or len(nonce) != _NONCE_SIZE:
        return None
    if algorithm not in _MSGPACK_ALGORITHMS:
        return None
    return body + iv + nonce


def parse_ciphertext(data: bytes) -> bytes:
    """Normalize a legacy JSON or MessagePack ciphertext to raw; otherwise return
    ``data`` unchanged (including when a legacy-looking input does not parse)."""
    if not data:
        return data
    first = data[0]
    if first == 0x95:
        raw = _parse_msgpack(data)
    elif first == 0x7B:
        raw = _parse_json(data)
    else:
        return data
    return data if raw is None else raw
