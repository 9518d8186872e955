"""A Python client of the KMS API (kms-go's protocol, docs/kms-api.md) of a stateful
pykes, blocking and asyncio, on the KES SDK's transport. Imported on its own (it needs
``protobuf``; ``import pykes.client`` does not load it):

    from pykes.client.kms import KMSClient

    with KMSClient("https://127.0.0.1:7373", api_key="k1:…", ca_file="ca.crt",
                   enclave="tenant-1") as kms:
        dek = kms.generate_key("minio-key")  # .Version, .Plaintext, .Ciphertext
"""

from __future__ import annotations

from pykes.client.kms.aio import AsyncKMSClient
from pykes.client.kms.errors import (
    DecryptError,
    EnclaveExists,
    EnclaveNotFound,
    IdentityNotFound,
    KeyExists,
    KeyNotFound,
    PermissionDenied,
    PolicyNotFound,
)
from pykes.client.kms.sync import KMSClient
from pykes.kms.commands import Command
from pykes.kms.pb import request_pb2 as requests
from pykes.kms.pb import response_pb2 as responses

__all__ = [
    "AsyncKMSClient",
    "Command",
    "DecryptError",
    "EnclaveExists",
    "EnclaveNotFound",
    "IdentityNotFound",
    "KMSClient",
    "KeyExists",
    "KeyNotFound",
    "PermissionDenied",
    "PolicyNotFound",
    "requests",
    "responses",
]
