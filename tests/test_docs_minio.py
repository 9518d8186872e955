"""docs/minio.md is run, not just read (tests/doc_runner.py): every ```sh block, in
order, in one bash shell, in an empty directory, with the real `kes` of the venv."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from conftest import REPO
from doc_runner import blocks as doc_blocks
from doc_runner import run_guide

DOC = REPO / "docs" / "minio.md"


def blocks(kind: str) -> list[str]:
    return doc_blocks(DOC, kind)


def test_the_doc_names_every_minio_variable_in_its_commands() -> None:
    script = "\n".join(blocks("sh"))
    for name in (
        "MINIO_KMS_KES_ENDPOINT",
        "MINIO_KMS_KES_KEY_FILE",
        "MINIO_KMS_KES_CERT_FILE",
        "MINIO_KMS_KES_CAPATH",
        "MINIO_KMS_KES_KEY_NAME",
        "MINIO_KMS_KES_API_KEY",
        "MINIO_KMS_AUTO_ENCRYPTION",
    ):
        assert f"export {name}=" in script, name
    for path in ("create", "generate", "decrypt"):
        assert f"- /v1/key/{path}/minio-*" in script
    # The only commands not run are MinIO's own, in a ```text block.
    assert [b.split()[0] for b in blocks("text") if b.startswith(("minio", "mc"))] == ["minio"]


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("curl", "jq", "base64")),
    reason="the doc uses curl, jq and base64",
)
def test_every_command_of_the_minio_guide_runs(tmp_path: Path) -> None:
    r = run_guide(DOC, tmp_path)
    log = (tmp_path / "kes.log").read_text() if (tmp_path / "kes.log").exists() else ""
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n--- kes.log\n{log}"
    out = r.stdout
    # kes key ls (admin) and kes key ls 'minio-*' (MinIO) list the default key.
    assert out.count("minio-default-key") >= 2
    assert 'failed to create key "not-for-minio": not authorized: insufficient permissions' in (
        r.stderr
    )
    assert "refused, as the policy says" in out
    assert "object data key: decrypted" in out
    # The error body as the Go server writes it (docs/compat/api.md §3.6), then the doc's echo.
    assert '{"message":"decryption failed: ciphertext is not authentic"\n} <- refused' in out
    assert "key status: OK" in out
    assert "MinIO's start-up check: OK" in out  # with the MINIO_KMS_KES_* values of step 7
    # The API-key variant of step 8 got a data key: one JSON line with both fields.
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r'\{"plaintext":"[A-Za-z0-9+/=]{44}","ciphertext":"\S+"\}', last), last
    # The keystore holds exactly the key the guide created, written 0600.
    keys = sorted(p.name for p in (tmp_path / "keys").iterdir())
    assert keys == ["minio-default-key"]
    assert (tmp_path / "keys" / "minio-default-key").stat().st_mode & 0o777 == 0o600
    # Stopped by the doc's last step (its `kill` does not wait for the exit).
    deadline = time.monotonic() + 10
    while "=> Stopping server... Goodbye." not in (tmp_path / "kes.log").read_text():
        assert time.monotonic() < deadline, (tmp_path / "kes.log").read_text()
        time.sleep(0.05)
