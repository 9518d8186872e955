"""The KMS API's errors as the kms-go client names them (kms/error.go): typed by status
**and** text, each a subclass of the KES SDK's error for the same case, so one
``except KeyExists`` catches it from either API."""

from __future__ import annotations

import json
from collections.abc import Callable

from google.protobuf.message import DecodeError

from pykes.client import errors as kes
from pykes.client.errors import (
    MAX_ERROR_BODY,
    APIError,
    EnclaveNotFound,
    IdentityNotFound,
    KeyNotFound,
    PolicyNotFound,
)
from pykes.kms.pb import response_pb2 as rs

__all__ = [
    "DecryptError",
    "EnclaveExists",
    "EnclaveNotFound",
    "IdentityNotFound",
    "KeyExists",
    "KeyNotFound",
    "PermissionDenied",
    "PolicyNotFound",
    "error_from_response",
]

BINARY = "application/octet-stream"
JSON = "application/json"


class PermissionDenied(kes.NotAllowed):
    """``403 access denied: insufficient permissions`` (kms-go ``ErrPermission``)."""

    STATUS, MESSAGE = 403, "access denied: insufficient permissions"


class EnclaveExists(kes.EnclaveExists):
    """``409 enclave already exists`` (kms-go ``ErrEnclaveExists``)."""

    STATUS, MESSAGE = 409, "enclave already exists"


class KeyExists(kes.KeyExists):
    """``409 key already exists`` (kms-go ``ErrKeyExists``)."""

    STATUS, MESSAGE = 409, "key already exists"


class DecryptError(kes.DecryptError):
    """``400 invalid ciphertext`` (kms-go ``ErrDecrypt``): a wrong key version or
    associated data, or a modified ciphertext."""

    STATUS, MESSAGE = 400, "invalid ciphertext"


# KeyNotFound, EnclaveNotFound, PolicyNotFound and IdentityNotFound are the KES SDK's
# own classes: both APIs answer them with the same status and text.
_CANONICAL = kes.error_table(
    PermissionDenied,
    EnclaveExists,
    EnclaveNotFound,
    KeyExists,
    KeyNotFound,
    PolicyNotFound,
    IdentityNotFound,
    DecryptError,
)


def _message(content_type: str, body: bytes) -> str:
    """The error text of a body as kms-go's ``readError`` reads it: an ``ErrResponse``
    in protobuf or JSON by the Content-Type, any other body as text."""
    content_type = content_type.split(";")[0].strip()
    if content_type == BINARY:
        answer = rs.ErrResponse()
        try:
            answer.ParseFromString(body)
        except DecodeError:
            return "kms: malformed error response"
        return answer.Message
    if content_type == JSON:
        try:
            value = json.loads(body.decode("utf-8", "replace"))
        except ValueError:
            return "kms: malformed error response"
        text = value.get("message") if isinstance(value, dict) else None
        return text if isinstance(text, str) else ""
    return body.decode("utf-8", "replace")


def error_from_response(status: int, content_type: str, body: bytes) -> APIError:
    """The typed error of an error response: a canonical (status, text) pair's class,
    else a plain :class:`~pykes.client.APIError`."""
    message = _message(content_type, body[:MAX_ERROR_BODY])
    return kes.typed_error(_CANONICAL, status, message)


def batch_error(count: int, command: str) -> Callable[[int, str, bytes], APIError]:
    """The error parser of a request of ``count`` commands: the typed error, noting
    (for more than one command) that the batch failed as a whole."""

    def error(status: int, content_type: str, body: bytes) -> APIError:
        err = error_from_response(status, content_type, body)
        err.batch_size = count
        if count > 1:
            err.add_note(
                f"kms: this error failed the whole batch of {count} {command} commands: "
                "no command's answer was returned; which command failed is not known, "
                "and the commands before it stay done"
            )
        return err

    return error
