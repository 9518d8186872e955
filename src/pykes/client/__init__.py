"""The pykes Python SDK: a client for any KES server (pykes or MinIO KES).

Mirrors the Go SDK ``github.com/minio/kms-go/kes``: the same requests, response size
limits, typed errors matched on (status, message), multi-endpoint load balancing with
30 s endpoint timeouts, and retries of network errors / 503. Usage: ``docs/client.md``.

    from pykes.client import Client

    with Client("https://127.0.0.1:7373", api_key="kes:v1:…", ca_file="ca.crt") as kes:
        kes.create_key("my-key")
        dek = kes.generate_key("my-key")
"""

from __future__ import annotations

from pykes.client.aio import AsyncClient
from pykes.client.errors import (
    APIError,
    ConnError,
    DecryptError,
    EnclaveExists,
    EnclaveNotFound,
    IdentityNotFound,
    KESError,
    KeyExists,
    KeyNotFound,
    NotAllowed,
    PolicyNotFound,
    ResponseError,
)
from pykes.client.metrics import Metric
from pykes.client.streams import AsyncAuditStream, AsyncErrorStream, AuditStream, ErrorStream
from pykes.client.sync import Client
from pykes.client.tls import client_ssl_context
from pykes.client.types import (
    API,
    DEK,
    AuditEvent,
    EnclaveInfo,
    ErrorEvent,
    IdentityInfo,
    KeyAlgorithm,
    KeyInfo,
    Policy,
    PolicyInfo,
    State,
    Versioned,
)

__all__ = [
    "API",
    "DEK",
    "APIError",
    "AsyncAuditStream",
    "AsyncClient",
    "AsyncErrorStream",
    "AuditEvent",
    "AuditStream",
    "Client",
    "ConnError",
    "DecryptError",
    "EnclaveExists",
    "EnclaveInfo",
    "EnclaveNotFound",
    "ErrorEvent",
    "ErrorStream",
    "IdentityInfo",
    "IdentityNotFound",
    "KESError",
    "KeyAlgorithm",
    "KeyExists",
    "KeyInfo",
    "KeyNotFound",
    "Metric",
    "NotAllowed",
    "Policy",
    "PolicyInfo",
    "PolicyNotFound",
    "ResponseError",
    "State",
    "Versioned",
    "client_ssl_context",
]
