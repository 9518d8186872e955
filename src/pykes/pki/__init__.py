"""Who a peer is: identities of certificates (SHA-256 of the public key), KES API keys and
the client certificates derived from them, self-signed and legacy-encrypted PEM files.

Shared by the server, the CLI and the SDK; holds no server state (docs/compat/auth.md).
"""

from __future__ import annotations

from pykes.pki.apikey import API_KEY_PREFIX, ED25519_SPKI_PREFIX, APIKey, client_certificate
from pykes.pki.certs import (
    build_self_signed_certificate,
    certificate_to_pem,
    encrypt_private_key_pem_legacy,
    load_private_key_pem,
    new_identity_certificate,
    private_key_to_pem,
    random_serial_number,
    self_signed_server_certificate,
)
from pykes.pki.identity import (
    PEMBlock,
    decode_pem_blocks,
    identity_of_certificate,
    identity_of_pem_file,
    identity_of_spki,
    is_ca_certificate,
    spki_of_certificate,
)

__all__ = [
    "API_KEY_PREFIX",
    "ED25519_SPKI_PREFIX",
    "APIKey",
    "PEMBlock",
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
    "new_identity_certificate",
    "private_key_to_pem",
    "random_serial_number",
    "self_signed_server_certificate",
    "spki_of_certificate",
]
