"""The KMS API's errors: the (status, text) pairs the kms-go client compares, and the
body an error is sent in (JSON ``{"message": …}``, which the client reads as an
``ErrResponse``)."""

from __future__ import annotations

from pykes.errors import APIError

ERR_PERMISSION = APIError(403, "access denied: insufficient permissions")
ERR_ENCLAVE_EXISTS = APIError(409, "enclave already exists")
ERR_ENCLAVE_NOT_FOUND = APIError(404, "enclave does not exist")
ERR_KEY_EXISTS = APIError(409, "key already exists")
ERR_KEY_NOT_FOUND = APIError(404, "key does not exist")
ERR_POLICY_NOT_FOUND = APIError(404, "policy does not exist")
ERR_IDENTITY_NOT_FOUND = APIError(404, "identity does not exist")
ERR_DECRYPT = APIError(400, "invalid ciphertext")

CLIENT_ERRORS = (
    ERR_PERMISSION,
    ERR_ENCLAVE_EXISTS,
    ERR_ENCLAVE_NOT_FOUND,
    ERR_KEY_EXISTS,
    ERR_KEY_NOT_FOUND,
    ERR_POLICY_NOT_FOUND,
    ERR_IDENTITY_NOT_FOUND,
    ERR_DECRYPT,
)
"""Every error the client names (kms-go's error.go): matched by status and text."""
