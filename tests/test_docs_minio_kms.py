"""docs/minio-kms.md is run, not just read (tests/doc_runner.py): MinIO's `MINIO_KMS_*`
set-up on a stateful pykes — `k1:` API keys, an enclave with MinIO as a User under a KMS
policy, `kes migrate --server` from a KES fs keystore, MinIO's start-up and per-object
calls through the SDK's KMS client, a rotation through the KES API."""

from __future__ import annotations

import base64
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import REPO
from doc_runner import blocks, run_guide

DOC = REPO / "docs" / "minio-kms.md"


def test_the_guide_sets_every_minio_kms_variable_and_runs_only_minio_elsewhere() -> None:
    script = "\n".join(blocks(DOC, "sh"))
    for name in ("MINIO_KMS_SERVER", "MINIO_KMS_ENCLAVE", "MINIO_KMS_SSE_KEY", "MINIO_KMS_API_KEY"):
        assert f"export {name}=" in script, name
    assert "kes migrate --from kes-config.yml --server" in script
    assert [b.split()[0] for b in blocks(DOC, "text") if b.startswith(("minio", "mc"))] == ["minio"]


@pytest.mark.skipif(not shutil.which("jq"), reason="the guide uses jq")
def test_every_command_of_the_minio_kms_guide_runs(tmp_path: Path) -> None:
    r = run_guide(DOC, tmp_path)
    log = (tmp_path / "kes.log").read_text() if (tmp_path / "kes.log").exists() else ""
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n--- kes.log\n{log}"
    out = r.stdout
    # MinIO's identity, as the server answers it: the h1: spelling of its API key's.
    minio = re.search(r"MinIO's identity: (h1:[A-Za-z0-9_-]{43})$", out, re.M)
    assert minio, out
    # kes migrate: one key moved, then (--merge) none.
    assert "Migrated      1 keys successfully!" in out or "Migrated      1 key" in out, out
    assert "Migration succeeded! No keys migrated." in out
    assert "The old object's key: OK" in out
    assert "MinIO's data key: OK (version 1)" in out
    # The rotation through the KES API made version 2 of MinIO's SSE key.
    assert re.search(r'"version":\s*"?2', out) or re.search(r"Version\s+2", out), out
    # Nothing at rest in plaintext: the store holds the old key's bytes only sealed.
    old_key = base64.b64decode((tmp_path / "kes-keys" / "minio-old-key").read_bytes())
    db = sqlite3.connect(tmp_path / "pykes.db")
    try:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        cells = b"".join(
            str(row).encode() for t in tables for row in db.execute(f'SELECT * FROM "{t}"')
        )
    finally:
        db.close()
    # Go's stored key: base64 of a protobuf whose field 1 holds field 1, the 32 key
    # bytes (tests/vectors' fs_keystore_file)
    assert old_key[:4] == b"\x0a\x24\x0a\x20"
    secret = old_key[4:36]
    assert secret not in cells and base64.b64encode(secret) not in cells
