"""Client connection settings of every client command (docs/compat/cli.md §2).

Lookup order (the first *set* variable wins, even if empty):

* endpoints: ``MINIO_KES_SERVER``, ``KES_SERVER``, ``MINIO_KMS_KES_ENDPOINT`` —
  default ``127.0.0.1:7373``; comma-separated, each trimmed, ``http://`` removed,
  ``https://`` prepended;
* API key: ``MINIO_KES_API_KEY``, ``KES_API_KEY``, ``MINIO_KMS_KES_API_KEY``;
* private key file: ``MINIO_KES_KEY_FILE``, ``KES_CLIENT_KEY``, ``MINIO_KES_CLIENT_KEY``
  and (pykes extension) the v0.4–v0.8 name ``KES_CLIENT_TLS_KEY_FILE``;
* certificate file: ``MINIO_KES_CERT_FILE``, ``KES_CLIENT_CERT``,
  ``MINIO_KES_CLIENT_CERT`` and (extension) ``KES_CLIENT_TLS_CERT_FILE``;
* enclave, for the commands with ``-e/--enclave`` when it is not given: ``KES_ENCLAVE``
  (the 2023 Go CLI's), ``MINIO_KMS_KES_ENCLAVE`` (MinIO's) — default: none, which a
  stateful server takes as its ``default`` enclave.

The server certificate is verified against the system roots (which honour
``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, as Go's do) unless ``-k/--insecure``.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pykes.cli.common import CLIError, env

if TYPE_CHECKING:
    from pykes.client import Client

SERVER_VARS = ("MINIO_KES_SERVER", "KES_SERVER", "MINIO_KMS_KES_ENDPOINT")
API_KEY_VARS = ("MINIO_KES_API_KEY", "KES_API_KEY", "MINIO_KMS_KES_API_KEY")
KEY_FILE_VARS = (
    "MINIO_KES_KEY_FILE",
    "KES_CLIENT_KEY",
    "MINIO_KES_CLIENT_KEY",
    "KES_CLIENT_TLS_KEY_FILE",
)
CERT_FILE_VARS = (
    "MINIO_KES_CERT_FILE",
    "KES_CLIENT_CERT",
    "MINIO_KES_CLIENT_CERT",
    "KES_CLIENT_TLS_CERT_FILE",
)
ENCLAVE_VARS = ("KES_ENCLAVE", "MINIO_KMS_KES_ENCLAVE")
DEFAULT_SERVER = "127.0.0.1:7373"


def parse_endpoints(value: str) -> list[str]:
    endpoints: list[str] = []
    for entry in value.split(","):
        entry = entry.strip().removeprefix("http://")
        if not entry:
            continue
        if not entry.startswith("https://"):
            entry = "https://" + entry
        endpoints.append(entry)
    return endpoints or ["https://" + DEFAULT_SERVER]


def read_password(prompt: str) -> str:
    """Read a password from the terminal (no echo), or a line from a non-TTY stdin."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt, stream=sys.stderr)
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    sys.stderr.write("\n")
    return line.rstrip("\r\n")


def new_client(
    insecure: bool = False,
    *,
    server: str | None = None,
    api_key: str | None = None,
    enclave: str | None = None,
) -> Client:
    """A client configured from flags (``server``/``api_key`` override) and env vars.
    ``enclave`` is the ``-e`` flag of a command that works in an enclave (empty: from
    the environment); ``None`` for a command that does not (server-wide ones)."""
    from pykes.client import Client

    chosen_enclave = "" if enclave is None else enclave or env(*ENCLAVE_VARS) or ""
    endpoints = parse_endpoints(server if server else (env(*SERVER_VARS) or DEFAULT_SERVER))
    key = api_key if api_key else env(*API_KEY_VARS) or ""
    key_file = env(*KEY_FILE_VARS) or ""
    cert_file = env(*CERT_FILE_VARS) or ""
    if not key and not key_file and not cert_file:
        raise CLIError("no API key specified. Consider setting KES_API_KEY or MINIO_KES_API_KEY")
    if key and key_file:
        raise CLIError("API key and private key file cannot be used at the same time")
    if key and cert_file:
        raise CLIError("API key and certificate file cannot be used at the same time")
    if key_file and not cert_file:
        raise CLIError(
            "no certificate file specified. Consider setting KES_CLIENT_CERT or MINIO_KES_CERT_FILE"
        )
    if cert_file and not key_file:
        raise CLIError(
            "no private key file specified. Consider setting KES_CLIENT_KEY or MINIO_KES_KEY_FILE"
        )
    if key:
        from pykes.pki import APIKey

        try:
            parsed = APIKey.parse(key)
        except ValueError as err:
            raise CLIError(f"parsing API key: {err}") from None
        try:
            return Client(endpoints, api_key=parsed, insecure=insecure, enclave=chosen_enclave)
        except (OSError, ValueError) as err:
            raise CLIError(str(err)) from None
    try:
        return Client(
            endpoints,
            cert_file=cert_file,
            key_file=key_file,
            password=lambda: read_password("Enter password for private key: "),
            insecure=insecure,
            enclave=chosen_enclave,
        )
    except ValueError as err:
        if "password incorrect" in str(err):
            raise CLIError("incorrect password") from None
        raise CLIError(str(err)) from None
    except OSError as err:
        raise CLIError(str(err)) from None


# Appended when the server certificate did not verify (a self-signed or private-CA
# one, e.g. of `kes server --dev`): the two ways out, both honoured by Go's CLI too.
VERIFY_HINT = (
    " (-k skips verifying the server certificate; "
    "SSL_CERT_FILE=<file> trusts the CA certificate in <file>)"
)


@contextmanager
def reported(prefix: str = "") -> Iterator[None]:
    """Turn SDK errors into one ``Error: <prefix><message>`` line."""
    from pykes.client import KESError

    try:
        yield
    except KESError as err:
        message = f"{prefix}{err}"
        if "CERTIFICATE_VERIFY_FAILED" in message:
            message += VERIFY_HINT
        raise CLIError(message) from None
