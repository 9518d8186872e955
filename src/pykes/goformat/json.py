"""JSON in the shape Go's ``encoding/json`` produces and accepts (docs/compat/api.md §2).

Responses: compact, ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, one trailing
newline. Requests: the first JSON value of the body, unknown fields ignored, field
names matched case-insensitively (last occurrence wins), ``[]byte`` fields as strict
standard padded base64, ``null`` meaning "no value".
"""

from __future__ import annotations

import binascii
import json
import re
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

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


def b64decode_std(data: str | bytes) -> bytes:
    """Decode like Go's ``base64.StdEncoding``: std alphabet, mandatory padding.

    ``\\r`` and ``\\n`` are ignored anywhere (as Go does); anything else outside the
    alphabet, missing or excess padding raises ``ValueError``.
    """
    if isinstance(data, str):
        data = data.encode("ascii")  # UnicodeEncodeError is a ValueError
    out = _b64decode_plain(data)  # the common case first: one strict decode, no scans
    if out is not None:
        return out
    if b"\r" in data or b"\n" in data:
        data = data.replace(b"\r", b"").replace(b"\n", b"")
    size = len(data)
    if size % 4 or data.find(b"=", 0, max(size - 2, 0)) != -1:
        raise ValueError("illegal base64 data")
    return binascii.a2b_base64(data, strict_mode=True)


def _b64decode_plain(data: bytes) -> bytes | None:
    """``b64decode_std`` of padded base64 without line breaks; None for anything else
    (which may still be valid for Go, or not)."""
    if len(data) & 3:
        return None
    try:
        out = binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        return None
    # strict mode also accepts excess padding ("QUJD===="): not Go
    return out if len(data) < 3 or data[-3] != 0x3D else None  # "="


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


class _Object(list):  # type: ignore[type-arg]
    """A decoded JSON object as its (key, value) pairs, in order (duplicates kept)."""


_pairs_decoder = json.JSONDecoder(object_pairs_hook=_Object, parse_constant=_reject_constant)


def go_json_fields(
    data: bytes, fields: tuple[str, ...], *, first_value_only: bool = False
) -> dict[str, Any]:
    """Decode ``data`` like Go's ``json.Unmarshal`` into a struct with ``fields``.

    The whole input must be one JSON value (surrounding whitespace allowed), or with
    ``first_value_only`` (a ``json.Decoder`` reading a request body) only the first
    value is read and anything after it is ignored. ``null``
    decodes to no fields; any other non-object raises ``ValueError``. Object keys
    match a field exactly or case-insensitively, the last occurrence wins; unknown
    keys are ignored. Values are returned as decoded JSON (``None`` for ``null``).
    """
    try:
        text = data.decode("utf-8", "replace")  # Go keeps invalid UTF-8 in strings as U+FFFD
        if first_value_only:
            start = len(text) - len(text.lstrip(" \t\r\n"))
            pairs, _ = _pairs_decoder.raw_decode(text, start)
        else:
            pairs = _pairs_decoder.decode(text)
    except (ValueError, RecursionError):  # JSONDecodeError, too deeply nested
        raise ValueError("invalid JSON") from None
    if pairs is None:
        return {}
    if not isinstance(pairs, _Object):
        raise ValueError("JSON value is not an object")
    out: dict[str, Any] = {}
    for key, value in pairs:
        name = key if key in fields else key.casefold()
        if name in fields:
            out[name] = value
    return out


# What clients send to the crypto endpoints: ``{}`` or one or two fields with lower-case
# names and base64 values — no whitespace, no escapes. Such a body decodes to exactly
# these strings, so the regular expression's groups are the decoded fields.
_SIMPLE_OBJECT = re.compile(
    rb'\{(?:"([a-z]+)":"([A-Za-z0-9+/=]*)"(?:,"([a-z]+)":"([A-Za-z0-9+/=]*)")?)?\}'
)


def parse_object(body: bytes, fields: tuple[str, ...]) -> dict[str, Any]:
    """A request body (its first JSON value) as the named lower-case fields; raises
    ``BodyError`` for anything Go's decoder would reject."""
    simple = _SIMPLE_OBJECT.match(body)
    if simple is not None:
        name1, value1, name2, value2 = simple.groups()
        out: dict[str, Any] = {}
        if name1 is not None:
            if (name := name1.decode()) in fields:
                out[name] = value1.decode()
            if name2 is not None and (name := name2.decode()) in fields:
                out[name] = value2.decode()  # a repeated name: the last one wins
        return out
    try:
        return go_json_fields(body, fields, first_value_only=True)
    except ValueError as err:
        raise BodyError(str(err)) from None


# ``_SIMPLE_OBJECT`` with any string value: ``simple_bytes_fields`` checks the values.
_SIMPLE_STRINGS = re.compile(rb'\{(?:"([a-z]+)":"([^"]*)"(?:,"([a-z]+)":"([^"]*)")?)?\}')


def simple_bytes_fields(body: bytes, fields: tuple[str, ...]) -> dict[str, bytes] | None:
    """``bytes_field`` of each of ``fields`` (absent: ``b""``) of what clients send:
    ``{}`` or one or two of ``fields`` with lower-case names and plain padded base64
    values. None for any other body — another field, an escape, invalid base64 … —
    which the caller decodes with ``parse_object`` (the same result, or its error)."""
    decoded = dict.fromkeys(fields, b"")
    if body == b"{}":
        return decoded
    simple = _SIMPLE_STRINGS.match(body)
    if simple is None:
        return None
    name1, value1, name2, value2 = simple.groups()
    for name, value in ((name1, value1), (name2, value2)):
        if name is None:
            break
        field = name.decode()
        if field not in decoded:
            return None
        raw = _b64decode_plain(value)  # no escapes or control characters either
        if raw is None:
            return None
        decoded[field] = raw  # a repeated name: the last one wins
    return decoded


def bytes_field(obj: dict[str, Any], name: str) -> bytes:
    """A Go ``[]byte`` field: absent/null → b"", else strict std base64 with padding."""
    value = obj.get(name)
    if value is None:
        return b""
    if not isinstance(value, str):
        raise BodyError(f"field {name!r} is not a string")
    try:
        return b64decode_std(value)
    except ValueError:
        raise BodyError(f"field {name!r} is not valid base64") from None


def string_field(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BodyError(f"field {name!r} is not a string")
    return value
