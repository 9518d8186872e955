"""Key APIs against a real pykes server over mTLS (HTTP/1.1 and HTTP/2).

Expected values come from docs/compat/api.md and tests/vectors/vectors.json (recorded from the Go
server), never from pykes itself.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from conftest import PKI, RunningServer, config_yaml, spec_vectors, start_server
from pykes.crypto import KeyType, decode_key_version

V = spec_vectors()
B64 = base64.b64encode


def b64(data: bytes) -> str:
    return B64(data).decode()


@pytest.fixture(scope="module")
def kes(tmp_path_factory: pytest.TempPathFactory, pki: PKI):
    root = tmp_path_factory.mktemp("kes-keys")
    app = pki.client("app")
    extra = (
        "policy:\n"
        "  app:\n"
        "    allow:\n"
        "    - /v1/key/create/app-*\n"
        "    - /v1/key/generate/app-*\n"
        "    - /v1/key/decrypt/app-*\n"
        "    - /v1/key/list/*\n"
        "    deny:\n"
        "    - /v1/key/decrypt/app-secret\n"
        f"    identities:\n    - {app.identity}\n"
    )
    server = start_server(
        root, pki, config_yaml(pki, pki.client("admin").identity, root / "keys", extra)
    )
    yield server
    server.stop()


@pytest.fixture(params=["http1", "http2"])
def admin(request, kes: RunningServer, pki: PKI):
    with kes.client(pki.client("admin"), http2=request.param == "http2") as client:
        yield client


def _import_vector_keys(client) -> None:
    for key in V["keys"]:
        r = client.post(key["import"]["path"], json=key["import"]["request_body"])
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            assert r.json() == {"message": "key already exists"}


def test_http2_is_negotiated(kes: RunningServer, pki: PKI) -> None:
    with kes.client(pki.client("admin"), http2=True) as client:
        r = client.get("/version")
        assert r.http_version == "HTTP/2"
        assert r.status_code == 200


def test_every_vector_ciphertext_decrypts_over_the_api(admin) -> None:
    _import_vector_keys(admin)
    for vec in V["vectors"]:
        body = {"ciphertext": vec["ciphertext_b64"]}
        if vec["context_b64"] is not None:
            body["context"] = vec["context_b64"]
        r = admin.post(f"/v1/key/decrypt/{vec['key']}", json=body)
        assert r.status_code == 200, r.text
        assert r.json() == {"plaintext": vec["plaintext_b64"]}
        assert r.headers["content-type"] == "application/json"
        assert r.content.endswith(b"}\n")


def test_legacy_and_negative_decrypt_vectors(admin) -> None:
    _import_vector_keys(admin)
    for vec in V["decrypt_legacy"] + V["decrypt_negative"]:
        ex = vec["exchange"]
        r = admin.post(ex["path"], json=ex["request_body"])
        assert r.status_code == ex["status"], (vec["description"], r.text)
        assert r.json() == ex["response_body"]


def test_encrypt_roundtrip_and_length(admin) -> None:
    _import_vector_keys(admin)
    for vec in V["vectors"][:6]:
        pt = vec["plaintext_b64"]
        body = {"plaintext": pt}
        if vec["context_b64"] is not None:
            body["context"] = vec["context_b64"]
        r = admin.post(f"/v1/key/encrypt/{vec['key']}", json=body)
        assert r.status_code == 200
        ct = base64.b64decode(r.json()["ciphertext"])
        assert len(ct) == len(base64.b64decode(pt)) + 44
        r = admin.post(
            f"/v1/key/decrypt/{vec['key']}",
            json={**body, "ciphertext": b64(ct)} | {"plaintext": None},
        )
        assert r.json() == {"plaintext": pt}


def test_api_samples_recorded_from_go(admin) -> None:
    _import_vector_keys(admin)
    for sample in V["api_samples"]:
        if sample["path"] == "/v1/key/list/vector*":
            continue  # a Go bug we fix on purpose (docs/compat/api.md §5.9), tested below
        if sample["path"] == "/v1/policy/list/*" or sample["path"] == "/v1/identity/self/describe":
            continue  # depend on the recorded server's policies/admin
        kwargs = {}
        if "request_body" in sample:
            body = sample["request_body"]
            kwargs["content"] = (
                json.dumps(body).encode() if not isinstance(body, str) else body.encode()
            )
        r = admin.request(sample["method"], sample["path"], **kwargs)
        assert r.status_code == sample["status"], (sample["path"], r.text)
        assert r.headers["content-type"] == sample["response_content_type"]
        if "response_raw" in sample:
            assert r.text == sample["response_raw"]
        elif sample["response_body"] == "<random DEK elided>":
            out = r.json()
            assert len(base64.b64decode(out["plaintext"])) == 32
            assert len(base64.b64decode(out["ciphertext"])) == 76
        elif sample["path"].startswith("/v1/key/describe/vector-aes"):
            out = r.json()
            assert out["name"] == "vector-aes256" and out["algorithm"] == "AES256"
        elif sample["path"] == "/version":
            assert set(r.json()) == {"version", "commit"}
        else:
            assert r.json() == sample["response_body"], sample["path"]


def test_list_with_trailing_star_pattern_works(admin) -> None:
    _import_vector_keys(admin)
    r = admin.get("/v1/key/list/vector*")
    assert r.status_code == 200
    assert r.json()["names"] == ["vector-aes256", "vector-chacha20"]
    r = admin.get("/v1/key/list/vector-c*")
    assert r.json()["names"] == ["vector-chacha20"]
    assert "continue_at" not in r.json()


def test_slashless_list_redirects_like_go(kes: RunningServer, pki: PKI) -> None:
    with kes.client(pki.client("admin")) as client:
        r = client.get("/v1/key/list")
        assert r.status_code == 301
        assert r.headers["location"] == "/v1/key/list/"
        r = client.get("/v1/key/list", follow_redirects=True)
        assert r.status_code == 200
        assert "vector-aes256" in r.json()["names"] or r.json()["names"] is not None


def test_key_lifecycle_and_describe(admin, kes: RunningServer) -> None:
    name = f"life-{os.urandom(4).hex()}"
    assert admin.post(f"/v1/key/create/{name}").status_code == 200
    r = admin.post(f"/v1/key/create/{name}")
    assert (r.status_code, r.json()) == (400, {"message": "key already exists"})
    d = admin.get(f"/v1/key/describe/{name}").json()
    assert d["name"] == name and d["algorithm"] == "AES256"
    assert d["created_by"] == kes.pki.client("admin").identity
    key_file = Path(kes.config.parent / "keys" / name)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    stored = decode_key_version(key_file.read_bytes())
    assert stored.key_type is KeyType.AES256 and stored.hmac_key is not None
    dek = admin.post(f"/v1/key/generate/{name}", json={"context": b64(b"{}")}).json()
    r = admin.post(
        f"/v1/key/decrypt/{name}", json={"ciphertext": dek["ciphertext"], "context": "e30="}
    )
    assert r.json() == {"plaintext": dek["plaintext"]}
    h1 = admin.put(f"/v1/key/hmac/{name}", json={"message": b64(b"root access key")}).json()["hmac"]
    h2 = admin.put(f"/v1/key/hmac/{name}", json={"message": b64(b"root access key")}).json()["hmac"]
    assert h1 == h2 and len(base64.b64decode(h1)) == 32
    r = admin.delete(f"/v1/key/delete/{name}")
    assert r.status_code == 200 and r.content == b""
    assert not key_file.exists()
    r = admin.get(f"/v1/key/describe/{name}")
    assert (r.status_code, r.json()) == (404, {"message": "key does not exist"})
    r = admin.delete(f"/v1/key/delete/{name}")
    assert (r.status_code, r.json()) == (404, {"message": "key does not exist"})


def test_generate_accepts_empty_body_but_encrypt_does_not(admin) -> None:
    _import_vector_keys(admin)
    r = admin.post("/v1/key/generate/vector-aes256", content=b"")
    assert r.status_code == 200
    dek = r.json()
    r = admin.post("/v1/key/decrypt/vector-aes256", json={"ciphertext": dek["ciphertext"]})
    assert r.json() == {"plaintext": dek["plaintext"]}
    r = admin.post("/v1/key/encrypt/vector-aes256", content=b"")
    assert (r.status_code, r.json()) == (400, {"message": "invalid request body"})


def test_version_field_is_accepted_and_ignored(admin) -> None:
    _import_vector_keys(admin)
    vec = V["vectors"][1]
    r = admin.post(
        f"/v1/key/decrypt/{vec['key']}", json={"ciphertext": vec["ciphertext_b64"], "version": "v7"}
    )
    assert r.json() == {"plaintext": vec["plaintext_b64"]}


def test_hmac_vectors_via_imported_fs_files(tmp_path: Path, pki: PKI) -> None:
    """Keystore files written by the Go server are served as they are."""
    keys = tmp_path / "keys"
    keys.mkdir()
    for key in V["keys"]:
        (keys / key["name"]).write_text(key["fs_keystore_file"]["content"])
    server = start_server(tmp_path, pki, config_yaml(pki, pki.client("admin").identity, keys))
    try:
        with server.client(pki.client("admin")) as client:
            for vec in V["hmac"]:
                r = client.put(vec["exchange"]["path"], json=vec["exchange"]["request_body"])
                assert r.json() == vec["exchange"]["response_body"]
            for key in V["keys"]:
                r = client.get(key["describe"]["path"])
                assert r.json() == key["describe"]["response_body"]
    finally:
        server.stop()


def test_listing_many_keys_one_page_then_go_pages(tmp_path: Path, pki: PKI) -> None:
    """All names in one page (no continue_at) while the body fits what the SDK reads
    (1 MiB); beyond that Go's 1024-name pages with continue_at."""
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir()
    large.mkdir()
    for i in range(2000):
        (small / f"k{i:05d}").write_text("x")
    long_names = sorted(f"{i:06d}" + "n" * 74 for i in range(13_000))  # 80-char names
    for name in long_names:
        (large / name).write_text("x")
    admin = pki.client("admin")
    for keys, check in ((small, "small"), (large, "large")):
        root = tmp_path / f"srv-{check}"
        root.mkdir()
        server = start_server(root, pki, config_yaml(pki, admin.identity, keys))
        try:
            with server.client(admin) as c:
                body = c.get("/v1/key/list/*").json()
        finally:
            server.stop()
        if check == "small":
            assert body == {"names": [f"k{i:05d}" for i in range(2000)]}
        else:
            assert body["names"] == long_names[:1024]
            assert body["continue_at"] == long_names[1024]


def test_expect_100_continue(kes: RunningServer, pki: PKI) -> None:
    import socket

    ctx = kes.ssl_context(pki.client("admin"))
    ctx.set_alpn_protocols(["http/1.1"])
    body = b'{"plaintext":"aGVsbG8="}'
    with (
        socket.create_connection(("127.0.0.1", kes.port)) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.settimeout(10)
        tls.sendall(
            b"POST /v1/key/encrypt/vector-aes256 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert tls.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        tls.sendall(body)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 ")
    assert b'"ciphertext"' in data or b"key does not exist" in data
