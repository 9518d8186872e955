"""JSON in the shape Go's ``encoding/json`` produces and accepts (spec/api.md §2).

Responses: compact, ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, one trailing
newline. Requests: the first JSON value of the body, unknown fields ignored, field
names matched case-insensitively (last occurrence wins), ``[]byte`` fields as strict
standard padded base64, ``null`` meaning "no value".
"""

from __future__ import annotations

import json
from typing import Any

from pykes.crypto.ciphertext import b64decode_std

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_decoder = json.JSONDecoder()

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


class BodyError(ValueError):
    """The request body is not acceptable JSON for the endpoint."""


def go_json(value: Any) -> bytes:
    """Encode ``value`` like Go's ``json.Encoder.Encode`` (with trailing newline)."""
    return (_encoder.encode(value).translate(_GO_ESCAPES) + "\n").encode("utf-8")


def go_json_string(text: str) -> str:
    """A JSON string literal, Go-escaped."""
    return _encoder.encode(text).translate(_GO_ESCAPES)


def error_body(message: str) -> bytes:
    """The exact error body of the Go server: ``{"message":<json-string>\\n}``."""
    return ('{"message":' + go_json_string(message) + "\n}").encode("utf-8")


def parse_object(body: bytes, fields: tuple[str, ...]) -> dict[str, Any]:
    """Decode the first JSON value of ``body`` into the named (lower-case) fields.

    Raises ``BodyError`` for anything Go's decoder would reject. A JSON ``null`` body
    decodes to no fields. Values are returned as decoded JSON; see ``bytes_field``.
    """
    text = body.decode("utf-8", "replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    try:
        value, _ = _decoder.raw_decode(text, start)
    except json.JSONDecodeError:
        raise BodyError("invalid JSON") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BodyError("not a JSON object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = key if key in fields else key.lower()
        if name in fields:
            out[name] = item
    return out


def bytes_field(obj: dict[str, Any], name: str) -> bytes:
    """A Go ``[]byte`` field: absent/null → b"", else strict std base64 with padding."""
    value = obj.get(name)
    if value is None:
        return b""
    if not isinstance(value, str):
        raise BodyError(f"field {name!r} is not a string")
    try:
        return b64decode_std(value)  # Go's StdEncoding: strict alphabet and padding
    except ValueError:
        raise BodyError(f"field {name!r} is not valid base64") from None


def string_field(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BodyError(f"field {name!r} is not a string")
    return value
