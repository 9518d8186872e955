"""The seal: what wraps and unwraps the store's root key. A key file and an environment
variable now, holding a seal key in the 2023 KES SoftHSM format; PKCS#11, AWS KMS and
Vault Transit seals implement the same :class:`Seal` protocol later.

Seal key text: ``kes:v1:aes256:<standard base64 of 32 bytes>`` (2023 KES also wrote
``kes:v1:chacha20:…``; such a key wraps with ChaCha20-Poly1305). Error lines never show
the key text.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pykes.crypto import KeyType
from pykes.crypto.aead import NotAuthentic, seal, unseal
from pykes.store.errors import SealError

SEAL_KEY_PREFIX = "kes:v1:"
_CIPHERS = {"aes256": KeyType.AES256, "chacha20": KeyType.CHACHA20}
_CIPHER_NAMES = {cipher: name for name, cipher in _CIPHERS.items()}
_FORM = "kes:v1:aes256:<base64 of 32 bytes>"
_ROOT_KEY_AD = b"pykes store root key"  # a wrapped root key opens as nothing else
_MAX_KEY_FILE = 4096


@runtime_checkable
class Seal(Protocol):
    """Wraps the store's 32-byte root key for storage and unwraps it at start-up.

    ``description`` names where the seal key lives (``file /etc/kes/root.seal``), never
    the key. Both calls are async: a hardware or cloud seal asks a remote service.
    ``unwrap`` raises :class:`~pykes.store.errors.SealError` (one line) for a wrapped
    key that this seal did not make.
    """

    description: str

    async def wrap(self, root_key: bytes) -> bytes: ...

    async def unwrap(self, wrapped: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True, repr=False)
class SealKey:
    """A parsed seal key: 32 bytes and the AEAD they are used with."""

    key: bytes
    cipher: KeyType = KeyType.AES256

    def __repr__(self) -> str:
        return f"SealKey({_CIPHER_NAMES[self.cipher]})"

    def text(self) -> str:
        """The key in its ``kes:v1:<cipher>:<base64>`` form (secret: for the operator)."""
        encoded = base64.b64encode(self.key).decode()
        return f"{SEAL_KEY_PREFIX}{_CIPHER_NAMES[self.cipher]}:{encoded}"


def parse_seal_key(text: str) -> SealKey:
    """Parse seal key text (surrounding white space ignored). Raises ``ValueError`` with
    one line saying what is wrong and the expected form."""
    text = text.strip()
    if not text.startswith(SEAL_KEY_PREFIX):
        raise ValueError(f"missing the '{SEAL_KEY_PREFIX}' prefix (expected {_FORM})")
    cipher_name, sep, encoded = text[len(SEAL_KEY_PREFIX) :].partition(":")
    if not sep or cipher_name not in _CIPHERS:
        raise ValueError(f"unsupported cipher (expected {_FORM})")
    try:
        key = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"the key is not standard base64 (expected {_FORM})") from None
    if len(key) != 32:
        raise ValueError(f"the key is {len(key)} bytes, not 32 (expected {_FORM})")
    return SealKey(key, _CIPHERS[cipher_name])


def generate_seal_key() -> SealKey:
    """A new random AES-256 seal key (``SealKey.text()`` is what goes in the file)."""
    return SealKey(os.urandom(32))


class SoftwareSeal:
    """A seal key held in this process, read from a file or an environment variable.

    The wrapped root key is ``nonce ‖ AEAD(seal key, root key)`` with fixed associated
    data, so nothing but a root key wrapped by this seal key unwraps.
    """

    def __init__(self, key: SealKey, description: str) -> None:
        self._key = key
        self.description = description

    @classmethod
    def from_file(cls, path: str) -> SoftwareSeal:
        """The seal key in the file at ``path`` (its first 4 KiB; a trailing newline is
        fine). Raises :class:`SealError` for a missing, unreadable or malformed file."""
        where = f"seal key file '{path}'"
        try:
            with open(path, "rb") as file:
                raw = file.read(_MAX_KEY_FILE)
        except OSError as err:
            raise SealError(f"store: {where}: {err.strerror or err}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # its message would quote a byte of the file
            raise SealError(f"store: {where}: invalid seal key: not UTF-8 text") from None
        try:
            key = parse_seal_key(text)
        except ValueError as err:
            raise SealError(f"store: {where}: invalid seal key: {err}") from None
        return cls(key, f"file {os.path.abspath(path)}")

    @classmethod
    def from_env(cls, name: str, environ: Mapping[str, str] | None = None) -> SoftwareSeal:
        """The seal key in the environment variable ``name``. Raises :class:`SealError`
        if it is unset, empty or malformed."""
        value = (os.environ if environ is None else environ).get(name, "")
        where = f"seal key environment variable '{name}'"
        if not value.strip():
            raise SealError(f"store: {where} is not set")
        try:
            key = parse_seal_key(value)
        except ValueError as err:
            raise SealError(f"store: {where}: invalid seal key: {err}") from None
        return cls(key, f"env {name}")

    async def wrap(self, root_key: bytes) -> bytes:
        return seal(self._key.key, root_key, _ROOT_KEY_AD, self._key.cipher)

    async def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return unseal(self._key.key, wrapped, _ROOT_KEY_AD, self._key.cipher)
        except NotAuthentic:
            raise SealError(
                f"store: the seal key ({self.description}) does not unseal this store's "
                "root key: wrong seal key"
            ) from None
