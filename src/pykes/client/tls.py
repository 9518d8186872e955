"""The client's TLS configuration: server verification and the mTLS client certificate.

The client certificate comes from an API key (a fresh self-signed Ed25519 certificate,
exactly as the Go SDK's ``GenerateCertificate``, docs/compat/auth.md §7.1) or from PEM
files (a legacy RFC 1423 encrypted key is decrypted with a password).

Python's :mod:`ssl` only loads key material from files. The private key is therefore
written to a 0600 file inside a fresh 0700 temporary directory — *encrypted* (PKCS#8,
AES-256) with a random one-time password that never leaves this process — loaded,
and deleted immediately; the plaintext key never touches the disk.
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import tempfile
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from pykes.pki import APIKey, client_certificate, load_private_key_pem
from pykes.pki.identity import decode_pem_blocks

__all__ = ["Password", "client_ssl_context", "is_encrypted_pem"]

Password = str | bytes | Callable[[], str | bytes] | None


def is_encrypted_pem(data: bytes) -> bool:
    """Whether the first private-key block is legacy-encrypted (``Proc-Type: 4,ENCRYPTED``)."""
    for block in decode_pem_blocks(data):
        if block.type == "PRIVATE KEY" or block.type.endswith(" PRIVATE KEY"):
            return block.headers.get("Proc-Type") == "4,ENCRYPTED"
    return False


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _load_chain(ctx: ssl.SSLContext, cert_pem: bytes, private_key: PrivateKeyTypes) -> None:
    """Load ``cert_pem`` + ``private_key`` into ``ctx`` via short-lived temp files."""
    one_time = secrets.token_urlsafe(32).encode()
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time),
    )
    directory = tempfile.mkdtemp(prefix="pykes-client-")  # mode 0700
    try:
        cert_path = os.path.join(directory, "client.crt")
        key_path = os.path.join(directory, "client.key")
        _write_private(cert_path, cert_pem)
        _write_private(key_path, key_pem)
        try:
            ctx.load_cert_chain(cert_path, key_path, password=one_time)
        except ssl.SSLError as err:
            raise ValueError(f"invalid client certificate or private key: {err}") from None
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _resolve(password: Password) -> bytes | None:
    if callable(password):
        password = password()
    if isinstance(password, str):
        password = password.encode()
    return password


def client_ssl_context(
    *,
    api_key: APIKey | str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    password: Password = None,
    ca_file: str | None = None,
    insecure: bool = False,
) -> ssl.SSLContext:
    """Build the client :class:`ssl.SSLContext` (TLS ≥ 1.2).

    Exactly one of ``api_key`` or ``cert_file`` + ``key_file`` may be given (none is
    allowed, for servers that do not require a client certificate). The server is
    verified against ``ca_file`` (or the system roots) unless ``insecure``.
    ``password`` (or a callable returning it, asked only if needed) decrypts a
    legacy-encrypted private key file. Raises :class:`ValueError` / :class:`OSError`.
    """
    if api_key is not None and (cert_file or key_file):
        raise ValueError("an API key and a certificate / private key cannot be used together")
    if bool(cert_file) != bool(key_file):
        raise ValueError("a client certificate requires a private key and vice versa")
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if api_key is not None:
        key = api_key if isinstance(api_key, APIKey) else APIKey.parse(api_key)
        cert_pem, _ = client_certificate(key)
        _load_chain(ctx, cert_pem, key.private_key)
    elif cert_file and key_file:
        with open(key_file, "rb") as f:
            key_data = f.read()
        with open(cert_file, "rb") as f:
            cert_pem = f.read()
        secret = _resolve(password) if is_encrypted_pem(key_data) else None
        private_key = load_private_key_pem(key_data, secret)
        _load_chain(ctx, cert_pem, private_key)
    return ctx
