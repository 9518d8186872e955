"""Identities in the KMS API's spelling: ``h1:`` and the unpadded base64url of the
SHA-256 of a certificate's public key — the hash a KES identity spells in hex, so one
certificate is one identity in both APIs."""

from __future__ import annotations

import base64
import binascii

PREFIX = "h1:"
_HASH_HEX = 64


def from_kes(identity: str) -> str:
    """The ``h1:`` form of a KES (hex) identity; ``""`` for anything else (a creator the
    store does not know, which the client reads as no identity)."""
    if len(identity) != _HASH_HEX:
        return ""
    try:
        digest = bytes.fromhex(identity)
    except ValueError:
        return ""
    return PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def to_kes(identity: str) -> str:
    """The KES (hex) form of an ``h1:`` identity (``ValueError`` if it is not one)."""
    if not identity.startswith(PREFIX) or len(identity) != len(PREFIX) + 43:
        raise ValueError("not an h1 identity")
    try:
        digest = base64.urlsafe_b64decode(identity[len(PREFIX) :] + "=")
    except binascii.Error:
        raise ValueError("not an h1 identity") from None
    return digest.hex()
