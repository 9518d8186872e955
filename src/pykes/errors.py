"""API errors: an HTTP status plus the exact message text clients compare against.

KES clients (the Go SDK, MinIO) match errors by (status, message) equality, so the
canonical errors below must stay byte-exact (docs/compat/api.md §3.6).
"""

from __future__ import annotations


class APIError(Exception):
    """An error that is sent to the client as ``{"message": ...}`` with ``status``."""

    __slots__ = ("status", "message")

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, APIError):
            return NotImplemented
        return self.status == other.status and self.message == other.message

    def __hash__(self) -> int:
        return hash((self.status, self.message))

    def __repr__(self) -> str:
        return f"APIError({self.status}, {self.message!r})"


class KeyExistsError(APIError):
    def __init__(self) -> None:
        super().__init__(400, "key already exists")


class KeyNotFoundError(APIError):
    def __init__(self) -> None:
        super().__init__(404, "key does not exist")


class DecryptError(APIError):
    def __init__(self) -> None:
        super().__init__(400, "decryption failed: ciphertext is not authentic")


class NotAllowedError(APIError):
    def __init__(self) -> None:
        super().__init__(403, "not authorized: insufficient permissions")


class PolicyNotFoundError(APIError):
    def __init__(self) -> None:
        super().__init__(404, "policy does not exist")


class IdentityNotFoundError(APIError):
    def __init__(self) -> None:
        super().__init__(404, "identity does not exist")


class NoClientCertificateError(APIError):
    def __init__(self) -> None:
        super().__init__(400, "tls: client certificate is required")


# Canonical instances for comparisons (``err == ERR_KEY_NOT_FOUND``). Raise fresh
# instances (the classes above) instead: re-raising one shared exception object makes
# its traceback grow with every raise.
ERR_NOT_ALLOWED = APIError(403, "not authorized: insufficient permissions")
ERR_KEY_NOT_FOUND = KeyNotFoundError()
ERR_KEY_EXISTS = KeyExistsError()
ERR_DECRYPT = DecryptError()
ERR_POLICY_NOT_FOUND = APIError(404, "policy does not exist")
ERR_IDENTITY_NOT_FOUND = APIError(404, "identity does not exist")
ERR_NO_CLIENT_CERT = APIError(400, "tls: client certificate is required")
ERR_TOO_MANY_CLIENT_CERTS = APIError(400, "tls: received more than one client certificate")
ERR_HMAC_UNSUPPORTED = APIError(409, "key does not support HMAC")


class KeyStoreUnreachable(Exception):
    """The keystore cannot be reached (network failure, timeout, sealed, cache offline).

    Distinguished from other keystore errors: ``/v1/ready`` answers 504 for this and
    502 for anything else (docs/compat/keystore.md §1).
    """


class ConfigError(Exception):
    """A configuration problem; ``str(err)`` is the one-line message shown to the user."""
