"""Shared helpers of the SDK and CLI tests (no tests here): a live pykes server whose
admin is an API key identity, a second API key restricted by a policy, and a runner
for the real ``kes`` entry point with a clean environment."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import PKI, RunningServer, config_yaml, kes_command, start_server
from pykes.client import Client
from pykes.pki import APIKey

#: The "reader" policy of the test server (patterns as in the config, sorted).
READER_ALLOW = (
    "/v1/identity/self/describe",
    "/v1/key/decrypt/app-*",
    "/v1/key/describe/*",
    "/v1/key/encrypt/app-*",
    "/v1/key/generate/app-*",
    "/v1/key/list/*",
)
READER_DENY = ("/v1/key/generate/app-secret*",)

_CLIENT_VARS = ("MINIO_KES_", "KES_", "MINIO_KMS_", "SSL_CERT_")


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without any KES/TLS client variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLIENT_VARS)}
    env.update(extra)
    return env


def run_kes(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        kes_command(*args),
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``Error: …`` line of a failed command (asserts exit 1, one line)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    return lines[0].removeprefix("Error: ")


@dataclass
class KesServer:
    server: RunningServer
    admin: APIKey
    user: APIKey  # assigned to the "reader" policy
    keys_dir: Path

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def env(self, api_key: APIKey | None = None, **extra: str) -> dict[str, str]:
        return clean_env(
            MINIO_KES_SERVER=self.endpoint,
            MINIO_KES_API_KEY=str(api_key or self.admin),
            SSL_CERT_FILE=str(self.server.pki.server_cert),
            **extra,
        )

    def kes(
        self, *args: str, api_key: APIKey | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_kes(*args, env=self.env(api_key), stdin=stdin)

    def client(self, api_key: APIKey | None = None, **kw: object) -> Client:
        return Client(
            self.server.url,
            api_key=api_key or self.admin,
            ca_file=str(self.server.pki.server_cert),
            **kw,  # type: ignore[arg-type]
        )

    def stop(self) -> None:
        self.server.stop()


def start_kes(root: Path, pki: PKI, extra: str = "") -> KesServer:
    root.mkdir(parents=True, exist_ok=True)
    admin, user = APIKey.generate(), APIKey.generate()
    allow = "".join(f"    - {p}\n" for p in READER_ALLOW)
    deny = "".join(f"    - {p}\n" for p in READER_DENY)
    policy = (
        "policy:\n"
        "  reader:\n"
        f"    allow:\n{allow}"
        f"    deny:\n{deny}"
        f"    identities:\n    - {user.identity}\n"
        "  unused:\n"
        "    allow:\n    - /v1/key/create/*\n"
        "log:\n  error: debug\n"
    )
    keys_dir = root / "keys"
    server = start_server(root, pki, config_yaml(pki, admin.identity, keys_dir, policy + extra))
    return KesServer(server, admin, user, keys_dir)
