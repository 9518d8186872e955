"""Client-side errors, mirroring the Go SDK (``github.com/minio/kms-go/kes``).

A KES server reports an error as an HTTP status plus a message (docs/compat/api.md §3.6). The
SDK compares errors by *(status, message) equality*; :func:`error_from_response` turns
a canonical pair into its typed subclass (e.g. ``404 key does not exist`` →
:class:`KeyNotFound`) and every other pair into a plain :class:`APIError`. Two legacy
texts of older servers are mapped like the Go SDK maps them: ``400 key does already
exist`` → :class:`KeyExists`, ``403 prohibited by policy`` → :class:`NotAllowed`.
"""

from __future__ import annotations

import json

__all__ = [
    "APIError",
    "ConnError",
    "DecryptError",
    "EnclaveExists",
    "EnclaveNotFound",
    "IdentityNotFound",
    "KESError",
    "KeyExists",
    "KeyNotFound",
    "NotAllowed",
    "PolicyNotFound",
    "ResponseError",
    "error_from_response",
]


class KESError(Exception):
    """Base class of every error raised by :mod:`pykes.client`."""


class APIError(KESError):
    """An error response of a KES server: HTTP ``status`` and ``message``.

    Two API errors are equal if status and message are equal (as Go's ``kes.Error``).
    ``str(err)`` is the message, exactly as the Go SDK prints it.
    """

    #: status / message of the canonical error a subclass stands for
    STATUS: int = 0
    MESSAGE: str = ""
    #: how many commands the failed request held: a KMS API batch fails as a whole
    batch_size: int = 1

    def __init__(self, status: int | None = None, message: str | None = None) -> None:
        self.status = self.STATUS if status is None else status
        self.message = self.MESSAGE if message is None else message
        super().__init__(self.message)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, APIError):
            return NotImplemented
        return (self.status, self.message) == (other.status, other.message)

    def __hash__(self) -> int:
        return hash((self.status, self.message))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


class NotAllowed(APIError):
    """``403 not authorized: insufficient permissions`` (Go ``ErrNotAllowed``)."""

    STATUS, MESSAGE = 403, "not authorized: insufficient permissions"


class KeyNotFound(APIError):
    """``404 key does not exist`` (Go ``ErrKeyNotFound``)."""

    STATUS, MESSAGE = 404, "key does not exist"


class KeyExists(APIError):
    """``400 key already exists`` (Go ``ErrKeyExists``)."""

    STATUS, MESSAGE = 400, "key already exists"


class PolicyNotFound(APIError):
    """``404 policy does not exist`` (Go ``ErrPolicyNotFound``)."""

    STATUS, MESSAGE = 404, "policy does not exist"


class IdentityNotFound(APIError):
    """``404 identity does not exist`` (Go ``ErrIdentityNotFound``)."""

    STATUS, MESSAGE = 404, "identity does not exist"


class DecryptError(APIError):
    """``400 decryption failed: ciphertext is not authentic`` (Go ``ErrDecrypt``):
    wrong key, wrong context or a modified ciphertext."""

    STATUS, MESSAGE = 400, "decryption failed: ciphertext is not authentic"


class EnclaveExists(APIError):
    """``400 enclave already exists`` (the 2023 Go SDK's ``ErrEnclaveExists``)."""

    STATUS, MESSAGE = 400, "enclave already exists"


class EnclaveNotFound(APIError):
    """``404 enclave does not exist`` (the 2023 Go SDK's ``ErrEnclaveNotFound``)."""

    STATUS, MESSAGE = 404, "enclave does not exist"


ErrorTable = dict[tuple[int, str], type[APIError]]
"""The typed errors of an API, by the (status, text) pair its server answers."""


def error_table(*classes: type[APIError]) -> ErrorTable:
    """Each class under its ``(STATUS, MESSAGE)``."""
    return {(cls.STATUS, cls.MESSAGE): cls for cls in classes}


def typed_error(table: ErrorTable, status: int, message: str) -> APIError:
    """The class of ``table`` for (status, message), else a plain :class:`APIError`."""
    cls = table.get((status, message))
    return cls() if cls is not None else APIError(status, message)


_CANONICAL = error_table(
    NotAllowed,
    KeyNotFound,
    KeyExists,
    PolicyNotFound,
    IdentityNotFound,
    DecryptError,
    EnclaveExists,
    EnclaveNotFound,
)
# Texts of servers before 2023 that the Go SDK maps to the canonical errors.
_CANONICAL[(400, "key does already exist")] = KeyExists
_CANONICAL[(403, "prohibited by policy")] = NotAllowed


class ConnError(KESError):
    """A request failed because of a network / connection problem (Go ``ConnError``).

    ``host`` is the endpoint that could not be reached; the underlying exception is
    chained as ``__cause__``.
    """

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"kes: connection error: {reason}")


class ResponseError(KESError):
    """A successful response could not be decoded (malformed JSON, invalid base64,
    unknown key algorithm, body larger than the SDK limit …)."""


MAX_ERROR_BODY = 1 << 20
"""At most this many bytes of an error body are read (1 MiB, as the Go SDK)."""


def error_from_response(status: int, content_type: str, body: bytes) -> APIError:
    """Build the error for a response with ``status >= 400`` (Go ``parseErrorResponse``).

    JSON bodies (``Content-Type`` starting with ``application/json``) carry the text in
    ``error`` (if non-empty) or ``message``; any other body is the message as is.
    """
    body = body[:MAX_ERROR_BODY]
    if content_type.strip().startswith("application/json"):
        message = ""
        try:
            value = json.loads(body.decode("utf-8", "replace"))
        except ValueError:
            raise ResponseError(
                f"kes: invalid error response ({status}): malformed JSON body"
            ) from None
        if isinstance(value, dict):
            text = value.get("message")
            message = text if isinstance(text, str) else ""
            alt = value.get("error")
            if isinstance(alt, str) and alt:
                message = alt
    else:
        message = body.decode("utf-8", "replace")
    return typed_error(_CANONICAL, status, message)
