"""Helpers shared by handlers: name checks, body parsing, canned errors."""

from __future__ import annotations

from typing import Any

from pykes.api.messages import Request
from pykes.errors import APIError
from pykes.goformat.json import BodyError, parse_object
from pykes.names import pattern_prefix, valid_name, valid_pattern

INVALID_BODY = "invalid request body"


_VALID_NAMES: set[str] = set()
_VALID_NAMES_SIZE = 1024
"""Names that passed ``valid_name`` (a set lookup, not a regular expression, per
request); at most ``_VALID_NAMES_SIZE``, all dropped when full."""


def require_name(kind: str, name: str) -> str:
    """Validate a key/policy/identity name; ``kind`` is the message's leading words."""
    if name in _VALID_NAMES:
        return name
    if not valid_name(name):
        raise APIError(400, f"{kind} '{name}' is empty, too long or contains invalid characters")
    if len(_VALID_NAMES) >= _VALID_NAMES_SIZE:
        _VALID_NAMES.clear()
    _VALID_NAMES.add(name)
    return name


def listing_prefix(pattern: str) -> str:
    if not valid_pattern(pattern):
        raise APIError(400, f"listing pattern '{pattern}' is empty, too long or is invalid")
    return pattern_prefix(pattern)


def read_body(req: Request, fields: tuple[str, ...], message: str = INVALID_BODY) -> dict[str, Any]:
    """The JSON body's fields; a body over the route limit or not JSON → 400 ``message``."""
    if req.body_too_large:
        raise APIError(400, message)
    try:
        return parse_object(req.body, fields)
    except BodyError:
        raise APIError(400, message) from None
