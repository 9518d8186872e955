"""Which enclave a request names: the ``Kes-Enclave`` header (2023 KES) or the
``?enclave=<name>`` query parameter (MinIO 2022-12 … 2024-05 with
``MINIO_KMS_KES_ENCLAVE``); neither (or an empty value) names ``default``. The KMS
API names it in its path (``/v1/kms/<enclave>``).
"""

from __future__ import annotations

from urllib.parse import unquote

from pykes.api.handlers.common import require_name
from pykes.api.messages import Request
from pykes.errors import APIError

DEFAULT_ENCLAVE = "default"
ENCLAVE_HEADER = b"kes-enclave"
_HEADER_LEN = len(ENCLAVE_HEADER)
_CONFLICT = "the Kes-Enclave header and the enclave query parameter name different enclaves"


def query_enclave(query: str) -> str:
    """The first ``enclave`` parameter of a raw query string, percent-decoded ("" if none)."""
    if "enclave=" not in query:
        return ""
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "enclave":
            return unquote(value, errors="replace")
    return ""


def header_enclave(req: Request) -> str:
    """The first ``Kes-Enclave`` header's value ("" if none)."""
    for name, value in req.headers or ():
        # (the length first: no lower-cased copy of every other header's name)
        if len(name) == _HEADER_LEN and name.lower() == ENCLAVE_HEADER:
            return value.decode("latin-1").strip()
    return ""


def named_enclave(req: Request) -> str:
    """The enclave ``req`` names (a valid name: else 400, the key-name rule and text)."""
    header = header_enclave(req)
    query = query_enclave(req.query) if req.query else ""
    if header and query and header != query:
        raise APIError(400, _CONFLICT)
    return require_name("enclave name", header or query or DEFAULT_ENCLAVE)


def path_enclave(req: Request) -> str:
    """The enclave a KMS API path names (``/v1/kms/<enclave>``; ``/v1/kms``: ``default``),
    a valid name (else 400)."""
    return require_name("enclave name", req.resource) if req.resource else DEFAULT_ENCLAVE
