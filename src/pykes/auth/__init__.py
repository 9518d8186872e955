"""Authentication and authorization for pykes (docs/compat/auth.md).

* identities of certificates (SHA-256 of the raw SPKI DER) — :mod:`.identity`
* API keys and the client certificates derived from them — :mod:`.apikey`
* policies and the per-request authorizer — :mod:`.policy`
* run-time (legacy API) policies and assignments shared by all workers — :mod:`.ephemeral`
* self-signed certificates and legacy-encrypted PEM keys — :mod:`.certs`
"""

from __future__ import annotations

from pykes.auth.apikey import API_KEY_PREFIX, ED25519_SPKI_PREFIX, APIKey, client_certificate
from pykes.auth.certs import (
    build_self_signed_certificate,
    certificate_to_pem,
    encrypt_private_key_pem_legacy,
    load_private_key_pem,
    new_identity_certificate,
    private_key_to_pem,
    random_serial_number,
    self_signed_server_certificate,
)
from pykes.auth.ephemeral import EphemeralStore, StoreFullError
from pykes.auth.identity import (
    PEMBlock,
    decode_pem_blocks,
    identity_of_certificate,
    identity_of_pem_file,
    identity_of_spki,
    is_ca_certificate,
    spki_of_certificate,
)
from pykes.auth.policy import Authorizer, Policy, match

__all__ = [
    "API_KEY_PREFIX",
    "ED25519_SPKI_PREFIX",
    "APIKey",
    "Authorizer",
    "EphemeralStore",
    "PEMBlock",
    "Policy",
    "build_self_signed_certificate",
    "certificate_to_pem",
    "client_certificate",
    "decode_pem_blocks",
    "encrypt_private_key_pem_legacy",
    "identity_of_certificate",
    "identity_of_pem_file",
    "identity_of_spki",
    "is_ca_certificate",
    "load_private_key_pem",
    "match",
    "new_identity_certificate",
    "private_key_to_pem",
    "random_serial_number",
    "self_signed_server_certificate",
    "spki_of_certificate",
    "StoreFullError",
]
