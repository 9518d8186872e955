"""Helpers shared by handlers: name checks, body parsing, canned errors."""

from __future__ import annotations

from typing import Any

from pykes.api.messages import Request
from pykes.errors import APIError
from pykes.goformat.json import BodyError, parse_object
from pykes.names import pattern_prefix, valid_name, valid_pattern

INVALID_BODY = "invalid request body"
_FALSE = frozenset(("0", "false", "off", "no"))


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


def query_flag(query: str, name: str) -> bool:
    """Whether a raw query string switches ``name`` on: ``?name`` or ``?name=<value>``
    with a value other than 0, false, off or no (the first ``name`` counts)."""
    if name not in query:
        return False
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        if key == name:
            return not eq or value.lower() not in _FALSE
    return False
