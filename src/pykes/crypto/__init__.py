"""KES key material, key encoding and ciphertext formats (docs/compat/crypto.md).

* ``keys``       — ``KeyVersion`` (encrypt / decrypt / HMAC), key generation and import
* ``encoding``   — the keystore value: base64 protobuf, or legacy JSON (read only)
* ``ciphertext`` — legacy JSON / MessagePack ciphertexts normalized to the raw layout
* ``hchacha``    — HChaCha20, the ChaCha20 key derivation
* ``aead``       — sealed values at rest (the stateful store's records and keys)
"""

from pykes.crypto.ciphertext import parse_ciphertext
from pykes.crypto.encoding import decode_key_version, encode_key_version
from pykes.crypto.hchacha import hchacha20
from pykes.crypto.keys import (
    KeyType,
    KeyVersion,
    generate_key_version,
    import_key_version,
    new_data_key,
    new_secret,
    parse_cipher_name,
    wipe,
)

__all__ = [
    "KeyType",
    "KeyVersion",
    "decode_key_version",
    "encode_key_version",
    "generate_key_version",
    "hchacha20",
    "import_key_version",
    "new_data_key",
    "new_secret",
    "parse_cipher_name",
    "parse_ciphertext",
    "wipe",
]
